//! Reading a pipeline file into a [`Pipeline`]: the top-level keys, each stage's table split
//! into kind / inputs / its own keys, `--set` overrides applied, inputs resolved and ordered,
//! then each stage's keys parsed strictly by its handler. Every error points at its span.

use super::args::{Override, arg_value, set_path};
use super::data::check_external_inputs;
use super::topo::topo_order;
use super::{Pipeline, PipelineError, StageDef};
use crate::diag::{Source, SourceError};
use crate::handler::Handler;
use crate::names;
use crate::stages;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

type Table = DeTable<'static>;
type Value = Spanned<DeValue<'static>>;
/// Per stage, its inputs as (index of the stage read, span of its name in `inputs`).
type Edges = Vec<Vec<(usize, Range<usize>)>>;

/// One stage table split into kind / inputs / its own keys, before strict parsing.
struct Raw {
    name: String,
    span: Range<usize>,
    handler: &'static dyn Handler,
    inputs: Vec<Spanned<String>>,
    table: Table,
}

pub(super) fn parse(
    path: &Path,
    text: String,
    overrides: &[Override],
    need_data: bool,
) -> Result<Pipeline, PipelineError> {
    let mut source = Source::new(path.to_path_buf(), text);
    let doc = DeTable::parse(source.text).map_err(|e| {
        source.error(
            e.span().unwrap_or(0..0),
            format!("invalid TOML: {}", e.message()),
        )
    })?;
    let doc_span = doc.span();
    let doc = doc.into_inner();
    let (name, mut stage_tables) = top_level(&source, &doc)?;
    let name = match name {
        Some(n) => n,
        None => name_from_file(&source, path, doc_span.start)?,
    };
    if stage_tables.is_empty() {
        return Err(source
            .error(
                doc_span.start..doc_span.start,
                "the pipeline has no stages; add a [stages.ingest] table with kind = \"ingest\"",
            )
            .into());
    }
    // File order reads better in `dag` and `run` output than the map's key order.
    stage_tables.sort_by_key(|(k, _)| k.span().start);
    let mut raws = stage_tables
        .into_iter()
        .map(|(key, value)| split_stage(&source, key, value))
        .collect::<Result<Vec<_>, _>>()?;
    // Overrides go into the stage tables before strict parsing, so a typo in `--set` is
    // caught exactly like one in the file.
    for o in overrides {
        apply_override(&mut source, path, &mut raws, o)?;
    }
    let edges = resolve_inputs(&source, &raws)?;
    let order = topo_order(
        &raws.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        &edges,
    )
    .map_err(|(cycle, span)| {
        source.error(
            span,
            format!(
                "the stages form a cycle: {}; a stage cannot (indirectly) read its own output",
                cycle.join(" → ")
            ),
        )
    })?;
    let stages = parse_stages(&source, raws, &edges, &order, need_data)?;
    Ok(Pipeline {
        name,
        path: path.to_path_buf(),
        stages,
        overrides: overrides.iter().map(|o| o.raw.clone()).collect(),
    })
}

