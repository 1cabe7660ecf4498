use recpipe_core::CoreError;
use std::path::PathBuf;

/// Everything that can stop an evaluation. Each message names the config key or the file
/// involved and says what to change.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("evaluate config: `{key}` {message}")]
    Config { key: &'static str, message: String },

    #[error(
        "evaluate needs at least one upstream `train` stage; add the train stage(s) to this \
         stage's `inputs`"
    )]
    NoModel,

    #[error(
        "nothing to evaluate: {parts} in {dir} hold no ratings; hold out a valid or test set in \
         the split stage (e.g. valid_fraction = 0.1) or change `parts`"
    )]
    NothingToEvaluate { parts: String, dir: PathBuf },

    #[error(
        "{dir}: model `{stage}` was trained on {model_users} users × {model_items} items, but the \
         split has {split_users} users × {split_items} items; retrain the model on this split"
    )]
    IdSpace {
        stage: String,
        dir: PathBuf,
        model_users: u32,
        model_items: u32,
        split_users: u32,
        split_items: u32,
    },

    #[error(
        "train stage `{0}` has the same name as a baseline; rename the stage (baselines are \
         global_mean, user_mean, item_mean, bias_baseline, most_popular)"
    )]
    NameClash(String),

    #[error("{path}: cannot draw plot: {message}")]
    Plot { path: PathBuf, message: String },

    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },

    #[error(transparent)]
    Memory(#[from] recpipe_core::memory::MemoryError),

    #[error(transparent)]
    Core(#[from] CoreError),
}

impl EvaluateError {
    pub(crate) fn config(key: &'static str, message: impl Into<String>) -> Self {
        EvaluateError::Config {
            key,
            message: message.into(),
        }
    }
}
