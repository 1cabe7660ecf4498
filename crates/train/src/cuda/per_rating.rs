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
use crate::backend::{EpochResult, EpochTask, Metrics, ModelSpec, RatingsView, Report, Trainer};
use crate::batches::Batches;
use crate::config::OptimizerKind;
use recpipe_core::model::Tensor;
use recpipe_cuda::buf::{Buf, Purpose, check_fits};
use recpipe_cuda::mf::{MfModel, SgdStep};
use recpipe_cuda::{Accel, Error, Launch};
use std::collections::BTreeMap;
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

pub struct PerRatingTrainer {
    dev: Resident,
    model: MfModel,
    y_range: Option<[f32; 2]>,
    reg: f32,
    schedule: Schedule,
    order: Option<Buf<u32>>,
}

impl PerRatingTrainer {
    /// The model of `spec` on `accel`, from the same initial draws as the cpu trainers; the
    /// device's free memory is checked against the whole run's needs first.
    pub fn new(accel: Arc<dyn Accel>, spec: &ModelSpec, schedule: Schedule) -> Result<Self, Error> {
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
        Ok(PerRatingTrainer {
            dev: Resident::new(accel),
            model,
            y_range: spec.y_range,
            reg: 2.0 * cfg.l2 + cfg.weight_decay,
            schedule,
            order: None,
        })
    }

    fn launch_shape(&self, n: usize) -> Launch {
        match self.schedule {
            Schedule::Hogwild => self.model.hogwild(n),
            Schedule::Sequential => Launch::SEQUENTIAL,
        }
    }

    /// Uploads the epoch's data (when new) and order.
    fn stage(&mut self, task: &EpochTask<'_>) -> Result<(), Error> {
        self.dev.train(task.data)?;
        if self
            .order
            .as_ref()
            .is_none_or(|o| o.len() != task.order.len())
        {
            self.order = None;
            self.order = Some(Buf::zeros(&self.dev.accel, task.order.len(), ORDER)?);
        }
        self.order
            .as_ref()
            .expect("allocated above")
            .write(0, task.order)
    }
}

impl Trainer for PerRatingTrainer {
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        if let Err(e) = self.stage(&task) {
            self.dev.fail(e);
            return Ok(0.0);
        }
        let n = task.order.len();
        let per = n.div_ceil(CHUNKS).max(1);
        let batches = Batches {
            n: CHUNKS,
            schedule: task.schedule,
            step0: task.step0,
            every: 1,
            steps_are_examples: true,
        };
        let (reg, y_range) = (self.reg, self.y_range);
        let this = &*self;
        let data = this.dev.uploaded().expect("staged above");
        let order = this.order.as_ref().expect("staged above");
        batches.run(report, |b, lr| {
            let range = (b * per).min(n)..((b + 1) * per).min(n);
            if this.dev.failure().is_some() {
                return (0.0, range.len());
            }
            let step = SgdStep { lr, reg, y_range };
            let shape = this.launch_shape(range.len());
            match this
                .model
                .sgd_chunk(data, order, range.clone(), step, shape)
            {
                Ok(sse) => (sse, range.len()),
                Err(e) => {
                    this.dev.fail(e);
                    (0.0, range.len())
                }
            }
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
        // One download of the tables per epoch: the cpu trainers scan theirs too.
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
