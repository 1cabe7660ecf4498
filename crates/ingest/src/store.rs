//! The rows between reading and writing: the ratings file must be read to its end before
//! the first dense id is known (ids are numbered in sorted order), so the parsed rows wait
//! here, in compact segments, in file order. Segments stay in memory up to a byte limit;
//! past it every segment goes to one spill file, read back segment by segment, so memory
//! does not grow with the file.
//!
//! A segment stores a user column as runs when users come in runs (MovieLens files list
//! each user's ratings together), ratings as half-star bytes when every rating is an exact
//! half step, and timestamps as 32-bit offsets when their span fits: about 9 bytes a row on
//! MovieLens-shaped data instead of 20. Every form decodes to the same bits.

use crate::error::IngestError;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

enum Users {
    Plain(Vec<u32>),
    /// (code, run length) pairs.
    Runs(Vec<(u32, u32)>),
}

enum RatingCol {
    Plain(Vec<f32>),
    /// rating × 2, exact.
    Half(Vec<u8>),
}

enum TimeCol {
    None,
    Plain(Vec<i64>),
    Offset(i64, Vec<u32>),
}

/// A run of consecutive rows in compact form.
pub(crate) struct Segment {
    rows: usize,
    user: Users,
    item: Vec<u32>,
    rating: RatingCol,
    ts: TimeCol,
}

/// Decoded rows of one segment (buffers reused from segment to segment).
#[derive(Default)]
pub(crate) struct Rows {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub rating: Vec<f32>,
    /// Empty when the file has no timestamps.
    pub ts: Vec<i64>,
}

