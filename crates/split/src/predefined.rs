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

fn read_file(
    key: &'static str,
    path: &Path,
    part: u8,
    users: &IdMap,
    items: &IdMap,
    cols: &mut Columns,
) -> Result<(), SplitError> {
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
    let text = String::from_utf8(bytes).map_err(|e| {
        file_err(format!(
            "not UTF-8 text (invalid byte at offset {}); expected lines of `user item rating [timestamp]`",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let line_err = |line: usize, message: String| SplitError::Line {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut layout: Option<(Sep, usize, usize)> = None; // separator, field count, first data line
    let mut fields = [""; 5];
    let mut rows = 0usize;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let (sep, want, first) = match layout {
            Some(l) => l,
            None => {
                let sep = Sep::detect(line);
                let n = sep.split(line, &mut fields);
                if !(3..=4).contains(&n) {
                    return Err(line_err(
                        lineno,
                        format!("expected 3 or 4 fields (user item rating [timestamp]), found {n}"),
                    ));
                }
                // A header (`userId,movieId,rating`) has neither a number as rating nor a
                // known user; a bad first data line still gets its own error below.
                if fields[2].parse::<f32>().is_err() && users.get(fields[0]).is_none() {
                    layout = Some((sep, n, lineno + 1));
                    continue;
                }
                layout = Some((sep, n, lineno));
                (sep, n, lineno)
            }
        };
        let n = sep.split(line, &mut fields);
        if n != want {
            return Err(line_err(
                lineno,
                format!(
                    "found {n} fields where line {first} has {want}; every line must be \
                     `user item rating{}`",
                    if want == 4 { " timestamp" } else { "" }
                ),
            ));
        }
        let u = users.get(fields[0]).ok_or_else(|| {
            line_err(
                lineno,
                format!(
                    "user id `{}` is not in the ingest artifact's users table ({} users); \
                     the predefined files must come from the data set that ingest read",
                    fields[0],
                    match users {
                        IdMap::Int(m) => m.len(),
                        IdMap::Str(m) => m.len(),
                    }
                ),
            )
        })?;
        let it = items.get(fields[1]).ok_or_else(|| {
            line_err(
                lineno,
                format!(
                    "item id `{}` is not in the ingest artifact's items table ({} items); \
                     the predefined files must come from the data set that ingest read",
                    fields[1],
                    match items {
                        IdMap::Int(m) => m.len(),
                        IdMap::Str(m) => m.len(),
                    }
                ),
            )
        })?;
        let r = fields[2]
            .parse::<f32>()
            .ok()
            .filter(|r| r.is_finite())
            .ok_or_else(|| line_err(lineno, format!("rating `{}` is not a number", fields[2])))?;
        if want == 4 {
            let t = fields[3].parse::<i64>().map_err(|_| {
                line_err(
                    lineno,
                    format!("timestamp `{}` is not an integer (seconds)", fields[3]),
                )
            })?;
            cols.timestamp.push(t);
        } else {
            cols.all_timestamped = false;
        }
        cols.user.push(u);
        cols.item.push(it);
        cols.rating.push(r);
        cols.part.push(part);
        rows += 1;
    }
    if rows == 0 {
        return Err(file_err(
            "has no ratings; expected lines of `user item rating [timestamp]`".into(),
        ));
    }
    Ok(())
}
