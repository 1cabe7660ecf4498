//! The training backend seam. A [`Backend`] is one device's implementation of the models: it
//! builds a [`Trainer`] for a [`ModelSpec`]; a `Trainer` trains one model on that device.
//!
//! Written once here and in the modules beside it, for every backend:
//! - [`backend_for`]: the one factory from a resolved [`Device`] to its backend;
//! - [`Family::of`]: validation of a spec and the choice of which trainer it needs (the
//!   model dispatch); `Backend::trainer` runs it before `Backend::build`;
//! - the batch loop inside an epoch (schedule, divergence check, progress): `batches.rs`;
//! - the epoch loop around it (shuffling, validation, history, early stopping, keep-best,
//!   the explosion watch, the checkpoint): `epochs.rs`.
//!
//! A backend provides only `Backend::build` (a trainer per [`Family`]) and the trainers'
//! `train_epoch` / `predict` / `tensors` / `finite`. The CPU backend is `cpu/`, the CUDA
//! backend `cuda/` (its device code in the recpipe-cuda crate); `device.rs` resolves the
//! config's `device` to a [`Device`].

use crate::batches::Batches;
use crate::config::{Config, ModelKind, OptimizerKind};
use crate::error::{Result, TrainError};
use crate::schedule::Schedule;
use recpipe_core::math::Scored;
use recpipe_core::model::Tensor;
use std::collections::BTreeMap;

/// A resolved training device (`device.rs` resolves the config's `device` to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
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

impl<'a> From<&'a recpipe_core::Ratings> for RatingsView<'a> {
    fn from(r: &'a recpipe_core::Ratings) -> Self {
        RatingsView {
            user: &r.user,
            item: &r.item,
            rating: &r.rating,
        }
    }
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

#[cfg(test)]
impl ModelSpec {
    /// A toy model for the trainers' gradient tests: 4 users, `n_items` items, k = 3, mean
    /// rating 3, one step.
    pub(crate) fn toy(cfg: Config, n_items: usize, y_range: Option<[f32; 2]>) -> ModelSpec {
        ModelSpec {
            kind: cfg.model,
            cfg,
            n_users: 4,
            n_items,
            k: 3,
            global_mean: 3.0,
            y_range,
            classes: None,
            item_features: None,
            expected_steps: 1,
        }
    }
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

/// One epoch's work for [`Trainer::train_epoch`].
#[derive(Debug, Clone, Copy)]
pub struct EpochTask<'a> {
    pub data: RatingsView<'a>,
    /// The epoch's shuffled order of the ratings in `data` (for trainers that batch ratings).
    pub order: &'a [u32],
    pub batch_size: usize,
    pub schedule: &'a Schedule,
    /// The global schedule step of the epoch's first batch.
    pub step0: usize,
}

impl<'a> EpochTask<'a> {
    /// The epoch's batch loop: `n` batches of one schedule step each, reported every
    /// `every`.
    pub(crate) fn batches(&self, n: usize, every: usize) -> Batches<'a> {
        Batches {
            n,
            schedule: self.schedule,
            step0: self.step0,
            every,
            steps_are_examples: false,
        }
    }
}

#[cfg(test)]
impl<'a> EpochTask<'a> {
    /// The first epoch (from step 0) of `data` in `order`, in batches of `batch_size`.
    pub(crate) fn first(
        data: RatingsView<'a>,
        order: &'a [u32],
        batch_size: usize,
        schedule: &'a Schedule,
    ) -> Self {
        EpochTask {
            data,
            order,
            batch_size,
            schedule,
            step0: 0,
        }
    }
}

/// What [`Trainer::train_epoch`] gives: the epoch's mean training loss, or the batch whose
/// loss was not finite.
pub type EpochResult = std::result::Result<f64, Divergence>;

/// One model being trained on one device.
pub trait Trainer: Send {
    /// One pass over the task's data in batches; returns the mean training loss. Trainers
    /// run their steps through the shared batch loop (`EpochTask::batches`, batches.rs).
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult;

