//! `recpipe show`: a stage's artifact in a screenful (status, where it is, how it was built,
//! its inputs, config, files and summary).

use crate::cache::{self, Manifest, Store};
use crate::exec::{self, State};
use crate::numbers;
use crate::out::outln;
use crate::pipeline::Pipeline;
use crate::view;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// A stage's artifact in a screenful; `verbose` adds each Parquet file's schema and the
/// stage's whole recorded summary.
pub fn show(p: &Pipeline, store: &Store, stage: &str, verbose: bool) -> Result<()> {
    let i = p.stage_index(stage)?;
    let s = &p.stages[i];
    let link = store.run_link(&exec::run_name(p), stage);
    let in_view = view::stage_target(store, &exec::run_name(p), stage);
    let (dir, manifest, note) = shown_artifact(p, store, i, in_view.as_deref())?;
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

/// The fresh artifact of stage `i`, else the one its view shows (with a note saying it is
/// stale), else an error saying how to build it.
fn shown_artifact(
    p: &Pipeline,
    store: &Store,
    i: usize,
    in_view: Option<&Path>,
) -> Result<(PathBuf, Manifest, Option<String>)> {
    let plan = exec::plan(p, store)?;
    let reasons = match exec::assess(p, i, &plan[i], store, false) {
        State::Fresh(m) => return Ok((exec::artifact_path(p, store, i, &plan), *m, None)),
        State::Stale { reasons, .. } => reasons.join("; "),
    };
    if let Some(d) = in_view
        && let Ok(m) = cache::read_manifest(d)
    {
        let note = format!("stale ({reasons}); showing its last run");
        return Ok((d.to_path_buf(), m, Some(note)));
    }
    let stage = &p.stages[i].name;
    bail!(
        "stage `{stage}` has not been run yet ({reasons}); run `recpipe run {} --stage {stage}` first",
        p.path.display()
    )
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
            numbers::human_bytes(e.bytes),
            &e.blake3[..16.min(e.blake3.len())]
        );
    }
    outln!(
        "config    {}",
        serde_json::to_string(&numbers::tidy(&m.config))?
    );
    print_files(dir, m, verbose);
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

fn print_files(dir: &Path, m: &Manifest, verbose: bool) {
    outln!("files");
    for o in &m.outputs {
        let rows = o.rows.map(|r| format!("{r} rows")).unwrap_or_default();
        outln!(
            "  {:<24} {:>10}  {rows}",
            o.path,
            numbers::human_bytes(o.bytes)
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
