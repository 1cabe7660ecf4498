//! The `[stage]` table of an ingest stage, parsed strictly.

use crate::synth::SynthConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which on-disk layout `path` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Decided from the files present (ratings.csv, ratings.dat, u.data, else generic).
    #[default]
    Auto,
    /// ml-latest, ml-latest-small, ml-20m, ml-25m: ratings.csv + movies.csv.
    MlLatest,
    /// ml-1m and ml-10m: `::`-separated ratings.dat, movies.dat, users.dat.
    #[serde(rename = "ml-1m", alias = "ml-10m")]
    Ml1m,
    /// ml-100k: u.data (tab), u.item, u.user, u.genre.
    #[serde(rename = "ml-100k")]
    Ml100k,
    /// Any delimited ratings file; see the `delimiter`, `header` and `*_col` keys.
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop at the first bad row with its file:line:column.
    #[default]
    Fail,
    /// Leave bad rows out and list them in rejects.csv.
    Skip,
}

/// What to do with a rating whose item the items file (movies.csv, movies.dat, u.item) does
/// not list. In a MovieLens release every rated item is listed, so such a row is a sign of an
/// edited or appended file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownItems {
    /// Keep it (no title, no genres), count it in the summary and warn with its line.
    #[default]
    Keep,
    /// Leave it out and list it in rejects.csv with its line and column; ids are assigned
    /// without it (a user or item seen only there does not get one).
    Reject,
    /// Stop with the file, line and column of the first one.
    Error,
}

/// What to do when a (user, item) pair occurs more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    #[default]
    KeepLast,
    KeepFirst,
    /// One row with the mean rating and the latest timestamp.
    Mean,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdOrder {
    /// Dense ids follow the sorted original ids (numerically when all are integers).
    #[default]
    Sorted,
    /// Dense ids follow the order of first appearance in the ratings file.
    FirstSeen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// UTF-8 when the bytes are valid UTF-8, else Latin-1 (windows-1252).
    #[default]
    Auto,
    #[serde(alias = "utf8")]
    Utf8,
    #[serde(alias = "latin1", alias = "iso-8859-1", alias = "windows-1252")]
    Latin1,
}

/// A column of a generic file: a 0-based position or a header name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
}

/// Configuration of the ingest stage (the TOML keys of `[stages.<name>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data set folder as unpacked from its zip, or a ratings file.
    pub path: PathBuf,
    pub format: Format,
    pub on_error: OnError,
    /// Ratings of items missing from the items file: keep, reject or error.
    pub unknown_items: UnknownItems,
    pub duplicates: Duplicates,
    pub id_order: IdOrder,
    /// Inclusive bounds a rating must lie in.
    pub rating_range: [f32; 2],
    /// Text encoding of the data files (titles, string ids).
    pub encoding: Encoding,
    /// generic: field separator, one or more characters (`"\t"` for tab). Default: sniffed
    /// from the first line among `,` tab `;` `|` `::`. Fields may be wrapped in double
    /// quotes, but a quoted field cannot contain the delimiter (ratings files never need it).
    pub delimiter: Option<String>,
    /// generic: whether the first line is a header. Default: sniffed (a non-numeric rating
    /// field on the first line means a header).
    pub header: Option<bool>,
    /// generic: columns by 0-based position or header name.
    pub user_col: Column,
    pub item_col: Column,
    pub rating_col: Column,
    /// generic: the timestamp column; default: a column named `timestamp` or the 4th column
    /// when there is one (`no_timestamp = true` ignores it).
    pub timestamp_col: Option<Column>,
    /// generic: ignore any timestamp column.
    pub no_timestamp: bool,
    /// When set, generate MovieLens-shaped data instead of reading `path`.
    pub synthetic: Option<SynthConfig>,
    /// Memory ingest may hold besides the id maps (`512MiB`, `2GiB`): rows that do not fit
    /// wait in a spill file next to the outputs, and duplicates are resolved by an external
    /// sort, so the peak does not grow with the file.
    pub memory_budget: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: PathBuf::from("data/ml-latest-small"),
            format: Format::Auto,
            on_error: OnError::Fail,
            unknown_items: UnknownItems::Keep,
            duplicates: Duplicates::KeepLast,
            id_order: IdOrder::Sorted,
            rating_range: [0.5, 5.0],
            encoding: Encoding::Auto,
            delimiter: None,
            header: None,
            user_col: Column::Index(0),
            item_col: Column::Index(1),
            rating_col: Column::Index(2),
            timestamp_col: None,
            no_timestamp: false,
            synthetic: None,
            memory_budget: DEFAULT_MEMORY_BUDGET.to_string(),
        }
    }
}

/// The default of `memory_budget`: ML-25M is read and written within it.
pub const DEFAULT_MEMORY_BUDGET: &str = "512MiB";

impl Config {
    /// A config reading `path` with every other key at its default.
    pub fn for_path(path: impl Into<PathBuf>) -> Self {
        Config {
            path: path.into(),
            ..Config::default()
        }
    }
}
