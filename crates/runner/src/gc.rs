//! `recpipe gc`: remove the artifacts no kept run uses, old run records, and leftovers of
//! killed runs. Kept, per pipeline: the run the view shows, the latest run of the pipeline
//! file's own configuration (no `--set`), and the last `--keep-runs` runs. Every removal says
//! why; every failure is printed with its path and makes gc exit non-zero.

use crate::cache::{self, Store};
use crate::names;
use crate::numbers::human_bytes;
use crate::out::outln;
use crate::view;
use anyhow::{Context, Result, bail};
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

pub const DEFAULT_KEEP_RUNS: usize = 5;

/// Held shared by every `run` while it builds and publishes, exclusively by gc: an artifact a
/// run has built but not yet put in its view is never collected.
pub fn run_guard(store: &Store) -> Result<File> {
    let file = guard_file(store)?;
    fs4::FileExt::lock_shared(&file).context("cannot lock the cache against gc")?;
    Ok(file)
}

fn guard_file(store: &Store) -> Result<File> {
    let path = store.locks_dir().join("gc.lock");
    File::create(&path).with_context(|| format!("cannot open {}", path.display()))
}

struct Sweep<'a> {
    store: &'a Store,
    dry_run: bool,
    count: usize,
    bytes: u64,
    /// Run records (tiny folders of links) are counted apart from artifacts and leftovers.
    records: usize,
    failures: usize,
}

impl Sweep<'_> {
    fn fail(&mut self, path: &Path, e: impl std::fmt::Display) {
        eprintln!("gc: cannot remove {}: {e}", path.display());
        self.failures += 1;
    }

    /// Remove (or list) one directory; true when it is gone (or would be).
    fn remove(&mut self, path: &Path, what: &str, why: &str) -> bool {
        let size = dir_size(path);
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        if !self.dry_run {
            // Moved aside first, so a failure never leaves half an artifact in cache/.
            let trash = self.store.trash_path("gc");
            if let Err(e) = std::fs::rename(path, &trash) {
                self.fail(path, e);
                return false;
            }
            if let Err(e) = std::fs::remove_dir_all(&trash) {
                self.fail(&trash, e);
            }
        }
        outln!(
            "{verb} {what} {} ({}): {why}",
            path.display(),
            human_bytes(size)
        );
        if what == "run record" {
            self.records += 1;
        } else {
            self.count += 1;
            self.bytes += size;
        }
        true
    }
}

pub fn gc(store: &Store, dry_run: bool, keep_runs: usize) -> Result<()> {
    // Exclusive while gc runs; when a run holds it, that run's new artifacts may not be in its
    // view yet, so artifacts are all kept this time (leftovers and old records still go).
    let guard = guard_file(store);
    let runs_in_progress = match &guard {
        Ok(f) => fs4::FileExt::try_lock(f).is_err(),
        Err(_) => false,
    };
    let mut sweep = Sweep {
        store,
        dry_run,
        count: 0,
        bytes: 0,
        records: 0,
        failures: 0,
    };
    let referenced = prune_runs(&mut sweep, keep_runs);
    if runs_in_progress {
        outln!("gc: a `recpipe run` is in progress; artifacts are kept until it finishes");
    } else {
        sweep_artifacts(&mut sweep, &referenced, keep_runs);
    }
    sweep_tmp(&mut sweep);
    let verb = if dry_run { "would remove" } else { "removed" };
    outln!(
        "gc: {verb} {} director{} ({}) and {} old run record{}; kept per pipeline: the run its \
         view shows, its latest run without --set, and its last {keep_runs} runs",
        sweep.count,
        if sweep.count == 1 { "y" } else { "ies" },
        human_bytes(sweep.bytes),
        sweep.records,
        if sweep.records == 1 { "" } else { "s" }
    );
    if sweep.failures > 0 {
        bail!(
            "gc: {} director{} could not be removed (listed above)",
            sweep.failures,
            if sweep.failures == 1 { "y" } else { "ies" }
        );
    }
    Ok(())
}

