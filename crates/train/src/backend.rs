//! The training backend seam (docs/ARCHITECTURE.md): a backend builds a [`Trainer`] for a model
//! spec; the epoch loop, schedules, early stopping, history and checkpoints are shared.

use crate::config::{Config, DeviceChoice, ModelKind};
use crate::error::{Result, TrainError};
use crate::schedule::Schedule;
use recpipe_core::model::Tensor;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    /// `auto` picks cuda when a backend for it exists; this build has only cpu.
    pub fn select(choice: DeviceChoice) -> Result<Device> {
        match choice {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => {
                tracing::debug!(
                    "device = \"auto\": no CUDA backend in this build, training on cpu"
                );
                Ok(Device::Cpu)
            }
            DeviceChoice::Cuda => Err(TrainError::CudaUnavailable),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(i) => format!("cuda:{i}"),
        }
    }
}

/// Ratings as parallel slices of dense indices.
#[derive(Debug, Clone, Copy)]
pub struct RatingsView<'a> {
    pub user: &'a [u32],
    pub item: &'a [u32],
    pub rating: &'a [f32],
}

impl RatingsView<'_> {
    pub fn len(&self) -> usize {
        self.user.len()
    }
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }
}

/// Everything a backend needs to build a model, resolved from the config and the data.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub cfg: Config,
    pub kind: ModelKind,
    pub n_users: usize,
    pub n_items: usize,
    pub k: usize,
    pub global_mean: f32,
    pub y_range: Option<[f32; 2]>,
    /// Rating values of the classes (classifier).
    pub classes: Option<Vec<f32>>,
    /// Per-item dense content features (hybrid), (n_items, width) row-major.
    pub item_features: Option<(usize, Vec<f32>)>,
    /// Steps the whole run will take, to size per-step buffers once.
    pub expected_steps: usize,
}

/// A batch whose loss was not finite.
#[derive(Debug, Clone, Copy)]
pub struct Divergence {
    pub batch: usize,
    pub value: f64,
    pub lr: f32,
}

/// Called every few batches with (batches done, running mean loss).
pub type Report<'a> = &'a mut dyn FnMut(usize, f64);

#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    pub rmse: f64,
    pub mae: f64,
    pub accuracy: Option<f64>,
}

/// One model being trained on one device.
pub trait Trainer: Send {
    /// One pass over `data` in the order `order`, in batches of `batch_size`; `step0` is the
    /// global step of the first batch (for the schedule). Returns the mean training loss.
    fn train_epoch(
        &mut self,
        data: RatingsView<'_>,
        order: &[u32],
        batch_size: usize,
        schedule: &Schedule,
        step0: usize,
        report: Report<'_>,
    ) -> std::result::Result<f64, Divergence>;

    /// Predicted ratings (the expected rating for the classifier) into `out`.
    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]);

    /// Rating metrics on `data`; the classifier adds accuracy.
    fn evaluate(&self, data: RatingsView<'_>) -> Metrics {
        let mut pred = vec![0.0; data.len()];
        self.predict(data.user, data.item, &mut pred);
        rating_metrics(&pred, data.rating)
    }

    /// The weights under the checkpoint names of recpipe_core::model.
    fn tensors(&self) -> BTreeMap<String, Tensor>;

    /// Whether every weight is finite.
    fn finite(&self) -> bool;
}

/// RMSE and MAE, summed sequentially so the figures do not depend on the thread count.
pub fn rating_metrics(pred: &[f32], truth: &[f32]) -> Metrics {
    if pred.is_empty() {
        return Metrics::default();
    }
    let (mut se, mut ae) = (0.0f64, 0.0f64);
    for (&p, &y) in pred.iter().zip(truth) {
        let e = (p - y) as f64;
        se += e * e;
        ae += e.abs();
    }
    let n = pred.len() as f64;
    Metrics {
        rmse: (se / n).sqrt(),
        mae: ae / n,
        accuracy: None,
    }
}

/// A training device.
pub trait Backend {
    fn device(&self) -> Device;
    fn trainer(&self, spec: &ModelSpec) -> Result<Box<dyn Trainer>>;
}
