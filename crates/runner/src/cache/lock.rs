//! Advisory locks, one file each under `locks/`. The kernel drops a lock when its process dies,
//! so a killed run never blocks later ones. Held: one per entry while it is checked and built
//! ([`Store::lock`]), one per pipeline's view while it is published (`view::lock`), `gc.lock`
//! (shared by runs, exclusive for gc) and `statcache.lock` while `statcache.json` is merged.

use super::Store;
use anyhow::{Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Block until the lock at `path` is ours; `waiting` is called first if someone holds it.
pub fn wait(path: &Path, waiting: impl FnOnce()) -> Result<File> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            waiting();
            fs4::FileExt::lock(&file).with_context(|| format!("cannot lock {}", path.display()))?;
        }
        Err(fs4::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    Ok(file)
}

/// The lock at `path` if nobody holds it: Ok(None) when someone does, Err when the lock file
/// cannot be opened (a read-only cache, say).
pub fn try_now(path: &Path) -> Result<Option<File>> {
    let file = File::create(path).with_context(|| format!("cannot open {}", path.display()))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(Some(file)),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

impl Store {
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    fn entry_lock(&self, kind: &str, key: &str) -> PathBuf {
        self.locks_dir().join(format!("{kind}-{key}.lock"))
    }

    /// Exclusive lock on one entry, held until the returned file is dropped.
    pub fn lock(&self, kind: &str, key: &str) -> Result<File> {
        wait(&self.entry_lock(kind, key), || {
            tracing::info!("waiting for another recpipe process building {kind} {key}")
        })
    }

    /// Non-blocking variant for gc (see [`try_now`]).
    pub fn try_lock(&self, kind: &str, key: &str) -> Result<Option<File>> {
        try_now(&self.entry_lock(kind, key))
    }
}