/// Drop the run records gc does not keep; return the artifacts the kept ones point at.
fn prune_runs(sweep: &mut Sweep, keep_runs: usize) -> HashSet<PathBuf> {
    let store = sweep.store;
    let mut referenced = HashSet::new();
    for pipeline in entries(&store.root.join("views")) {
        let name = file_name(&pipeline);
        if names::unsafe_reason(&name).is_some() {
            continue;
        }
        let _lock = match view::lock(store, &name) {
            Ok(l) => Some(l),
            Err(e) => {
                sweep.fail(&pipeline, format!("{e:#}"));
                None
            }
        };
        let gens = view::generations(store, &name);
        let current = view::current_generation(store, &name);
        let latest_own = gens
            .iter()
            .rev()
            .find(|g| view::read_record(g).is_some_and(|r| r.overrides.is_empty()));
        let recent = gens.len().saturating_sub(keep_runs);
        for (n, g) in gens.iter().enumerate() {
            let kept = n >= recent || Some(g) == current.as_ref() || Some(g) == latest_own;
            // Without the lock a run may be publishing: keep everything.
            if kept || _lock.is_none() {
                referenced.extend(link_targets(g));
            } else {
                let why = match view::read_record(g) {
                    Some(r) if r.overrides.is_empty() => format!(
                        "run of {name} finished {}, older than its last {keep_runs} runs",
                        r.finished
                    ),
                    Some(r) => format!(
                        "run of {name} with {} finished {}, older than its last {keep_runs} runs",
                        r.overrides
                            .iter()
                            .map(|o| format!("--set {o}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                        r.finished
                    ),
                    None => format!("run of {name} without a readable {}", view::RECORD),
                };
                sweep.remove(g, "run record", &why);
            }
        }
        if _lock.is_some() {
            for tmp in entries(&pipeline).filter(|e| file_name(e).starts_with(".tmp-")) {
                sweep.remove(&tmp, "view", "leftover of an interrupted run");
            }
        }
    }
    // Layout 1's runs/<pipeline>/ folders of per-stage links (until the next run replaces them).
    for p in entries(&store.root.join("runs")) {
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            referenced.extend(link_targets(&p));
        }
    }
    referenced
}

fn sweep_artifacts(sweep: &mut Sweep, referenced: &HashSet<PathBuf>, keep_runs: usize) {
    let store = sweep.store;
    for k in entries(&store.root.join("cache")) {
        let kind = file_name(&k);
        for a in entries(&k) {
            let key = file_name(&a);
            let canon = std::fs::canonicalize(&a).unwrap_or(a.clone());
            if referenced.contains(&canon) {
                continue;
            }
            // A run holding the lock may be building this artifact right now.
            let _lock = match store.try_lock(&kind, &key) {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(e) => {
                    sweep.fail(&a, format!("{e:#}"));
                    continue;
                }
            };
            let why = match cache::read_manifest(&a) {
                Ok(m) => format!(
                    "stage `{}` of {}: no kept run uses it (the view's run, the latest run \
                     without --set, the last {keep_runs} runs)",
                    m.stage,
                    m.pipeline.as_deref().unwrap_or("a one-off run")
                ),
                Err(e) => format!("not a complete artifact ({e})"),
            };
            if sweep.remove(&a, "artifact", &why) && !sweep.dry_run {
                store.bury(&kind, &key);
            }
        }
    }
}

fn sweep_tmp(sweep: &mut Sweep) {
    let store = sweep.store;
    for t in entries(&store.tmp_root()) {
        let name = file_name(&t);
        let stale = if let Some(rest) = name.strip_prefix("trash-") {
            rest.split('-')
                .next()
                .and_then(|p| p.parse().ok())
                .is_some_and(|pid| !pid_alive(pid))
        } else {
            // <kind>-<key>-<pid>-<n>: stale when nobody holds the artifact's lock.
            let mut parts = name.rsplitn(3, '-');
            let (_n, _pid, rest) = (parts.next(), parts.next(), parts.next());
            match rest.and_then(|r| r.rsplit_once('-')) {
                Some((kind, key)) => matches!(store.try_lock(kind, key), Ok(Some(_))),
                None => false,
            }
        };
        if stale {
            sweep.remove(&t, "leftover", "of an interrupted run");
        }
    }
}

/// Where the links in a folder point (canonical), for the links that resolve.
fn link_targets(dir: &Path) -> Vec<PathBuf> {
    entries(dir)
        .filter(|e| std::fs::symlink_metadata(e).is_ok_and(|m| m.file_type().is_symlink()))
        .filter_map(|l| std::fs::canonicalize(l).ok())
        .collect()
}

fn entries(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v.into_iter()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn dir_size(dir: &Path) -> u64 {
    let mut files = Vec::new();
    let _ = cache::walk_files(dir, &mut files);
    files
        .iter()
        .filter_map(|f| std::fs::symlink_metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // Without /proc, only our own pid is known to be alive; others are left alone.
        pid == std::process::id()
    }
}
