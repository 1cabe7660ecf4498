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
use crate::backend::{EpochResult, EpochTask, Metrics, ModelSpec, RatingsView, Report, Trainer};
use crate::batches::Batches;
use crate::config::{ModelKind, OptimizerKind};
use crate::init;
use crate::rng::Rng;
use recpipe_core::math::unsquash;
use recpipe_core::model::{Tensor, tensor};
use recpipe_cuda::buf::{Buf, Purpose, check_fits};
use recpipe_cuda::mf::{DeviceRatings, MfModel, MfShape, MfWeights, SgdStep};
use recpipe_cuda::{Accel, Error, Launch};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Launches per epoch: the cpu grid's sub-epoch count, so the learning-rate schedule steps
/// at the same points.
pub const CHUNKS: usize = crate::cpu::grid::GRID;

/// Adagrad's starting squared-gradient sum (libmf's, as on the cpu).
const ADAGRAD_G0: f32 = 1.0;

const RATINGS: Purpose = Purpose {
    what: "the training ratings",
    setting: "the number of ratings (or use device = \"cpu\")",
};
const VALID: Purpose = Purpose {
    what: "the validation ratings",
    setting: "the valid fraction (or use device = \"cpu\")",
};

/// Uploaded ratings and which host data they came from (pointer, length).
type Resident = ((usize, usize), DeviceRatings);

fn source(d: RatingsView<'_>) -> (usize, usize) {
    (d.user.as_ptr() as usize, d.len())
}

pub struct PerRatingTrainer {
    accel: Arc<dyn Accel>,
    model: MfModel,
    y_range: Option<[f32; 2]>,
    reg: f32,
    schedule: Schedule,
    train: Option<Resident>,
    order: Option<Buf<u32>>,
    valid: Mutex<Option<Resident>>,
    /// The first device error, which ends training (see `Trainer::failure`).
    failed: Mutex<Option<String>>,
}

impl PerRatingTrainer {
    /// The model of `spec` on `accel`, from the same initial draws as the cpu trainers; the
    /// device's free memory is checked against the whole run's needs first.
    pub fn new(accel: Arc<dyn Accel>, spec: &ModelSpec, schedule: Schedule) -> Result<Self, Error> {
        let cfg = &spec.cfg;
        let bias = spec.kind == ModelKind::DotBias;
        let shape = MfShape {
            n_users: spec.n_users,
            n_items: spec.n_items,
            k: spec.k,
            bias,
        };
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
        let mut rng = Rng::stream(cfg.seed, 1);
        let mut table = |n: usize| {
            let (w, b) = init::table(cfg, n, spec.k, bias, &mut rng);
            interleave(&w, &b, n, spec.k)
        };
        let p = table(spec.n_users);
        let q = table(spec.n_items);
        let global = if bias {
            unsquash(spec.global_mean, spec.y_range)
        } else {
            0.0
        };
        let w = MfWeights { p, q, global };
        let model = MfModel::new(&accel, shape, &w, adagrad.then_some(ADAGRAD_G0))?;
        Ok(PerRatingTrainer {
            accel,
            model,
            y_range: spec.y_range,
            reg: 2.0 * cfg.l2 + cfg.weight_decay,
            schedule,
            train: None,
            order: None,
            valid: Mutex::new(None),
            failed: Mutex::new(None),
        })
    }

    fn fail(&self, e: Error) {
        self.failed.lock().unwrap().get_or_insert(e.to_string());
    }

    fn launch_shape(&self, n: usize) -> Launch {
        match self.schedule {
            Schedule::Hogwild => self.model.hogwild(n),
            Schedule::Sequential => Launch::SEQUENTIAL,
        }
    }

    /// Uploads the epoch's data (when new) and order.
    fn stage(&mut self, task: &EpochTask<'_>) -> Result<(), Error> {
        let data = task.data;
        if self.train.as_ref().is_none_or(|(s, _)| *s != source(data)) {
            self.train = None;
            let d =
                DeviceRatings::upload(&self.accel, (data.user, data.item, data.rating), RATINGS)?;
            self.train = Some((source(data), d));
        }
        if self
            .order
            .as_ref()
            .is_none_or(|o| o.len() != task.order.len())
        {
            self.order = None;
            self.order = Some(Buf::zeros(&self.accel, task.order.len(), RATINGS)?);
        }
        self.order
            .as_ref()
            .expect("allocated above")
            .write(0, task.order)
    }

