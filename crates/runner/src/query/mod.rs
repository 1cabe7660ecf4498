//! `recommend`, `similar` and `predict`: answers from a pipeline's export (or train)
//! artifact, by the data's own user and item ids, without writing SQL.

mod items;
mod locate;
mod predict;
mod print;
mod recommend;
mod similar;
mod table;

pub use predict::predict;
pub use recommend::recommend;
pub use similar::similar;

use crate::cli::{CacheArgs, PipelineArgs};
use clap::Args;

#[derive(Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The user's id in the data (MovieLens userId), not recpipe's dense index
    #[arg(long, value_name = "ID")]
    pub user: String,
    /// How many items to list (at most the export's recommendations_n)
    #[arg(short = 'n', long = "top", default_value_t = 10, value_name = "N")]
    pub n: usize,
    #[command(flatten)]
    pub export: ExportQuery,
}

#[derive(Args)]
pub struct SimilarArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The item: its id in the data (MovieLens movieId), or a title (exact, case-insensitive;
    /// then without the year; then any title containing it, if only one does)
    #[arg(long, value_name = "ID|TITLE")]
    pub item: String,
    /// How many neighbours to list (at most the export's neighbors)
    #[arg(short = 'n', long = "top", default_value_t = 10, value_name = "N")]
    pub n: usize,
    #[command(flatten)]
    pub export: ExportQuery,
}

/// The flags `recommend` and `similar` share: which export stage, and the common ones.
#[derive(Args)]
pub struct ExportQuery {
    /// The export stage to read, when the pipeline has several
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    #[command(flatten)]
    pub flags: QueryFlags,
}

/// The flags of every query: how to print, and which cache to read.
#[derive(Args)]
pub struct QueryFlags {
    /// One JSON object per line instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The user's id in the data (MovieLens userId)
    #[arg(long, value_name = "ID")]
    pub user: String,
    /// An item id (MovieLens movieId) or title, as for `similar`; repeatable
    #[arg(long, value_name = "ID|TITLE", required = true)]
    pub item: Vec<String>,
    /// The train stage whose checkpoint scores, when the pipeline has several
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    #[command(flatten)]
    pub flags: QueryFlags,
}

/// The first `n` of `rows` in rank order; warns when the export kept fewer than asked for,
/// naming the export setting (`what` per user/item, `setting`) that keeps more.
fn top_rows(
    mut rows: Vec<usize>,
    ranks: &[u32],
    n: usize,
    what: &str,
    setting: &str,
) -> Vec<usize> {
    rows.sort_by_key(|&r| ranks[r]);
    if rows.len() < n {
        tracing::warn!(
            "the export keeps {} {what}; for more, `--set {setting}={n}` and run the pipeline again",
            rows.len(),
        );
    }
    rows.truncate(n);
    rows
}

/// An id as JSON: a number when it is one, else a string.
fn id_json(id: &str) -> serde_json::Value {
    id.parse::<i64>()
        .map(serde_json::Value::from)
        .unwrap_or_else(|_| serde_json::Value::from(id))
}
