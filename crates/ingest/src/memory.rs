//! What reading a ratings file will take, estimated from its size before it is read:
//! MovieLens lines are 20–30 bytes, and each row becomes user, item, rating and timestamp
//! columns plus the keys that duplicates are found by and the pages Parquet is written from.

use crate::error::IngestError;
use recpipe_core::memory::{Need, check_need, human_bytes};
use std::path::Path;

/// Bytes of a short ratings line: the estimate assumes no shorter lines on average.
const LINE: u64 = 20;

pub(crate) fn check_file(ratings: &Path, file_len: u64) -> Result<(), IngestError> {
    let rows = file_len / LINE;
    let mut need = Need::new();
    need.add("rating columns", rows, 4 + 4 + 4 + 8)
        .add("duplicate keys", rows, 16)
        .add("Parquet pages", rows, 12);
    let hint = format!(
        "the data size: {} is {}; ingest a sample of it",
        ratings.display(),
        human_bytes(file_len)
    );
    check_need("ingest", &need, &hint)?;
    Ok(())
}
