//! `strategy = "predefined"`: train/valid/test given as rating files with the source's
//! original ids (ml-100k `u1.base` / `u1.test`), mapped to dense ids through the ingest
//! artifact's users and items tables so they align with every other artifact.

use crate::config::Config;
use crate::error::SplitError;
use crate::strategies::{TEST, TRAIN, VALID};
use recpipe_core::Ratings;
use recpipe_core::ratings::{Catalog, Ids};
use std::collections::HashMap;
use std::path::Path;

/// Original id → dense idx, keyed the way the ingest tables store ids.
enum IdMap {
    Int(HashMap<i64, u32>),
    Str(HashMap<String, u32>),
}

impl IdMap {
    fn new(ids: &Ids) -> Self {
        match ids {
            Ids::Int(v) => IdMap::Int(
                v.iter()
                    .enumerate()
                    .map(|(i, &id)| (id, i as u32))
                    .collect(),
            ),
            Ids::Str(_) => IdMap::Str(ids.index()),
        }
    }

    fn get(&self, field: &str) -> Option<u32> {
        match self {
            IdMap::Int(m) => field.parse::<i64>().ok().and_then(|id| m.get(&id).copied()),
            IdMap::Str(m) => m.get(field).copied(),
        }
    }

    fn len(&self) -> usize {
        match self {
            IdMap::Int(m) => m.len(),
            IdMap::Str(m) => m.len(),
        }
    }

    /// The dense idx of a `what` ("user", "item") id field; else the error for a line.
    fn lookup(&self, field: &str, what: &str) -> Result<u32, String> {
        self.get(field).ok_or_else(|| {
            format!(
                "{what} id `{field}` is not in the ingest artifact's {what}s table ({} {what}s); \
                 the predefined files must come from the data set that ingest read",
                self.len()
            )
        })
    }
}

#[derive(Clone, Copy)]
enum Sep {
    Tab,
    DoubleColon,
    Comma,
    Whitespace,
}

impl Sep {
    /// ml-100k uses tabs, ml-1m `::`, ml-latest commas; anything else is split on blanks.
    fn detect(line: &str) -> Sep {
        if line.contains('\t') {
            Sep::Tab
        } else if line.contains("::") {
            Sep::DoubleColon
        } else if line.contains(',') {
            Sep::Comma
        } else {
            Sep::Whitespace
        }
    }

    /// Up to five fields without allocating; returns how many there were (5 = too many).
    fn split<'a>(self, line: &'a str, out: &mut [&'a str; 5]) -> usize {
        let mut n = 0;
        let mut push = |f: &'a str| {
            if n < 5 {
                out[n] = f.trim();
                n += 1;
            }
        };
        match self {
            Sep::Tab => line.split('\t').for_each(&mut push),
            Sep::DoubleColon => line.split("::").for_each(&mut push),
            Sep::Comma => line.split(',').for_each(&mut push),
            Sep::Whitespace => line.split_whitespace().for_each(&mut push),
        }
        n
    }
}

/// The columns of all files together, each row labelled with its part.
#[derive(Default)]
struct Columns {
    user: Vec<u32>,
    item: Vec<u32>,
    rating: Vec<f32>,
    timestamp: Vec<i64>,
    part: Vec<u8>,
    all_timestamped: bool,
}

pub(crate) struct Loaded {
    pub ratings: Ratings,
    pub part: Vec<u8>,
}

/// Reads the configured files; rows of `train_file` are TRAIN, `valid_file` VALID,
/// `test_file` TEST.
pub(crate) fn load(cfg: &Config, catalog: &Catalog) -> Result<Loaded, SplitError> {
    let users = IdMap::new(&catalog.user_ids);
    let items = IdMap::new(&catalog.item_ids);
    let mut cols = Columns {
        all_timestamped: true,
        ..Default::default()
    };
    // `{fold}` filled in: the files of the configured fold.
    let files = [
        ("train_file", cfg.resolved_train_file(), TRAIN),
        ("valid_file", cfg.resolved_valid_file(), VALID),
        ("test_file", cfg.resolved_test_file(), TEST),
    ];
    for (key, path, part) in files {
        if let Some(path) = path {
            read_file(key, &path, part, &users, &items, &mut cols)?;
        }
    }
    let Columns {
        user,
        item,
        rating,
        timestamp,
        part,
        all_timestamped,
    } = cols;
    Ok(Loaded {
        ratings: Ratings {
            user,
            item,
            rating,
            timestamp: all_timestamped.then_some(timestamp),
            n_users: catalog.n_users() as u32,
            n_items: catalog.n_items() as u32,
        },
        part,
    })
}