type StageTables = Vec<(Spanned<DeString<'static>>, Value)>;

/// The pipeline's `name` (if written) and its `[stages.NAME]` tables; any other key is an error.
fn top_level(source: &Source, doc: &Table) -> Result<(Option<String>, StageTables), SourceError> {
    let mut name = None;
    let mut stage_tables = Vec::new();
    for (k, v) in doc.iter() {
        match k.get_ref().as_ref() {
            "name" => match v.get_ref() {
                DeValue::String(s) => {
                    check_name(source, "pipeline `name`", s, v.span())?;
                    name = Some(s.to_string());
                }
                other => {
                    return Err(source.error(
                        v.span(),
                        format!("`name` must be a string, found {}", other.type_str()),
                    ));
                }
            },
            "description" => {}
            "stages" => match v.get_ref() {
                DeValue::Table(t) => {
                    for (sk, sv) in t.iter() {
                        stage_tables.push((sk.clone(), sv.clone()));
                    }
                }
                other => {
                    return Err(source.error(
                        v.span(),
                        format!(
                            "`stages` must be a table of stages ([stages.NAME]), found {}",
                            other.type_str()
                        ),
                    ));
                }
            },
            other => {
                return Err(source.error(
                    k.span(),
                    format!(
                        "unknown top-level key `{other}`; a pipeline has `name` and \
                             [stages.NAME] tables (stage keys go under their stage)"
                    ),
                ));
            }
        }
    }
    Ok((name, stage_tables))
}

/// A `[stages.NAME]` table split into its kind, its inputs and its own keys.
fn split_stage(
    source: &Source,
    key: Spanned<DeString<'static>>,
    value: Value,
) -> Result<Raw, SourceError> {
    let stage = key.get_ref().to_string();
    let span = key.span();
    check_name(source, "stage name", &stage, span.clone())?;
    let DeValue::Table(table) = value.get_ref() else {
        return Err(source.error(
            value.span(),
            format!("stage `{stage}` must be a table ([stages.{stage}])"),
        ));
    };
    let mut kind = None;
    let mut inputs = Vec::new();
    let mut own = DeTable::new();
    for (k, v) in table.iter() {
        match k.get_ref().as_ref() {
            "kind" => kind = Some(v.clone()),
            "inputs" => inputs = string_list(source, &stage, v)?,
            _ => {
                own.insert(k.clone(), v.clone());
            }
        }
    }
    let Some(kind) = kind else {
        return Err(source.error(
            span,
            format!(
                "stage `{stage}` has no `kind`; add e.g. kind = \"{}\" (known kinds: {})",
                stages::names().first().copied().unwrap_or(stages::INGEST),
                stages::names().join(", ")
            ),
        ));
    };
    let DeValue::String(kind_name) = kind.get_ref() else {
        return Err(source.error(kind.span(), "`kind` must be a string"));
    };
    let handler = stages::get(kind_name).ok_or_else(|| {
        source.error(
            kind.span(),
            format!(
                "stage `{stage}`: unknown kind `{kind_name}`; known kinds: {}",
                stages::names().join(", ")
            ),
        )
    })?;
    Ok(Raw {
        name: stage,
        span,
        handler,
        inputs,
        table: own,
    })
}

/// Put one `--set STAGE.KEY=VALUE` into its stage's table.
fn apply_override(
    source: &mut Source,
    path: &Path,
    raws: &mut [Raw],
    o: &Override,
) -> Result<(), PipelineError> {
    // An error about the flag as a whole (its value has no span of its own yet).
    let at_flag = |source: &mut Source, message: String| {
        let (off, _) = source.add_arg(format!("--set {}", o.raw), "");
        PipelineError::from(source.error(off..off, message))
    };
    let stage = &o.path[0];
    let Some(raw) = raws.iter_mut().find(|r| &r.name == stage) else {
        let names: Vec<_> = raws.iter().map(|r| r.name.as_str()).collect();
        let message = format!(
            "no stage named `{stage}` in {}; stages: {}",
            path.display(),
            names.join(", ")
        );
        return Err(at_flag(source, message));
    };
    if o.path.len() < 2 {
        return Err(PipelineError::BadSet(o.raw.clone()));
    }
    if matches!(o.path[1].as_str(), "kind" | "inputs") {
        let message = format!(
            "`{}` cannot be overridden; edit the pipeline file",
            o.path[1]
        );
        return Err(at_flag(source, message));
    }
    let value = arg_value(source, format!("--set {}", o.raw), &o.value);
    set_path(&mut raw.table, &o.path[1..], value);
    Ok(())
}

/// Each stage's inputs as (index into `raws`, span of the name).
fn resolve_inputs(source: &Source, raws: &[Raw]) -> Result<Edges, SourceError> {
    let index: HashMap<String, usize> = raws
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.clone(), i))
        .collect();
    let mut edges = Vec::new();
    for r in raws {
        let mut e = Vec::new();
        for inp in &r.inputs {
            let Some(&j) = index.get(inp.get_ref()) else {
                let names: Vec<_> = raws.iter().map(|r| r.name.as_str()).collect();
                return Err(source.error(
                    inp.span(),
                    format!(
                        "stage `{}`: input `{}` names no stage of this pipeline; stages: {}",
                        r.name,
                        inp.get_ref(),
                        names.join(", ")
                    ),
                ));
            };
            e.push((j, inp.span()));
        }
        edges.push(e);
    }
    Ok(edges)
}

