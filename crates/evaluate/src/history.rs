//! A train artifact's history.parquet, read leniently (any numeric column types) because it
//! only feeds a plot.

use crate::error::EvaluateError;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrowPrimitiveType, cast::AsArray};
use arrow_schema::DataType;
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
    batch: &arrow_array::RecordBatch,
    name: &str,
    path: &Path,
) -> Result<Option<Vec<f64>>, EvaluateError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let values = numeric_values(col.as_ref()).ok_or_else(|| EvaluateError::Data {
        path: path.to_path_buf(),
        message: format!("column `{name}` is not numeric (it is {})", col.data_type()),
    })?;
    Ok(Some(values))
}

/// A numeric column's values as f64, NaN for nulls; `None` for a non-numeric column.
fn numeric_values(col: &dyn Array) -> Option<Vec<f64>> {
    fn collect<T: ArrowPrimitiveType>(col: &dyn Array, f: impl Fn(T::Native) -> f64) -> Vec<f64> {
        let a = col.as_primitive::<T>();
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    f(a.value(i))
                }
            })
            .collect()
    }
    Some(match col.data_type() {
        DataType::Float64 => collect::<Float64Type>(col, |v| v),
        DataType::Float32 => collect::<Float32Type>(col, f64::from),
        DataType::Int64 => collect::<Int64Type>(col, |v| v as f64),
        DataType::Int32 => collect::<Int32Type>(col, f64::from),
        DataType::UInt64 => collect::<UInt64Type>(col, |v| v as f64),
        DataType::UInt32 => collect::<UInt32Type>(col, f64::from),
        _ => return None,
    })
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
