//! `show`, `dag`, `gc` and the one-off stage commands.

use crate::cache::{self, Manifest, Store};
use crate::cli::DagFormat;
use crate::diag::Source;
use crate::exec::{self, State};
use crate::numbers;
use crate::out::outln;
use crate::pipeline::{self, Override, Pipeline, PipelineError};
use crate::stages;
use crate::view;
use anyhow::{Context, Result, anyhow, bail};
use recpipe_core::{Artifact, Inputs};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A stage's artifact in a screenful; `verbose` adds each Parquet file's schema and the
/// stage's whole recorded summary.
pub fn show(p: &Pipeline, store: &Store, stage: &str, verbose: bool) -> Result<()> {
    let i = p.index_of(stage).ok_or_else(|| {
        anyhow!(
            "no stage named `{stage}` in {}; stages: {}",
            p.path.display(),
            p.stage_names().join(", ")
        )
    })?;
    let plan = exec::plan(p, store)?;
    let s = &p.stages[i];
    let link = store.run_link(&exec::run_name(p), stage);
    let in_view = view::stage_target(store, &exec::run_name(p), stage);
    let (dir, manifest, note) = match exec::assess(p, i, &plan[i], store, false) {
        State::Fresh(m) => (exec::artifact_path(p, store, i, &plan), *m, None),
        State::Stale { reasons, .. } => {
            let last = in_view
                .clone()
                .and_then(|d| cache::read_manifest(&d).ok().map(|m| (d, m)));
            match last {
                Some((d, m)) => (
                    d,
                    m,
                    Some(format!(
                        "stale ({}); showing its last run",
                        reasons.join("; ")
                    )),
                ),
                None => bail!(
                    "stage `{stage}` has not been run yet ({}); run `recpipe run {} --stage {stage}` first",
                    reasons.join("; "),
                    p.path.display()
                ),
            }
        }
    };
    outln!("stage     {} (kind {})", s.name, s.kind());
    outln!("status    {}", note.as_deref().unwrap_or("fresh"));
    outln!("artifact  {}", dir.display());
    outln!("view      {}", view_note(&link, in_view.as_deref(), &dir));
    outln!(
        "built     {} in {:.2}s by recpipe {}",
        manifest.start,
        manifest.duration_s,
        manifest.version
    );
    outln!("key       {}", manifest.key);
    print_manifest_body(&dir, &manifest, verbose)
}

/// Where the view's link for the stage points, next to the artifact `show` describes.
fn view_note(link: &Path, in_view: Option<&Path>, shown: &Path) -> String {
    match in_view {
        Some(t) if t == shown => format!("{} (this artifact)", link.display()),
        Some(t) => format!(
            "{} -> {} (the view shows another configuration's run)",
            link.display(),
            t.display()
        ),
        None => format!(
            "{} (not in the view: the last run did not build it)",
            link.display()
        ),
    }
}

fn print_manifest_body(dir: &Path, m: &Manifest, verbose: bool) -> Result<()> {
    if !m.inputs.upstream.is_empty() {
        let ups: Vec<String> = m
            .inputs
            .upstream
            .iter()
            .map(|u| format!("{} ({})", u.stage, u.key))
            .collect();
        outln!("inputs    {}", ups.join(", "));
    }
    for e in &m.inputs.external {
        outln!(
            "data      {} ({}, blake3 {})",
            e.path.display(),
            cache::human_bytes(e.bytes),
            &e.blake3[..16.min(e.blake3.len())]
        );
    }
    outln!(
        "config    {}",
        serde_json::to_string(&numbers::tidy(&m.config))?
    );
    outln!("files");
    for o in &m.outputs {
        let rows = o.rows.map(|r| format!("{r} rows")).unwrap_or_default();
        outln!(
            "  {:<24} {:>10}  {rows}",
            o.path,
            cache::human_bytes(o.bytes)
        );
        if verbose && o.path.ends_with(".parquet") {
            match parquet_schema(&dir.join(&o.path)) {
                Ok(fields) => {
                    for f in fields {
                        outln!("      {f}");
                    }
                }
                Err(e) => outln!("      (cannot read schema: {e:#})"),
            }
        }
    }
    if !m.lines.is_empty() {
        outln!("summary");
        for l in &m.lines {
            outln!("  {l}");
        }
    }
    if verbose && !m.summary.is_null() {
        outln!("summary.json");
        for l in serde_json::to_string_pretty(&numbers::tidy(&m.summary))?.lines() {
            outln!("  {l}");
        }
    } else if !m.summary.is_null() {
        outln!("(-v adds each file's schema and the whole recorded summary)");
    }
    Ok(())
}

