//! The `[export]` table of a pipeline.

use crate::error::ExportError;
use serde::{Deserialize, Serialize};

/// A file format the tables are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The artifact proper: every table as Parquet (always required).
    Parquet,
    /// `item_embeddings.npy` / `user_embeddings.npy`: float32 `[n, k]`, for `numpy.load`.
    Npy,
    /// Every table as CSV too; embeddings spread over columns `e0..e{k-1}`.
    Csv,
}

/// Every knob of the export stage. Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Nearest items (cosine) per item in similar_items.parquet; 0 skips the table.
    pub neighbors: usize,
    /// Items that get a neighbour list: 0 = every item, else the N most-rated. Neighbours are
    /// always drawn from every item.
    pub similar_items_top: usize,
    /// Items with fewer ratings (n_ratings of the ingest's items.parquet) are left out of
    /// similar_items, as queries and as neighbours: a factor trained on a handful of ratings
    /// points in a nearly random direction, and cosine ignores the norm that would say so.
    /// Default 10; 0 keeps every item.
    pub similar_min_ratings: u32,
    /// Unseen items per user in recommendations.parquet; 0 skips the table.
    pub recommendations_n: usize,
    /// Also write `*_embeddings_normalized.parquet`, rows scaled to unit L2 norm, so a
    /// vector database's inner product is the cosine.
    pub normalized: bool,
    /// Principal components of the item factors in pca.parquet (capped at k); 0 skips it.
    pub pca_components: usize,
    /// Titles listed at each end of every component in the summary.
    pub pca_titles: usize,
    /// Formats to write: "parquet" (required), "npy", "csv".
    pub format: Vec<Format>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            neighbors: 20,
            similar_items_top: 0,
            similar_min_ratings: 10,
            recommendations_n: 10,
            normalized: false,
            pca_components: 3,
            pca_titles: 10,
            format: vec![Format::Parquet],
        }
    }
}

impl Config {
    pub fn validate(&self) -> Result<(), ExportError> {
        if !self.format.contains(&Format::Parquet) {
            return Err(ExportError::config(
                "format",
                "must include \"parquet\": the Parquet tables are the artifact that later stages \
                 and tools read; add \"npy\" or \"csv\" beside it for extra copies, e.g. \
                 format = [\"parquet\", \"csv\"]",
            ));
        }
        Ok(())
    }

    pub fn wants(&self, f: Format) -> bool {
        self.format.contains(&f)
    }
}
