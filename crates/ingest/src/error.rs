use recpipe_core::CoreError;
use std::path::PathBuf;

/// Everything ingest can fail on. Each message says what, where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A config key has a value ingest cannot use.
    #[error("ingest.{key}: {message}")]
    Config { key: &'static str, message: String },

    #[error(
        "{path}: no such file or folder; set ingest.path to a MovieLens folder or a ratings file"
    )]
    NotFound { path: PathBuf },

    /// The folder holds no ratings file ingest recognises.
    #[error("{path}: {message}")]
    Detect { path: PathBuf, message: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A malformed row with on_error = "fail".
    #[error(
        "{path}:{line}:{column}: {reason}: `{text}`\n  fix the row, or set on_error = \"skip\" to leave bad rows out (they are listed in rejects.csv)"
    )]
    BadRow {
        path: PathBuf,
        line: u64,
        column: u64,
        reason: String,
        text: String,
    },

    /// A repeated (user, item) pair with duplicates = "error".
    #[error(
        "{path}:{line}: user {user} rated item {item} again (first at line {first_line})\n  set duplicates = \"keep_last\", \"keep_first\" or \"mean\" to resolve repeated ratings"
    )]
    Duplicate {
        path: PathBuf,
        line: u64,
        first_line: u64,
        user: String,
        item: String,
    },

    #[error(
        "{path}:{line}:{column}: item {item} is not in {items}\n  set unknown_items = \"keep\" to keep such ratings (no title or genres) or \"reject\" to list them in rejects.csv"
    )]
    UnknownItem {
        path: PathBuf,
        line: u64,
        column: u64,
        item: String,
        items: PathBuf,
    },

    #[error(
        "{path}: no ratings left to write ({rejected} rows rejected); check the format and the rating_range"
    )]
    Empty { path: PathBuf, rejected: u64 },

    #[error("{path}: more than {limit} distinct {what}; dense ids are u32")]
    TooMany {
        path: PathBuf,
        what: &'static str,
        limit: u64,
    },

    #[error(transparent)]
    Memory(#[from] recpipe_core::memory::MemoryError),

    #[error(transparent)]
    Core(#[from] CoreError),
}

impl IngestError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn config(key: &'static str, message: impl Into<String>) -> Self {
        IngestError::Config {
            key,
            message: message.into(),
        }
    }
}
