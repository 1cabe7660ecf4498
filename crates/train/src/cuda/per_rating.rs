//! `dot` / `dot_bias` with per-rating SGD or Adagrad on a CUDA device: the same rule as the
//! cpu's grid trainer (`cpu/grid.rs`: gather, predict, step both rows and biases, `l2` and
//! `weight_decay` on the touched rows, libmf's Adagrad sums from 1), Hogwild instead of
//! the grid's conflict-free blocks.
//!
//! The ratings are uploaded once per stage (again only if the data changes); each epoch
//! uploads its shuffled order and runs [`CHUNKS`] launches over consecutive slices of it,
//! each at its scheduled learning rate (the schedule counts ratings, as on the cpu), the
//! global bias stepped after each chunk by the chunk's mean gradient. Validation runs on
//! the device (the valid set is uploaded once), summed in a fixed order.

use super::Schedule;
use super::resident::Resident;
use super::trainer::{CudaTrainer, DeviceModel};
use crate::backend::{EpochResult, EpochTask, ModelSpec, Report};
use crate::batches::Batches;
use crate::config::OptimizerKind;
use recpipe_cuda::buf::{Buf, Purpose, check_fits};
use recpipe_cuda::mf::{MfModel, MfShape, MfWeights, SgdStep, Tables};
use recpipe_cuda::{Accel, Error, Launch};
use std::sync::Arc;

/// Launches per epoch: the cpu grid's sub-epoch count, so the learning-rate schedule steps
/// at the same points.
pub const CHUNKS: usize = crate::cpu::grid::GRID;

/// Adagrad's starting squared-gradient sum (libmf's, as on the cpu).
const ADAGRAD_G0: f32 = 1.0;

const ORDER: Purpose = Purpose {
    what: "the epoch order",
    setting: "the number of ratings (or use device = \"cpu\")",
};

/// Per-rating dot / dot_bias on a device.
pub struct PerRating {
    model: MfModel,
    reg: f32,
    y_range: Option<[f32; 2]>,
    schedule: Schedule,
    order: Option<Buf<u32>>,
}

/// The CUDA backend's per-rating trainer.
pub type PerRatingTrainer = CudaTrainer<PerRating>;

/// The model of `spec` on `accel`, from the same initial draws as the cpu trainers; the
/// device's free memory is checked against the whole run's needs first.
pub fn trainer(
    accel: Arc<dyn Accel>,
    spec: &ModelSpec,
    schedule: Schedule,
) -> Result<PerRatingTrainer, Error> {
    let cfg = &spec.cfg;
    let shape = super::shape_of(spec);
    shape.check().map_err(Error::Driver)?;
    let adagrad = cfg.optimizer == OptimizerKind::Adagrad;
    // A per-rating epoch is one step per training rating.
    let n_train = spec.expected_steps / cfg.epochs.max(1);
    check_fits(
        accel.as_ref(),
        shape.device_bytes(n_train, n_train / 4, adagrad),
        Purpose {
            what: "the model, the ratings and the epoch order",
            setting: "train.k (or use device = \"cpu\")",
        },
    )?;
    let w = super::initial_weights(spec);
    let model = MfModel::new(&accel, shape, &w, adagrad.then_some(ADAGRAD_G0))?;
    let model = PerRating {
        model,
        reg: 2.0 * cfg.l2 + cfg.weight_decay,
        y_range: spec.y_range,
        schedule,
        order: None,
    };
    Ok(CudaTrainer::new(Resident::new(accel), model, spec.y_range))
}

impl PerRating {
    fn launch_shape(&self, n: usize) -> Launch {
        match self.schedule {
            Schedule::Hogwild => self.model.hogwild(n),
            Schedule::Sequential => Launch::SEQUENTIAL,
        }
    }

    /// Uploads the epoch's order.
    fn stage_order(&mut self, dev: &Resident, order: &[u32]) -> Result<(), Error> {
        if self.order.as_ref().is_none_or(|o| o.len() != order.len()) {
            self.order = None;
            self.order = Some(Buf::zeros(&dev.accel, order.len(), ORDER)?);
        }
        self.order
            .as_ref()
            .expect("allocated above")
            .write(0, order)
    }
}

