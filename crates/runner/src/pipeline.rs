//! Pipeline files: `name`, and `[stages.<name>]` tables holding `kind`, `inputs` and the stage's
//! own keys. Parsing keeps toml's spans so every mistake is reported at its line and column.

use crate::diag::{Source, SourceError};
use crate::handler::{Handler, Parsed};
use crate::names;
use crate::stages;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeArray, DeString, DeTable, DeValue};

pub const MOVIELENS_HINT: &str = "MovieLens data sets can be downloaded from \
https://grouplens.org/datasets/movielens/; unzip one into data/ (e.g. data/ml-1m/ratings.dat), \
or run pipelines/quickstart.toml, which uses the bundled data/ml-latest-small";

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot read pipeline file {path}: {source}; the shipped pipelines are in pipelines/")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    At(#[from] SourceError),
    #[error("`--set {0}`: expected STAGE.KEY=VALUE, e.g. `--set split.seed=7`")]
    BadSet(String),
}

impl PipelineError {
    pub fn excerpt(&self) -> Option<String> {
        match self {
            PipelineError::At(e) => e.excerpt(),
            _ => None,
        }
    }
}

/// One `--set a.b.c=value` override.
#[derive(Debug, Clone)]
pub struct Override {
    pub raw: String,
    pub path: Vec<String>,
    pub value: String,
}

impl Override {
    /// `stage.key=value` (pipeline runs) or `key=value` (one-off stage commands).
    pub fn parse(raw: &str) -> Result<Self, PipelineError> {
        let (k, v) = raw
            .split_once('=')
            .ok_or_else(|| PipelineError::BadSet(raw.to_string()))?;
        let path: Vec<String> = k.trim().split('.').map(|s| s.trim().to_string()).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(PipelineError::BadSet(raw.to_string()));
        }
        Ok(Override {
            raw: raw.to_string(),
            path,
            value: v.to_string(),
        })
    }
}

pub struct StageDef {
    pub name: String,
    pub handler: &'static dyn Handler,
    /// Direct inputs, as indices into `Pipeline::stages`, in the order written.
    pub inputs: Vec<usize>,
    pub config: Parsed,
}

impl StageDef {
    pub fn kind(&self) -> &'static str {
        self.handler.kind()
    }
}

pub struct Pipeline {
    pub name: String,
    pub path: PathBuf,
    /// In a topological order (inputs before the stages reading them), file order otherwise.
    pub stages: Vec<StageDef>,
    /// The `--set` flags it was loaded with (a sweep trial's grid values included), as typed.
    pub overrides: Vec<String>,
}

impl Pipeline {
    pub fn load(path: &Path, sets: &[String]) -> Result<Pipeline, PipelineError> {
        Self::load_checking(path, sets, true)
    }

    /// For `dag` and `status`, which describe the pipeline: data files need not exist yet.
    pub fn load_without_data(path: &Path, sets: &[String]) -> Result<Pipeline, PipelineError> {
        Self::load_checking(path, sets, false)
    }

    fn load_checking(
        path: &Path,
        sets: &[String],
        check_data: bool,
    ) -> Result<Pipeline, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        let overrides = sets
            .iter()
            .map(|s| Override::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Self::parse_with(path, text, &overrides, check_data)
    }

