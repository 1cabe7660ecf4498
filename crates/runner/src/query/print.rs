//! Query output: an aligned table (the last column, a title, unpadded), or JSON lines.

use crate::out::outln;

/// A column: its header and whether numbers in it are right-aligned.
pub struct Col {
    pub name: &'static str,
    pub right: bool,
}

pub const fn col(name: &'static str, right: bool) -> Col {
    Col { name, right }
}

/// Print `rows` under `cols`, two spaces between columns.
pub fn table(cols: &[Col], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..cols.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([cols[c].name.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (c, cell) in cells.into_iter().enumerate() {
            let w = widths[c];
            match (c == last, cols[c].right) {
                (true, false) => s.push_str(cell),
                (_, true) => s.push_str(&format!("{cell:>w$}")),
                (false, false) => s.push_str(&format!("{cell:<w$}")),
            }
            if c != last {
                s.push_str("  ");
            }
        }
        outln!("{}", s.trim_end());
    };
    line(cols.iter().map(|c| c.name).collect());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// One JSON object per line.
pub fn json_lines(values: &[serde_json::Value]) {
    for v in values {
        outln!("{v}");
    }
}

/// What a ranked answer (recommendations, neighbours) is called in its JSON objects and
/// table: the query's key and id, the listed items' id and title keys, the score's header.
pub struct RankedNames<'a> {
    pub query: (&'static str, &'a str),
    pub id: &'static str,
    pub title: &'static str,
    pub score: &'static str,
}

/// The columns of a ranked export table (recommendations.parquet, similar_items.parquet).
pub struct RankedCols<'a> {
    pub ranks: &'a [u32],
    pub ids: &'a [String],
    pub titles: &'a [Option<String>],
    pub scores: &'a [f32],
}

/// Print `rows` of a ranked table as an aligned table (rank, item_id, score, title) or, with
/// `json`, one object per line.
pub fn ranked(rows: &[usize], cols: &RankedCols, names: &RankedNames, json: bool) {
    let RankedCols {
        ranks,
        ids,
        titles,
        scores,
    } = cols;
    let title = |r: usize| titles[r].clone().unwrap_or_default();
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|&r| {
                serde_json::json!({
                    names.query.0: super::id_json(names.query.1),
                    "rank": ranks[r],
                    names.id: super::id_json(&ids[r]),
                    names.title: title(r),
                    "score": scores[r],
                })
            })
            .collect();
        json_lines(&v);
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|&r| {
            vec![
                ranks[r].to_string(),
                ids[r].clone(),
                format!("{:.3}", scores[r]),
                title(r),
            ]
        })
        .collect();
    table(
        &[
            col("rank", true),
            col("item_id", true),
            col(names.score, true),
            col("title", false),
        ],
        &cells,
    );
}
