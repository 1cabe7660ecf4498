//! From config and the first line of the ratings file to a parsing [`Spec`]: delimiter,
//! header, column positions. MovieLens layouts are fixed; generic files are sniffed where
//! the config leaves a choice open.

use crate::config::{Column, Config, Encoding, Format};
use crate::detect::Layout;
use crate::error::IngestError;
use crate::parse::Spec;
use crate::text::{self, parse_f32, parse_i64, split_fields, trim_cr, unquote};
use std::io::Read;

fn first_lines(path: &std::path::Path) -> Result<Vec<Vec<u8>>, IngestError> {
    let mut buf = vec![0u8; 1 << 16];
    let mut f = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IngestError::io(path, e)),
        }
    }
    let data = text::strip_bom(&buf[..n]);
    Ok(data
        .split(|&b| b == b'\n')
        .map(trim_cr)
        .filter(|l| !l.trim_ascii().is_empty())
        .take(2)
        .map(<[u8]>::to_vec)
        .collect())
}

fn fields(line: &[u8], delim: &[u8]) -> Vec<String> {
    let mut ranges = vec![(0, 0); 4096];
    let n = split_fields(line, delim, &mut ranges).min(ranges.len());
    ranges[..n]
        .iter()
        .map(|&(s, e)| String::from_utf8_lossy(unquote(&line[s..e])).into_owned())
        .collect()
}

fn sniff_delimiter(line: &[u8]) -> Vec<u8> {
    if memchr::memmem::find(line, b"::").is_some() {
        return b"::".to_vec();
    }
    [b'\t', b',', b';', b'|', b' ']
        .into_iter()
        .map(|d| (memchr::memchr_iter(d, line).count(), d))
        .filter(|&(n, _)| n > 0)
        .max_by_key(|&(n, _)| n)
        .map_or(b",".to_vec(), |(_, d)| vec![d])
}

fn parse_delimiter(s: &str) -> Result<Vec<u8>, IngestError> {
    let d = match s {
        "\\t" | "tab" | "\t" => b"\t".to_vec(),
        "" => {
            return Err(IngestError::config(
                "delimiter",
                "must not be empty; use e.g. \",\", \"\\t\" or \"::\"",
            ));
        }
        s => s.as_bytes().to_vec(),
    };
    Ok(d)
}

fn resolve_column(
    key: &'static str,
    col: &Column,
    header: Option<&[String]>,
    n_fields: usize,
) -> Result<usize, IngestError> {
    let idx = match col {
        Column::Index(i) => *i,
        Column::Name(name) => {
            let Some(h) = header else {
                return Err(IngestError::config(
                    key,
                    format!(
                        "column `{name}` is chosen by name but the file has no header; give a 0-based position or set header = true"
                    ),
                ));
            };
            h.iter()
                .position(|f| f.trim().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    IngestError::config(
                        key,
                        format!(
                            "no column `{name}` in the header; columns are: {}",
                            h.join(", ")
                        ),
                    )
                })?
        }
    };
    if idx >= n_fields {
        return Err(IngestError::config(
            key,
            format!(
                "column {idx} does not exist: rows have {n_fields} fields (positions are 0-based)"
            ),
        ));
    }
    Ok(idx)
}

