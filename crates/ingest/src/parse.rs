//! The ratings hot path: the file is read in large blocks cut at line boundaries, each block
//! is split into sub-chunks parsed on all cores, and the results are appended in file order,
//! so memory holds the parsed columns plus one block of text whatever the file size.
//!
//! Ids are kept as their integer value while every id fits in a u32 (all MovieLens data);
//! the first id that does not (text, negative, huge) restarts the parse with per-chunk string
//! dictionaries for that column, which costs one allocation per distinct id, not per row.

use crate::config::OnError;
use crate::error::IngestError;
use crate::text::{self, parse_f32, parse_i64, split_fields, trim_cr, unquote};
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::Read;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdMode {
    Raw,
    Interned,
}

#[derive(Default)]
struct Dict {
    map: HashMap<Box<[u8]>, u32>,
    keys: Vec<Box<[u8]>>,
}

impl Dict {
    #[inline]
    fn code(&mut self, key: &[u8]) -> u32 {
        if let Some(&c) = self.map.get(key) {
            return c;
        }
        let c = self.keys.len() as u32;
        let boxed: Box<[u8]> = key.into();
        self.keys.push(boxed.clone());
        self.map.insert(boxed, c);
        c
    }
}

#[derive(Default)]
struct ChunkOut {
    user: Vec<u32>,
    item: Vec<u32>,
    rating: Vec<f32>,
    ts: Vec<i64>,
    user_dict: Dict,
    item_dict: Dict,
    /// Lines in the chunk (the last may lack its newline).
    lines: u64,
    /// Local 0-based line indices of blank lines and rejected rows, in order.
    skipped: Vec<u64>,
    blank: u64,
    rejects: Vec<Reject>,
    /// A column whose ids do not fit the raw mode (0 user, 1 item).
    needs_interning: [bool; 2],
}

impl ChunkOut {
    /// Empties the chunk for the next block, keeping the allocations: fresh multi-MB vectors
    /// per block would be page-faulted in and zeroed again every time.
    fn reset(&mut self) {
        self.user.clear();
        self.item.clear();
        self.rating.clear();
        self.ts.clear();
        self.user_dict = Dict::default();
        self.item_dict = Dict::default();
        self.lines = 0;
        self.skipped.clear();
        self.blank = 0;
        self.rejects.clear();
        self.needs_interning = [false; 2];
    }
}

/// Parsed columns with ids still in their per-column code space: raw integer values, or
/// first-seen codes into `keys` for interned columns.
pub(crate) struct RawColumns {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
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

fn reject(
    out: &mut ChunkOut,
    local_line: u64,
    column: usize,
    reason: String,
    line: &[u8],
) -> ControlFlow {
    out.skipped.push(local_line);
    out.rejects.push(Reject {
        line: local_line,
        column: column as u64 + 1,
        reason,
        text: text::snippet(line),
    });
    ControlFlow::Next
}

enum ControlFlow {
    Next,
    Stop,
}

/// A field quoted in a reason, shortened: the whole line follows in the message anyway.
fn field_text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    match s.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.into_owned(),
    }
}

/// Why an id field gives no code.
enum IdErr {
    Empty,
    /// Not a raw integer id: the chunk is parsed again with interning.
    Restart,
    /// Not text in the file's encoding: the byte offset and the reason.
    NotText(usize, String),
}

#[inline]
fn id_code(
    field: &[u8],
    mode: IdMode,
    utf8: bool,
    dict: &mut Dict,
    flag: &mut bool,
) -> Result<u32, IdErr> {
    if field.is_empty() {
        return Err(IdErr::Empty);
    }
    if let IdMode::Raw = mode
        && let Some(v) = parse_i64(field)
        && (0..u32::MAX as i64).contains(&v)
    {
        return Ok(v as u32);
    }
    if let Some((at, why)) = text::id_problem(field, utf8) {
        return Err(IdErr::NotText(at, why));
    }
    match mode {
        IdMode::Raw => {
            *flag = true;
            Err(IdErr::Restart)
        }
        IdMode::Interned => Ok(dict.code(field)),
    }
}

