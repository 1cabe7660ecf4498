use recpipe_core::CoreError;
use std::path::PathBuf;

/// Everything that can stop an export. Each message names the config key or the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export config: `{key}` {message}")]
    Config { key: &'static str, message: String },

    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("building the `{table}` table: {source}")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow_schema::ArrowError,
    },

    #[error(transparent)]
    Memory(#[from] recpipe_core::memory::MemoryError),

    #[error(transparent)]
    Core(#[from] CoreError),
}

impl ExportError {
    pub(crate) fn config(key: &'static str, message: impl Into<String>) -> Self {
        ExportError::Config {
            key,
            message: message.into(),
        }
    }
    pub(crate) fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ExportError::Input {
            path: path.into(),
            message: message.into(),
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }
}
