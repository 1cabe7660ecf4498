//! Item and user metadata files (movies.csv, movies.dat, u.item, users.dat, u.user): small,
//! so they are decoded whole, with Latin-1 handled by `text::decode`.

use crate::config::{Encoding, Format, OnError};
use crate::error::IngestError;
use crate::keyed::Keyed;
use crate::parse::Reject;
use crate::text::{self, quoted_records, title_year};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ItemMeta {
    pub title: Option<String>,
    pub year: Option<i16>,
    /// Genre names, shared between the items that have them.
    pub genres: Vec<Arc<str>>,
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

/// Reads metadata files: their encoding, what a bad row does, and the rows rejected so far.
pub(crate) struct Reader {
    pub encoding: Encoding,
    pub on_error: OnError,
    pub rejects: MetaRejects,
}

impl Reader {
    fn text(&self, path: &Path) -> Result<String, IngestError> {
        let bytes = std::fs::read(path).map_err(|e| IngestError::io(path, e))?;
        Ok(text::decode(&bytes, self.encoding).into_owned())
    }

    /// A bad row of `path`: the error (`on_error = "fail"`), or recorded and skipped.
    fn bad(
        &mut self,
        path: &Path,
        line: u64,
        reason: String,
        text: &str,
    ) -> Result<(), IngestError> {
        let r = Reject {
            line,
            column: 1,
            reason,
            text: text::snippet(text.as_bytes()),
        };
        match self.on_error {
            OnError::Fail => Err(IngestError::BadRow {
                path: path.to_path_buf(),
                line: r.line,
                column: r.column,
                reason: r.reason,
                text: r.text,
            }),
            OnError::Skip => {
                self.rejects.push((path.to_path_buf(), r));
                Ok(())
            }
        }
    }
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

/// One copy of each genre name, however many items have it.
#[derive(Default)]
struct Genres(HashSet<Arc<str>>);

impl Genres {
    fn name(&mut self, g: &str) -> Arc<str> {
        if let Some(n) = self.0.get(g) {
            return n.clone();
        }
        let n: Arc<str> = g.into();
        self.0.insert(n.clone());
        n
    }

    fn split(&mut self, s: &str, sep: char) -> Vec<Arc<str>> {
        let s = s.trim();
        if s.is_empty() || s == "(no genres listed)" {
            return Vec::new();
        }
        s.split(sep).map(|g| self.name(g.trim())).collect()
    }
}

fn item(title: &str, genres: Vec<Arc<str>>) -> ItemMeta {
    ItemMeta {
        year: title_year(title),
        title: Some(title.to_string()),
        genres,
    }
}

/// Items by their original id (as text).
pub(crate) fn read_items(
    reader: &mut Reader,
    format: Format,
    path: &Path,
    genre_file: Option<&Path>,
) -> Result<Keyed<ItemMeta>, IngestError> {
    let text = reader.text(path)?;
    match format {
        Format::MlLatest => items_ml_latest(reader, path, &text),
        Format::Ml1m => items_ml1m(reader, path, &text),
        Format::Ml100k => {
            let names: Vec<String> = match genre_file {
                Some(g) => lines(&reader.text(g)?)
                    .filter_map(|(_, l)| l.split('|').next().map(str::to_string))
                    .collect(),
                None => ML100K_GENRES.iter().map(|s| s.to_string()).collect(),
            };
            items_ml100k(reader, path, &text, &names)
        }
        Format::Generic | Format::Auto => Ok(Keyed::default()),
    }
}

/// movies.csv: `movieId,title,genres`, quoted as CSV, genres `|`-separated.
fn items_ml_latest(
    reader: &mut Reader,
    path: &Path,
    text: &str,
) -> Result<Keyed<ItemMeta>, IngestError> {
    let mut out = Keyed::default();
    let mut genres = Genres::default();
    for rec in quoted_records(text, ',') {
        let f = &rec.fields;
        if rec.line == 1 && f.first().is_some_and(|h| h.eq_ignore_ascii_case("movieId")) {
            continue;
        }
        if f.len() != 3 {
            let reason = format!(
                "expected 3 fields (movieId,title,genres), found {}",
                f.len()
            );
            reader.bad(path, rec.line, reason, &f.join(","))?;
            continue;
        }
        out.insert(f[0].trim(), item(&f[1], genres.split(&f[2], '|')));
    }
    Ok(out)
}

/// movies.dat: `MovieID::Title::Genres`.
fn items_ml1m(
    reader: &mut Reader,
    path: &Path,
    text: &str,
) -> Result<Keyed<ItemMeta>, IngestError> {
    let mut out = Keyed::default();
    let mut genres = Genres::default();
    for (line, l) in lines(text) {
        let (Some(a), Some(b)) = (l.find("::"), l.rfind("::")) else {
            reader.bad(path, line, "expected MovieID::Title::Genres".into(), l)?;
            continue;
        };
        if a == b {
            reader.bad(path, line, "expected MovieID::Title::Genres".into(), l)?;
            continue;
        }
        out.insert(
            l[..a].trim(),
            item(&l[a + 2..b], genres.split(&l[b + 2..], '|')),
        );
    }
    Ok(out)
}

/// u.item: `id|title|release date|video release date|URL|` then one 0/1 flag per genre.
fn items_ml100k(
    reader: &mut Reader,
    path: &Path,
    text: &str,
    names: &[String],
) -> Result<Keyed<ItemMeta>, IngestError> {
    let mut out = Keyed::default();
    let names: Vec<Arc<str>> = names.iter().map(|n| Arc::from(n.as_str())).collect();
    for (line, l) in lines(text) {
        let f: Vec<&str> = l.split('|').collect();
        if f.len() < 5 + names.len() {
            let reason = format!(
                "expected {} `|`-separated fields (id|title|release date|video release date|URL|{} genre flags), found {}",
                5 + names.len(),
                names.len(),
                f.len()
            );
            reader.bad(path, line, reason, l)?;
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
        out.insert(f[0].trim(), meta);
    }
    Ok(out)
}

/// Users by their original id (as text), for the layouts that ship demographics.
pub(crate) fn read_users(
    reader: &mut Reader,
    format: Format,
    path: &Path,
) -> Result<Keyed<UserMeta>, IngestError> {
    let text = reader.text(path)?;
    let mut out = Keyed::default();
    for (line, l) in lines(&text) {
        match user_line(format, l) {
            Some((id, meta)) => {
                out.insert(id.trim(), meta);
            }
            None => reader.bad(
                path,
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

/// One line of users.dat (`UserID::Gender::Age::Occupation::Zip-code`) or u.user
/// (`user id|age|gender|occupation|zip code`); `None` when it has the wrong shape.
fn user_line(format: Format, l: &str) -> Option<(&str, UserMeta)> {
    let opt = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    };
    match format {
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
    }
}
