//! What a split will hold, from the ingest table's row count before it is read: the
//! ratings as read (Arrow batches and their columns), the part labels and shuffled order,
//! and the rows copied into train, valid and test.

use crate::error::SplitError;
use recpipe_core::memory::{Need, check_need};
use recpipe_core::parquet_io::row_count;
use std::path::Path;

pub(crate) fn check(ratings: &Path) -> Result<(), SplitError> {
    let Ok(rows) = row_count(ratings) else {
        return Ok(()); // reading the table reports what is wrong with it
    };
    let rows = rows as u64;
    let mut need = Need::new();
    need.add("ratings as read", rows, 2 * 20)
        .add("labels and order", rows, 1 + 8)
        .add("parts", rows, 20);
    let hint = format!(
        "the data size: {} holds {rows} ratings; sample them or filter them in ingest",
        ratings.display()
    );
    check_need("split", &need, &hint)?;
    Ok(())
}
