//! Which files of a data set folder ingest reads, and in which layout.

use crate::config::{Config, Format};
use crate::error::IngestError;
use std::path::{Path, PathBuf};

/// The resolved files of a data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Never `Auto`.
    pub format: Format,
    pub ratings: PathBuf,
    /// movies.csv, movies.dat or u.item.
    pub items: Option<PathBuf>,
    /// users.dat or u.user.
    pub users: Option<PathBuf>,
    /// u.genre (ml-100k genre names).
    pub genres: Option<PathBuf>,
}

impl Layout {
    /// Every file the layout reads, ratings first.
    pub fn files(&self) -> Vec<PathBuf> {
        std::iter::once(self.ratings.clone())
            .chain(self.items.clone())
            .chain(self.users.clone())
            .chain(self.genres.clone())
            .collect()
    }
}

const MARKERS: [(&str, Format); 3] = [
    ("ratings.csv", Format::MlLatest),
    ("ratings.dat", Format::Ml1m),
    ("u.data", Format::Ml100k),
];

fn ratings_name(format: Format) -> Option<&'static str> {
    MARKERS.iter().find(|m| m.1 == format).map(|m| m.0)
}

fn sibling(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = dir.join(name);
    p.is_file().then_some(p)
}

/// Resolve `cfg.path` and `cfg.format` into the files to read.
pub fn resolve(cfg: &Config) -> Result<Layout, IngestError> {
    let path = &cfg.path;
    if !path.exists() {
        return Err(IngestError::NotFound { path: path.clone() });
    }
    let (dir, ratings, format) = if path.is_dir() {
        let format = match cfg.format {
            Format::Auto => MARKERS
                .iter()
                .find(|(name, _)| path.join(name).is_file())
                .map(|m| m.1)
                .ok_or_else(|| no_marker(path))?,
            Format::Generic => {
                return Err(IngestError::config(
                    "path",
                    format!(
                        "format = \"generic\" needs the ratings file itself, not the folder {}",
                        path.display()
                    ),
                ));
            }
            f => f,
        };
        let name = ratings_name(format).expect("non-generic formats have a ratings file name");
        let ratings = path.join(name);
        if !ratings.is_file() {
            return Err(IngestError::Detect {
                path: path.clone(),
                message: format!(
                    "format = \"{}\" expects {name} in this folder; set format = \"auto\" or point path at the right folder",
                    format_name(format)
                ),
            });
        }
        (path.clone(), ratings, format)
    } else {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let format = match cfg.format {
            Format::Auto => MARKERS
                .iter()
                .find(|m| m.0 == name)
                .map_or(Format::Generic, |m| m.1),
            f => f,
        };
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (dir, path.clone(), format)
    };
    let (items, users, genres) = match format {
        Format::MlLatest => (sibling(&dir, "movies.csv"), None, None),
        Format::Ml1m => (
            sibling(&dir, "movies.dat"),
            sibling(&dir, "users.dat"),
            None,
        ),
        Format::Ml100k => (
            sibling(&dir, "u.item"),
            sibling(&dir, "u.user"),
            sibling(&dir, "u.genre"),
        ),
        Format::Generic | Format::Auto => (None, None, None),
    };
    Ok(Layout {
        format,
        ratings,
        items,
        users,
        genres,
    })
}

pub(crate) fn format_name(f: Format) -> &'static str {
    match f {
        Format::Auto => "auto",
        Format::MlLatest => "ml-latest",
        Format::Ml1m => "ml-1m",
        Format::Ml100k => "ml-100k",
        Format::Generic => "generic",
    }
}

fn no_marker(dir: &Path) -> IngestError {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    // Users often point at the folder that holds the unpacked data set.
    let nested: Vec<String> = found
        .iter()
        .filter(|n| MARKERS.iter().any(|m| dir.join(n).join(m.0).is_file()))
        .cloned()
        .collect();
    let hint = if nested.is_empty() {
        "point path at a ratings file and set format = \"generic\" for other layouts".to_string()
    } else {
        format!("did you mean {}?", dir.join(&nested[0]).display())
    };
    found.truncate(12);
    IngestError::Detect {
        path: dir.to_path_buf(),
        message: format!(
            "no ratings.csv (ml-latest), ratings.dat (ml-1m/ml-10m) or u.data (ml-100k) here (found: {}); {hint}",
            if found.is_empty() {
                "nothing".to_string()
            } else {
                found.join(", ")
            }
        ),
    }
}
