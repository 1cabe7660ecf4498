//! The data files a stage reads must exist: [`missing_input`] finds the first that does not,
//! and [`check_external_inputs`] reports it at the line that names it.

use crate::diag::{Source, SourceError};
use crate::handler::{Handler, Parsed};
use crate::stages;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub const MOVIELENS_HINT: &str = "MovieLens data sets can be downloaded from \
https://grouplens.org/datasets/movielens/; unzip one into data/ (e.g. data/ml-1m/ratings.dat), \
or run pipelines/quickstart.toml, which uses the bundled data/ml-latest-small";

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