    fn valid_errors(&self, data: RatingsView<'_>) -> Result<(f64, f64), Error> {
        let mut valid = self.valid.lock().unwrap();
        if valid.as_ref().is_none_or(|(s, _)| *s != source(data)) {
            *valid = None;
            let d = DeviceRatings::upload(&self.accel, (data.user, data.item, data.rating), VALID)?;
            *valid = Some((source(data), d));
        }
        let (_, d) = valid.as_ref().expect("uploaded above");
        self.model.errors(d, self.y_range)
    }
}

/// Rows of `k` factors then (when `b` is not empty) the bias: the kernels' layout.
fn interleave(w: &[f32], b: &[f32], n: usize, k: usize) -> Vec<f32> {
    let stride = k + usize::from(!b.is_empty());
    let mut out = vec![0.0; n * stride];
    for r in 0..n {
        out[r * stride..r * stride + k].copy_from_slice(&w[r * k..(r + 1) * k]);
        if let Some(&x) = b.get(r) {
            out[r * stride + k] = x;
        }
    }
    out
}

impl Trainer for PerRatingTrainer {
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        if let Err(e) = self.stage(&task) {
            self.fail(e);
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
        let (_, data) = this.train.as_ref().expect("staged above");
        let order = this.order.as_ref().expect("staged above");
        batches.run(report, |b, lr| {
            let range = (b * per).min(n)..((b + 1) * per).min(n);
            if this.failed.lock().unwrap().is_some() {
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
                    this.fail(e);
                    (0.0, range.len())
                }
            }
        })
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        if let Err(e) = self.model.predict(users, items, self.y_range, out) {
            out.fill(f32::NAN);
            self.fail(e);
        }
    }

    fn evaluate(&self, data: RatingsView<'_>) -> Metrics {
        if data.is_empty() {
            return Metrics::default();
        }
        match self.valid_errors(data) {
            Ok((sse, sae)) => Metrics {
                rmse: (sse / data.len() as f64).sqrt(),
                mae: sae / data.len() as f64,
                accuracy: None,
            },
            Err(e) => {
                self.fail(e);
                Metrics {
                    rmse: f64::NAN,
                    mae: f64::NAN,
                    accuracy: None,
                }
            }
        }
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        let shape = self.model.shape();
        let w = match self.model.weights() {
            Ok(w) => w,
            Err(e) => {
                self.fail(e);
                return BTreeMap::new();
            }
        };
        tensors_of(shape, &w)
    }

    fn finite(&self) -> bool {
        // One download of the tables per epoch: the cpu trainers scan theirs too.
        match self.model.weights() {
            Ok(w) => w.p.iter().chain(&w.q).all(|x| x.is_finite()) && w.global.is_finite(),
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap().clone()
    }
}

/// The checkpoint's tensors of device-layout weights.
pub(crate) fn tensors_of(shape: MfShape, w: &MfWeights) -> BTreeMap<String, Tensor> {
    let (k, s) = (shape.k, shape.stride());
    let factors = |t: &[f32], n: usize| {
        let data = (0..n)
            .flat_map(|r| t[r * s..r * s + k].iter().copied())
            .collect();
        Tensor::new(vec![n, k], data)
    };
    let biases = |t: &[f32], n: usize| Tensor::new(vec![n], (0..n).map(|r| t[r * s + k]).collect());
    let mut m = BTreeMap::new();
    m.insert(
        tensor::USER_FACTORS.to_string(),
        factors(&w.p, shape.n_users),
    );
    m.insert(
        tensor::ITEM_FACTORS.to_string(),
        factors(&w.q, shape.n_items),
    );
    if shape.bias {
        m.insert(tensor::USER_BIAS.to_string(), biases(&w.p, shape.n_users));
        m.insert(tensor::ITEM_BIAS.to_string(), biases(&w.q, shape.n_items));
        m.insert(
            tensor::GLOBAL_BIAS.to_string(),
            Tensor::new(vec![1], vec![w.global]),
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_interleave_factors_and_bias() {
        let w = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            interleave(&w, &[9.0, 8.0], 2, 2),
            [1.0, 2.0, 9.0, 3.0, 4.0, 8.0]
        );
        assert_eq!(interleave(&w, &[], 2, 2), w);
        let shape = MfShape {
            n_users: 2,
            n_items: 1,
            k: 2,
            bias: true,
        };
        let t = tensors_of(
            shape,
            &MfWeights {
                p: interleave(&w, &[9.0, 8.0], 2, 2),
                q: vec![5.0, 6.0, 7.0],
                global: 0.5,
            },
        );
        assert_eq!(t[tensor::USER_FACTORS].data, w);
        assert_eq!(t[tensor::USER_BIAS].data, [9.0, 8.0]);
        assert_eq!(t[tensor::ITEM_BIAS].data, [7.0]);
        assert_eq!(t[tensor::GLOBAL_BIAS].data, [0.5]);
    }
}