    /// Predicted ratings (the expected rating for the classifier) into `out`.
    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]);

    /// Rating metrics on `data`; the classifier adds accuracy.
    fn evaluate(&self, data: RatingsView<'_>) -> Metrics {
        let mut pred = vec![0.0; data.len()];
        self.predict(data.user, data.item, &mut pred);
        Metrics::of(Scored {
            pred: &pred,
            truth: data.rating,
        })
    }

    /// The weights under the checkpoint names of recpipe_core::model.
    fn tensors(&self) -> BTreeMap<String, Tensor>;

    /// Whether every weight is finite.
    fn finite(&self) -> bool;

    /// A device error that cut the last call short (the CUDA trainers record it here, since
    /// the calls above cannot fail on the cpu); checked after every epoch.
    fn failure(&self) -> Option<String> {
        None
    }
}

impl Metrics {
    /// RMSE and MAE of the predictions (recpipe_core::math, summed sequentially, so the
    /// figures do not depend on the thread count); zeros when there are no rows.
    pub fn of(s: Scored<'_>) -> Metrics {
        if s.pred.is_empty() {
            return Metrics::default();
        }
        let e = s.errors();
        Metrics {
            rmse: e.rmse,
            mae: e.mae,
            accuracy: None,
        }
    }
}

/// Which trainer a spec needs, whatever the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// I-AutoRec: each step is a batch of items.
    AutoRec,
    /// `dot` / `dot_bias` with per-rating SGD or Adagrad (`batch_size = 1`): one fused step
    /// per rating.
    PerRating,
    /// `dot` / `dot_bias` with mini-batches.
    Embedding,
    /// `mlp`, `hybrid` and `classifier`.
    Neural,
}

impl Family {
    /// The trainer family of `spec`, or why the spec cannot be trained.
    pub fn of(spec: &ModelSpec) -> Result<Family> {
        Ok(match spec.kind {
            ModelKind::Autorec => Family::AutoRec,
            ModelKind::Dot | ModelKind::DotBias if per_rating(&spec.cfg) => Family::PerRating,
            ModelKind::Dot | ModelKind::DotBias => Family::Embedding,
            ModelKind::Classifier if spec.classes.as_ref().is_none_or(|c| c.len() < 2) => {
                return Err(TrainError::config(
                    "model",
                    "`classifier` needs at least two distinct rating values in train",
                ));
            }
            ModelKind::Mlp | ModelKind::Hybrid | ModelKind::Classifier => Family::Neural,
            ModelKind::Blend => {
                return Err(TrainError::config(
                    "model",
                    "\"blend\" trains nothing: it folds upstream train stages",
                ));
            }
            ModelKind::Ease | ModelKind::Ials | ModelKind::Bpr => {
                return Err(TrainError::config(
                    "model",
                    format!(
                        "\"{}\" is a ranking model: it trains through `train_model` (the \
                         ranking module), not a rating backend",
                        spec.kind
                    ),
                ));
            }
        })
    }
}

/// Whether a config trains `dot` / `dot_bias` one rating at a time ([`Family::PerRating`]).
pub fn per_rating(cfg: &Config) -> bool {
    cfg.model.is_embedding()
        && cfg.batch_size == 1
        && (cfg.optimizer == OptimizerKind::Adagrad
            || (cfg.optimizer == OptimizerKind::Sgd && cfg.momentum == 0.0))
}

/// A training device.
pub trait Backend: Send + Sync {
    fn device(&self) -> Device;

    /// This device's trainer of `family` for `spec` (already checked by [`Family::of`]).
    fn build(&self, family: Family, spec: &ModelSpec) -> Result<Box<dyn Trainer>>;

    /// The trainer `spec` needs: validated and dispatched by [`Family::of`], built here.
    fn trainer(&self, spec: &ModelSpec) -> Result<Box<dyn Trainer>> {
        self.build(Family::of(spec)?, spec)
    }
}

/// The backend of a resolved device; `threads` sizes the CPU backend's pool. A CUDA device
/// is opened here (its kernels loaded), so a driver that cannot run them fails before any
/// data is touched.
pub fn backend_for(device: Device, threads: usize) -> Result<Box<dyn Backend>> {
    match device {
        Device::Cpu => Ok(Box::new(crate::cpu::CpuBackend { threads })),
        Device::Cuda(n) => Ok(Box::new(crate::cuda::CudaBackend::open(n)?)),
    }
}
