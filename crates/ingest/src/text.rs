//! Byte-level helpers shared by the readers: decoding, delimited-record splitting, number
//! parsing without allocation, and the year at the end of a MovieLens title.

use crate::config::Encoding;
use std::borrow::Cow;

pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// Decode a whole (small) metadata file. `Auto` keeps valid UTF-8 and otherwise reads the
/// bytes as windows-1252, the superset of Latin-1 the older MovieLens files were written in.
pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> Cow<'_, str> {
    let bytes = strip_bom(bytes);
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(bytes),
        Encoding::Latin1 => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
        }
        Encoding::Auto => match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(bytes)
                    .0
            }
        },
    }
}

/// Trim a trailing `\r` (CRLF files).
#[inline]
pub(crate) fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Split a line on a delimiter of one or more bytes into at most `out.len()` field ranges.
/// Returns the number of fields found (which may exceed `out.len()`).
#[inline]
pub(crate) fn split_fields(line: &[u8], delim: &[u8], out: &mut [(usize, usize)]) -> usize {
    let mut n = 0;
    let mut start = 0;
    if let [d] = *delim {
        // Ratings lines are short: a plain scan beats a SIMD search restarted per field.
        for (pos, &b) in line.iter().enumerate() {
            if b == d {
                if n < out.len() {
                    out[n] = (start, pos);
                }
                n += 1;
                start = pos + 1;
            }
        }
    } else {
        for pos in memchr::memmem::find_iter(line, delim) {
            if pos < start {
                continue;
            }
            if n < out.len() {
                out[n] = (start, pos);
            }
            n += 1;
            start = pos + delim.len();
        }
    }
    if n < out.len() {
        out[n] = (start, line.len());
    }
    n + 1
}

/// A field without surrounding spaces and double quotes (generic files sometimes quote ids).
#[inline]
pub(crate) fn unquote(field: &[u8]) -> &[u8] {
    let f = field.trim_ascii();
    if f.len() >= 2 && f[0] == b'"' && f[f.len() - 1] == b'"' {
        &f[1..f.len() - 1]
    } else {
        f
    }
}

/// Why an id field is not text in the file's encoding, if it is not: the byte offset of
/// the first bad byte and the reason. Ids are names, so ASCII control characters (NUL,
/// tab, DEL, …) are never part of one; in a UTF-8 file the bytes must be valid UTF-8, in a
/// Latin-1 (windows-1252) file they must be characters that encoding defines.
pub(crate) fn id_problem(field: &[u8], utf8: bool) -> Option<(usize, String)> {
    if let Some(at) = field.iter().position(|&b| b < 0x20 || b == 0x7F) {
        let b = field[at];
        let name = match b {
            0 => " (NUL)",
            b'\t' => " (tab)",
            0x7F => " (DEL)",
            _ => "",
        };
        return Some((at, format!("holds the control character 0x{b:02X}{name}")));
    }
    if utf8 {
        let at = std::str::from_utf8(field).err()?.valid_up_to();
        return Some((
            at,
            format!(
                "is not valid UTF-8 (byte 0x{:02X}); set encoding = \"latin-1\" if the file is Latin-1",
                field[at]
            ),
        ));
    }
    let at = field
        .iter()
        .position(|b| matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D))?;
    Some((
        at,
        format!(
            "holds byte 0x{:02X}, which Latin-1 (windows-1252) does not define",
            field[at]
        ),
    ))
}

/// Parse a (possibly signed) decimal integer; `None` on anything else.
#[inline]
pub(crate) fn parse_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as i64;
    }
    Some(if neg { -v } else { v })
}

/// Parse a rating. The common MovieLens shapes (`4`, `3.5`, `4.0`) take a fast path; the
/// rest (exponents, many digits) goes through the standard parser.
#[inline]
pub(crate) fn parse_f32(b: &[u8]) -> Option<f32> {
    match b {
        [d] if d.is_ascii_digit() => Some((d - b'0') as f32),
        [d, b'.', f] if d.is_ascii_digit() && f.is_ascii_digit() => {
            Some((d - b'0') as f32 + (f - b'0') as f32 / 10.0)
        }
        _ => {
            let v: f32 = std::str::from_utf8(b).ok()?.parse().ok()?;
            v.is_finite().then_some(v)
        }
    }
}