/// The text of a predefined file; a file error names the config key.
fn read_text(key: &'static str, path: &Path) -> Result<String, SplitError> {
    let file_err = |message: String| SplitError::File {
        key,
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            file_err("file not found; check the path (relative paths are taken from the directory recpipe runs in)".into())
        } else {
            file_err(format!("cannot read: {e}"))
        }
    })?;
    String::from_utf8(bytes).map_err(|e| {
        file_err(format!(
            "not UTF-8 text (invalid byte at offset {}); expected lines of `user item rating [timestamp]`",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// How a file's lines look, from its first non-blank line: the separator, the field count,
/// and the first data line (after a header, if any).
#[derive(Clone, Copy)]
struct Shape {
    sep: Sep,
    fields: usize,
    first: usize,
}

impl Shape {
    /// The shape `line` (line number `lineno`) sets; `None` in `.1` when it is a header.
    fn detect(line: &str, lineno: usize, users: &IdMap) -> Result<(Shape, bool), String> {
        let mut fields = [""; 5];
        let sep = Sep::detect(line);
        let n = sep.split(line, &mut fields);
        if !(3..=4).contains(&n) {
            return Err(format!(
                "expected 3 or 4 fields (user item rating [timestamp]), found {n}"
            ));
        }
        // A header (`userId,movieId,rating`) has neither a number as rating nor a known
        // user; a bad first data line still gets its own error later.
        let header = fields[2].parse::<f32>().is_err() && users.get(fields[0]).is_none();
        let first = if header { lineno + 1 } else { lineno };
        Ok((
            Shape {
                sep,
                fields: n,
                first,
            },
            header,
        ))
    }
}

fn read_file(
    key: &'static str,
    path: &Path,
    part: u8,
    users: &IdMap,
    items: &IdMap,
    cols: &mut Columns,
) -> Result<(), SplitError> {
    let text = read_text(key, path)?;
    let line_err = |line: usize, message: String| SplitError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut shape: Option<Shape> = None;
    let mut rows = 0usize;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let s = match shape {
            Some(s) => s,
            None => {
                let (s, header) =
                    Shape::detect(line, lineno, users).map_err(|m| line_err(lineno, m))?;
                shape = Some(s);
                if header {
                    continue;
                }
                s
            }
        };
        row(line, s, (users, items), part, cols).map_err(|m| line_err(lineno, m))?;
        rows += 1;
    }
    if rows == 0 {
        return Err(SplitError::File {
            key,
            path: path.to_path_buf(),
            message: "has no ratings; expected lines of `user item rating [timestamp]`".into(),
        });
    }
    Ok(())
}

/// One data line of shape `s` appended to `cols`, labelled `part`; else why not.
fn row(
    line: &str,
    s: Shape,
    (users, items): (&IdMap, &IdMap),
    part: u8,
    cols: &mut Columns,
) -> Result<(), String> {
    let mut fields = [""; 5];
    let n = s.sep.split(line, &mut fields);
    if n != s.fields {
        return Err(format!(
            "found {n} fields where line {} has {}; every line must be `user item rating{}`",
            s.first,
            s.fields,
            if s.fields == 4 { " timestamp" } else { "" }
        ));
    }
    let u = users.lookup(fields[0], "user")?;
    let it = items.lookup(fields[1], "item")?;
    let r = fields[2]
        .parse::<f32>()
        .ok()
        .filter(|r| r.is_finite())
        .ok_or_else(|| format!("rating `{}` is not a number", fields[2]))?;
    if s.fields == 4 {
        let t = fields[3]
            .parse::<i64>()
            .map_err(|_| format!("timestamp `{}` is not an integer (seconds)", fields[3]))?;
        cols.timestamp.push(t);
    } else {
        cols.all_timestamped = false;
    }
    cols.user.push(u);
    cols.item.push(it);
    cols.rating.push(r);
    cols.part.push(part);
    Ok(())
}