pub(crate) fn build(layout: &Layout, cfg: &Config) -> Result<Spec, IngestError> {
    let [lo, hi] = cfg.rating_range;
    if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
        return Err(IngestError::config(
            "rating_range",
            format!("[{lo}, {hi}] is not a range; give [low, high] with low <= high"),
        ));
    }
    let lines = first_lines(&layout.ratings)?;
    let Some(first) = lines.first() else {
        return Err(IngestError::Empty {
            path: layout.ratings.clone(),
            rejected: 0,
        });
    };
    let delim = match (&cfg.delimiter, layout.format) {
        (Some(d), _) => parse_delimiter(d)?,
        (None, Format::MlLatest) => b",".to_vec(),
        (None, Format::Ml1m) => b"::".to_vec(),
        (None, Format::Ml100k) => b"\t".to_vec(),
        (None, _) => sniff_delimiter(first),
    };
    let first_fields = fields(first, &delim);
    // The .dat and ml-100k files were written in Latin-1; the CSV releases and generic
    // files are read as UTF-8 unless the config says otherwise.
    let ids_utf8 = match cfg.encoding {
        Encoding::Utf8 => true,
        Encoding::Latin1 => false,
        Encoding::Auto => !matches!(layout.format, Format::Ml1m | Format::Ml100k),
    };
    let generic = matches!(layout.format, Format::Generic | Format::Auto);
    let header = has_header(cfg, generic, &first_fields);
    let n_fields = if generic { first_fields.len() } else { 4 };
    let (user, item, rating, timestamp) = if generic {
        let head = header.then_some(first_fields.as_slice());
        let data = if header { lines.get(1) } else { Some(first) };
        generic_columns(cfg, head, n_fields, data.map(|l| fields(l, &delim)))?
    } else {
        (0, 1, 2, (!cfg.no_timestamp).then_some(3))
    };
    Ok(Spec {
        delim,
        header,
        n_fields,
        user,
        item,
        rating,
        timestamp,
        range: cfg.rating_range,
        ids_utf8,
        block: crate::parse::BLOCK,
        sub_chunk: crate::parse::SUB_CHUNK,
    })
}

/// `header`, or a guess: a generic file named by column names has one; otherwise the
/// first line has one when its rating field is not a number.
fn has_header(cfg: &Config, generic: bool, first_fields: &[String]) -> bool {
    let by_name = [&cfg.user_col, &cfg.item_col, &cfg.rating_col]
        .into_iter()
        .chain(cfg.timestamp_col.as_ref())
        .any(|c| matches!(c, Column::Name(_)));
    match cfg.header {
        Some(h) => h,
        None if generic && by_name => true,
        None => {
            let r = match (&cfg.rating_col, generic) {
                (Column::Index(i), true) => *i,
                _ => 2,
            };
            first_fields
                .get(r)
                .is_none_or(|f| parse_f32(f.trim().as_bytes()).is_none())
        }
    }
}

/// The user, item, rating and timestamp positions of a generic file: as configured (by
/// name in the header `head`, or by position), the timestamp also found by its header
/// name or, without a header, as an integer column after the first three (`data`: the
/// first data line's fields).
fn generic_columns(
    cfg: &Config,
    head: Option<&[String]>,
    n_fields: usize,
    data: Option<Vec<String>>,
) -> Result<(usize, usize, usize, Option<usize>), IngestError> {
    let user = resolve_column("user_col", &cfg.user_col, head, n_fields)?;
    let item = resolve_column("item_col", &cfg.item_col, head, n_fields)?;
    let rating = resolve_column("rating_col", &cfg.rating_col, head, n_fields)?;
    let timestamp = if cfg.no_timestamp {
        None
    } else if let Some(c) = &cfg.timestamp_col {
        Some(resolve_column("timestamp_col", c, head, n_fields)?)
    } else if let Some(i) = head.and_then(|h| {
        h.iter()
            .position(|f| f.trim().eq_ignore_ascii_case("timestamp"))
    }) {
        Some(i)
    } else {
        let candidate = (0..n_fields).find(|i| ![user, item, rating].contains(i) && *i >= 3);
        candidate.filter(|&i| {
            data.as_ref()
                .and_then(|f| f.get(i).map(|v| parse_i64(v.trim().as_bytes()).is_some()))
                .unwrap_or(false)
        })
    };
    if user == item || user == rating || item == rating {
        return Err(IngestError::config(
            "user_col",
            format!(
                "user, item and rating must be different columns (got {user}, {item}, {rating})"
            ),
        ));
    }
    Ok((user, item, rating, timestamp))
}