/// The release year at the end of a MovieLens title: `Toy Story (1995)` → 1995; also the
/// first year of a range such as `(2007-2013)`.
pub(crate) fn title_year(title: &str) -> Option<i16> {
    let t = title.trim_end();
    let inner = t.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let inner = &inner[open + 1..];
    let digits = inner.get(..4)?;
    let rest = &inner[4..];
    if !digits.bytes().all(|c| c.is_ascii_digit())
        || !(rest.is_empty() || rest.starts_with('-') || rest.starts_with('–'))
    {
        return None;
    }
    digits.parse().ok()
}

/// One record of an RFC 4180 file: fields may be quoted, quotes doubled inside quotes, and
/// a quoted field may span lines. `line` is the 1-based line the record starts on. A field
/// borrows the text unless a doubled quote or text after its closing quote had to be
/// joined.
pub(crate) struct Record<'a> {
    pub line: u64,
    pub fields: Vec<Cow<'a, str>>,
}

/// How a field ended.
#[derive(PartialEq)]
enum End {
    Delim,
    Line,
    Text,
}

/// Parse delimited text with quoting (metadata files). `delim` is an ASCII character.
/// Outside quotes, `\r\n` ends a line as `\n` does and a quote that does not open a
/// field is kept as text; a line with nothing on it is no record.
pub(crate) fn quoted_records(text: &str, delim: char) -> Vec<Record<'_>> {
    assert!(delim.is_ascii(), "the delimiter {delim:?} is not ASCII");
    let delim = delim as u8;
    let mut out = Vec::new();
    let mut fields: Vec<Cow<'_, str>> = Vec::new();
    let (mut at, mut line, mut start_line) = (0usize, 1u64, 1u64);
    loop {
        let (field, end) = next_field(text, &mut at, delim, &mut line);
        fields.push(field);
        if end == End::Delim {
            continue;
        }
        let blank = fields.len() == 1 && fields[0].is_empty();
        if !blank {
            out.push(Record {
                line: start_line,
                fields: std::mem::take(&mut fields),
            });
        }
        fields.clear();
        if end == End::Text {
            return out;
        }
        line += 1;
        start_line = line;
    }
}

/// The field that starts at byte `*at` (moved past it and its delimiter or line end), and
/// what ended it; `line` counts the line ends inside quotes.
fn next_field<'a>(text: &'a str, at: &mut usize, delim: u8, line: &mut u64) -> (Cow<'a, str>, End) {
    let b = text.as_bytes();
    let mut i = *at;
    // Text already joined, and the quoted part when nothing else is (yet).
    let mut joined: Option<String> = None;
    let mut quoted: Option<(usize, usize)> = None;
    if b.get(i) == Some(&b'"') {
        i += 1;
        let mut seg = i;
        loop {
            match b.get(i) {
                None => break,
                Some(b'"') if b.get(i + 1) == Some(&b'"') => {
                    joined
                        .get_or_insert_with(String::new)
                        .push_str(&text[seg..=i]);
                    i += 2;
                    seg = i;
                }
                Some(b'"') => break,
                Some(c) => {
                    *line += (*c == b'\n') as u64;
                    i += 1;
                }
            }
        }
        match &mut joined {
            Some(j) => j.push_str(&text[seg..i]),
            None => quoted = Some((seg, i)),
        }
        i = (i + 1).min(b.len());
    }
    let rest = i;
    let (stop, end, next) = loop {
        match b.get(i) {
            None => break (i, End::Text, i),
            Some(b'\n') => break (i, End::Line, i + 1),
            Some(b'\r') if b.get(i + 1) == Some(&b'\n') => break (i, End::Line, i + 2),
            Some(&c) if c == delim => break (i, End::Delim, i + 1),
            Some(_) => i += 1,
        }
    };
    *at = next;
    let field = match (joined, quoted) {
        (None, None) => Cow::Borrowed(&text[rest..stop]),
        (None, Some((a, z))) if rest == stop => Cow::Borrowed(&text[a..z]),
        (None, Some((a, z))) => Cow::Owned([&text[a..z], &text[rest..stop]].concat()),
        (Some(mut j), _) => {
            j.push_str(&text[rest..stop]);
            Cow::Owned(j)
        }
    };
    (field, end)
}

