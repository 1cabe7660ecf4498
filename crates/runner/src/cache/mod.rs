//! The content-addressed stage cache: one [`Store`] per `.recpipe/` folder. Every caller goes
//! through one pair of calls: [`Store::lookup`] (the verified [`Entry`](entry::Entry) for a key, or why there
//! is none) and [`Pending::commit`] (a finished stage's folder made an entry, atomically).
//! `run` (and so every sweep trial) commits into the cache; the one-off stage commands commit
//! the same way into their `--out` folder.
//!
//! # The `.recpipe/` folder (layout 2), bucket by bucket
//!
//! ```text
//! cache/<kind>/<key>/          entries: a stage's outputs + manifest.json (written last)
//! tmp/<kind>-<key>-<pid>-<n>/  pending entries, renamed into cache/ on commit
//! tmp/trash-<pid>-<what>-<n>   folders moved aside before they are deleted
//! runs/<pipeline>              -> ../views/<pipeline>/<generation>      (see view.rs)
//! views/<pipeline>/<generation>/<stage>  -> ../../../cache/<kind>/<key>
//! views/<pipeline>/<generation>/run.json  one run: overrides, stage → kind + key
//! collected/<kind>/<key>       tombstone: gc removed this entry (holds the date)
//! locks/<kind>-<key>.lock      one per entry, held while it is checked and built
//! locks/view-<pipeline>.lock   held while a view is published
//! locks/gc.lock                shared by runs, exclusive for gc
//! locks/statcache.lock         held while statcache.json is merged
//! statcache.json               size + mtime + inode → blake3 of the data files stages read
//! ```
//!
//! - **cache/** ([`entry`]): keyed by [`stage_key`] ([`key`]); an entry is trusted only when
//!   its manifest names its key and every output's size and hash match ([`entry::verify`]). Nothing
//!   but a commit writes here; nothing but gc removes from here.
//! - **tmp/** ([`install`]): safe to delete when no process holds the entry's lock (gc does;
//!   so does the next builder of the same entry).
//! - **runs/**, **views/** (`view.rs`): one generation folder of links per run, swapped in
//!   with one rename; gc keeps the entries the kept generations link to.
//! - **collected/**: lets `status` say an entry was collected rather than never built; a
//!   commit of that entry removes its tombstone.
//! - **locks/** ([`lock`]): advisory; the kernel drops a dead process's locks.
//! - **statcache.json** ([`statcache`]): a hint only: a stat mismatch means the file is hashed.
//!
//! Layout 2 replaced layout 1's `runs/<pipeline>/` folder of per-stage links; a run finding
//! that folder moves it aside and writes the view anew. Entries are unchanged.

pub mod entry;
pub mod install;
pub mod key;
pub mod lock;
pub mod statcache;
pub mod store;

pub use entry::{
    ExternalRef, Invalid, MANIFEST, Manifest, ManifestInputs, UpstreamRef, read_manifest,
};
pub use install::{Pending, fsync_dir, relative_to};
pub use key::stage_key;
pub use store::{Store, store_containing};

use std::path::{Path, PathBuf};

/// Every file below `dir`; a link is listed as a file, never followed.
pub fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk_files(&e.path(), out)?;
        } else {
            out.push(e.path());
        }
    }
    Ok(())
}