impl DeviceModel for PerRating {
    fn epoch(
        &mut self,
        dev: &mut Resident,
        task: &EpochTask<'_>,
        report: Report<'_>,
    ) -> Result<EpochResult, Error> {
        self.stage_order(dev, task.order)?;
        let data = dev.train(task.data)?;
        let n = task.order.len();
        let per = n.div_ceil(CHUNKS).max(1);
        let batches = Batches {
            n: CHUNKS,
            schedule: task.schedule,
            step0: task.step0,
            every: 1,
            steps_are_examples: true,
        };
        let order = self.order.as_ref().expect("staged above");
        let mut failed = None;
        let result = batches.run(report, |b, lr| {
            let range = (b * per).min(n)..((b + 1) * per).min(n);
            if failed.is_some() {
                return (0.0, range.len());
            }
            let step = SgdStep {
                lr,
                reg: self.reg,
                y_range: self.y_range,
            };
            let shape = self.launch_shape(range.len());
            match self
                .model
                .sgd_chunk(data, order, range.clone(), step, shape)
            {
                Ok(sse) => (sse, range.len()),
                Err(e) => {
                    failed = Some(e);
                    (0.0, range.len())
                }
            }
        });
        failed.map_or(Ok(result), Err)
    }

    fn shape(&self) -> MfShape {
        self.model.shape()
    }

    fn tables(&self) -> Tables<'_> {
        self.model.tables()
    }

    fn weights(&self) -> Result<MfWeights, Error> {
        self.model.weights()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Trainer;
    use crate::backend::RatingsView;
    use crate::config::{Config, InitKind, ModelKind};
    use crate::cpu::GridTrainer;
    use crate::schedule::Schedule as LrSchedule;
    use recpipe_cuda_harness::HostAccel;

    /// The kernel in one warp (the harness, sequential) and the cpu backend's per-rating rule
    /// (`cpu/grid.rs` `rate`) on the same ratings in the same order give the same updates,
    /// to fp32 rounding (their dot products sum in different orders), for sgd and Adagrad,
    /// dot and dot_bias, with and without the y_range squash.
    #[test]
    fn the_kernel_steps_as_the_cpu_rule_does() {
        let (n_users, n_items, n) = (12usize, 9usize, 300usize);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let user: Vec<u32> = (0..n).map(|_| (next() % n_users as u64) as u32).collect();
        let item: Vec<u32> = (0..n).map(|_| (next() % n_items as u64) as u32).collect();
        let rating: Vec<f32> = (0..n).map(|_| 1.0 + (next() % 9) as f32 / 2.0).collect();
        let data = RatingsView {
            user: &user,
            item: &item,
            rating: &rating,
        };
        let order: Vec<u32> = (0..n as u32).rev().collect();
        for (kind, optimizer, y_range, k) in [
            (ModelKind::DotBias, OptimizerKind::Sgd, Some([0.5, 5.5]), 5),
            (ModelKind::Dot, OptimizerKind::Sgd, None, 33),
            (ModelKind::DotBias, OptimizerKind::Adagrad, None, 8),
            (ModelKind::Dot, OptimizerKind::Adagrad, Some([0.5, 5.5]), 16),
        ] {
            let cfg = Config {
                model: kind,
                optimizer,
                momentum: 0.0,
                batch_size: 1,
                epochs: 1,
                lr: 0.05,
                l2: 0.01,
                weight_decay: 0.02,
                init: InitKind::Normal,
                init_scale: Some(0.3),
                ..Config::default()
            };
            let spec = ModelSpec {
                cfg: cfg.clone(),
                kind,
                n_users,
                n_items,
                k,
                global_mean: 3.0,
                y_range,
                classes: None,
                item_features: None,
                expected_steps: n,
            };
            let mut cpu = GridTrainer::new(&spec, false);
            cpu.sequential_epoch(data, &order, CHUNKS, cfg.lr);
            let accel: Arc<dyn Accel> = Arc::new(HostAccel::new());
            let mut dev = trainer(accel, &spec, Schedule::Sequential).unwrap();
            let lr = LrSchedule::new(&cfg, n);
            let task = EpochTask {
                data,
                order: &order,
                batch_size: 1,
                schedule: &lr,
                step0: 0,
            };
            dev.train_epoch(task, &mut |_, _| {}).unwrap();
            assert_eq!(dev.failure(), None);
            let (a, b) = (cpu.tensors(), dev.tensors());
            assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
            for (name, t) in &a {
                let worst = t
                    .data
                    .iter()
                    .zip(&b[name].data)
                    .map(|(x, y)| (x - y).abs() / x.abs().max(1e-2))
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 1e-4,
                    "{kind:?} {optimizer:?} {name}: {worst:e} apart"
                );
            }
        }
    }
}
