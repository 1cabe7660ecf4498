//! Item and user metadata files (movies.csv, movies.dat, u.item, users.dat, u.user): small,
//! so they are decoded whole, with Latin-1 handled by `text::decode`.

use crate::config::{Encoding, Format, OnError};
use crate::error::IngestError;
use crate::parse::Reject;
use crate::text::{self, quoted_records, title_year};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ItemMeta {
    pub title: Option<String>,
    pub year: Option<i16>,
    pub genres: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UserMeta {
    pub gender: Option<String>,
    pub age: Option<i32>,
    pub occupation: Option<String>,
    pub zip: Option<String>,
}

/// Rejected metadata rows, tagged with their file.
pub(crate) type MetaRejects = Vec<(PathBuf, Reject)>;

struct Sink<'a> {
    path: &'a Path,
    on_error: OnError,
    rejects: &'a mut MetaRejects,
}

impl Sink<'_> {
    fn bad(&mut self, line: u64, reason: String, text: &str) -> Result<(), IngestError> {
        let r = Reject {
            line,
            column: 1,
            reason,
            text: text::snippet(text.as_bytes()),
        };
        match self.on_error {
            OnError::Fail => Err(IngestError::BadRow {
                path: self.path.to_path_buf(),
                line: r.line,
                column: r.column,
                reason: r.reason,
                text: r.text,
            }),
            OnError::Skip => {
                self.rejects.push((self.path.to_path_buf(), r));
                Ok(())
            }
        }
    }
}

fn read_text(path: &Path, encoding: Encoding) -> Result<String, IngestError> {
    let bytes = std::fs::read(path).map_err(|e| IngestError::io(path, e))?;
    Ok(text::decode(&bytes, encoding).into_owned())
}

fn lines(text: &str) -> impl Iterator<Item = (u64, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
}

const ML100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// The ml-1m occupation codes of its README.
const ML1M_OCCUPATIONS: [&str; 21] = [
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
];

fn split_genres(s: &str, sep: char) -> Vec<String> {
    let s = s.trim();
    if s.is_empty() || s == "(no genres listed)" {
        return Vec::new();
    }
    s.split(sep).map(|g| g.trim().to_string()).collect()
}

fn item(title: &str, genres: Vec<String>) -> ItemMeta {
    ItemMeta {
        year: title_year(title),
        title: Some(title.to_string()),
        genres,
    }
}

/// Items by their original id (as text).
pub(crate) fn read_items(
    format: Format,
    path: &Path,
    genre_file: Option<&Path>,
    encoding: Encoding,
    on_error: OnError,
    rejects: &mut MetaRejects,
) -> Result<HashMap<String, ItemMeta>, IngestError> {
    let text = read_text(path, encoding)?;
    let mut sink = Sink {
        path,
        on_error,
        rejects,
    };
    let mut out = HashMap::new();
    match format {
        Format::MlLatest => {
            for rec in quoted_records(&text, ',') {
                let f = &rec.fields;
                if rec.line == 1 && f.first().is_some_and(|h| h.eq_ignore_ascii_case("movieId")) {
                    continue;
                }
                if f.len() != 3 {
                    sink.bad(
                        rec.line,
                        format!(
                            "expected 3 fields (movieId,title,genres), found {}",
                            f.len()
                        ),
                        &f.join(","),
                    )?;
                    continue;
                }
                out.insert(
                    f[0].trim().to_string(),
                    item(&f[1], split_genres(&f[2], '|')),
                );
            }
        }
        Format::Ml1m => {
            for (line, l) in lines(&text) {
                let (Some(a), Some(b)) = (l.find("::"), l.rfind("::")) else {
                    sink.bad(line, "expected MovieID::Title::Genres".into(), l)?;
                    continue;
                };
                if a == b {
                    sink.bad(line, "expected MovieID::Title::Genres".into(), l)?;
                    continue;
                }
                out.insert(
                    l[..a].trim().to_string(),
                    item(&l[a + 2..b], split_genres(&l[b + 2..], '|')),
                );
            }
        }
        Format::Ml100k => {
            let names: Vec<String> = match genre_file {
                Some(g) => lines(&read_text(g, encoding)?)
                    .filter_map(|(_, l)| l.split('|').next().map(str::to_string))
                    .collect(),
                None => ML100K_GENRES.iter().map(|s| s.to_string()).collect(),
            };
            for (line, l) in lines(&text) {
                let f: Vec<&str> = l.split('|').collect();
                if f.len() < 5 + names.len() {
                    sink.bad(
                        line,
                        format!(
                            "expected {} `|`-separated fields (id|title|release date|video release date|URL|{} genre flags), found {}",
                            5 + names.len(),
                            names.len(),
                            f.len()
                        ),
                        l,
                    )?;
                    continue;
                }
                let genres = names
                    .iter()
                    .zip(&f[5..])
                    .filter(|(_, flag)| flag.trim() == "1")
                    .map(|(n, _)| n.clone())
                    .collect();
                let mut meta = item(f[1], genres);
                if meta.year.is_none() {
                    // Release dates look like 01-Jan-1995.
                    meta.year = f[2].trim().rsplit('-').next().and_then(|y| y.parse().ok());
                }
                out.insert(f[0].trim().to_string(), meta);
            }
        }
        Format::Generic | Format::Auto => {}
    }
    Ok(out)
}

/// Users by their original id (as text), for the layouts that ship demographics.
pub(crate) fn read_users(
    format: Format,
    path: &Path,
    encoding: Encoding,
    on_error: OnError,
    rejects: &mut MetaRejects,
) -> Result<HashMap<String, UserMeta>, IngestError> {
    let text = read_text(path, encoding)?;
    let mut sink = Sink {
        path,
        on_error,
        rejects,
    };
    let mut out = HashMap::new();
    let opt = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    };
    for (line, l) in lines(&text) {
        let parsed = match format {
            Format::Ml1m => {
                let f: Vec<&str> = l.split("::").collect();
                (f.len() == 5).then(|| {
                    let occupation = f[3].trim();
                    let occupation = occupation
                        .parse::<usize>()
                        .ok()
                        .and_then(|c| ML1M_OCCUPATIONS.get(c).map(|s| s.to_string()))
                        .or_else(|| opt(occupation));
                    (
                        f[0],
                        UserMeta {
                            gender: opt(f[1]),
                            age: f[2].trim().parse().ok(),
                            occupation,
                            zip: opt(f[4]),
                        },
                    )
                })
            }
            Format::Ml100k => {
                let f: Vec<&str> = l.split('|').collect();
                (f.len() == 5).then(|| {
                    (
                        f[0],
                        UserMeta {
                            age: f[1].trim().parse().ok(),
                            gender: opt(f[2]),
                            occupation: opt(f[3]),
                            zip: opt(f[4]),
                        },
                    )
                })
            }
            _ => None,
        };
        match parsed {
            Some((id, meta)) => {
                out.insert(id.trim().to_string(), meta);
            }
            None => sink.bad(
                line,
                match format {
                    Format::Ml1m => "expected UserID::Gender::Age::Occupation::Zip-code".into(),
                    _ => "expected user id|age|gender|occupation|zip code".into(),
                },
                l,
            )?,
        }
    }
    Ok(out)
}
