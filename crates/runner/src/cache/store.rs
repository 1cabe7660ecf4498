//! The [`Store`]: one `.recpipe/` folder, the paths of its buckets (see the module doc of
//! `cache`), [`Store::lookup`] of an entry by key, and the tombstones gc leaves.

use super::entry::{self, Entry, Invalid};
use super::statcache::StatCache;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The folders `open` creates under the root.
const BUCKETS: [&str; 6] = ["cache", "runs", "views", "collected", "tmp", "locks"];

pub struct Store {
    pub root: PathBuf,
    pub(super) stat: StatCache,
    /// Whether data files are hashed on the calling thread only
    /// ([`recpipe_core::fsutil::hash_file_on_one_core`]): a one-off command hashes them
    /// beside the stage, a pipeline before it (on every core, since the stage waits).
    pub(super) hash_on_one_core: bool,
}

impl Store {
    pub fn open(root: PathBuf) -> Result<Store> {
        for sub in BUCKETS {
            let d = root.join(sub);
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create cache directory {}", d.display()))?;
        }
        let stat = StatCache::load(&root);
        Ok(Store {
            root,
            stat,
            hash_on_one_core: false,
        })
    }

    /// Hashing without a `.recpipe` folder, beside a running stage (one-off stage commands).
    pub fn in_memory() -> Store {
        Store {
            root: PathBuf::new(),
            stat: StatCache::in_memory(),
            hash_on_one_core: true,
        }
    }

    /// The verified entry `kind`/`key`, or why there is none to reuse.
    pub fn lookup(&self, kind: &str, key: &str) -> std::result::Result<Entry, Invalid> {
        let dir = self.artifact_dir(kind, key);
        let manifest = entry::verify(&dir, Some(key))?;
        Ok(Entry { dir, manifest })
    }

    pub fn artifact_dir(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join("cache").join(kind).join(key)
    }

    pub fn run_link(&self, pipeline: &str, stage: &str) -> PathBuf {
        self.runs_dir().join(pipeline).join(stage)
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn tmp_root(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(super) fn tombstone(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join("collected").join(kind).join(key)
    }

    /// Record that gc removed an artifact (so `status` can say so); best effort.
    pub fn bury(&self, kind: &str, key: &str) {
        let path = self.tombstone(kind, key);
        let written = path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| {
                std::fs::write(&path, crate::numbers::rfc3339(std::time::SystemTime::now()))
            });
        if let Err(e) = written {
            tracing::debug!("cannot write {}: {e}", path.display());
        }
    }

    /// When gc removed this artifact, if it did (and it was not built again since).
    pub fn collected(&self, kind: &str, key: &str) -> Option<String> {
        std::fs::read_to_string(self.tombstone(kind, key)).ok()
    }
}

/// The `.recpipe` cache folder `path` lies in (after resolving `..` and links), if any: a
/// component named `.recpipe` holding `cache/`, `runs/` or `views/`.
pub fn store_containing(path: &Path) -> Option<PathBuf> {
    let abs = resolve(path);
    abs.ancestors()
        .filter(|a| a.file_name().is_some_and(|n| n == ".recpipe"))
        .find(|a| {
            ["cache", "runs", "views"]
                .iter()
                .any(|d| a.join(d).is_dir())
        })
        .map(Path::to_path_buf)
}

/// `path` made absolute: its longest existing prefix canonicalized (links resolved), the rest
/// (which cannot hold links, as it does not exist) normalized lexically.
fn resolve(path: &Path) -> PathBuf {
    let abs = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<_> = abs.components().collect();
    for n in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..n].iter().collect();
        if let Ok(mut base) = std::fs::canonicalize(&prefix) {
            for c in &parts[n..] {
                match c {
                    std::path::Component::ParentDir => {
                        base.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => base.push(other),
                }
            }
            return base;
        }
    }
    abs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_into_a_cache_are_found_through_dotdot_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let store = Store::open(root.join("p/.recpipe")).unwrap();
        std::fs::create_dir_all(root.join("p/out")).unwrap();
        let inside = |rel: &str| store_containing(&root.join(rel));
        assert_eq!(inside("p/.recpipe/runs/q/split"), Some(store.root.clone()));
        assert_eq!(
            inside("p/out/../.recpipe/cache/x"),
            Some(store.root.clone())
        );
        assert_eq!(inside("p/none/../.recpipe/x/y"), Some(store.root.clone()));
        assert_eq!(inside("p/out/new"), None);
        // A `.recpipe` that is not a cache (no cache/, runs/ or views/) is an ordinary folder.
        std::fs::create_dir_all(root.join("q/.recpipe")).unwrap();
        assert_eq!(inside("q/.recpipe/out"), None);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("p/.recpipe/cache"), root.join("link")).unwrap();
            assert_eq!(inside("link/new"), Some(store.root.clone()));
        }
    }
}