/// An id field quoted in a reason: escaped (it may hold control bytes) and shortened.
fn id_text(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(b).escape_debug().collect();
    match s.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

fn parse_line(
    out: &mut ChunkOut,
    spec: &Spec,
    modes: [IdMode; 2],
    ranges: &mut [(usize, usize)],
    raw: &[u8],
    idx: u64,
) -> ControlFlow {
    let l = trim_cr(raw);
    if l.trim_ascii().is_empty() {
        out.skipped.push(idx);
        out.blank += 1;
        return ControlFlow::Next;
    }
    let n = split_fields(l, &spec.delim, ranges);
    if n != spec.n_fields {
        let (col, what) = if n > spec.n_fields {
            (ranges[spec.n_fields].0, "more")
        } else {
            (l.len(), "fewer")
        };
        return reject(
            out,
            idx,
            col,
            format!(
                "{what} fields than expected: found {n}, expected {} separated by `{}`",
                spec.n_fields,
                String::from_utf8_lossy(&spec.delim).escape_debug()
            ),
            l,
        );
    }
    let get = |i: usize| {
        let (s, e) = ranges[i];
        (unquote(&l[s..e]), s)
    };
    let (uf, ucol) = get(spec.user);
    let user = match id_code(
        uf,
        modes[0],
        spec.ids_utf8,
        &mut out.user_dict,
        &mut out.needs_interning[0],
    ) {
        Ok(c) => c,
        Err(IdErr::Empty) => return reject(out, idx, ucol, "empty user id".into(), l),
        Err(IdErr::NotText(at, why)) => {
            let reason = format!("user id `{}` {why}", id_text(uf));
            return reject(out, idx, ucol + at, reason, l);
        }
        Err(IdErr::Restart) => return ControlFlow::Stop,
    };
    let (itf, icol) = get(spec.item);
    let item = match id_code(
        itf,
        modes[1],
        spec.ids_utf8,
        &mut out.item_dict,
        &mut out.needs_interning[1],
    ) {
        Ok(c) => c,
        Err(IdErr::Empty) => return reject(out, idx, icol, "empty item id".into(), l),
        Err(IdErr::NotText(at, why)) => {
            let reason = format!("item id `{}` {why}", id_text(itf));
            return reject(out, idx, icol + at, reason, l);
        }
        Err(IdErr::Restart) => return ControlFlow::Stop,
    };
    let (rf, rcol) = get(spec.rating);
    let rating = match parse_f32(rf) {
        Some(r) if r >= spec.range[0] && r <= spec.range[1] => r,
        Some(r) => {
            return reject(
                out,
                idx,
                rcol,
                format!(
                    "rating {r} is outside rating_range [{}, {}]",
                    spec.range[0], spec.range[1]
                ),
                l,
            );
        }
        None => {
            return reject(
                out,
                idx,
                rcol,
                format!("rating `{}` is not a number", field_text(rf)),
                l,
            );
        }
    };
    if let Some(t) = spec.timestamp {
        let (tf, tcol) = get(t);
        match parse_i64(tf) {
            Some(v) => out.ts.push(v),
            None => {
                return reject(
                    out,
                    idx,
                    tcol,
                    format!(
                        "timestamp `{}` is not an integer (seconds since 1970)",
                        field_text(tf)
                    ),
                    l,
                );
            }
        }
    }
    out.user.push(user);
    out.item.push(item);
    out.rating.push(rating);
    ControlFlow::Next
}

/// What a field of the common row shape holds, for [`fast_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Item,
    Rating,
    Timestamp,
    Other,
}