fn parquet_schema(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?;
    Ok(builder
        .schema()
        .fields()
        .iter()
        .map(|f| {
            format!(
                "{}: {}{}",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "" } else { " not null" }
            )
        })
        .collect())
}

pub fn dag(p: &Pipeline, format: DagFormat) {
    let children = |i: usize| -> Vec<usize> {
        (0..p.stages.len())
            .filter(|&j| p.stages[j].inputs.contains(&i))
            .collect()
    };
    match format {
        DagFormat::Text => {
            outln!("{} ({})", p.name, p.path.display());
            let mut shown = vec![false; p.stages.len()];
            fn walk(
                p: &Pipeline,
                i: usize,
                prefix: &str,
                last: bool,
                shown: &mut [bool],
                children: &dyn Fn(usize) -> Vec<usize>,
            ) {
                let s = &p.stages[i];
                let branch = if last { "└── " } else { "├── " };
                let again = shown[i];
                outln!(
                    "{prefix}{branch}{} [{}]{}",
                    s.name,
                    s.kind(),
                    if again { " (see above)" } else { "" }
                );
                if again {
                    return;
                }
                shown[i] = true;
                let kids = children(i);
                let next = format!("{prefix}{}", if last { "    " } else { "│   " });
                for (n, &c) in kids.iter().enumerate() {
                    walk(p, c, &next, n + 1 == kids.len(), shown, children);
                }
            }
            let roots: Vec<usize> = (0..p.stages.len())
                .filter(|&i| p.stages[i].inputs.is_empty())
                .collect();
            for (n, &r) in roots.iter().enumerate() {
                walk(p, r, "", n + 1 == roots.len(), &mut shown, &children);
            }
        }
        DagFormat::Mermaid => {
            outln!("graph TD");
            for s in &p.stages {
                outln!("  {}[\"{} ({})\"]", s.name, s.name, s.kind());
            }
            for s in &p.stages {
                for &j in &s.inputs {
                    outln!("  {} --> {}", p.stages[j].name, s.name);
                }
            }
        }
        DagFormat::Dot => {
            outln!("digraph \"{}\" {{", p.name);
            outln!("  rankdir=LR;");
            for s in &p.stages {
                outln!("  \"{}\" [label=\"{}\\n({})\"];", s.name, s.name, s.kind());
            }
            for s in &p.stages {
                for &j in &s.inputs {
                    outln!("  \"{}\" -> \"{}\";", p.stages[j].name, s.name);
                }
            }
            outln!("}}");
        }
    }
}

/// The kind of an artifact directory: from its manifest, else from the files it holds.
fn detect_kind(dir: &Path) -> Result<(String, Option<Manifest>)> {
    if !dir.is_dir() {
        bail!(
            "input {} is not a directory; pass an artifact folder written by recpipe (e.g. the --out of `recpipe ingest`, or .recpipe/runs/<pipeline>/<stage>)",
            dir.display()
        );
    }
    if let Ok(m) = cache::read_manifest(dir) {
        return Ok((m.kind.clone(), Some(m)));
    }
    let has = |f: &str| dir.join(f).exists();
    let kind = if has("ratings.parquet") && has("items.parquet") {
        "ingest"
    } else if has("train.parquet") {
        "split"
    } else if has("history.parquet") || has("model.json") {
        "train"
    } else if has("metrics.json") {
        "evaluate"
    } else {
        bail!(
            "cannot tell which stage wrote {}: no manifest.json and none of ratings.parquet, train.parquet, model.json, metrics.json",
            dir.display()
        )
    };
    Ok((kind.to_string(), None))
}

