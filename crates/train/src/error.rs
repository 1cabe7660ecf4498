use recpipe_core::CoreError;
use std::path::PathBuf;

/// Everything that can stop training. Each message says what went wrong, where (config key,
/// file, epoch) and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("train config: `{key}` {message}")]
    Config { key: &'static str, message: String },

    #[error(
        "training diverged in epoch {epoch} (batch {batch}): the loss became {value}; \
         lower `lr` (now {lr}), e.g. to {suggest}, or use a y_range; no checkpoint was written"
    )]
    Diverged {
        epoch: usize,
        batch: usize,
        value: f64,
        lr: f32,
        suggest: f32,
    },

    /// The CUDA device asked for cannot be used, or failed while training.
    #[error("device = \"{device}\": {message}")]
    Cuda { device: String, message: String },

    #[error("{path}: no ratings to train on; check the split stage's fractions")]
    EmptyTrain { path: PathBuf },

    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },

    #[error("could not start {threads} training threads: {message}")]
    Threads { threads: usize, message: String },

    #[error("{0}")]
    Predict(String),

    /// A run that finished without a NaN but exploded, or never beat the global mean.
    #[error("{0}")]
    Exploded(String),

    #[error(transparent)]
    Memory(#[from] recpipe_core::memory::MemoryError),

    #[error(transparent)]
    Core(#[from] CoreError),
}

impl TrainError {
    pub(crate) fn config(key: &'static str, message: impl Into<String>) -> Self {
        TrainError::Config {
            key,
            message: message.into(),
        }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