/// The field kinds in file order when the fast path applies: a one-byte delimiter that
/// cannot occur in a number or end a line.
fn fast_kinds(spec: &Spec) -> Option<Vec<Kind>> {
    let [d] = spec.delim[..] else { return None };
    if d.is_ascii_digit() || matches!(d, b'.' | b'\n' | b'\r' | b'-' | b'+') {
        return None;
    }
    let mut kinds = vec![Kind::Other; spec.n_fields];
    kinds[spec.user] = Kind::User;
    kinds[spec.item] = Kind::Item;
    kinds[spec.rating] = Kind::Rating;
    if let Some(t) = spec.timestamp {
        kinds[t] = Kind::Timestamp;
    }
    Some(kinds)
}

/// Up to `max` ASCII digits at `data[p..]` (at least one): their value and the next position.
#[inline(always)]
fn digits(data: &[u8], mut p: usize, max: usize) -> Option<(u64, usize)> {
    let start = p;
    let mut v = 0u64;
    while let Some(&c) = data.get(p) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add(d as u64);
        p += 1;
    }
    (p > start && p - start <= max).then_some((v, p))
}

/// The common case of a whole line in one pass: plain digits for ids (at most 9, so the
/// value fits the raw mode) and timestamps, `d` or `d.d` ratings within range, the line
/// ending in `\n` or `\r\n`. Pushes the row and returns the next line's start; `None`
/// (nothing pushed) sends the line through [`parse_line`], which gives every other line,
/// good or bad, its exact treatment.
#[inline(always)]
fn fast_line(
    out: &mut ChunkOut,
    kinds: &[Kind],
    delim: u8,
    range: [f32; 2],
    data: &[u8],
    mut p: usize,
) -> Option<usize> {
    let (mut user, mut item, mut rating, mut ts) = (0u32, 0u32, 0f32, None);
    let last = kinds.len() - 1;
    for (i, &kind) in kinds.iter().enumerate() {
        match kind {
            Kind::User | Kind::Item => {
                let (v, np) = digits(data, p, 9)?;
                p = np;
                if kind == Kind::User {
                    user = v as u32;
                } else {
                    item = v as u32;
                }
            }
            Kind::Timestamp => {
                let (v, np) = digits(data, p, 18)?;
                p = np;
                ts = Some(v as i64);
            }
            Kind::Rating => {
                let d = data.get(p)?.wrapping_sub(b'0');
                if d > 9 {
                    return None;
                }
                p += 1;
                rating = d as f32;
                if data.get(p) == Some(&b'.') {
                    let f = data.get(p + 1)?.wrapping_sub(b'0');
                    if f > 9 {
                        return None;
                    }
                    rating = d as f32 + f as f32 / 10.0;
                    p += 2;
                }
                if !(rating >= range[0] && rating <= range[1]) {
                    return None;
                }
            }
            Kind::Other => {
                while let Some(&c) = data.get(p) {
                    if c == delim || c == b'\n' || c == b'\r' {
                        break;
                    }
                    p += 1;
                }
            }
        }
        let c = *data.get(p)?;
        if i < last {
            if c != delim {
                return None;
            }
            p += 1;
        } else if c == b'\n' {
            p += 1;
        } else if c == b'\r' && data.get(p + 1) == Some(&b'\n') {
            p += 2;
        } else {
            return None;
        }
    }
    if let Some(t) = ts {
        out.ts.push(t);
    }
    out.user.push(user);
    out.item.push(item);
    out.rating.push(rating);
    Some(p)
}

#[cfg(test)]
fn parse_chunk(data: &[u8], spec: &Spec, modes: [IdMode; 2], fail_fast: bool) -> ChunkOut {
    let mut out = ChunkOut::default();
    parse_chunk_into(&mut out, data, spec, modes, fail_fast);
    out
}