/// A stage run outside any pipeline: config from flags and `--set key=value`, inputs from
/// artifact folders, output into `out` (replaced only when it holds an earlier artifact).
pub fn oneoff(
    kind: &str,
    flags: Vec<(String, String, String)>,
    sets: &[String],
    input_dirs: &[PathBuf],
    out: &Path,
) -> Result<()> {
    if let Some(store) = cache::store_containing(out) {
        bail!(
            "refusing to write --out {} inside the recpipe cache {}: the cache and its runs/ \
             views are written by `recpipe run` only; choose a folder outside it",
            out.display(),
            store.display()
        );
    }
    let handler = stages::get(kind).ok_or_else(|| {
        anyhow!(
            "the `{kind}` stage is not available in this build yet; available: {}",
            stages::names().join(", ")
        )
    })?;
    let mut source = Source::new(PathBuf::from("<command line>"), String::new());
    let mut table = DeTable::new();
    for (key, label, value) in flags {
        let v = pipeline::arg_string(&mut source, label, &value);
        pipeline::set_path(&mut table, &[key], v);
    }
    for raw in sets {
        let o = Override::parse(raw)?;
        if o.path.len() == 1 && o.path[0].contains('=') {
            return Err(PipelineError::BadSet(raw.clone()).into());
        }
        let v = pipeline::arg_value(&mut source, format!("--set {raw}"), &o.value);
        pipeline::set_path(&mut table, &o.path, v);
    }
    let config = handler
        .parse(Spanned::new(0..0, DeValue::Table(table.clone())))
        .map_err(|e| PipelineError::At(source.error(e.span, format!("{kind}: {}", e.message))))?;
    pipeline::check_external_inputs(&source, kind, handler, &config, &table, &(0..0))
        .map_err(PipelineError::At)?;

    // Direct inputs, then the ancestors their manifests recorded, nearest first.
    let mut artifacts = Vec::new();
    let mut upstream = Vec::new();
    let mut frontier = Vec::new();
    for dir in input_dirs {
        let (k, m) = detect_kind(dir)?;
        let abs = std::fs::canonicalize(dir).unwrap_or(dir.clone());
        artifacts.push(Artifact {
            stage: k.clone(),
            kind: k.clone(),
            dir: abs.clone(),
        });
        upstream.push(cache::UpstreamRef {
            stage: k.clone(),
            kind: k,
            key: m.as_ref().map(|m| m.key.clone()).unwrap_or_default(),
            dir: Some(abs),
        });
        frontier.extend(m);
    }
    let mut seen: HashSet<PathBuf> = artifacts.iter().map(|a| a.dir.clone()).collect();
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for m in frontier {
            for u in &m.inputs.upstream {
                let Some(d) = &u.dir else { continue };
                if d.is_dir() && seen.insert(d.clone()) {
                    artifacts.push(Artifact {
                        stage: u.stage.clone(),
                        kind: u.kind.clone(),
                        dir: d.clone(),
                    });
                    next.extend(cache::read_manifest(d).ok());
                }
            }
        }
        frontier = next;
    }

    let store = Store::in_memory();
    let external = handler
        .external_inputs(&config)
        .iter()
        .map(|f| store.hash_external(f))
        .collect::<Result<Vec<_>>>()?;
    let key = cache::stage_key(
        kind,
        handler.format_version(),
        &config.json,
        &upstream,
        &external,
    );

    if out.exists() && !(out.join(cache::MANIFEST).exists() || is_empty_dir(out)) {
        bail!(
            "refusing to replace {}: it exists and holds no manifest.json (it was not written by recpipe); choose another --out or remove it",
            out.display()
        );
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = parent.join(format!(".{name}.recpipe-tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let manifest = exec::build(
        handler,
        &config,
        kind,
        None,
        &key,
        Inputs::new(artifacts),
        upstream,
        external,
        &tmp,
    )
    .inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })
    .with_context(|| format!("{kind} failed"))?;
    if out.exists() {
        let old = parent.join(format!(".{name}.recpipe-old-{}", std::process::id()));
        std::fs::rename(out, &old)
            .with_context(|| format!("cannot move the old {} aside", out.display()))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(&tmp, out)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    cache::fsync_dir(&parent);
    for l in &manifest.lines {
        outln!("{l}");
    }
    outln!(
        "{kind}: wrote {} in {:.2}s",
        out.display(),
        manifest.duration_s
    );
    Ok(())
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}
