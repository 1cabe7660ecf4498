//! Content hashes of the data files stages read, remembered in `statcache.json` by size,
//! mtime and inode, so an unchanged multi-gigabyte ratings file is not hashed on every run.

use super::Store;
use super::entry::ExternalRef;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

pub(super) const FILE: &str = "statcache.json";
const LOCK: &str = "statcache.lock";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct StatEntry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    blake3: String,
}

/// The entries read at open plus the ones this process added.
pub(super) struct StatCache {
    entries: Mutex<BTreeMap<String, StatEntry>>,
    dirty: Mutex<bool>,
    /// False for a store without a folder (one-off commands): nothing is saved.
    persist: bool,
}

impl StatCache {
    pub(super) fn load(root: &Path) -> StatCache {
        let entries = std::fs::read(root.join(FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        StatCache {
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
            persist: true,
        }
    }

    pub(super) fn in_memory() -> StatCache {
        StatCache {
            entries: Mutex::new(BTreeMap::new()),
            dirty: Mutex::new(false),
            persist: false,
        }
    }
}

impl Store {
    /// Content hash of a file or a folder (every file below it, by relative path).
    pub fn hash_external(&self, path: &Path) -> Result<ExternalRef> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read input {}", path.display()))?;
        let (blake3, bytes) = if meta.is_dir() {
            self.hash_dir(path)?
        } else {
            self.hash_file_cached(path)?
        };
        Ok(ExternalRef {
            path: path.to_path_buf(),
            blake3,
            bytes,
        })
    }

    fn hash_dir(&self, path: &Path) -> Result<(String, u64)> {
        let mut files = Vec::new();
        super::walk_files(path, &mut files)
            .with_context(|| format!("cannot list {}", path.display()))?;
        files.sort();
        let hashes = files
            .par_iter()
            .map(|f| self.hash_file_cached(f).map(|(h, b)| (f, h, b)))
            .collect::<Result<Vec<_>>>()?;
        let mut hasher = blake3::Hasher::new();
        let mut bytes = 0;
        for (f, h, b) in hashes {
            let rel = f.strip_prefix(path).unwrap_or(f);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update(&[0]);
            hasher.update(h.as_bytes());
            bytes += b;
        }
        Ok((hasher.finalize().to_hex().to_string(), bytes))
    }

    fn hash_file_cached(&self, path: &Path) -> Result<(String, u64)> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read input {}", path.display()))?;
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let id = abs.to_string_lossy().into_owned();
        let stat = stat_of(&meta);
        let cache = &self.stat;
        if let Some(e) = cache.entries.lock().expect("not poisoned").get(&id)
            && (e.size, e.mtime_ns, e.inode) == stat
        {
            return Ok((e.blake3.clone(), e.size));
        }
        tracing::debug!("hashing {}", path.display());
        let h = if self.hash_on_one_core {
            recpipe_core::fsutil::hash_file_on_one_core(path)?
        } else {
            recpipe_core::fsutil::hash_file(path)?
        };
        let h = h.to_hex().to_string();
        cache.entries.lock().expect("not poisoned").insert(
            id,
            StatEntry {
                size: stat.0,
                mtime_ns: stat.1,
                inode: stat.2,
                blake3: h.clone(),
            },
        );
        *cache.dirty.lock().expect("not poisoned") = true;
        Ok((h, stat.0))
    }

    /// Merge our new stat entries into statcache.json (others may have added theirs).
    pub fn save_stat_cache(&self) {
        let cache = &self.stat;
        if !cache.persist || !*cache.dirty.lock().expect("not poisoned") {
            return;
        }
        let path = self.root.join(FILE);
        let Ok(_lock) = super::lock::wait(&self.locks_dir().join(LOCK), || {}) else {
            return;
        };
        let mut merged: BTreeMap<String, StatEntry> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        merged.extend(
            cache
                .entries
                .lock()
                .expect("not poisoned")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        // Forget files that are gone, so the cache does not grow forever.
        merged.retain(|k, _| Path::new(k).exists());
        if let Err(e) = recpipe_core::fsutil::write_json(&path, &merged) {
            tracing::debug!("cannot save stat cache: {e}");
        }
    }
}

fn stat_of(meta: &std::fs::Metadata) -> (u64, i128, u64) {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    (meta.len(), mtime_ns, inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cache_hashes_once_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join(".recpipe")).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/r.csv"), "1,2,3").unwrap();
        let h1 = store.hash_external(&data).unwrap();
        store.save_stat_cache();
        let reopened = Store::open(dir.path().join(".recpipe")).unwrap();
        assert_eq!(reopened.stat.entries.lock().unwrap().len(), 1);
        assert_eq!(reopened.hash_external(&data).unwrap(), h1);
        std::fs::write(data.join("sub/r.csv"), "1,2,4").unwrap();
        assert_ne!(reopened.hash_external(&data).unwrap().blake3, h1.blake3);
    }
}
