//! A train artifact's history.parquet, read leniently (any numeric column types) because it
//! only feeds a plot.

use crate::error::EvaluateError;
use arrow::array::{Array, Float64Array};
use arrow::datatypes::DataType;
use recpipe_core::parquet_io::read_batches;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub epoch: Vec<f64>,
    pub train_loss: Vec<f64>,
    /// NaN where an epoch had no validation.
    pub valid_rmse: Vec<f64>,
}

fn column_f64(
    batch: &arrow::array::RecordBatch,
    name: &str,
    path: &Path,
) -> Result<Option<Vec<f64>>, EvaluateError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let cast = arrow::compute::cast(col, &DataType::Float64).map_err(|e| EvaluateError::Data {
        path: path.to_path_buf(),
        message: format!("column `{name}` is not numeric: {e}"),
    })?;
    let a = cast
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("cast to Float64 gives a Float64Array");
    Ok(Some(
        (0..a.len())
            .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) })
            .collect(),
    ))
}

/// `Ok(None)` when the file does not exist (a model trained without history).
pub fn read(path: &Path) -> Result<Option<History>, EvaluateError> {
    if !path.exists() {
        return Ok(None);
    }
    let (_, batches) = read_batches(path)?;
    let mut h = History::default();
    for b in &batches {
        let missing = |c: &str| EvaluateError::Data {
            path: path.to_path_buf(),
            message: format!("history has no `{c}` column; was it written by recpipe train?"),
        };
        let epoch = column_f64(b, "epoch", path)?.ok_or_else(|| missing("epoch"))?;
        let loss = column_f64(b, "train_loss", path)?.ok_or_else(|| missing("train_loss"))?;
        let valid =
            column_f64(b, "valid_rmse", path)?.unwrap_or_else(|| vec![f64::NAN; b.num_rows()]);
        h.epoch.extend(epoch);
        h.train_loss.extend(loss);
        h.valid_rmse.extend(valid);
    }
    Ok(Some(h))
}
