use recpipe_core::CoreError;
use std::path::PathBuf;

/// Everything that can stop a split. Each message names the config key or the file and line.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("split config: `{key}` {message}")]
    Config { key: &'static str, message: String },

    #[error(
        "strategy `{strategy}` orders ratings by time, but {path} has no timestamps \
         (the source had no timestamp column); use strategy = \"random\" or \"user_random\""
    )]
    NoTimestamps {
        strategy: &'static str,
        path: PathBuf,
    },

    #[error("{path}: no ratings to split{hint}")]
    Empty { path: PathBuf, hint: String },

    #[error(
        "{path}: {rows} ratings exceed the 4,294,967,295 rows one split handles; split the data upstream"
    )]
    TooLarge { path: PathBuf, rows: usize },

    #[error("{path}: {message} (from `{key}`)")]
    File {
        key: &'static str,
        path: PathBuf,
        message: String,
    },

    #[error("{path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },

    #[error(transparent)]
    Core(#[from] CoreError),

    #[error(transparent)]
    Memory(#[from] recpipe_core::memory::MemoryError),
}

impl SplitError {
    pub(crate) fn config(key: &'static str, message: impl Into<String>) -> Self {
        SplitError::Config {
            key,
            message: message.into(),
        }
    }
}
