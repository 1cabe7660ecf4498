//! What reading a ratings file will take, estimated from its size before it is read:
//! MovieLens lines are 20–30 bytes, and each row becomes user, item, rating and timestamp
//! values plus the keys that duplicates are found by and the pages Parquet is written from.
//! Rows past `memory_budget` wait in a spill file instead, so the estimate is capped there.

use crate::error::IngestError;
use recpipe_core::memory::{Need, check_need, human_bytes};
use std::path::Path;

/// Bytes of a short ratings line: the estimate assumes no shorter lines on average.
const LINE: u64 = 20;

pub(crate) fn check_file(ratings: &Path, file_len: u64, budget: u64) -> Result<(), IngestError> {
    let rows = file_len / LINE;
    let mut need = Need::new();
    need.add("rating columns", rows, 4 + 4 + 4 + 8)
        .add("duplicate keys", rows, 16)
        .add("Parquet pages", rows, 12);
    if need.total() > budget {
        need = Need::new();
        need.add("ingest.memory_budget", 1, budget);
    }
    let hint = format!(
        "ingest.memory_budget (rows past it are spilled to disk; {} is {})",
        ratings.display(),
        human_bytes(file_len)
    );
    check_need("ingest", &need, &hint)?;
    Ok(())
}