/// Parses `data` into `out` (reset first).
fn parse_chunk_into(
    out: &mut ChunkOut,
    data: &[u8],
    spec: &Spec,
    modes: [IdMode; 2],
    fail_fast: bool,
) {
    out.reset();
    let guess = data.len() / 20 + 1;
    out.user.reserve(guess);
    out.item.reserve(guess);
    out.rating.reserve(guess);
    if spec.timestamp.is_some() {
        out.ts.reserve(guess);
    }
    let mut ranges = vec![(0usize, 0usize); spec.n_fields + 1];
    let kinds = (modes == [IdMode::Raw; 2])
        .then(|| fast_kinds(spec))
        .flatten();
    let (delim, range) = (spec.delim.first().copied().unwrap_or(0), spec.range);
    let mut pos = 0;
    let mut idx = 0u64;
    while pos < data.len() {
        if let Some(kinds) = kinds.as_deref()
            && let Some(next) = fast_line(out, kinds, delim, range, data, pos)
        {
            pos = next;
            idx += 1;
            continue;
        }
        let (end, next) = match memchr::memchr(b'\n', &data[pos..]) {
            Some(p) => (pos + p, pos + p + 1),
            None => (data.len(), data.len()),
        };
        let before = out.rejects.len();
        let flow = parse_line(out, spec, modes, &mut ranges, &data[pos..end], idx);
        idx += 1;
        pos = next;
        if matches!(flow, ControlFlow::Stop) || (fail_fast && out.rejects.len() > before) {
            break;
        }
    }
    out.lines = idx;
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

struct Acc {
    cols: RawColumns,
    user_global: Dict,
    item_global: Dict,
    line_base: u64,
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

fn append(acc: &mut Acc, c: &mut ChunkOut, modes: [IdMode; 2]) {
    if modes[0] == IdMode::Interned {
        merge_codes(&mut c.user, &c.user_dict, &mut acc.user_global);
    }
    if modes[1] == IdMode::Interned {
        merge_codes(&mut c.item, &c.item_dict, &mut acc.item_global);
    }
    let cols = &mut acc.cols;
    cols.user.extend_from_slice(&c.user);
    cols.item.extend_from_slice(&c.item);
    cols.rating.extend_from_slice(&c.rating);
    if let Some(ts) = cols.timestamp.as_mut() {
        ts.extend_from_slice(&c.ts);
    }
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
}

fn read_block(
    file: &mut std::fs::File,
    buf: &mut Vec<u8>,
    block: usize,
    path: &Path,
) -> Result<bool, IngestError> {
    let start = buf.len();
    buf.resize(start + block, 0);
    let mut filled = start;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok(true);
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IngestError::io(path, e)),
        }
    }
    Ok(false)
}

