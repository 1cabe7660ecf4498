//! One chunk of a ratings file → columns: a one-pass fast path for the common row shape
//! (plain integer ids, `d` / `d.d` ratings), and the general line parser that gives every
//! other line, good or bad, its exact treatment. Chunks are parsed in parallel, each into its
//! own [`ChunkOut`]; `super` appends them in file order.

use super::{Reject, Spec};
use crate::text::{self, parse_f32, parse_i64, split_fields, trim_cr, unquote};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IdMode {
    Raw,
    Interned,
}

#[derive(Default)]
pub(super) struct Dict {
    map: HashMap<Box<[u8]>, u32>,
    pub(super) keys: Vec<Box<[u8]>>,
}

impl Dict {
    #[inline]
    pub(super) fn code(&mut self, key: &[u8]) -> u32 {
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
pub(super) struct ChunkOut {
    pub(super) user: Vec<u32>,
    pub(super) item: Vec<u32>,
    pub(super) rating: Vec<f32>,
    pub(super) ts: Vec<i64>,
    pub(super) user_dict: Dict,
    pub(super) item_dict: Dict,
    /// Lines in the chunk (the last may lack its newline).
    pub(super) lines: u64,
    /// Local 0-based line indices of blank lines and rejected rows, in order.
    pub(super) skipped: Vec<u64>,
    pub(super) blank: u64,
    pub(super) rejects: Vec<Reject>,
    /// A column whose ids do not fit the raw mode (0 user, 1 item).
    pub(super) needs_interning: [bool; 2],
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

pub(super) enum ControlFlow {
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

/// The general line parser: every line, good or bad, gets its exact treatment (blank,
/// rejected with line, column and reason, or pushed as a row).
pub(super) fn parse_line(
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
    match row(out, spec, modes, ranges, l) {
        Ok((user, item, rating, ts)) => {
            if let Some(t) = ts {
                out.ts.push(t);
            }
            out.user.push(user);
            out.item.push(item);
            out.rating.push(rating);
            ControlFlow::Next
        }
        Err(Bad::Reject(col, reason)) => reject(out, idx, col, reason, l),
        Err(Bad::Restart) => ControlFlow::Stop,
    }
}

/// Why the fields of a line give no row.
enum Bad {
    /// The byte column of the bad field, and why.
    Reject(usize, String),
    /// An id that is not a raw integer: the chunk is parsed again with interning.
    Restart,
}

/// The user, item, rating and timestamp of a line already cut into `ranges`.
#[inline]
fn row(
    out: &mut ChunkOut,
    spec: &Spec,
    modes: [IdMode; 2],
    ranges: &[(usize, usize)],
    l: &[u8],
) -> Result<(u32, u32, f32, Option<i64>), Bad> {
    let get = |i: usize| {
        let (s, e) = ranges[i];
        (unquote(&l[s..e]), s)
    };
    let utf8 = spec.ids_utf8;
    let (uf, ucol) = get(spec.user);
    let (dict, flag) = (&mut out.user_dict, &mut out.needs_interning[0]);
    let user = id_field(uf, ucol, "user", modes[0], utf8, (dict, flag))?;
    let (itf, icol) = get(spec.item);
    let (dict, flag) = (&mut out.item_dict, &mut out.needs_interning[1]);
    let item = id_field(itf, icol, "item", modes[1], utf8, (dict, flag))?;
    let (rf, rcol) = get(spec.rating);
    let rating = match parse_f32(rf) {
        Some(r) if r >= spec.range[0] && r <= spec.range[1] => r,
        Some(r) => {
            let reason = format!(
                "rating {r} is outside rating_range [{}, {}]",
                spec.range[0], spec.range[1]
            );
            return Err(Bad::Reject(rcol, reason));
        }
        None => {
            let reason = format!("rating `{}` is not a number", field_text(rf));
            return Err(Bad::Reject(rcol, reason));
        }
    };
    let ts = match spec.timestamp {
        Some(t) => {
            let (tf, tcol) = get(t);
            let v = parse_i64(tf).ok_or_else(|| {
                let reason = format!(
                    "timestamp `{}` is not an integer (seconds since 1970)",
                    field_text(tf)
                );
                Bad::Reject(tcol, reason)
            })?;
            Some(v)
        }
        None => None,
    };
    Ok((user, item, rating, ts))
}

/// The code of a user or item id field at byte column `col`.
#[inline]
fn id_field(
    field: &[u8],
    col: usize,
    what: &str,
    mode: IdMode,
    utf8: bool,
    (dict, flag): (&mut Dict, &mut bool),
) -> Result<u32, Bad> {
    match id_code(field, mode, utf8, dict, flag) {
        Ok(c) => Ok(c),
        Err(IdErr::Empty) => Err(Bad::Reject(col, format!("empty {what} id"))),
        Err(IdErr::NotText(at, why)) => {
            let reason = format!("{what} id `{}` {why}", id_text(field));
            Err(Bad::Reject(col + at, reason))
        }
        Err(IdErr::Restart) => Err(Bad::Restart),
    }
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
/// Eight bytes are looked at in one word where the data has them (SWAR): the digits found
/// there are converted with three multiplications instead of one step per byte.
#[inline(always)]
fn digits(data: &[u8], p: usize, max: usize) -> Option<(u64, usize)> {
    let Some(word) = data.get(p..p + 8) else {
        return digits_bytewise(data, p, p, 0, max);
    };
    let x = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ 0x3030_3030_3030_3030;
    let n = first_non_digit(x);
    match n {
        0 => None,
        8 => digits_bytewise(data, p, p + 8, eight_digits(x), max),
        _ => (n <= max).then(|| (eight_digits(x << (8 * (8 - n))), p + n)),
    }
}

/// `x`: eight bytes of text XOR `'0'`, so that digits are the bytes 0..=9. The index of the
/// first byte that is not a digit (8 if all are). A byte above 9 gets its high bit from
/// `+ 0x76` (or has it already); carries only run up from a flagged byte, so the lowest
/// flag is exact.
#[inline(always)]
fn first_non_digit(x: u64) -> usize {
    const LOW: u64 = 0x7676_7676_7676_7676;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let flags = (x.wrapping_add(LOW) | x) & HIGH;
    (flags.trailing_zeros() / 8) as usize
}

/// Eight digit values, the first (most significant) in the lowest byte, as a number:
/// pairs, then pairs of pairs, in two multiply-and-shift steps.
#[inline(always)]
fn eight_digits(x: u64) -> u64 {
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    let pairs = 0x0000_00FF_0000_00FF;
    ((x & pairs)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((x >> 16) & pairs).wrapping_mul(1 + (10_000 << 32))))
        >> 32
}

/// The byte-at-a-time rest of [`digits`]: the digits from `data[p..]` on, after `v`, the
/// value of `data[start..p]`.
#[inline(always)]
fn digits_bytewise(
    data: &[u8],
    start: usize,
    mut p: usize,
    mut v: u64,
    max: usize,
) -> Option<(u64, usize)> {
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
            Kind::Rating => (rating, p) = fast_rating(data, p, range)?,
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

/// A `d` or `d.d` rating within `range` at `data[p..]`, and the next position.
#[inline(always)]
fn fast_rating(data: &[u8], mut p: usize, range: [f32; 2]) -> Option<(f32, usize)> {
    let d = data.get(p)?.wrapping_sub(b'0');
    if d > 9 {
        return None;
    }
    p += 1;
    let mut rating = d as f32;
    if data.get(p) == Some(&b'.') {
        let f = data.get(p + 1)?.wrapping_sub(b'0');
        if f > 9 {
            return None;
        }
        rating = d as f32 + f as f32 / 10.0;
        p += 2;
    }
    (rating >= range[0] && rating <= range[1]).then_some((rating, p))
}

#[cfg(test)]
pub(super) fn parse_chunk(
    data: &[u8],
    spec: &Spec,
    modes: [IdMode; 2],
    fail_fast: bool,
) -> ChunkOut {
    let mut out = ChunkOut::default();
    parse_chunk_into(&mut out, data, spec, modes, fail_fast);
    out
}

/// Parses `data` into `out` (reset first).
pub(super) fn parse_chunk_into(
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

#[cfg(test)]
mod tests {
    use super::*;
    use recpipe_core::rng::SplitMix64;

    /// What `digits` means, one byte at a time.
    fn digits_reference(data: &[u8], p: usize, max: usize) -> Option<(u64, usize)> {
        let n = data[p.min(data.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let v = data[p..p + n].iter().fold(0u64, |v, &c| {
            v.wrapping_mul(10).wrapping_add((c - b'0') as u64)
        });
        (n > 0 && n <= max).then_some((v, p + n))
    }

    /// The word-at-a-time digit scan agrees with the byte loop for every run length, at every
    /// distance from the end of the data, whatever byte ends the run (including bytes next
    /// to '0' and '9' and above 0x80, where a SWAR test could carry wrongly).
    #[test]
    fn digits_match_the_byte_loop() {
        let enders = [
            b',', b'/', b':', b'\n', b'\r', b'.', 0x00, 0x7F, 0x80, 0x8A, 0xB9, 0xFF,
        ];
        let mut g = SplitMix64::new(7);
        for run in 0..=20usize {
            for &end in &enders {
                for tail in 0..10usize {
                    let mut data: Vec<u8> = (0..run).map(|_| b'0' + g.below(10) as u8).collect();
                    data.push(end);
                    data.extend((0..tail).map(|_| g.below(256) as u8));
                    for max in [9, 18] {
                        assert_eq!(
                            digits(&data, 0, max),
                            digits_reference(&data, 0, max),
                            "run {run} ender {end:#x} tail {tail} in {data:?}"
                        );
                        // The run at the very end of the data.
                        assert_eq!(
                            digits(&data[..run], 0, max),
                            digits_reference(&data[..run], 0, max)
                        );
                    }
                }
            }
        }
        // Random bytes anywhere, digits most of the time.
        for _ in 0..20_000 {
            let len = g.below(30) as usize + 1;
            let data: Vec<u8> = (0..len)
                .map(|_| match g.below(4) {
                    0 => g.below(256) as u8,
                    _ => b'0' + g.below(10) as u8,
                })
                .collect();
            let p = g.below(len as u64) as usize;
            assert_eq!(
                digits(&data, p, 18),
                digits_reference(&data, p, 18),
                "{data:?} at {p}"
            );
        }
    }
}
