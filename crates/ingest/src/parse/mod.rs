//! The ratings hot path: the file is taken in large blocks cut at line boundaries (mapped
//! in place or read, [`blocks`]), each block is split into sub-chunks parsed on all cores ([`line`]), and the results are appended in
//! file order, so memory holds the parsed columns plus one block of text whatever the file
//! size.
//!
//! Ids are kept as their integer value while every id fits in a u32 (all MovieLens data);
//! the first id that does not (text, negative, huge) restarts the parse with per-chunk string
//! dictionaries for that column, which costs one allocation per distinct id, not per row.

mod blocks;
mod line;

use crate::config::OnError;
use crate::error::IngestError;
use crate::text;
use blocks::Blocks;
use line::{ChunkOut, Dict, IdMode, parse_chunk_into};
use rayon::prelude::*;
use std::path::Path;

pub(crate) const BLOCK: usize = 32 << 20;
pub(crate) const SUB_CHUNK: usize = 1 << 20;

/// How to cut and read the rows of a ratings file.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub delim: Vec<u8>,
    pub header: bool,
    pub n_fields: usize,
    pub user: usize,
    pub item: usize,
    pub rating: usize,
    pub timestamp: Option<usize>,
    pub range: [f32; 2],
    /// Whether text ids must be valid UTF-8 (else they are read as Latin-1).
    pub ids_utf8: bool,
    /// Bytes read per block and parsed per task (small in tests to cross boundaries).
    pub block: usize,
    pub sub_chunk: usize,
}

/// A bad row, with its 1-based line and column.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub line: u64,
    pub column: u64,
    pub reason: String,
    pub text: String,
}

/// Parsed columns with ids still in their per-column code space: raw integer values, or
/// first-seen codes into `keys` for interned columns.
pub(crate) struct RawColumns {
    /// The rows themselves go to a [`RowSink`]; only [`read`] (tests) fills these.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "filled by the test-only `read`")
    )]
    pub user: Vec<u32>,
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "filled by the test-only `read`")
    )]
    pub item: Vec<u32>,
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "filled by the test-only `read`")
    )]
    pub rating: Vec<f32>,
    pub timestamp: Option<Vec<i64>>,
    pub user_keys: Option<Vec<Box<[u8]>>>,
    pub item_keys: Option<Vec<Box<[u8]>>>,
    /// Non-blank data lines seen (kept + rejected).
    pub rows_read: u64,
    pub blank_lines: u64,
    pub rejects: Vec<Reject>,
    /// Global line numbers of blank and rejected lines, ascending, to map rows back to lines.
    pub skipped_lines: Vec<u64>,
    pub header_lines: u64,
}

impl RawColumns {
    /// The 1-based line of kept row `row`.
    pub fn line_of_row(&self, row: usize) -> u64 {
        let mut line = self.header_lines + row as u64 + 1;
        for &s in &self.skipped_lines {
            if s <= line {
                line += 1;
            } else {
                break;
            }
        }
        line
    }
}

