//! Ratings of items the items file does not list (the `unknown_items` key): where they
//! come from, the warning when they are kept, and their lines' text when they are rejected.
//! `stream::Read::unknown_items` applies the setting, after the ids are ranked and before
//! duplicates are resolved, so row numbers still map to lines.

use crate::error::IngestError;
use crate::text;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Where the rows come from and what the items file lists.
pub(crate) struct Source<'a> {
    pub ratings: &'a Path,
    pub items: &'a Path,
    /// 1-based field number of the item id, for rejects and errors.
    pub item_column: u64,
}

/// The warning for `n` kept ratings of unlisted items, the first at `first_line`.
pub(crate) fn warn_kept(src: &Source<'_>, n: u64, first_line: u64, first_item: &str) {
    tracing::warn!(
        "{n} rating(s) of items not in {}, kept without title or genres; the first at \
         {}:{first_line}:{} (item {first_item}). Set unknown_items = \"reject\" to list \
         them in rejects.csv instead",
        src.items.display(),
        src.ratings.display(),
        src.item_column,
    );
}

/// The text of the given 1-based lines (ascending), for rejects.csv.
pub(crate) fn read_lines(path: &Path, lines: &[u64]) -> Result<Vec<String>, IngestError> {
    let file = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut out = Vec::with_capacity(lines.len());
    let mut buf = Vec::new();
    let mut at = 0u64;
    for &want in lines {
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| IngestError::io(path, e))?;
            at += 1;
            if n == 0 || at == want {
                break;
            }
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        out.push(text::snippet(line));
    }
    Ok(out)
}
