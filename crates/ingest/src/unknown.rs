//! Ratings of items the items file does not list (the `unknown_items` key). Runs after the
//! ids are made dense and before duplicates are resolved, so row numbers still map to lines.

use crate::config::UnknownItems;
use crate::error::IngestError;
use crate::parse::{RawColumns, Reject};
use crate::text;
use recpipe_core::ratings::Ids;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Where the rows come from and what the items file lists.
pub(crate) struct Source<'a> {
    pub ratings: &'a Path,
    pub items: &'a Path,
    /// 1-based field number of the item id, for rejects and errors.
    pub item_column: u64,
}

/// Applies `mode` to the rows whose item `listed` says is missing; returns how many there
/// were (kept, or moved into `cols.rejects`).
pub(crate) fn apply(
    mode: UnknownItems,
    src: &Source<'_>,
    cols: &mut RawColumns,
    user_ids: &mut Ids,
    item_ids: &mut Ids,
    listed: impl Fn(&str) -> bool,
) -> Result<u64, IngestError> {
    let missing: Vec<bool> = (0..item_ids.len())
        .map(|i| !listed(&item_ids.display(i)))
        .collect();
    if !missing.contains(&true) {
        return Ok(0);
    }
    let rows: Vec<usize> = (0..cols.item.len())
        .filter(|&r| missing[cols.item[r] as usize])
        .collect();
    let first = rows[0];
    let first_line = cols.line_of_row(first);
    let first_item = item_ids.display(cols.item[first] as usize);
    match mode {
        UnknownItems::Error => {
            return Err(IngestError::UnknownItem {
                path: src.ratings.to_path_buf(),
                line: first_line,
                column: src.item_column,
                item: first_item,
                items: src.items.to_path_buf(),
            });
        }
        UnknownItems::Keep => {
            tracing::warn!(
                "{} rating(s) of items not in {}, kept without title or genres; the first at \
                 {}:{first_line}:{} (item {first_item}). Set unknown_items = \"reject\" to list \
                 them in rejects.csv instead",
                rows.len(),
                src.items.display(),
                src.ratings.display(),
                src.item_column,
            );
            return Ok(rows.len() as u64);
        }
        UnknownItems::Reject => {}
    }
    reject(src, &rows, &missing, cols, (user_ids, item_ids))?;
    Ok(rows.len() as u64)
}

/// Moves `rows` (the ratings of `missing` items) into `cols.rejects` with their text, then
/// drops them and renumbers the ids that are left.
fn reject(
    src: &Source<'_>,
    rows: &[usize],
    missing: &[bool],
    cols: &mut RawColumns,
    (user_ids, item_ids): (&mut Ids, &mut Ids),
) -> Result<(), IngestError> {
    let lines: Vec<u64> = rows.iter().map(|&r| cols.line_of_row(r)).collect();
    let texts = read_lines(src.ratings, &lines)?;
    let items_name = src.items.file_name().map_or_else(
        || src.items.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    for ((&r, &line), text) in rows.iter().zip(&lines).zip(texts) {
        cols.rejects.push(Reject {
            line,
            column: src.item_column,
            reason: format!(
                "item {} is not in {items_name}",
                item_ids.display(cols.item[r] as usize)
            ),
            text,
        });
    }
    cols.rejects.sort_by_key(|r| r.line);
    // The rejected rows become skipped lines, so later row → line lookups stay right.
    cols.skipped_lines.extend(&lines);
    cols.skipped_lines.sort_unstable();

    let keep_row: Vec<bool> = cols.item.iter().map(|&i| !missing[i as usize]).collect();
    retain(&mut cols.user, &keep_row);
    retain(&mut cols.item, &keep_row);
    retain(&mut cols.rating, &keep_row);
    if let Some(ts) = cols.timestamp.as_mut() {
        retain(ts, &keep_row);
    }
    let mut user_used = vec![false; user_ids.len()];
    for &u in &cols.user {
        user_used[u as usize] = true;
    }
    let item_kept: Vec<bool> = missing.iter().map(|&m| !m).collect();
    compact(&mut cols.user, user_ids, &user_used);
    compact(&mut cols.item, item_ids, &item_kept);
    Ok(())
}

fn retain<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
    let mut it = keep.iter();
    v.retain(|_| *it.next().expect("one flag per row"));
}

/// Drops the ids not in `keep` and renumbers `col` to match; the order of the rest is kept,
/// so sorted ids stay sorted.
fn compact(col: &mut [u32], ids: &mut Ids, keep: &[bool]) {
    let mut remap = vec![u32::MAX; keep.len()];
    let mut next = 0u32;
    for (i, &k) in keep.iter().enumerate() {
        if k {
            remap[i] = next;
            next += 1;
        }
    }
    if next as usize == keep.len() {
        return;
    }
    col.iter_mut().for_each(|v| *v = remap[*v as usize]);
    let mut it = keep.iter();
    match ids {
        Ids::Int(v) => v.retain(|_| *it.next().expect("one flag per id")),
        Ids::Str(v) => v.retain(|_| *it.next().expect("one flag per id")),
    }
}

/// The text of the given 1-based lines (ascending), for rejects.csv.
fn read_lines(path: &Path, lines: &[u64]) -> Result<Vec<String>, IngestError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_order_and_renumbers() {
        let mut col = vec![2u32, 0, 3, 2];
        let mut ids = Ids::Int(vec![10, 20, 30, 40]);
        compact(&mut col, &mut ids, &[true, false, true, true]);
        assert_eq!(ids, Ids::Int(vec![10, 30, 40]));
        assert_eq!(col, vec![1, 0, 2, 1]);
    }
}