/// Cut `data` into pieces of about `size` bytes that end just after a newline.
fn sub_chunks(data: &[u8], size: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(data.len() / size + 1);
    let mut rest = data;
    while rest.len() > size {
        match memchr::memchr(b'\n', &rest[size..]) {
            Some(p) => {
                let (a, b) = rest.split_at(size + p + 1);
                out.push(a);
                rest = b;
            }
            None => break,
        }
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Where parsed rows go, chunk by chunk in file order, with ids already in their file-wide
/// code space (raw values, or first-seen codes of the interned columns).
pub(crate) trait RowSink {
    /// A size hint from the first block: about this many rows are coming.
    fn reserve(&mut self, _rows: usize) {}
    /// `interned`: whether the user and item values are first-seen codes into the file-wide
    /// dictionaries rather than raw integer ids.
    fn push(
        &mut self,
        interned: [bool; 2],
        user: &[u32],
        item: &[u32],
        rating: &[f32],
        ts: Option<&[i64]>,
    ) -> Result<(), IngestError>;
    /// The parse starts again from the first row (ids must be interned): forget every row.
    fn restart(&mut self);
}

/// The sink of [`read`]: every row in memory, as [`RawColumns`] columns.
#[cfg(test)]
struct Columns {
    user: Vec<u32>,
    item: Vec<u32>,
    rating: Vec<f32>,
    timestamp: Option<Vec<i64>>,
}

#[cfg(test)]
impl RowSink for Columns {
    fn reserve(&mut self, est: usize) {
        self.user.reserve(est);
        self.item.reserve(est);
        self.rating.reserve(est);
        if let Some(t) = self.timestamp.as_mut() {
            t.reserve(est);
        }
    }

    fn push(
        &mut self,
        _interned: [bool; 2],
        user: &[u32],
        item: &[u32],
        rating: &[f32],
        ts: Option<&[i64]>,
    ) -> Result<(), IngestError> {
        self.user.extend_from_slice(user);
        self.item.extend_from_slice(item);
        self.rating.extend_from_slice(rating);
        if let (Some(t), Some(ts)) = (self.timestamp.as_mut(), ts) {
            t.extend_from_slice(ts);
        }
        Ok(())
    }

    fn restart(&mut self) {
        self.user.clear();
        self.item.clear();
        self.rating.clear();
        if let Some(t) = self.timestamp.as_mut() {
            t.clear();
        }
    }
}

/// The line bookkeeping of the rows parsed so far (the rows themselves went to the sink),
/// with the file-wide id dictionaries.
struct Acc {
    cols: RawColumns,
    user_global: Dict,
    item_global: Dict,
    line_base: u64,
}

impl Acc {
    fn new(spec: &Spec) -> Acc {
        Acc {
            cols: RawColumns {
                user: Vec::new(),
                item: Vec::new(),
                rating: Vec::new(),
                timestamp: spec.timestamp.map(|_| Vec::new()),
                user_keys: None,
                item_keys: None,
                rows_read: 0,
                blank_lines: 0,
                rejects: Vec::new(),
                skipped_lines: Vec::new(),
                header_lines: spec.header as u64,
            },
            user_global: Dict::default(),
            item_global: Dict::default(),
            line_base: 0,
        }
    }

    /// Drops the byte-order mark and the header from the first block, and sizes the
    /// columns once from its density, so appending never doubles a multi-GB vector.
    fn first_block(
        &mut self,
        data: &[u8],
        spec: &Spec,
        (eof, file_len): (bool, u64),
        sink: &mut impl RowSink,
    ) -> usize {
        let mut prefix = data.len() - text::strip_bom(data).len();
        if spec.header {
            prefix += memchr::memchr(b'\n', &data[prefix..]).map_or(data.len() - prefix, |p| p + 1);
            self.line_base = 1;
        }
        let rest = &data[prefix..];
        if !eof && !rest.is_empty() {
            let lines = memchr::memchr_iter(b'\n', rest).count().max(1);
            let est = (file_len as f64 / rest.len() as f64 * lines as f64 * 1.01) as usize;
            sink.reserve(est);
        }
        prefix
    }

    /// The columns, with the dictionaries' keys of the interned id columns.
    fn finish(mut self, modes: [IdMode; 2]) -> RawColumns {
        if modes[0] == IdMode::Interned {
            self.cols.user_keys = Some(std::mem::take(&mut self.user_global.keys));
        }
        if modes[1] == IdMode::Interned {
            self.cols.item_keys = Some(std::mem::take(&mut self.item_global.keys));
        }
        self.cols
    }
}

enum Attempt {
    Done(Box<RawColumns>),
    Restart([bool; 2]),
}

fn merge_codes(codes: &mut [u32], local: &Dict, global: &mut Dict) {
    let remap: Vec<u32> = local.keys.iter().map(|k| global.code(k)).collect();
    for c in codes {
        *c = remap[*c as usize];
    }
}

fn append(
    acc: &mut Acc,
    c: &mut ChunkOut,
    modes: [IdMode; 2],
    sink: &mut impl RowSink,
) -> Result<(), IngestError> {
    if modes[0] == IdMode::Interned {
        merge_codes(&mut c.user, &c.user_dict, &mut acc.user_global);
    }
    if modes[1] == IdMode::Interned {
        merge_codes(&mut c.item, &c.item_dict, &mut acc.item_global);
    }
    let cols = &mut acc.cols;
    let ts = cols.timestamp.is_some().then_some(&c.ts[..]);
    let interned = modes.map(|m| m == IdMode::Interned);
    sink.push(interned, &c.user, &c.item, &c.rating, ts)?;
    // Local line index 0 of this chunk is global line `line_base + 1`.
    let base = acc.line_base + 1;
    cols.skipped_lines
        .extend(c.skipped.iter().map(|&s| s + base));
    cols.rejects.extend(c.rejects.drain(..).map(|mut r| {
        r.line += base;
        r
    }));
    cols.blank_lines += c.blank;
    cols.rows_read += c.lines - c.blank;
    acc.line_base += c.lines;
    Ok(())
}

/// One pass over the file with the id columns in `modes`: the columns, or the columns
/// that must be read again interned.
fn attempt(
    path: &Path,
    spec: &Spec,
    (modes, on_error): ([IdMode; 2], OnError),
    bar: &indicatif::ProgressBar,
    sink: &mut (impl RowSink + Send),
) -> Result<Attempt, IngestError> {
    let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let fail_fast = on_error == OnError::Fail;
    let mut acc = Acc::new(spec);
    bar.set_position(0);
    let mut blocks = Blocks::open(path, spec.block.max(1))?;
    // One output buffer per sub-chunk, reused block after block; the previous block's
    // buffers are handed to the sink while this block is parsed.
    let mut pool: Vec<ChunkOut> = Vec::new();
    let mut prev: Vec<ChunkOut> = Vec::new();
    let mut prev_n = 0usize;
    let mut first = true;
    loop {
        if first {
            first = false;
            let prefix = acc.first_block(blocks.current(), spec, (blocks.eof(), file_len), sink);
            blocks.skip(prefix);
            bar.inc(prefix as u64);
        }
        let eof = blocks.eof();
        let cut = if eof {
            blocks.current().len()
        } else {
            match memchr::memrchr(b'\n', blocks.current()) {
                Some(p) => p + 1,
                // A line longer than a block: take more before cutting.
                None => {
                    blocks.grow()?;
                    continue;
                }
            }
        };
        let mut n = 0;
        let (outs, counted) = (&mut pool, &mut n);
        let (done, acc_ref, sink_ref) = (&mut prev[..prev_n], &mut acc, &mut *sink);
        let stop = blocks.step(
            cut,
            |text| {
                let chunks = sub_chunks(text, spec.sub_chunk.max(1));
                if outs.len() < chunks.len() {
                    outs.resize_with(chunks.len(), ChunkOut::default);
                }
                outs[..chunks.len()]
                    .par_iter_mut()
                    .zip(chunks.par_iter())
                    .for_each(|(o, c)| parse_chunk_into(o, c, spec, modes, fail_fast));
                *counted = chunks.len();
            },
            || drain(acc_ref, done, modes, fail_fast, sink_ref),
        )?;
        if let Some(stop) = stop? {
            return Ok(stop.attempt(acc));
        }
        std::mem::swap(&mut pool, &mut prev);
        prev_n = n;
        bar.inc(cut as u64);
        if eof {
            break;
        }
    }
    if let Some(stop) = drain(&mut acc, &mut prev[..prev_n], modes, fail_fast, sink)? {
        return Ok(stop.attempt(acc));
    }
    Ok(Attempt::Done(Box::new(acc.finish(modes))))
}

/// Why appending parsed chunks stopped early.
enum Stop {
    Restart([bool; 2]),
    /// on_error = fail and a chunk had a bad row: the rows up to it are in.
    Failed,
}

impl Stop {
    fn attempt(self, acc: Acc) -> Attempt {
        match self {
            Stop::Restart(flags) => Attempt::Restart(flags),
            Stop::Failed => Attempt::Done(Box::new(acc.cols)),
        }
    }
}

/// Appends parsed chunks in order, up to the first that needs interning or holds a bad row
/// with on_error = fail.
fn drain(
    acc: &mut Acc,
    outs: &mut [ChunkOut],
    modes: [IdMode; 2],
    fail_fast: bool,
    sink: &mut impl RowSink,
) -> Result<Option<Stop>, IngestError> {
    for o in outs.iter_mut() {
        if o.needs_interning.iter().any(|&b| b) {
            return Ok(Some(Stop::Restart(o.needs_interning)));
        }
        let failed = fail_fast && !o.rejects.is_empty();
        append(acc, o, modes, sink)?;
        if failed {
            return Ok(Some(Stop::Failed));
        }
    }
    Ok(None)
}

/// Parse the ratings file into memory. With on_error = fail, the first bad row is returned
/// as the error; with skip, the rejects are in the result.
#[cfg(test)]
pub(crate) fn read(
    path: &Path,
    spec: &Spec,
    on_error: OnError,
    bar: &indicatif::ProgressBar,
) -> Result<RawColumns, IngestError> {
    let mut sink = Columns {
        user: Vec::new(),
        item: Vec::new(),
        rating: Vec::new(),
        timestamp: spec.timestamp.map(|_| Vec::new()),
    };
    let mut cols = read_into(path, spec, on_error, bar, &mut sink)?;
    cols.user = sink.user;
    cols.item = sink.item;
    cols.rating = sink.rating;
    cols.timestamp = sink.timestamp;
    Ok(cols)
}

/// Parse the ratings file, handing the rows to `sink` block by block (one block's rows go
/// to the sink while the next is parsed); the result holds the
/// line bookkeeping, rejects and id dictionaries, with empty row columns. With on_error =
/// fail, the first bad row is returned as the error; with skip, the rejects are in the
/// result.
pub(crate) fn read_into(
    path: &Path,
    spec: &Spec,
    on_error: OnError,
    bar: &indicatif::ProgressBar,
    sink: &mut (impl RowSink + Send),
) -> Result<RawColumns, IngestError> {
    let mut modes = [IdMode::Raw; 2];
    loop {
        match attempt(path, spec, (modes, on_error), bar, sink)? {
            Attempt::Done(cols) => {
                if on_error == OnError::Fail
                    && let Some(r) = cols.rejects.first()
                {
                    return Err(IngestError::BadRow {
                        path: path.to_path_buf(),
                        line: r.line,
                        column: r.column,
                        reason: r.reason.clone(),
                        text: r.text.clone(),
                    });
                }
                return Ok(*cols);
            }
            Attempt::Restart(flags) => {
                sink.restart();
                for (m, f) in modes.iter_mut().zip(flags) {
                    if f {
                        *m = IdMode::Interned;
                    }
                }
                tracing::debug!(
                    ?modes,
                    "ids do not all fit u32 integers; reading them as text"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::line::{ControlFlow, parse_chunk, parse_line};
    use super::*;

    fn spec(block: usize, sub_chunk: usize) -> Spec {
        Spec {
            delim: b",".to_vec(),
            header: true,
            n_fields: 4,
            user: 0,
            item: 1,
            rating: 2,
            timestamp: Some(3),
            range: [0.5, 5.0],
            ids_utf8: true,
            block,
            sub_chunk,
        }
    }

    /// Blocks and sub-chunks far smaller than the file (and than one long line) must give
    /// the rows and line numbers a single pass gives.
    #[test]
    fn block_and_chunk_boundaries_keep_rows_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut text = String::from("userId,movieId,rating,timestamp\r\n");
        for i in 0..5000u32 {
            text.push_str(&format!("{},{},{}.5,{}\r\n", i % 97, i, i % 4, 1000 + i));
            if i == 2500 {
                text.push_str(&format!("1,2,3.0,{}\n", "9".repeat(300)));
            }
        }
        text.push_str("7,7,oops,1");
        std::fs::write(&path, &text).unwrap();
        let bar = indicatif::ProgressBar::hidden();
        for (block, sub) in [(256, 64), (1000, 7), (1 << 20, 1 << 20)] {
            let cols = read(&path, &spec(block, sub), OnError::Skip, &bar).unwrap();
            assert_eq!(cols.user.len(), 5000, "block {block}");
            assert_eq!(cols.item, (0..5000).collect::<Vec<u32>>());
            assert_eq!(cols.timestamp.as_ref().unwrap()[4999], 5999);
            assert_eq!(cols.rejects.len(), 2);
            // Header is line 1, row i is line i + 2 up to row 2500, the long line is 2503.
            assert_eq!(cols.rejects[0].line, 2503);
            assert_eq!(cols.rejects[1].line, 5003);
            assert_eq!(cols.rejects[1].column, 5);
            assert_eq!(cols.line_of_row(2501), 2504);
            assert_eq!(cols.rows_read, 5002);
            let e = read(&path, &spec(block, sub), OnError::Fail, &bar)
                .err()
                .unwrap();
            assert!(
                e.to_string().contains("r.csv:2503:9: timestamp `999"),
                "{e}"
            );
        }
    }

    /// Parses `text` with the fast path and line by line with the general parser, asserts
    /// they agree on every row, line count and reject, and returns the fast path's result.
    fn fast_matches_line_parser(text: &str) -> ChunkOut {
        let spec = spec(1 << 20, 1 << 20);
        let modes = [IdMode::Raw; 2];
        let fast = parse_chunk(text.as_bytes(), &spec, modes, false);
        let mut slow = ChunkOut::default();
        let mut ranges = vec![(0usize, 0usize); spec.n_fields + 1];
        let mut lines = 0;
        // A text that ends in a newline has no line after it.
        let body = text.strip_suffix('\n').unwrap_or(text);
        for (i, l) in body.split('\n').enumerate() {
            lines += 1;
            if let ControlFlow::Stop =
                parse_line(&mut slow, &spec, modes, &mut ranges, l.as_bytes(), i as u64)
            {
                break;
            }
        }
        assert_eq!(fast.lines, lines);
        assert_eq!(fast.user, slow.user);
        assert_eq!(fast.item, slow.item);
        assert_eq!(fast.rating, slow.rating);
        assert_eq!(fast.ts, slow.ts);
        assert_eq!(fast.rejects, slow.rejects);
        assert_eq!(fast.skipped, slow.skipped);
        assert_eq!(fast.blank, slow.blank);
        assert_eq!(fast.needs_interning, slow.needs_interning);
        fast
    }

    /// The one-pass fast path must give exactly what the general line parser gives, for the
    /// lines it takes and for every line it hands over.
    #[test]
    fn fast_path_matches_line_parser() {
        let text = "1,2,3.5,100\n1,2,3.5,100\r\n007,0,4,5\n+1,2,3,4\n 1,2,3,4\n1,2,3.,4\n\
                    1,2,3.50,4\n1,2,9,4\n1,2,0.0,4\n,2,3,4\n1,,3,4\n1,2,3\n1,2,3,4,5\n\
                    \n  \r\n1,2,3,-4\n1,2,3,4\r\r\n1,2,x,4\n1234567890,2,3,4\n\
                    1,2,3,1234567890123456789\n1,2,3,4\n1,2,3,4";
        let fast = fast_matches_line_parser(text);
        assert!(
            fast.user.len() >= 4 && fast.rejects.len() >= 8,
            "{:?}",
            fast.rejects
        );
    }

    /// Random lines, mostly well formed and some broken in every field: the fast path gives
    /// exactly the rows, line numbers and rejects of the general line parser.
    #[test]
    fn fast_path_matches_line_parser_on_random_lines() {
        let mut g = recpipe_core::rng::SplitMix64::new(42);
        let number = |g: &mut recpipe_core::rng::SplitMix64, most: u64| {
            let len = g.below(most) + 1;
            (0..len)
                .map(|_| char::from(b'0' + g.below(10) as u8))
                .collect::<String>()
        };
        let mut text = String::new();
        for _ in 0..20_000 {
            let mut fields = [
                // Ids of up to 9 digits: a longer one switches the parse to interning.
                number(&mut g, 9),
                number(&mut g, 9),
                format!("{}.{}", g.below(6), g.below(10)),
                number(&mut g, 20),
            ];
            if g.below(10) == 0 {
                // A text id would switch the parse to interning: ids are only ever empty.
                let f = g.below(4) as usize;
                let junk = ["", "x", "-1", "+2", " 3", "4.", "1e3", "٣"];
                let pick = if f < 2 {
                    0
                } else {
                    g.below(junk.len() as u64) as usize
                };
                fields[f] = junk[pick].to_string();
            }
            text.push_str(&fields.join(","));
            text.push_str(if g.below(5) == 0 { "\r\n" } else { "\n" });
        }
        let fast = fast_matches_line_parser(&text);
        assert!(
            fast.user.len() > 12_000 && fast.rejects.len() > 2_000,
            "{} rows, {} rejects",
            fast.user.len(),
            fast.rejects.len()
        );
    }

    /// Text ids appearing late restart the parse with dictionaries, ids stay in first-seen
    /// code order; ids beyond u32 take the same path.
    #[test]
    fn late_text_ids_switch_to_interning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut text = String::from("u,i,r,t\n");
        for i in 0..3000u32 {
            text.push_str(&format!("{},{},4,{i}\n", i % 10, i % 5));
        }
        text.push_str("x9,99999999999,1,1\n");
        std::fs::write(&path, &text).unwrap();
        let bar = indicatif::ProgressBar::hidden();
        let cols = read(&path, &spec(512, 100), OnError::Fail, &bar).unwrap();
        let users = cols.user_keys.as_ref().unwrap();
        let items = cols.item_keys.as_ref().unwrap();
        assert_eq!(users.len(), 11);
        assert_eq!(&*users[10], b"x9");
        assert_eq!(&*items[5], b"99999999999");
        assert_eq!(cols.user[3000], 10);
        assert_eq!(cols.user[..10], (0..10).collect::<Vec<u32>>());
    }
}
