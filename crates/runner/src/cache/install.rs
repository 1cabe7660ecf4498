//! Writing an entry. A stage writes into a [`Pending`] folder; [`Pending::commit`] records the
//! files it wrote in the manifest, writes the manifest last, and renames the folder into place
//! (moving a previous entry aside first), so a destination holds one complete entry or none.
//! `run` commits into the cache ([`Store::pending`]); the one-off stage commands commit into
//! their `--out` folder ([`Pending::beside`]). Also the fsyncs and relative links the view uses.

use super::Store;
use super::entry::{self, Entry, MANIFEST, Manifest};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn next() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A folder a stage is writing, and where it goes once the stage succeeded. Dropped without
/// [`commit`](Pending::commit) (the stage failed), the folder is removed.
#[derive(Debug)]
pub struct Pending {
    dir: PathBuf,
    dest: PathBuf,
    /// Where a previous `dest` is moved before it is deleted.
    trash: PathBuf,
    /// A tombstone gc left for `dest`, void once it is built again.
    tombstone: Option<PathBuf>,
}

impl Store {
    /// A fresh folder to build entry `kind`/`key` in, under `tmp/`. Call it with the entry's
    /// lock held: the leftovers of killed runs building the same entry are removed first
    /// (the folder's name starts with `<kind>-<key>-`, so they are told apart by name).
    pub fn pending(&self, kind: &str, key: &str) -> Result<Pending> {
        self.clean_stale_tmp(kind, key);
        let dir = self
            .tmp_root()
            .join(format!("{kind}-{key}-{}-{}", std::process::id(), next()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Pending {
            dir,
            dest: self.artifact_dir(kind, key),
            trash: self.trash_path("old"),
            tombstone: Some(self.tombstone(kind, key)),
        })
    }

    /// A fresh name under `tmp/` to move a folder to before deleting it, so a failure never
    /// leaves half of it in place: `trash-<pid>-<what>-<n>` (gc removes those of dead pids).
    pub fn trash_path(&self, what: &str) -> PathBuf {
        self.tmp_root()
            .join(format!("trash-{}-{what}-{}", std::process::id(), next()))
    }

    fn clean_stale_tmp(&self, kind: &str, key: &str) {
        let prefix = format!("{kind}-{key}-");
        if let Ok(rd) = std::fs::read_dir(self.tmp_root()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    tracing::debug!("removing leftover {}", e.path().display());
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

impl Pending {
    /// For a folder outside any store (a one-off command's `--out`): built next to it, as
    /// `.<name>.recpipe-tmp-<pid>`.
    pub fn beside(out: &Path) -> Result<Pending> {
        let parent = parent_of(out);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let pid = std::process::id();
        let dir = parent.join(format!(".{name}.recpipe-tmp-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Pending {
            dir,
            dest: out.to_path_buf(),
            trash: parent.join(format!(".{name}.recpipe-old-{pid}")),
            tombstone: None,
        })
    }

    /// Where the stage writes.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Make the folder the entry `manifest` describes: its `outputs` are filled in from the
    /// files (each fsynced), the manifest is written last, and the folder renamed into place.
    pub fn commit(self, mut manifest: Manifest) -> Result<Entry> {
        manifest.outputs = entry::describe_outputs(&self.dir)?;
        recpipe_core::fsutil::write_json(self.dir.join(MANIFEST), &manifest)?;
        install(&self.dir, &self.dest, &self.trash)?;
        if let Some(t) = &self.tombstone {
            let _ = std::fs::remove_file(t);
        }
        Ok(Entry {
            dir: self.dest.clone(),
            manifest,
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // After a commit the folder has been renamed away, and this finds nothing.
        if self.dir.exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Move a finished folder to `dest`, replacing whatever was there (moved to `trash` first).
fn install(tmp: &Path, dest: &Path, trash: &Path) -> Result<()> {
    let parent = parent_of(dest);
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    fsync_dir(tmp);
    if dest.exists() {
        std::fs::rename(dest, trash)
            .with_context(|| format!("cannot move the old {} aside", dest.display()))?;
        let _ = std::fs::remove_dir_all(trash);
    }
    std::fs::rename(tmp, dest)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), dest.display()))?;
    fsync_dir(&parent);
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn fsync_dir(dir: &Path) {
    // Directory fsync makes the rename durable; not all platforms allow opening a directory.
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// `target` as a path relative to the folder `base` (for links that survive moving `.recpipe`).
pub fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return target.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_climb_to_the_common_root() {
        assert_eq!(
            relative_to(
                Path::new("/r/.recpipe/cache/split/k"),
                Path::new("/r/.recpipe/runs/p")
            ),
            PathBuf::from("../../cache/split/k")
        );
    }

    #[test]
    fn commit_replaces_the_destination_and_a_dropped_pending_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("old.txt"), "old").unwrap();
        let p = Pending::beside(&out).unwrap();
        std::fs::write(p.dir().join("new.txt"), "new").unwrap();
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "stage": "s", "kind": "k", "key": "key", "format_version": 1, "config": {},
            "inputs": {"upstream": [], "external": []}, "outputs": [], "start": "",
            "duration_s": 0.0, "version": "0", "summary": null
        }))
        .unwrap();
        let e = p.commit(manifest).unwrap();
        assert_eq!(e.manifest.outputs.len(), 1);
        assert!(!out.join("old.txt").exists());
        assert!(entry::verify(&out, Some("key")).is_ok());
        let dropped = Pending::beside(&out).unwrap();
        let tmp = dropped.dir().to_path_buf();
        drop(dropped);
        assert!(!tmp.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "only out/ remains: {left:?}");
    }
}
