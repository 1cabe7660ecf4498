//! The ratings file as a sequence of blocks of text for the parser: memory-mapped when it
//! can be (the parser reads the page cache in place, with no copy into a buffer, and the
//! pages of each parsed block are let go, so resident memory stays about one block), else
//! read block by block into two buffers, the next one read while the current one is parsed.

use crate::error::IngestError;
use std::fs::File;
use std::io::Read;
use std::path::Path;

pub(super) struct Blocks<'p> {
    path: &'p Path,
    /// Bytes per block (a block grows past it only to reach the end of a long line).
    block: usize,
    source: Source,
}

enum Source {
    Mapped {
        map: memmap2::Mmap,
        /// Where the current block starts, and its length.
        pos: usize,
        len: usize,
    },
    Read {
        file: File,
        buf: Vec<u8>,
        /// The next block, read while `buf` is parsed.
        spare: Vec<u8>,
        /// Whether `buf` ends the file.
        eof: bool,
    },
}

impl<'p> Blocks<'p> {
    /// The first block of `path`.
    pub fn open(path: &'p Path, block: usize) -> Result<Blocks<'p>, IngestError> {
        Self::open_with(path, block, true)
    }

    /// `open`, memory-mapping only when `may_map`.
    fn open_with(path: &'p Path, block: usize, may_map: bool) -> Result<Blocks<'p>, IngestError> {
        let io = |e| IngestError::io(path, e);
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        // SAFETY: the map is read only. A ratings file rewritten by another process while it
        // is ingested gives mixed rows, as reading it would; one truncated under the map
        // would fault, the risk every memory-mapped reader takes for not copying the data.
        // Anything that is not a plain, non-empty file (a pipe, /dev/stdin) is read.
        let map = (may_map && meta.is_file() && meta.len() > 0)
            .then(|| unsafe { memmap2::Mmap::map(&file) }.ok())
            .flatten();
        let source = match map {
            Some(map) => {
                let _ = map.advise(memmap2::Advice::Sequential);
                let len = block.min(map.len());
                Source::Mapped { map, pos: 0, len }
            }
            None => {
                let mut buf = Vec::new();
                let eof = read_block(&file, &mut buf, block, path)?;
                Source::Read {
                    file,
                    buf,
                    spare: Vec::new(),
                    eof,
                }
            }
        };
        Ok(Blocks {
            path,
            block,
            source,
        })
    }

    /// The current block's text.
    pub fn current(&self) -> &[u8] {
        match &self.source {
            Source::Mapped { map, pos, len } => &map[*pos..*pos + *len],
            Source::Read { buf, .. } => buf,
        }
    }

    /// Whether the current block ends the file.
    pub fn eof(&self) -> bool {
        match &self.source {
            Source::Mapped { map, pos, len } => pos + len == map.len(),
            Source::Read { eof, .. } => *eof,
        }
    }

    /// Leaves out the first `n` bytes of the current block (a BOM, a header line).
    pub fn skip(&mut self, n: usize) {
        match &mut self.source {
            Source::Mapped { pos, len, .. } => {
                *pos += n;
                *len -= n;
            }
            Source::Read { buf, .. } => {
                buf.drain(..n);
            }
        }
    }

    /// Makes the current block a block longer (it holds no line end to cut at).
    pub fn grow(&mut self) -> Result<(), IngestError> {
        match &mut self.source {
            Source::Mapped { map, pos, len } => *len = (*len + self.block).min(map.len() - *pos),
            Source::Read { file, buf, eof, .. } => {
                *eof = read_block(file, buf, self.block, self.path)?
            }
        }
        Ok(())
    }

    /// Runs `parse` on the current block's first `cut` bytes and, beside it, `beside` and
    /// the read of the next block (which starts with the rest of this one); then moves on
    /// to it. Returns what `beside` returned.
    pub fn step<S: Send>(
        &mut self,
        cut: usize,
        parse: impl FnOnce(&[u8]) + Send,
        beside: impl FnOnce() -> S + Send,
    ) -> Result<S, IngestError> {
        let (block, path) = (self.block, self.path);
        match &mut self.source {
            Source::Mapped { map, pos, len } => {
                let text = &map[*pos..*pos + cut];
                let ((), s) = rayon::join(|| parse(text), beside);
                // The parsed pages leave this process's resident set (they stay in the page
                // cache); a failed advice only leaves them mapped.
                // SAFETY: no slice of the parsed range outlives `parse`, and pages of a
                // read-only file mapping read back the same bytes if touched again.
                #[cfg(unix)]
                let _ = unsafe {
                    map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, *pos, cut)
                };
                *pos += cut;
                *len = block.min(map.len() - *pos);
                Ok(s)
            }
            Source::Read {
                file,
                buf,
                spare,
                eof,
            } => {
                spare.clear();
                spare.extend_from_slice(&buf[cut..]);
                let at_end = *eof;
                let (text, next) = (&buf[..cut], &mut *spare);
                let ((), (s, next_eof)) = rayon::join(
                    || parse(text),
                    || {
                        let s = beside();
                        let r = if at_end {
                            Ok(true)
                        } else {
                            read_block(file, next, block, path)
                        };
                        (s, r)
                    },
                );
                *eof = next_eof?;
                std::mem::swap(buf, spare);
                Ok(s)
            }
        }
    }
}

/// Appends up to `block` bytes of `file` to `buf`; whether the file ended.
fn read_block(
    mut file: &File,
    buf: &mut Vec<u8>,
    block: usize,
    path: &Path,
) -> Result<bool, IngestError> {
    // Read straight into the vector's spare room (reserved first): no zero-filling of a
    // buffer the read overwrites anyway.
    buf.reserve(block);
    let n = (&mut file)
        .take(block as u64)
        .read_to_end(buf)
        .map_err(|e| IngestError::io(path, e))?;
    Ok(n < block)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both sources cut the bundled ratings file into line-aligned blocks of about `block`
    /// bytes whose concatenation is the file, for blocks shorter than some lines and longer than the file.
    #[test]
    fn mapped_and_read_blocks_are_the_same_lines() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ml-latest-small/ratings.csv");
        // The first 2,000 lines (some longer than the smallest block), whole for larger blocks.
        let whole = std::fs::read(&path).unwrap();
        let cut = memchr::memchr_iter(b'\n', &whole).nth(1999).unwrap() + 1;
        let dir = tempfile::tempdir().unwrap();
        let head = dir.path().join("head.csv");
        std::fs::write(&head, &whole[..cut]).unwrap();
        for block in [16, 300, 1 << 20, 64 << 20] {
            let (path, file) = if block < 1000 {
                (head.as_path(), &whole[..cut])
            } else {
                (path.as_path(), &whole[..])
            };
            let mut counts = Vec::new();
            for may_map in [true, false] {
                let mut b = Blocks::open_with(path, block, may_map).unwrap();
                assert_eq!(matches!(b.source, Source::Mapped { .. }), may_map);
                let mut all = Vec::new();
                let mut parts = 0;
                loop {
                    let eof = b.eof();
                    let cut = if eof {
                        b.current().len()
                    } else {
                        match memchr::memrchr(b'\n', b.current()) {
                            Some(p) => p + 1,
                            None => {
                                b.grow().unwrap();
                                continue;
                            }
                        }
                    };
                    let mut text = Vec::new();
                    let beside = b
                        .step(cut, |t| text.extend_from_slice(t), || parts + 1)
                        .unwrap();
                    parts = beside;
                    assert!(eof || text.ends_with(b"\n"), "block {block}");
                    all.extend_from_slice(&text);
                    if eof {
                        break;
                    }
                }
                assert_eq!(all, file, "block {block}, mapped {may_map}");
                counts.push(parts);
            }
            // A block is at most `block` bytes plus the rest of a line (under 64 bytes here).
            let fewest = file.len() / (block + 64);
            assert!(
                counts.iter().all(|&c| c >= fewest),
                "block {block}: {counts:?}"
            );
        }
    }
}
