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
