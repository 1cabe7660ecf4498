//! What a split will hold, from the ingest table's row count before it is read: the
//! ratings as read (Arrow batches and their columns), the part labels and shuffled order,
//! and the rows copied into train, valid and test. When that is more than the machine
//! allows, the split streams instead (`stream.rs`, its own estimate).

use crate::error::SplitError;
use recpipe_core::memory::{Need, check_need};
use recpipe_core::parquet_io::row_count;
use std::path::Path;

fn in_memory_need(rows: u64) -> Need {
    let mut need = Need::new();
    need.add("ratings as read", rows, 2 * 20)
        .add("labels and order", rows, 1 + 8)
        .add("parts", rows, 20);
    need
}

/// Whether the in-memory split of `ratings` fits `budget` bytes, or the memory guard when
/// None. A table whose footer cannot be read "fits": reading it reports what is wrong.
pub(crate) fn in_memory_fits(ratings: &Path, budget: Option<u64>) -> bool {
    let Ok(rows) = row_count(ratings) else {
        return true;
    };
    let need = in_memory_need(rows as u64);
    match budget {
        Some(b) => need.total() <= b,
        None => check_need("split", &need, "").is_ok(),
    }
}

pub(crate) fn check(ratings: &Path) -> Result<(), SplitError> {
    let Ok(rows) = row_count(ratings) else {
        return Ok(()); // reading the table reports what is wrong with it
    };
    let rows = rows as u64;
    let need = in_memory_need(rows);
    let hint = format!(
        "the data size: {} holds {rows} ratings; sample them or filter them in ingest",
        ratings.display()
    );
    check_need("split", &need, &hint)?;
    Ok(())
}
