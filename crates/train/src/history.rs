//! history.parquet: one row per epoch.

use crate::error::Result;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array};
use recpipe_core::parquet_io::write_batches;
use recpipe_core::schema;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Epoch {
    pub epoch: u32,
    pub train_loss: f64,
    pub valid_rmse: Option<f64>,
    pub valid_mae: Option<f64>,
    /// Ranking models: precision@10 on valid (train's own items left out); else None.
    pub valid_precision: Option<f64>,
    pub seconds: f64,
    pub ratings_per_s: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub epochs: Vec<Epoch>,
    /// The device every epoch trained on (`cpu`, `cuda:0`).
    pub device: String,
}

impl History {
    pub fn to_batch(&self) -> RecordBatch {
        let e = &self.epochs;
        let f = |g: fn(&Epoch) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(e.iter().map(g)))
        };
        let o = |g: fn(&Epoch) -> Option<f64>| -> ArrayRef {
            Arc::new(Float64Array::from_iter(e.iter().map(g)))
        };
        RecordBatch::try_new(
            schema::with_metadata(schema::history(), &[]),
            vec![
                Arc::new(UInt32Array::from_iter_values(e.iter().map(|e| e.epoch))),
                f(|e| e.train_loss),
                o(|e| e.valid_rmse),
                o(|e| e.valid_mae),
                o(|e| e.valid_precision),
                f(|e| e.seconds),
                f(|e| e.ratings_per_s),
                f(|e| e.lr),
                Arc::new(StringArray::from(vec![self.device.as_str(); e.len()])),
            ],
        )
        .expect("columns match the history schema")
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        write_batches(path, &[self.to_batch()])?;
        Ok(())
    }
}