fn attempt(
    path: &Path,
    spec: &Spec,
    modes: [IdMode; 2],
    on_error: OnError,
    bar: &indicatif::ProgressBar,
) -> Result<Attempt, IngestError> {
    let mut file = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let fail_fast = on_error == OnError::Fail;
    let mut acc = Acc {
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
    };
    bar.set_position(0);
    let block = spec.block.max(1);
    let mut buf: Vec<u8> = Vec::with_capacity(block);
    // The next block is read into `spare` while the current one is parsed.
    let mut spare: Vec<u8> = Vec::with_capacity(block);
    // One output buffer per sub-chunk, reused block after block.
    let mut pool: Vec<ChunkOut> = Vec::new();
    let mut first = true;
    let mut eof = read_block(&mut file, &mut buf, block, path)?;
    loop {
        if first {
            first = false;
            let mut prefix = buf.len() - text::strip_bom(&buf).len();
            if spec.header {
                prefix +=
                    memchr::memchr(b'\n', &buf[prefix..]).map_or(buf.len() - prefix, |p| p + 1);
                acc.line_base = 1;
            }
            buf.drain(..prefix);
            bar.inc(prefix as u64);
            // Size the columns once from the density of the first block, so appending never
            // doubles a multi-GB vector.
            if !eof && !buf.is_empty() {
                let lines = memchr::memchr_iter(b'\n', &buf).count().max(1);
                let est = (file_len as f64 / buf.len() as f64 * lines as f64 * 1.01) as usize;
                acc.cols.user.reserve(est);
                acc.cols.item.reserve(est);
                acc.cols.rating.reserve(est);
                if let Some(t) = acc.cols.timestamp.as_mut() {
                    t.reserve(est);
                }
            }
        }
        let cut = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(p) => p + 1,
                // A line longer than a block: read more before cutting.
                None => {
                    eof = read_block(&mut file, &mut buf, block, path)?;
                    continue;
                }
            }
        };
        spare.clear();
        spare.extend_from_slice(&buf[cut..]);
        let chunks = sub_chunks(&buf[..cut], spec.sub_chunk.max(1));
        if pool.len() < chunks.len() {
            pool.resize_with(chunks.len(), ChunkOut::default);
        }
        let outs = &mut pool[..chunks.len()];
        let ((), next_eof) = rayon::join(
            || {
                outs.par_iter_mut()
                    .zip(chunks.par_iter())
                    .for_each(|(o, c)| parse_chunk_into(o, c, spec, modes, fail_fast))
            },
            || {
                if eof {
                    Ok(true)
                } else {
                    read_block(&mut file, &mut spare, block, path)
                }
            },
        );
        for o in outs.iter_mut() {
            if o.needs_interning.iter().any(|&b| b) {
                return Ok(Attempt::Restart(o.needs_interning));
            }
            let failed = fail_fast && !o.rejects.is_empty();
            append(&mut acc, o, modes);
            if failed {
                return Ok(Attempt::Done(Box::new(acc.cols)));
            }
        }
        bar.inc(cut as u64);
        if eof {
            break;
        }
        eof = next_eof?;
        std::mem::swap(&mut buf, &mut spare);
    }
    if modes[0] == IdMode::Interned {
        acc.cols.user_keys = Some(std::mem::take(&mut acc.user_global.keys));
    }
    if modes[1] == IdMode::Interned {
        acc.cols.item_keys = Some(std::mem::take(&mut acc.item_global.keys));
    }
    Ok(Attempt::Done(Box::new(acc.cols)))
}

/// Parse the ratings file. With on_error = fail, the first bad row is returned as the
/// error; with skip, the rejects are in the result.
pub(crate) fn read(
    path: &Path,
    spec: &Spec,
    on_error: OnError,
    bar: &indicatif::ProgressBar,
) -> Result<RawColumns, IngestError> {
    let mut modes = [IdMode::Raw; 2];
    loop {
        match attempt(path, spec, modes, on_error, bar)? {
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

    /// The one-pass fast path must give exactly what the general line parser gives, for the
    /// lines it takes and for every line it hands over.
    #[test]
    fn fast_path_matches_line_parser() {
        let text = "1,2,3.5,100\n1,2,3.5,100\r\n007,0,4,5\n+1,2,3,4\n 1,2,3,4\n1,2,3.,4\n\
                    1,2,3.50,4\n1,2,9,4\n1,2,0.0,4\n,2,3,4\n1,,3,4\n1,2,3\n1,2,3,4,5\n\
                    \n  \r\n1,2,3,-4\n1,2,3,4\r\r\n1,2,x,4\n1234567890,2,3,4\n\
                    1,2,3,1234567890123456789\n1,2,3,4\n1,2,3,4";
        let spec = spec(1 << 20, 1 << 20);
        let modes = [IdMode::Raw; 2];
        let fast = parse_chunk(text.as_bytes(), &spec, modes, false);
        let mut slow = ChunkOut::default();
        let mut ranges = vec![(0usize, 0usize); spec.n_fields + 1];
        let mut lines = 0;
        for (i, l) in text.split('\n').enumerate() {
            lines += 1;
            match parse_line(&mut slow, &spec, modes, &mut ranges, l.as_bytes(), i as u64) {
                ControlFlow::Next => {}
                ControlFlow::Stop => break,
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
        assert!(
            fast.user.len() >= 4 && fast.rejects.len() >= 8,
            "{:?}",
            fast.rejects
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
