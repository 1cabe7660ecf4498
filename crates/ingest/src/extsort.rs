//! External sort of fixed-size records: records are sorted in memory in runs of at most
//! `cap`; past one run, each sorted run is written to its own file and the runs are merged
//! back with a heap, so sorting more records than fit in memory costs one write and one
//! read of them. Used by duplicate resolution, whose keys do not fit when the file does not.

use crate::error::IngestError;
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

/// Most run files merged at once; more means the budget is far too small for the data.
const MAX_RUNS: usize = 4096;

/// A record of `SIZE` bytes with its sort order.
pub(crate) trait Record: Ord + Copy + Send + Sync {
    const SIZE: usize;
    fn put(&self, out: &mut Vec<u8>);
    fn get(b: &[u8]) -> Self;
}

pub(crate) struct Sorter<R: Record> {
    buf: Vec<R>,
    cap: usize,
    dir: PathBuf,
    name: &'static str,
    runs: Vec<PathBuf>,
    /// The setting to raise when there are too many runs.
    setting: &'static str,
}

impl<R: Record> Sorter<R> {
    /// Runs of `cap_bytes / R::SIZE` records (at least 1024), spilled as `dir/name.N`.
    pub fn new(cap_bytes: usize, dir: PathBuf, name: &'static str, setting: &'static str) -> Self {
        Sorter {
            buf: Vec::new(),
            cap: (cap_bytes / R::SIZE).max(1024),
            dir,
            name,
            runs: Vec::new(),
            setting,
        }
    }

    pub fn push(&mut self, r: R) -> Result<(), IngestError> {
        self.buf.push(r);
        if self.buf.len() >= self.cap {
            self.flush()?;
        }
        Ok(())
    }

    /// Bytes written to run files so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.runs.len() as u64 * (self.cap * R::SIZE) as u64
    }

    /// Runs written to disk so far.
    #[cfg(test)]
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        if self.runs.len() >= MAX_RUNS {
            return Err(IngestError::config(
                self.setting,
                format!(
                    "too small to sort the duplicate keys in at most {MAX_RUNS} runs of {} \
                     records; raise {}",
                    self.cap, self.setting
                ),
            ));
        }
        self.buf.par_sort_unstable();
        let path = self.dir.join(format!("{}.{}", self.name, self.runs.len()));
        let io = |e| IngestError::io(&path, e);
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io)?);
        let mut bytes = Vec::with_capacity(R::SIZE * 4096);
        for chunk in self.buf.chunks(4096) {
            bytes.clear();
            chunk.iter().for_each(|r| r.put(&mut bytes));
            w.write_all(&bytes).map_err(io)?;
        }
        w.flush().map_err(io)?;
        self.runs.push(path);
        self.buf.clear();
        Ok(())
    }

    /// The records in order.
    pub fn finish(mut self) -> Result<Sorted<R>, IngestError> {
        self.buf.par_sort_unstable();
        let mut readers = Vec::with_capacity(self.runs.len());
        for p in &self.runs {
            let f = File::open(p).map_err(|e| IngestError::io(p, e))?;
            readers.push((p.clone(), BufReader::with_capacity(64 << 10, f)));
        }
        let mut s = Sorted {
            mem: std::mem::take(&mut self.buf).into_iter(),
            mem_head: None,
            readers,
            heap: BinaryHeap::new(),
            files: std::mem::take(&mut self.runs),
        };
        s.mem_head = s.mem.next();
        for i in 0..s.readers.len() {
            if let Some(r) = s.read(i)? {
                s.heap.push(Reverse((r, i)));
            }
        }
        Ok(s)
    }
}

impl<R: Record> Drop for Sorter<R> {
    fn drop(&mut self) {
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The merged stream of a [`Sorter`]: the last run (still in memory) and the run files.
pub(crate) struct Sorted<R: Record> {
    mem: std::vec::IntoIter<R>,
    mem_head: Option<R>,
    readers: Vec<(PathBuf, BufReader<File>)>,
    heap: BinaryHeap<Reverse<(R, usize)>>,
    files: Vec<PathBuf>,
}

impl<R: Record> Sorted<R> {
    fn read(&mut self, i: usize) -> Result<Option<R>, IngestError> {
        let mut b = [0u8; 64];
        let b = &mut b[..R::SIZE];
        let (path, r) = &mut self.readers[i];
        match r.read_exact(b) {
            Ok(()) => Ok(Some(R::get(b))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(IngestError::io(path.as_path(), e)),
        }
    }

    /// The next record in order.
    pub fn next(&mut self) -> Result<Option<R>, IngestError> {
        let from_file = match (self.heap.peek(), self.mem_head) {
            (None, None) => return Ok(None),
            (Some(Reverse((f, _))), Some(m)) => *f < m,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if !from_file {
            let r = self.mem_head;
            self.mem_head = self.mem.next();
            return Ok(r);
        }
        let Reverse((r, i)) = self.heap.pop().expect("peeked");
        if let Some(n) = self.read(i)? {
            self.heap.push(Reverse((n, i)));
        }
        Ok(Some(r))
    }
}

impl<R: Record> Drop for Sorted<R> {
    fn drop(&mut self) {
        for p in &self.files {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct K(u64, u32);

    impl Record for K {
        const SIZE: usize = 12;
        fn put(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0.to_le_bytes());
            out.extend_from_slice(&self.1.to_le_bytes());
        }
        fn get(b: &[u8]) -> Self {
            K(
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u32::from_le_bytes(b[8..12].try_into().unwrap()),
            )
        }
    }

    /// Many runs on disk merge to the same order as one sort in memory.
    #[test]
    fn runs_merge_to_the_in_memory_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = recpipe_core::rng::SplitMix64::new(7);
        let keys: Vec<K> = (0..20_000u32)
            .map(|i| K(rng.next_u64() % 5000, i))
            .collect();
        let mut s = Sorter::new(
            1024 * K::SIZE,
            dir.path().to_path_buf(),
            "t",
            "memory_budget",
        );
        for &k in &keys {
            s.push(k).unwrap();
        }
        assert_eq!(s.runs(), 19);
        let mut merged = s.finish().unwrap();
        let mut out = Vec::new();
        while let Some(k) = merged.next().unwrap() {
            out.push(k);
        }
        let mut want = keys;
        want.sort();
        assert_eq!(out, want);
        drop(merged);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