impl Segment {
    pub fn encode(user: &[u32], item: &[u32], rating: &[f32], ts: Option<&[i64]>) -> Segment {
        let runs = 1 + user.windows(2).filter(|w| w[0] != w[1]).count();
        let user = if runs * 2 <= user.len() {
            let mut v: Vec<(u32, u32)> = Vec::with_capacity(runs);
            for &u in user {
                match v.last_mut() {
                    Some((c, n)) if *c == u => *n += 1,
                    _ => v.push((u, 1)),
                }
            }
            Users::Runs(v)
        } else {
            Users::Plain(user.to_vec())
        };
        // The cast saturates and truncates, so only an exact half step decodes to the same
        // bits (-0.0 and NaN do not).
        let half = |r: f32| {
            let byte = (r * 2.0) as u8;
            ((byte as f32 / 2.0).to_bits() == r.to_bits()).then_some(byte)
        };
        let rating = match rating.iter().map(|&r| half(r)).collect::<Option<Vec<u8>>>() {
            Some(v) => RatingCol::Half(v),
            None => RatingCol::Plain(rating.to_vec()),
        };
        let ts = match ts {
            None => TimeCol::None,
            Some(t) => {
                let (lo, hi) = t
                    .iter()
                    .fold((i64::MAX, i64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
                if t.is_empty() || (hi as i128 - lo as i128) > u32::MAX as i128 {
                    TimeCol::Plain(t.to_vec())
                } else {
                    TimeCol::Offset(lo, t.iter().map(|&x| (x - lo) as u32).collect())
                }
            }
        };
        Segment {
            rows: item.len(),
            user,
            item: item.to_vec(),
            rating,
            ts,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held in memory.
    pub fn bytes(&self) -> usize {
        let u = match &self.user {
            Users::Plain(v) => v.len() * 4,
            Users::Runs(v) => v.len() * 8,
        };
        let r = match &self.rating {
            RatingCol::Plain(v) => v.len() * 4,
            RatingCol::Half(v) => v.len(),
        };
        let t = match &self.ts {
            TimeCol::None => 0,
            TimeCol::Plain(v) => v.len() * 8,
            TimeCol::Offset(_, v) => v.len() * 4,
        };
        u + self.item.len() * 4 + r + t + std::mem::size_of::<Segment>()
    }

    pub fn decode_into(&self, out: &mut Rows) {
        out.user.clear();
        match &self.user {
            Users::Plain(v) => out.user.extend_from_slice(v),
            Users::Runs(v) => {
                for &(c, n) in v {
                    out.user.extend(std::iter::repeat_n(c, n as usize));
                }
            }
        }
        out.item.clear();
        out.item.extend_from_slice(&self.item);
        out.rating.clear();
        match &self.rating {
            RatingCol::Plain(v) => out.rating.extend_from_slice(v),
            RatingCol::Half(v) => out.rating.extend(v.iter().map(|&b| b as f32 / 2.0)),
        }
        out.ts.clear();
        match &self.ts {
            TimeCol::None => {}
            TimeCol::Plain(v) => out.ts.extend_from_slice(v),
            TimeCol::Offset(lo, v) => out.ts.extend(v.iter().map(|&x| lo + x as i64)),
        }
    }

    fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut b: Vec<u8> = Vec::with_capacity(self.bytes() + 64);
        put(&mut b, self.rows as u64);
        match &self.user {
            Users::Plain(v) => {
                b.push(0);
                put(&mut b, v.len() as u64);
                v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
            }
            Users::Runs(v) => {
                b.push(1);
                put(&mut b, v.len() as u64);
                for (c, n) in v {
                    b.extend_from_slice(&c.to_le_bytes());
                    b.extend_from_slice(&n.to_le_bytes());
                }
            }
        }
        self.item
            .iter()
            .for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
        match &self.rating {
            RatingCol::Plain(v) => {
                b.push(0);
                v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
            }
            RatingCol::Half(v) => {
                b.push(1);
                b.extend_from_slice(v);
            }
        }
        match &self.ts {
            TimeCol::None => b.push(0),
            TimeCol::Plain(v) => {
                b.push(1);
                v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
            }
            TimeCol::Offset(lo, v) => {
                b.push(2);
                b.extend_from_slice(&lo.to_le_bytes());
                v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
            }
        }
        w.write_all(&b)
    }

    /// The next segment of a spill file; `None` at its end.
    fn read_from(r: &mut impl Read) -> std::io::Result<Option<Segment>> {
        let mut head = [0u8; 8];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let rows = u64::from_le_bytes(head) as usize;
        let kind = byte(r)?;
        let n = take(r)?;
        let user = match kind {
            0 => Users::Plain(u32s(r, n)?),
            _ => {
                let v = u32s(r, n * 2)?;
                Users::Runs(v.chunks_exact(2).map(|p| (p[0], p[1])).collect())
            }
        };
        let item = u32s(r, rows)?;
        let rating = match byte(r)? {
            0 => RatingCol::Plain(u32s(r, rows)?.into_iter().map(f32::from_bits).collect()),
            _ => RatingCol::Half(bytes(r, rows)?),
        };
        let ts = match byte(r)? {
            0 => TimeCol::None,
            1 => TimeCol::Plain(
                bytes(r, rows * 8)?
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            ),
            _ => {
                let mut lo = [0u8; 8];
                r.read_exact(&mut lo)?;
                TimeCol::Offset(i64::from_le_bytes(lo), u32s(r, rows)?)
            }
        };
        Ok(Some(Segment {
            rows,
            user,
            item,
            rating,
            ts,
        }))
    }
}

fn put(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn byte(r: &mut impl Read) -> std::io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn take(r: &mut impl Read) -> std::io::Result<usize> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b) as usize)
}

fn bytes(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    r.read_exact(&mut v)?;
    Ok(v)
}

fn u32s(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u32>> {
    Ok(bytes(r, n * 4)?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect())
}

/// Segments in file order, in memory until `limit` bytes, then all in the spill file.
pub(crate) struct Store {
    mem: Vec<Segment>,
    mem_bytes: usize,
    spill: Option<(PathBuf, BufWriter<File>)>,
    spill_path: PathBuf,
    spilled_bytes: u64,
    rows: u64,
}

impl Store {
    /// A store whose spill file, if one is needed, is `spill_path`.
    pub fn new(spill_path: PathBuf) -> Store {
        Store {
            mem: Vec::new(),
            mem_bytes: 0,
            spill: None,
            spill_path,
            spilled_bytes: 0,
            rows: 0,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn mem_bytes(&self) -> usize {
        self.mem_bytes
    }

    /// Bytes written to the spill file.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    fn io(&self, e: std::io::Error) -> IngestError {
        IngestError::io(&self.spill_path, e)
    }

    /// Appends a segment; once the segments in memory pass `limit` bytes, they and every
    /// later segment go to the spill file.
    pub fn push(&mut self, seg: Segment, limit: usize) -> Result<(), IngestError> {
        self.rows += seg.rows() as u64;
        if self.spill.is_some() {
            return self.write(&seg);
        }
        self.mem_bytes += seg.bytes();
        self.mem.push(seg);
        if self.mem_bytes > limit {
            self.spill_all()?;
        }
        Ok(())
    }

    /// Moves the segments held in memory to the spill file.
    pub fn spill_all(&mut self) -> Result<(), IngestError> {
        if self.spill.is_none() {
            let f = File::create(&self.spill_path).map_err(|e| self.io(e))?;
            self.spill = Some((
                self.spill_path.clone(),
                BufWriter::with_capacity(1 << 20, f),
            ));
        }
        for seg in std::mem::take(&mut self.mem) {
            self.write(&seg)?;
        }
        self.mem_bytes = 0;
        Ok(())
    }

    fn write(&mut self, seg: &Segment) -> Result<(), IngestError> {
        let before = seg.bytes() as u64;
        let (_, w) = self.spill.as_mut().expect("spill file open");
        let r = seg.write_to(w);
        self.spilled_bytes += before;
        r.map_err(|e| self.io(e))
    }

    /// Forgets every row (the parse starts again).
    pub fn clear(&mut self) {
        self.mem.clear();
        self.mem_bytes = 0;
        self.rows = 0;
        self.spilled_bytes = 0;
        if let Some((p, _)) = self.spill.take() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Calls `f` on every segment in file order: the spill file's, read back one at a time,
    /// then those in memory.
    pub fn for_each(
        &mut self,
        mut f: impl FnMut(&Segment) -> Result<(), IngestError>,
    ) -> Result<(), IngestError> {
        if let Some((path, w)) = self.spill.as_mut() {
            w.flush().map_err(|e| IngestError::io(path.as_path(), e))?;
            let path = path.clone();
            let file = File::open(&path).map_err(|e| IngestError::io(&path, e))?;
            let mut r = BufReader::with_capacity(1 << 20, file);
            while let Some(seg) =
                Segment::read_from(&mut r).map_err(|e| IngestError::io(&path, e))?
            {
                f(&seg)?;
            }
        }
        for seg in &self.mem {
            f(seg)?;
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.spill.take().is_some() {
            let _ = std::fs::remove_file(&self.spill_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every compact form decodes to the same bits, in memory and through the spill file.
    #[test]
    fn segments_round_trip_in_memory_and_spilled() {
        let user = vec![3, 3, 3, 9, 9, 1];
        let item = vec![5, 6, 7, 1, 2, 3];
        let half = vec![0.5, 5.0, 3.5, 4.0, 1.0, 2.5];
        let odd = vec![0.5, -0.0, 3.25, 4.0, f32::MAX, 2.5];
        let ts = vec![10, 11, 12, 5_000_000_000, 14, 15];
        let near = vec![10, 11, 12, 13, 14, 15];
        let dir = tempfile::tempdir().unwrap();
        for (rating, t) in [(&half, Some(&near)), (&odd, Some(&ts)), (&half, None)] {
            let seg = Segment::encode(&user, &item, rating, t.map(|v| &v[..]));
            let mut store = Store::new(dir.path().join("spill"));
            store.push(seg, usize::MAX).unwrap();
            store
                .push(Segment::encode(&item, &user, rating, t.map(|v| &v[..])), 0)
                .unwrap();
            assert!(store.spilled_bytes() > 0);
            let mut seen = Vec::new();
            store
                .for_each(|s| {
                    let mut r = Rows::default();
                    s.decode_into(&mut r);
                    seen.push((r.user, r.item, r.rating, r.ts));
                    Ok(())
                })
                .unwrap();
            let bits = |v: &Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(seen.len(), 2);
            assert_eq!((&seen[0].0, &seen[0].1), (&user, &item));
            assert_eq!((&seen[1].0, &seen[1].1), (&item, &user));
            for s in &seen {
                assert_eq!(bits(&s.2), bits(rating));
                assert_eq!(s.3, t.cloned().unwrap_or_default());
            }
        }
    }
}
