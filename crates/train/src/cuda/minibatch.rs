//! `dot` / `dot_bias` with mini-batches on a CUDA device ([`Family::Embedding`]): the cpu
//! EmbeddingTrainer's step (mean-of-batch gradient; RowOpt's SGD with momentum, Adam,
//! AdamW, SparseAdam with the lazy per-row catch-up; `l2` and `weight_decay` as there) as
//! recpipe-cuda's `minibatch` launches. On the harness device it gives the cpu's weights
//! bit for bit (crates/cuda-harness/tests/embedding.rs).
//!
//! Each epoch the host groups the shuffled order into batches by row and uploads that plan
//! in one copy; a batch is then four launches and no copy. The batch losses stay on the
//! device, one slot per batch, and are read every [`READ_EVERY`] batches (one wait each),
//! which is when the running loss is reported and a non-finite one stops the epoch.
//!
//! [`Family::Embedding`]: crate::backend::Family::Embedding

use super::resident::Resident;
use crate::backend::{EpochResult, EpochTask, Metrics, ModelSpec, RatingsView, Report, Trainer};
use crate::config::OptimizerKind;
use recpipe_core::model::Tensor;
use recpipe_cuda::buf::{Purpose, check_fits};
use recpipe_cuda::minibatch::{MbConfig, MbOptimizer, MiniBatch};
use recpipe_cuda::{Accel, Error};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Batches between reads of the losses (the cpu reports every 64 batches too).
pub const READ_EVERY: usize = 64;

pub struct MiniBatchTrainer {
    dev: Resident,
    model: MiniBatch,
    y_range: Option<[f32; 2]>,
}

fn optimizer(kind: OptimizerKind) -> MbOptimizer {
    match kind {
        OptimizerKind::Adam => MbOptimizer::Adam,
        OptimizerKind::AdamW => MbOptimizer::AdamW,
        OptimizerKind::Sgd => MbOptimizer::Sgd,
        OptimizerKind::SparseAdam => MbOptimizer::SparseAdam,
        OptimizerKind::Adagrad => MbOptimizer::Adagrad,
    }
}

impl MiniBatchTrainer {
    /// The model of `spec` on `accel`, from the cpu's initial draws, after checking the
    /// device can hold the tables, the optimizer state, the ratings and an epoch's plan.
    pub fn new(accel: Arc<dyn Accel>, spec: &ModelSpec) -> Result<Self, Error> {
        let cfg = &spec.cfg;
        let shape = super::shape_of(spec);
        shape.check().map_err(Error::Driver)?;
        let opt = optimizer(cfg.optimizer);
        let rows = shape.n_users + shape.n_items;
        let n_train = (spec.expected_steps / cfg.epochs.max(1)) * cfg.batch_size;
        // Tables and state, per-row step counters, the per-step tables, and per rating:
        // the three columns (train and a quarter more for valid) and the plan (~28 bytes).
        let bytes = rows * shape.stride() * 4 * (1 + opt.n_state())
            + rows * 4
            + spec.expected_steps * 16
            + n_train * (12 + 3 + 28);
        check_fits(
            accel.as_ref(),
            bytes,
            Purpose {
                what: "the model, its optimizer state, the ratings and the epoch plan",
                setting: "train.k (or use device = \"cpu\")",
            },
        )?;
        let mb = MbConfig {
            optimizer: opt,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            momentum: cfg.momentum,
            weight_decay: cfg.weight_decay,
            l2: cfg.l2,
            dense: false,
            y_range: spec.y_range,
        };
        let w = super::initial_weights(spec);
        let model = MiniBatch::new(&accel, shape, &w, mb, cfg.batch_size, spec.expected_steps)?;
        Ok(MiniBatchTrainer {
            dev: Resident::new(accel),
            model,
            y_range: spec.y_range,
        })
    }

    /// One epoch's launches; the losses are read back every READ_EVERY batches.
    fn epoch(&mut self, task: &EpochTask<'_>, report: Report<'_>) -> Result<EpochResult, Error> {
        let MiniBatchTrainer { dev, model, .. } = self;
        let data = dev.train(task.data)?;
        let plan = model.plan(task.data.user, task.data.item, task.order, task.batch_size)?;
        let n = plan.n_batches();
        let mut read = 0usize;
        let mut failed: Option<Error> = None;
        let result = task.batches(n, READ_EVERY).run(report, |b, lr| {
            let len = plan.batch_len(b);
            if failed.is_some() {
                return (0.0, len);
            }
            if let Err(e) = model.step(data, &plan, b, lr) {
                failed = Some(e);
                return (0.0, len);
            }
            if (b + 1) % READ_EVERY != 0 && b + 1 != n {
                return (0.0, len);
            }
            match plan.batch_sse() {
                Ok(sse) => {
                    let loss: f64 = sse[read..=b].iter().sum();
                    read = b + 1;
                    (loss, len)
                }
                Err(e) => {
                    failed = Some(e);
                    (0.0, len)
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        model.end_epoch()?;
        Ok(result)
    }
}

impl Trainer for MiniBatchTrainer {
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        self.epoch(&task, report).unwrap_or_else(|e| {
            self.dev.fail(e);
            Ok(0.0)
        })
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        let t = self.model.tables();
        self.dev.predict(t, (users, items), self.y_range, out);
    }

    fn evaluate(&self, data: RatingsView<'_>) -> Metrics {
        self.dev.metrics(self.model.tables(), data, self.y_range)
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        match self.model.weights() {
            Ok(w) => super::tensors_of(self.model.shape(), &w),
            Err(e) => {
                self.dev.fail(e);
                BTreeMap::new()
            }
        }
    }

    fn finite(&self) -> bool {
        match self.model.weights() {
            Ok(w) => super::all_finite(&w),
            Err(e) => {
                self.dev.fail(e);
                false
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.dev.failure()
    }
}
