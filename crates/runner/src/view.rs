//! The `.recpipe/runs/<pipeline>` view and the record of a pipeline's runs:
//!
//! ```text
//! .recpipe/runs/<pipeline>  ->  ../views/<pipeline>/<generation>
//! .recpipe/views/<pipeline>/<generation>/<stage>  ->  ../../../cache/<kind>/<key>
//! .recpipe/views/<pipeline>/<generation>/run.json  the run: overrides, stage → kind + key
//! ```
//!
//! Each `run` writes one generation folder, complete under a `.tmp-` name and then renamed,
//! and swaps the top-level link with one atomic rename, so a view is always one run's set of
//! stages. A folder or file found where the top-level link belongs is moved aside and the view
//! rebuilt; per-stage links are never rewritten in place. The generations are also the run
//! history `gc` keeps artifacts by.

use crate::cache::{self, Store};
use crate::names;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub const RECORD: &str = "run.json";
static COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageRef {
    pub kind: String,
    pub key: String,
}

/// What one run of a pipeline left in its view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub pipeline: String,
    /// The pipeline file, as given on the command line.
    pub file: PathBuf,
    /// `--set` flags (a sweep trial's grid values included); empty for the file's own config.
    pub overrides: Vec<String>,
    /// UTC, RFC 3339.
    pub finished: String,
    pub stages: BTreeMap<String, StageRef>,
}

impl RunRecord {
    /// The artifacts it names, with names that are not safe path components dropped (the
    /// record is a file anyone can edit; it never names a path outside `cache/`).
    pub fn artifacts(&self) -> impl Iterator<Item = (&String, &StageRef)> {
        self.stages.iter().filter(|(s, r)| {
            [s.as_str(), &r.kind, &r.key]
                .iter()
                .all(|n| names::unsafe_reason(n).is_none())
        })
    }
}

pub fn views_root(store: &Store, pipeline: &str) -> PathBuf {
    store.root.join("views").join(pipeline)
}

pub fn top_link(store: &Store, pipeline: &str) -> PathBuf {
    store.runs_dir().join(pipeline)
}

/// Complete generation folders of a pipeline, oldest first (names sort by time).
pub fn generations(store: &Store, pipeline: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(views_root(store, pipeline))
        .map(|rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub fn read_record(generation: &Path) -> Option<RunRecord> {
    let bytes = std::fs::read(generation.join(RECORD)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The generation folder the top-level link points at.
pub fn current_generation(store: &Store, pipeline: &str) -> Option<PathBuf> {
    let target = std::fs::read_link(top_link(store, pipeline)).ok()?;
    let name = target.file_name()?.to_string_lossy().into_owned();
    names::unsafe_reason(&name)
        .is_none()
        .then(|| views_root(store, pipeline).join(name))
}

/// The record of the run the view shows.
pub fn current(store: &Store, pipeline: &str) -> Option<RunRecord> {
    read_record(&current_generation(store, pipeline)?)
}

/// The cache folder the view's link for `stage` points at.
pub fn stage_target(store: &Store, pipeline: &str, stage: &str) -> Option<PathBuf> {
    let rec = current(store, pipeline)?;
    let (_, r) = rec.artifacts().find(|(s, _)| *s == stage)?;
    Some(store.artifact_dir(&r.kind, &r.key))
}

/// Write a new generation holding `stages` (plus the stages of the view's current run that
/// `keep` accepts) and make it the view, atomically.
pub fn publish(
    store: &Store,
    mut record: RunRecord,
    keep: impl Fn(&str, &StageRef) -> bool,
) -> Result<PathBuf> {
    let pipeline = record.pipeline.clone();
    let _lock = lock(store, &pipeline)?;
    if let Some(prev) = current(store, &pipeline) {
        for (stage, r) in prev.artifacts() {
            if !record.stages.contains_key(stage)
                && keep(stage, r)
                && store.artifact_dir(&r.kind, &r.key).is_dir()
            {
                record.stages.insert(stage.clone(), r.clone());
            }
        }
    }
    let root = views_root(store, &pipeline);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let name = generation_name();
    let tmp = root.join(format!(".tmp-{name}"));
    let dest = root.join(&name);
    write_generation(store, &tmp, &record)
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&tmp);
        })
        .with_context(|| format!("cannot write the view of {pipeline}"))?;
    std::fs::rename(&tmp, &dest)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), dest.display()))?;
    cache::fsync_dir(&root);
    swap_top_link(store, &pipeline, &dest)?;
    Ok(dest)
}

/// Held while a view is published (and by gc while it prunes that pipeline's runs).
pub fn lock(store: &Store, pipeline: &str) -> Result<File> {
    let path = store.locks_dir().join(format!("view-{pipeline}.lock"));
    cache::lock::wait(&path, || {})
}

fn generation_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos:020}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn write_generation(store: &Store, dir: &Path, record: &RunRecord) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (stage, r) in record.artifacts() {
        let target = store.artifact_dir(&r.kind, &r.key);
        symlink(&cache::relative_to(&target, dir), &dir.join(stage))?;
    }
    recpipe_core::fsutil::write_json(dir.join(RECORD), record)?;
    cache::fsync_dir(dir);
    Ok(())
}

/// Point `runs/<pipeline>` at `generation` with one rename; whatever else stands there (a
/// folder from an older layout, or one a person made) is moved aside first.
fn swap_top_link(store: &Store, pipeline: &str, generation: &Path) -> Result<()> {
    let link = top_link(store, pipeline);
    let parent = link.parent().expect("runs/ is the parent");
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = parent.join(format!(".{pipeline}.{}.{n}", std::process::id()));
    symlink(&cache::relative_to(generation, parent), &tmp)?;
    if let Ok(meta) = std::fs::symlink_metadata(&link)
        && !meta.file_type().is_symlink()
    {
        let trash = store.trash_path("view");
        tracing::info!(
            "{} was not a link to a run's view; moving it aside and rebuilding the view",
            link.display()
        );
        let moved = std::fs::rename(&link, &trash);
        if let Err(e) = moved {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot move {} aside", link.display()));
        }
        let _ = std::fs::remove_dir_all(&trash).or_else(|_| std::fs::remove_file(&trash));
    }
    if let Err(e) = std::fs::rename(&tmp, &link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot update {}", link.display()));
    }
    cache::fsync_dir(parent);
    Ok(())
}

fn symlink(target: &Path, link: &Path) -> Result<()> {
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("cannot create link {}", link.display()))?;
    #[cfg(not(unix))]
    std::fs::write(link, target.to_string_lossy().as_bytes())
        .with_context(|| format!("cannot write {}", link.display()))?;
    Ok(())
}