/// Each stage's own keys parsed by its handler (and its data files checked), in `order`.
fn parse_stages(
    source: &Source,
    raws: Vec<Raw>,
    edges: &Edges,
    order: &[usize],
    need_data: bool,
) -> Result<Vec<StageDef>, SourceError> {
    let mut position = vec![0; raws.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = pos;
    }
    let mut slots: Vec<Option<Raw>> = raws.into_iter().map(Some).collect();
    let mut stages_out = Vec::new();
    for &i in order {
        let raw = slots[i].take().expect("each stage once");
        let table = Spanned::new(raw.span.clone(), DeValue::Table(raw.table.clone()));
        let config = raw.handler.parse(table).map_err(|e| {
            let key = key_at(&raw.table, &e.span)
                .map(|k| format!(", key `{k}`"))
                .unwrap_or_default();
            // Pipeline users think in TOML keys, not serde fields.
            let message = e.message.replacen("unknown field", "unknown key", 1);
            source.error(
                e.span.clone(),
                format!(
                    "stage `{}` (kind {}){key}: {message}",
                    raw.name,
                    raw.handler.kind()
                ),
            )
        })?;
        if need_data {
            check_external_inputs(
                source,
                &raw.name,
                raw.handler,
                &config,
                &raw.table,
                &raw.span,
            )?;
        }
        stages_out.push(StageDef {
            name: raw.name,
            handler: raw.handler,
            inputs: edges[i].iter().map(|(j, _)| position[*j]).collect(),
            config,
        });
    }
    Ok(stages_out)
}

/// A pipeline or stage name must be usable as one path component under `.recpipe/`.
fn check_name(
    source: &Source,
    what: &str,
    name: &str,
    span: Range<usize>,
) -> Result<(), SourceError> {
    match names::unsafe_reason(name) {
        None => Ok(()),
        Some(why) => Err(source.error(
            span,
            format!(
                "{what} {name:?} {why}; names become folder names under .recpipe/, so use \
                 letters, digits, `_`, `-` and `.` (not first), at most {} characters",
                names::MAX_LEN
            ),
        )),
    }
}

/// Without `name = ...`, the file's stem, made safe (`my pipeline.toml` → `my_pipeline`).
fn name_from_file(source: &Source, path: &Path, at: usize) -> Result<String, SourceError> {
    let stem = path
        .file_stem()
        .map(|s| names::sanitize(&s.to_string_lossy()))
        .unwrap_or_else(|| "pipeline".into());
    check_name(source, "pipeline name (from the file name)", &stem, at..at)?;
    Ok(stem)
}

fn string_list(
    source: &Source,
    stage: &str,
    v: &Spanned<DeValue<'static>>,
) -> Result<Vec<Spanned<String>>, SourceError> {
    match v.get_ref() {
        DeValue::String(s) => Ok(vec![Spanned::new(v.span(), s.to_string())]),
        DeValue::Array(a) => a
            .iter()
            .map(|e| match e.get_ref() {
                DeValue::String(s) => Ok(Spanned::new(e.span(), s.to_string())),
                other => Err(source.error(
                    e.span(),
                    format!(
                        "stage `{stage}`: `inputs` holds stage names (strings), found {}",
                        other.type_str()
                    ),
                )),
            })
            .collect(),
        other => Err(source.error(
            v.span(),
            format!(
                "stage `{stage}`: `inputs` must be a list of stage names, e.g. inputs = [\"ingest\"]; found {}",
                other.type_str()
            ),
        )),
    }
}

/// The dotted key whose value (or key) contains `span`, deepest first.
fn key_at(table: &DeTable<'static>, span: &Range<usize>) -> Option<String> {
    for (k, v) in table.iter() {
        let vs = v.span();
        let ks = k.span();
        let inside = |s: &Range<usize>| s.start <= span.start && span.end <= s.end.max(s.start + 1);
        if inside(&vs) || inside(&ks) {
            if let DeValue::Table(t) = v.get_ref()
                && let Some(sub) = key_at(t, span)
            {
                return Some(format!("{}.{sub}", k.get_ref()));
            }
            return Some(k.get_ref().to_string());
        }
    }
    None
}