    fn parse_with(
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

        let mut name = None;
        let mut stage_tables = Vec::new();
        for (k, v) in doc.iter() {
            match k.get_ref().as_ref() {
                "name" => match v.get_ref() {
                    DeValue::String(s) => {
                        check_name(&source, "pipeline `name`", s, v.span())?;
                        name = Some(s.to_string());
                    }
                    other => {
                        return Err(source
                            .error(
                                v.span(),
                                format!("`name` must be a string, found {}", other.type_str()),
                            )
                            .into());
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
                        return Err(source
                            .error(
                                v.span(),
                                format!(
                                    "`stages` must be a table of stages ([stages.NAME]), found {}",
                                    other.type_str()
                                ),
                            )
                            .into());
                    }
                },
                other => {
                    return Err(source
                        .error(
                            k.span(),
                            format!(
                                "unknown top-level key `{other}`; a pipeline has `name` and \
                                 [stages.NAME] tables (stage keys go under their stage)"
                            ),
                        )
                        .into());
                }
            }
        }
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

        // Split each stage into kind / inputs / its own keys.
        struct Raw {
            name: String,
            span: Range<usize>,
            handler: &'static dyn Handler,
            inputs: Vec<Spanned<String>>,
            table: DeTable<'static>,
        }
        let mut raws = Vec::new();
        for (key, value) in stage_tables {
            let stage = key.get_ref().to_string();
            let span = key.span();
            check_name(&source, "stage name", &stage, span.clone())?;
            let DeValue::Table(table) = value.get_ref() else {
                return Err(source
                    .error(
                        value.span(),
                        format!("stage `{stage}` must be a table ([stages.{stage}])"),
                    )
                    .into());
            };
            let mut kind = None;
            let mut inputs = Vec::new();
            let mut own = DeTable::new();
            for (k, v) in table.iter() {
                match k.get_ref().as_ref() {
                    "kind" => kind = Some(v.clone()),
                    "inputs" => inputs = string_list(&source, &stage, v)?,
                    _ => {
                        own.insert(k.clone(), v.clone());
                    }
                }
            }
            let Some(kind) = kind else {
                return Err(source
                    .error(
                        span,
                        format!(
                            "stage `{stage}` has no `kind`; add e.g. kind = \"{}\" (known kinds: {})",
                            stages::names().first().copied().unwrap_or(stages::INGEST),
                            stages::names().join(", ")
                        ),
                    )
                    .into());
            };
            let DeValue::String(kind_name) = kind.get_ref() else {
                return Err(source.error(kind.span(), "`kind` must be a string").into());
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
            raws.push(Raw {
                name: stage,
                span,
                handler,
                inputs,
                table: own,
            });
        }

        // Overrides go into the stage tables before strict parsing, so a typo in `--set` is
        // caught exactly like one in the file.
        for o in overrides {
            let stage = &o.path[0];
            let Some(raw) = raws.iter_mut().find(|r| &r.name == stage) else {
                let names: Vec<_> = raws.iter().map(|r| r.name.as_str()).collect();
                let (off, _) = source.add_arg(format!("--set {}", o.raw), "");
                return Err(source
                    .error(
                        off..off,
                        format!(
                            "no stage named `{stage}` in {}; stages: {}",
                            path.display(),
                            names.join(", ")
                        ),
                    )
                    .into());
            };
            if o.path.len() < 2 {
                return Err(PipelineError::BadSet(o.raw.clone()));
            }
            if matches!(o.path[1].as_str(), "kind" | "inputs") {
                let (off, _) = source.add_arg(format!("--set {}", o.raw), "");
                return Err(source
                    .error(
                        off..off,
                        format!(
                            "`{}` cannot be overridden; edit the pipeline file",
                            o.path[1]
                        ),
                    )
                    .into());
            }
            let value = arg_value(&mut source, format!("--set {}", o.raw), &o.value);
            set_path(&mut raw.table, &o.path[1..], value);
        }

        let index: HashMap<String, usize> = raws
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        let mut edges = Vec::new();
        for r in &raws {
            let mut e = Vec::new();
            for inp in &r.inputs {
                let Some(&j) = index.get(inp.get_ref()) else {
                    let names: Vec<_> = raws.iter().map(|r| r.name.as_str()).collect();
                    return Err(source
                        .error(
                            inp.span(),
                            format!(
                                "stage `{}`: input `{}` names no stage of this pipeline; stages: {}",
                                r.name,
                                inp.get_ref(),
                                names.join(", ")
                            ),
                        )
                        .into());
                };
                e.push((j, inp.span()));
            }
            edges.push(e);
        }
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

        let mut position = vec![0; raws.len()];
        for (pos, &i) in order.iter().enumerate() {
            position[i] = pos;
        }
        let mut slots: Vec<Option<Raw>> = raws.into_iter().map(Some).collect();
        let mut stages_out = Vec::new();
        for &i in &order {
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
                    &source,
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
        Ok(Pipeline {
            name,
            path: path.to_path_buf(),
            stages: stages_out,
            overrides: overrides.iter().map(|o| o.raw.clone()).collect(),
        })
    }

    pub fn index_of(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == stage)
    }

    /// [`Self::index_of`], or an error listing the stages there are.
    pub fn stage_index(&self, stage: &str) -> anyhow::Result<usize> {
        self.index_of(stage).ok_or_else(|| {
            anyhow::anyhow!(
                "no stage named `{stage}` in {}; stages: {}",
                self.path.display(),
                self.stage_names().join(", ")
            )
        })
    }

    /// Ancestors of `i` after its direct inputs, nearest first (breadth-first).
    pub fn upstream(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.stages.len()];
        let mut out = Vec::new();
        let mut frontier: Vec<usize> = self.stages[i].inputs.clone();
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for j in frontier {
                if !seen[j] {
                    seen[j] = true;
                    out.push(j);
                    next.extend(self.stages[j].inputs.iter().copied());
                }
            }
            frontier = next;
        }
        out
    }

    pub fn downstream(&self, i: usize) -> Vec<usize> {
        let mut marked = vec![false; self.stages.len()];
        marked[i] = true;
        // Topological order: one forward pass reaches every descendant.
        for j in 0..self.stages.len() {
            if self.stages[j].inputs.iter().any(|&k| marked[k]) {
                marked[j] = true;
            }
        }
        (0..self.stages.len())
            .filter(|&j| marked[j] && j != i)
            .collect()
    }

    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }
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

