//! recpipe evaluate stage: how good is a trained model, compared to what.
//!
//! Reads the split (train/valid/test) and every upstream train artifact, and writes
//! metrics.json, metrics.parquet (model, split, metric, k, value), crosstab.parquet,
//! report.md and SVG plots. Rating metrics (RMSE, MAE, R², classifier accuracy, by user
//! activity), ranking metrics over full item rankings (precision, recall, NDCG, MAP, hit
//! rate at k, coverage, novelty) and baselines fitted on the same train part.

pub mod baselines;
pub mod config;
pub mod crosstab;
pub mod data;
pub mod error;
pub mod history;
pub mod memory;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod results;
pub mod rng;
pub mod scoring;
pub mod stage;

pub use config::Config;
pub use error::EvaluateError;
pub use stage::{EvaluateStage, run};