/// Display text of a raw line for messages: decoded lossily, control characters other
/// than tab escaped (`\0`, `\u{7}`), and shortened.
pub(crate) fn snippet(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(trim_cr(line));
    let s: String = if s.chars().any(|c| c.is_control() && c != '\t') {
        s.chars()
            .map(|c| match c {
                '\t' => c.to_string(),
                c if c.is_control() => c.escape_debug().to_string(),
                c => c.to_string(),
            })
            .collect()
    } else {
        s.into_owned()
    };
    if s.chars().count() > 200 {
        let mut t: String = s.chars().take(200).collect();
        t.push('…');
        t
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_from_titles() {
        assert_eq!(title_year("Toy Story (1995)"), Some(1995));
        assert_eq!(title_year("Babylon 5 "), None);
        assert_eq!(title_year("Stranger Things (2016-)"), Some(2016));
        assert_eq!(title_year("Big Bang (The) "), None);
        assert_eq!(title_year("Ben-hur (2016) "), Some(2016));
    }

    #[test]
    fn quoted_fields_with_commas_and_doubled_quotes() {
        let r = quoted_records(
            "id,title\r\n1,\"a, b\"\r\n2,\"11'09\"\"01 (2002)\"\n3,\"two\nlines\"\n",
            ',',
        );
        assert_eq!(r.len(), 4);
        assert_eq!(r[1].fields, vec!["1", "a, b"]);
        assert_eq!(r[2].fields, vec!["2", "11'09\"01 (2002)"]);
        assert_eq!(r[3].fields, vec!["3", "two\nlines"]);
        assert_eq!(r[3].line, 4);
    }

    /// The character-by-character parser this one replaced, as the oracle.
    fn reference(text: &str, delim: char) -> Vec<(u64, Vec<String>)> {
        let mut out = Vec::new();
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut line = 1u64;
        let mut start_line = 1u64;
        let mut chars = text.chars().peekable();
        let mut at_field_start = true;
        while let Some(c) = chars.next() {
            if in_quotes {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => in_quotes = false,
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if at_field_start => {
                    in_quotes = true;
                    at_field_start = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    fields.push(std::mem::take(&mut field));
                    if !(fields.len() == 1 && fields[0].is_empty()) {
                        out.push((start_line, std::mem::take(&mut fields)));
                    }
                    fields.clear();
                    line += 1;
                    start_line = line;
                    at_field_start = true;
                }
                c if c == delim => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                _ => {
                    field.push(c);
                    at_field_start = false;
                }
            }
        }
        if !field.is_empty() || !fields.is_empty() {
            fields.push(field);
            out.push((start_line, fields));
        }
        out
    }

    /// Records and lines as the reference parser gives them, on random text made of the
    /// characters that matter (quotes, delimiters, CR, LF) and others, multi-byte ones too.
    #[test]
    fn quoted_records_match_the_reference_parser() {
        let alphabet = ['"', '"', ',', ',', '\n', '\r', 'a', 'b', ' ', 'é', '|'];
        let mut g = recpipe_core::rng::SplitMix64::new(11);
        for case in 0..20_000 {
            let len = g.below(40) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[g.below(alphabet.len() as u64) as usize])
                .collect();
            let got: Vec<(u64, Vec<String>)> = quoted_records(&text, ',')
                .into_iter()
                .map(|r| {
                    (
                        r.line,
                        r.fields.into_iter().map(|f| f.into_owned()).collect(),
                    )
                })
                .collect();
            assert_eq!(got, reference(&text, ','), "case {case}: {text:?}");
        }
    }

    #[test]
    fn numbers_and_fields() {
        assert_eq!(parse_i64(b"964982703"), Some(964982703));
        assert_eq!(parse_i64(b"-7"), Some(-7));
        assert_eq!(parse_i64(b"1a"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_f32(b"3.5"), Some(3.5));
        assert_eq!(parse_f32(b"4"), Some(4.0));
        assert_eq!(parse_f32(b"4.25"), Some(4.25));
        assert_eq!(parse_f32(b"x"), None);
        assert_eq!(parse_f32(b"NaN"), None);
        let mut f = [(0, 0); 4];
        assert_eq!(split_fields(b"1::2::3", b"::", &mut f), 3);
        assert_eq!(&f[..3], &[(0, 1), (3, 4), (6, 7)]);
        assert_eq!(split_fields(b"a,b,c,d,e", b",", &mut f), 5);
    }
}
