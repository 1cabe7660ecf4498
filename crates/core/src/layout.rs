//! The artifact contract: the file names each stage kind writes into its artifact folder, so
//! the crates that read a folder (and the runner) name files by constant, never by literal.
//!
//! Every artifact folder also holds [`MANIFEST`], written by the runner once the stage
//! succeeded (inputs, config, the outputs' hashes). Per kind:
//!
//! - **ingest** ([`ingest`]): the ratings with dense ids, the two id maps (dense index →
//!   original id, with per-user / per-item counts and titles), a summary, and the rejected
//!   input rows.
//! - **split** ([`split`]): the train / valid / test ratings (same schema as ingest's ratings)
//!   and a summary of the split.
//! - **train** ([`train`]): the checkpoint (weights plus `model.json`, which says how to
//!   rebuild the model; see [`crate::model::ModelMeta`]) and the per-epoch history.
//! - **evaluate** ([`evaluate`]): metrics as JSON and Parquet, the rating cross-tab, the
//!   Markdown report and its SVG figures.
//! - **export** ([`export`]): tables by stem, each written as `.parquet` (always) and
//!   optionally `.csv`; embeddings also as `.npy`.

/// The runner's record of a finished stage, in every artifact folder.
pub const MANIFEST: &str = "manifest.json";

/// The ingest stage's folder.
pub mod ingest {
    /// Every kept rating: user_idx, item_idx, rating (and timestamp when the source has it).
    pub const RATINGS: &str = "ratings.parquet";
    /// The user id map: user_idx → user_id, with counts.
    pub const USERS: &str = "users.parquet";
    /// The item id map: item_idx → item_id, title, year, genres, counts.
    pub const ITEMS: &str = "items.parquet";
    /// Counts, duplicates, rejects and timings of the run.
    pub const SUMMARY: &str = "summary.json";
    /// The input rows that could not be parsed, with the reason.
    pub const REJECTS: &str = "rejects.csv";
}

/// The split stage's folder.
pub mod split {
    pub const TRAIN: &str = "train.parquet";
    pub const VALID: &str = "valid.parquet";
    pub const TEST: &str = "test.parquet";
    /// Sizes and settings of the split.
    pub const SUMMARY: &str = "split.json";
}

/// The train stage's folder: a checkpoint plus its history.
pub mod train {
    /// The tensors, named by [`crate::model::tensor`].
    pub const WEIGHTS: &str = "model.safetensors";
    /// [`crate::model::ModelMeta`] as JSON.
    pub const META: &str = "model.json";
    /// Loss and metrics per epoch.
    pub const HISTORY: &str = "history.parquet";
}

/// The evaluate stage's folder.
pub mod evaluate {
    /// The whole evaluation (every model, metric and split) as JSON.
    pub const METRICS_JSON: &str = "metrics.json";
    /// One row per (model, metric, split, k).
    pub const METRICS: &str = "metrics.parquet";
    /// Predicted against true ratings, bucketed.
    pub const CROSSTAB: &str = "crosstab.parquet";
    /// The human-readable report.
    pub const REPORT: &str = "report.md";

    /// The learning-curve figure of one model (`model` already made file-safe).
    pub fn learning_curve(model: &str) -> String {
        format!("learning_curve_{model}.svg")
    }

    /// The predicted-rating histogram of one model on one split part.
    pub fn rating_distribution(model: &str, part: &str) -> String {
        format!("rating_distribution_{model}_{part}.svg")
    }

    /// The error-by-user-activity figure of one split part.
    pub fn error_by_activity(part: &str) -> String {
        format!("error_by_activity_{part}.svg")
    }
}

/// The export stage's folder: table stems; [`export::file`] adds the format's extension.
pub mod export {
    pub const ITEM_EMBEDDINGS: &str = "item_embeddings";
    pub const USER_EMBEDDINGS: &str = "user_embeddings";
    pub const SIMILAR_ITEMS: &str = "similar_items";
    pub const RECOMMENDATIONS: &str = "recommendations";
    pub const PCA: &str = "pca";
    /// Extensions of the formats.
    pub const PARQUET: &str = "parquet";
    pub const CSV: &str = "csv";
    pub const NPY: &str = "npy";

    /// The file name of table `stem` in format `ext` (`item_embeddings.parquet`).
    pub fn file(stem: &str, ext: &str) -> String {
        format!("{stem}.{ext}")
    }
}
