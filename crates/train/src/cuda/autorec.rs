//! I-AutoRec on a CUDA device ([`Family::AutoRec`]): the cpu AutoRecTrainer (`cpu/autorec.rs`)
//! as recpipe-cuda's `autorec` launches — the same initial draws (stream 1 for `[V | W]`,
//! b at the unsquashed mean), the same item order each epoch (stream 2's shuffle of the
//! rated items), `batch_size` items a step, RowOpt with `weight_decay` on the users' rows
//! and without on b and μ. On the harness device it matches the cpu backend to fp32
//! rounding through the whole epoch loop (`train/tests/cuda_autorec.rs`).
//!
//! The training ratings go to the device once, item-major, at the first epoch (as the cpu
//! keeps its first epoch's grouping); each epoch uploads its plan in one copy and a batch is
//! three launches and no copy. The batch losses stay on the device and are read every
//! [`READ_EVERY`] batches, when the cpu reports its running loss. After each epoch the model
//! is folded on the device into the checkpoint's `dot_bias` form (user factors W, user bias
//! b, item factors the items' codes, zero item and global biases, the cpu's tensor names),
//! which validation and predictions score, so evaluate and export read it unchanged.
//!
//! [`Family::AutoRec`]: crate::backend::Family::AutoRec

use super::resident::Resident;
use super::trainer::{CudaTrainer, DeviceModel};
use crate::backend::{EpochResult, EpochTask, ModelSpec, Report};
use crate::init;
use crate::rng::Rng;
use recpipe_core::math::unsquash;
use recpipe_cuda::autorec::{ArConfig, ArShape, ArWeights, AutoRec, ItemCsr};
use recpipe_cuda::buf::{Purpose, check_fits};
use recpipe_cuda::mf::{MfShape, MfWeights, Tables};
use recpipe_cuda::{Accel, Error};
use std::sync::Arc;

/// Batches between reads of the losses (the cpu autorec trainer reports every 16).
pub const READ_EVERY: usize = 16;

/// The device model and what the cpu trainer keeps beside its tables.
pub struct AutoRecDevice {
    model: AutoRec,
    /// The first epoch's training ratings, item-major.
    csr: Option<ItemCsr>,
    /// The epochs' item shuffles (the cpu's stream 2).
    rng: Rng,
}

/// The CUDA backend's I-AutoRec trainer.
pub type AutoRecCudaTrainer = CudaTrainer<AutoRecDevice>;

/// The model of `spec` on `accel`, from the cpu's initial draws, after checking that the
/// device holds the weights, the optimizer state and a batch's scratch (the ratings and the
/// epoch plan are checked when they are uploaded).
pub fn trainer(accel: Arc<dyn Accel>, spec: &ModelSpec) -> Result<AutoRecCudaTrainer, Error> {
    let cfg = &spec.cfg;
    let k = spec.k;
    let shape = ArShape {
        n_users: spec.n_users,
        n_items: spec.n_items,
        k,
    };
    shape.check().map_err(Error::Driver)?;
    let opt = super::minibatch::optimizer(cfg.optimizer);
    check_fits(
        accel.as_ref(),
        shape.device_bytes(opt, spec.expected_steps, (0, 0), cfg.batch_size),
        Purpose {
            what: "the autorec weights, their optimizer state and a batch's scratch",
            setting: "train.k (or use device = \"cpu\")",
        },
    )?;
    let mut rng = Rng::stream(cfg.seed, 1);
    let (users, _) = init::table(cfg, spec.n_users, 2 * k, false, &mut rng);
    let start = unsquash(spec.global_mean, spec.y_range);
    let w = ArWeights {
        users,
        bias: vec![start; spec.n_users],
        mu: vec![0.0; k],
    };
    let ar = ArConfig {
        optimizer: opt,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        y_range: spec.y_range,
    };
    let model = AutoRec::new(
        &accel,
        shape,
        &w,
        ar,
        cfg.batch_size.min(spec.n_items.max(1)),
        spec.expected_steps,
    )?;
    let dev = AutoRecDevice {
        model,
        csr: None,
        rng: Rng::stream(cfg.seed, 2),
    };
    Ok(CudaTrainer::new(Resident::new(accel), dev, spec.y_range))
}

impl DeviceModel for AutoRecDevice {
    /// An epoch visits every rated item once, in a fresh order, `batch_size` items a step;
    /// `order` (over ratings) does not apply.
    fn epoch(
        &mut self,
        dev: &mut Resident,
        task: &EpochTask<'_>,
        report: Report<'_>,
    ) -> Result<EpochResult, Error> {
        if self.csr.is_none() {
            let d = task.data;
            let n_items = self.model.shape().n_items;
            self.csr = Some(ItemCsr::upload(
                &dev.accel,
                (d.user, d.item, d.rating),
                n_items,
            )?);
        }
        let csr = self.csr.as_ref().expect("uploaded above");
        let mut items = csr.rated_items();
        self.rng.shuffle(&mut items);
        let batch = task.batch_size.min(self.model.shape().n_items.max(1));
        let plan = self.model.plan(csr, &items, batch)?;
        let n = plan.n_batches();
        let model = &mut self.model;
        let mut read = 0usize;
        let mut failed: Option<Error> = None;
        let result = task.batches(n, READ_EVERY).run(report, |b, lr| {
            let len = plan.batch_len(b);
            if failed.is_some() {
                return (0.0, len);
            }
            if let Err(e) = model.step(csr, &plan, b, lr) {
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
        let mean = match result {
            Ok(m) => m,
            // As the cpu: a diverged epoch is not flushed.
            Err(d) => return Ok(Err(d)),
        };
        model.end_epoch(csr)?;
        Ok(Ok(mean))
    }

    fn shape(&self) -> MfShape {
        self.model.shape().folded()
    }

    fn tables(&self) -> Tables<'_> {
        self.model.tables()
    }

    fn weights(&self) -> Result<MfWeights, Error> {
        self.model.folded()
    }
}
