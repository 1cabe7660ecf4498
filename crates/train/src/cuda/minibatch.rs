//! `dot` / `dot_bias` with mini-batches on a CUDA device ([`Family::Embedding`]): the cpu
//! EmbeddingTrainer's step (mean-of-batch gradient; RowOpt's SGD with momentum, Adam,
//! AdamW, SparseAdam with the lazy per-row catch-up; `l2` and `weight_decay` as there) as
//! recpipe-cuda's `minibatch` launches. On the harness device it gives the cpu's weights
//! bit for bit (crates/cuda-harness/tests/embedding.rs).
//!
//! Each epoch the host groups the shuffled order into batches by row and uploads that plan
//! in one copy; a batch is then three launches and no copy. The batch losses stay on the
//! device, one slot per batch, and are read every [`READ_EVERY`] batches (one wait each),
//! which is when the running loss is reported and a non-finite one stops the epoch.
//!
//! Batches of at most [`FUSE_MAX_BATCH`] ratings (the notebooks' 64) run [`READ_EVERY`] to a
//! launch instead (`MiniBatch::step_group`, one block; bit for bit the same steps): the
//! batch loop hands each batch's rate over as it reaches it, and the group is launched at
//! the read that ends it. ml-latest-small's 1,418 batches an epoch (90% for training) at
//! batch 64 are then 23 launches (and 23 reads) instead of 4,254.
//!
//! [`Family::Embedding`]: crate::backend::Family::Embedding

use super::resident::Resident;
use super::trainer::{CudaTrainer, DeviceModel};
use crate::backend::{EpochResult, EpochTask, ModelSpec, Report};
use crate::config::OptimizerKind;
use recpipe_cuda::buf::{Purpose, check_fits};
use recpipe_cuda::mf::{MfShape, MfWeights, Tables};
use recpipe_cuda::minibatch::{FUSE_MAX_BATCH, MbConfig, MbOptimizer, MiniBatch};
use recpipe_cuda::{Accel, Error};
use std::sync::Arc;

/// Batches between reads of the losses (the cpu reports every 64 batches too).
pub const READ_EVERY: usize = 64;

/// The CUDA backend's mini-batch trainer.
pub type MiniBatchTrainer = CudaTrainer<MiniBatch>;

pub(super) fn optimizer(kind: OptimizerKind) -> MbOptimizer {
    match kind {
        OptimizerKind::Adam => MbOptimizer::Adam,
        OptimizerKind::AdamW => MbOptimizer::AdamW,
        OptimizerKind::Sgd => MbOptimizer::Sgd,
        OptimizerKind::SparseAdam => MbOptimizer::SparseAdam,
        OptimizerKind::Adagrad => MbOptimizer::Adagrad,
    }
}

/// The model of `spec` on `accel`, from the cpu's initial draws, after checking the device
/// can hold the tables, the optimizer state, the ratings and an epoch's plan.
pub fn trainer(accel: Arc<dyn Accel>, spec: &ModelSpec) -> Result<MiniBatchTrainer, Error> {
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
    Ok(CudaTrainer::new(Resident::new(accel), model, spec.y_range))
}

impl DeviceModel for MiniBatch {
    /// One epoch's launches; the losses are read back every READ_EVERY batches.
    fn epoch(
        &mut self,
        dev: &mut Resident,
        task: &EpochTask<'_>,
        report: Report<'_>,
    ) -> Result<EpochResult, Error> {
        let model = self;
        let data = dev.train(task.data)?;
        let plan = model.plan(task.data.user, task.data.item, task.order, task.batch_size)?;
        let n = plan.n_batches();
        let fuse = task.batch_size <= FUSE_MAX_BATCH;
        // The rates of the fused group not launched yet (batches read .. b).
        let mut lrs: Vec<f32> = Vec::with_capacity(READ_EVERY);
        let mut read = 0usize;
        let mut failed: Option<Error> = None;
        let result = task.batches(n, READ_EVERY).run(report, |b, lr| {
            let len = plan.batch_len(b);
            if failed.is_some() {
                return (0.0, len);
            }
            let end = (b + 1) % READ_EVERY == 0 || b + 1 == n;
            let stepped = if fuse {
                lrs.push(lr);
                if !end {
                    return (0.0, len);
                }
                let r = model.step_group(data, &plan, read, &lrs);
                lrs.clear();
                r
            } else {
                model.step(data, &plan, b, lr)
            };
            if let Err(e) = stepped {
                failed = Some(e);
                return (0.0, len);
            }
            if !end {
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

    fn shape(&self) -> MfShape {
        MiniBatch::shape(self)
    }

    fn tables(&self) -> Tables<'_> {
        MiniBatch::tables(self)
    }

    fn weights(&self) -> Result<MfWeights, Error> {
        MiniBatch::weights(self)
    }
}