/// A command-line value as TOML (`7`, `true`, `[1, 2]`, `{ a = 1 }`), or else the plain string
/// (`random`, `data/ml-1m`), with spans placed in the command-line part of the source.
pub fn arg_value(source: &mut Source, label: String, value: &str) -> Spanned<DeValue<'static>> {
    let (off, text) = source.add_arg(label, value);
    match DeValue::parse(text) {
        Ok(v) => shift(v, off),
        Err(_) => Spanned::new(
            off..off + text.len(),
            DeValue::String(DeString::Borrowed(text)),
        ),
    }
}

/// A command-line string value, never reinterpreted as TOML (`--format csv`).
pub fn arg_string(source: &mut Source, label: String, value: &str) -> Spanned<DeValue<'static>> {
    let (off, text) = source.add_arg(label, value);
    Spanned::new(
        off..off + text.len(),
        DeValue::String(DeString::Borrowed(text)),
    )
}

fn shift(v: Spanned<DeValue<'static>>, off: usize) -> Spanned<DeValue<'static>> {
    let span = v.span();
    let inner = match v.into_inner() {
        DeValue::Array(a) => {
            let mut out = DeArray::new();
            for e in a.iter() {
                out.push(shift(e.clone(), off));
            }
            DeValue::Array(out)
        }
        DeValue::Table(t) => {
            let mut out = DeTable::new();
            for (k, v) in t.iter() {
                let ks = k.span();
                out.insert(
                    Spanned::new(ks.start + off..ks.end + off, k.get_ref().clone()),
                    shift(v.clone(), off),
                );
            }
            DeValue::Table(out)
        }
        other => other,
    };
    Spanned::new(span.start + off..span.end + off, inner)
}

/// Set `path` (dotted keys) in a table, creating intermediate tables.
pub fn set_path(table: &mut DeTable<'static>, path: &[String], value: Spanned<DeValue<'static>>) {
    let span = value.span();
    let key = Spanned::new(span.clone(), DeString::Owned(path[0].clone()));
    if path.len() == 1 {
        table.remove(path[0].as_str());
        table.insert(key, value);
        return;
    }
    let exists_as_table = matches!(
        table.get(path[0].as_str()).map(|v| v.get_ref()),
        Some(DeValue::Table(_))
    );
    if !exists_as_table {
        table.remove(path[0].as_str());
        table.insert(
            key,
            Spanned::new(span.clone(), DeValue::Table(DeTable::new())),
        );
    }
    let inner = table
        .get_mut(path[0].as_str())
        .expect("inserted above")
        .get_mut();
    if let DeValue::Table(t) = inner {
        set_path(t, &path[1..], value);
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

/// Where a string value equal to `needle` was written, for "file not found" errors.
fn find_string(table: &DeTable<'static>, needle: &str) -> Option<Range<usize>> {
    fn walk(v: &Spanned<DeValue<'static>>, needle: &str) -> Option<Range<usize>> {
        match v.get_ref() {
            DeValue::String(s) if s.as_ref() == needle => Some(v.span()),
            DeValue::Table(t) => t.values().find_map(|v| walk(v, needle)),
            DeValue::Array(a) => a.iter().find_map(|v| walk(v, needle)),
            _ => None,
        }
    }
    table.values().find_map(|v| walk(v, needle))
}

pub fn check_external_inputs(
    source: &Source,
    stage: &str,
    handler: &dyn Handler,
    config: &Parsed,
    table: &DeTable<'static>,
    stage_span: &Range<usize>,
) -> Result<(), SourceError> {
    if let Some(p) = missing_input(handler, config) {
        let shown = p.display().to_string();
        // The stage may have joined a file name onto the folder the user wrote.
        let span = find_string(table, &shown)
            .or_else(|| {
                p.ancestors()
                    .skip(1)
                    .find_map(|a| find_string(table, &a.display().to_string()))
            })
            .unwrap_or_else(|| stage_span.clone());
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let mut msg = format!(
            "stage `{stage}`: data file `{shown}` not found (relative paths are resolved from \
             the current directory, {cwd})"
        );
        if handler.kind() == stages::INGEST {
            msg.push_str("; ");
            msg.push_str(MOVIELENS_HINT);
        }
        return Err(source.error(span, msg));
    }
    Ok(())
}

/// The first data file or folder a stage reads that does not exist.
pub fn missing_input(handler: &dyn Handler, config: &Parsed) -> Option<PathBuf> {
    let mut paths = handler.external_inputs(config);
    // Stages resolve a data folder into files only when it exists; a missing `path` (the
    // convention for a stage's data location) must still be reported, with its line.
    let synthetic = config.json.get("synthetic").is_some_and(|v| !v.is_null());
    if let Some(p) = config.json.get("path").and_then(|v| v.as_str())
        && !synthetic
    {
        paths.insert(0, PathBuf::from(p));
    }
    paths.into_iter().find(|p| !p.exists())
}

/// Kahn's algorithm with ties broken by file order; on a cycle, the stages on it and the span
/// of the `inputs` entry that closes it.
fn topo_order(
    names: &[String],
    edges: &[Vec<(usize, Range<usize>)>],
) -> Result<Vec<usize>, (Vec<String>, Range<usize>)> {
    let n = names.len();
    let mut indegree: Vec<usize> = edges.iter().map(|e| e.len()).collect();
    let mut dependents: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, e) in edges.iter().enumerate() {
        for (j, _) in e {
            dependents.entry(*j).or_default().push(i);
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    while order.len() < n {
        let Some(next) = (0..n).find(|&i| !done[i] && indegree[i] == 0) else {
            break;
        };
        done[next] = true;
        order.push(next);
        for &d in dependents.get(&next).map(|v| v.as_slice()).unwrap_or(&[]) {
            indegree[d] -= 1;
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk input edges among the remaining stages until one repeats: that loop is the cycle.
    let start = (0..n).find(|&i| !done[i]).expect("some stage is left");
    let mut path = vec![start];
    let mut spans = Vec::new();
    loop {
        let cur = *path.last().expect("non-empty");
        let (next, span) = edges[cur]
            .iter()
            .find(|(j, _)| !done[*j])
            .cloned()
            .expect("a stage left over by Kahn's algorithm has an unfinished input");
        spans.push(span);
        if let Some(pos) = path.iter().position(|&p| p == next) {
            // Stage `cur` reads `next`; show it in data-flow order.
            let mut cycle: Vec<String> = path[pos..]
                .iter()
                .rev()
                .map(|&i| names[i].clone())
                .collect();
            cycle.push(names[path[path.len() - 1]].clone());
            return Err((cycle, spans.pop().expect("pushed above")));
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_is_reported_in_data_flow_order() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        // a reads c, b reads a, c reads b.
        let edges = vec![vec![(2, 10..11)], vec![(0, 20..21)], vec![(1, 30..31)]];
        let (cycle, _) = topo_order(&names, &edges).unwrap_err();
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle.first(), cycle.last());
        let ok = topo_order(
            &names,
            &[vec![], vec![(0, 0..1)], vec![(0, 0..1), (1, 0..1)]],
        )
        .unwrap();
        assert_eq!(ok, vec![0, 1, 2]);
    }

    #[test]
    fn overrides_parse_as_toml_or_string() {
        let o = Override::parse("split.seed=7").unwrap();
        assert_eq!(o.path, ["split", "seed"]);
        assert!(Override::parse("split.seed").is_err());
        assert!(Override::parse("split..seed=1").is_err());
        let mut src = Source::new("p.toml".into(), String::new());
        let v = arg_value(&mut src, "x".into(), "7");
        assert!(matches!(v.get_ref(), DeValue::Integer(_)));
        let v = arg_value(&mut src, "x".into(), "data/ml-1m");
        assert!(matches!(v.get_ref(), DeValue::String(s) if s == "data/ml-1m"));
        let v = arg_value(&mut src, "x".into(), "{ a = 1 }");
        assert!(v.span().start > 0);
    }
}
