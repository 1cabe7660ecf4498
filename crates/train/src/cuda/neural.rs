//! `mlp`, `hybrid` and `classifier` on a CUDA device ([`Family::Neural`]): the cpu
//! NeuralTrainer's model, step and checkpoint, with the step as recpipe-cuda's `dense`
//! launches. The starting weights are the cpu trainer's own (one is built for them, and
//! kept to name the checkpoint's tensors exactly as the cpu does); the dropout masks are
//! drawn on the host from the cpu's stream in the cpu's order and uploaded for
//! [`MASK_GROUP`] batches at a time, so both backends train the same model and agree to
//! fp32 rounding (the matrix products sum in another order).
//!
//! This trainer implements `Trainer` itself rather than the embedding models'
//! `DeviceModel`, whose tables and scoring are dot / dot_bias's.
//!
//! [`Family::Neural`]: crate::backend::Family::Neural

use super::minibatch::{READ_EVERY, optimizer};
use super::resident::Resident;
use crate::backend::{EpochResult, EpochTask, Metrics, ModelSpec, RatingsView, Report, Trainer};
use crate::config::ModelKind;
use crate::cpu::{Linear, NeuralTrainer};
use crate::rng::Rng;
use recpipe_core::math::{Scored, nearest_class, softmax_expectation, squash};
use recpipe_core::model::Tensor;
use recpipe_cuda::buf::{Purpose, check_fits};
use recpipe_cuda::dense::{
    DenseLayer, DenseNet, MASK_GROUP, NetShape, NetWeights, Output, pack_masks,
};
use recpipe_cuda::minibatch::MbConfig;
use recpipe_cuda::{Accel, Error};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The CUDA backend's neural trainer.
pub struct NeuralCudaTrainer {
    dev: Resident,
    net: DenseNet,
    kind: ModelKind,
    y_range: Option<[f32; 2]>,
    classes: Vec<f32>,
    /// The dropout stream (the cpu trainer's stream 3).
    rng: Rng,
    /// The cpu trainer the weights are loaded into to name the checkpoint's tensors.
    names: Mutex<NeuralTrainer>,
    /// The weights as downloaded since the last epoch (`finite`, then `tensors`).
    host: Mutex<Option<Arc<NetWeights>>>,
}

fn layer(l: &Linear) -> DenseLayer {
    DenseLayer {
        din: l.din,
        dout: l.dout,
        w: l.w,
        b: l.b,
        bn: l.bn,
        relu: l.relu,
        dropout: l.dropout,
    }
}

/// The model of `spec` on `accel`, starting from the cpu trainer's draws, after checking
/// the device holds it, its ratings and the epoch's plan.
pub fn trainer(accel: Arc<dyn Accel>, spec: &ModelSpec) -> Result<NeuralCudaTrainer, Error> {
    let cfg = &spec.cfg;
    let cpu = NeuralTrainer::new(spec);
    let net = cpu.net();
    let classifier = spec.kind == ModelKind::Classifier;
    let classes = spec.classes.clone().unwrap_or_default();
    let (params, stats) = cpu.dense_parts();
    let shape = NetShape {
        n_users: spec.n_users,
        n_items: spec.n_items,
        k: spec.k,
        product: cfg.join == crate::config::Join::Product,
        feat_width: spec.item_features.as_ref().map_or(0, |(w, _)| *w),
        tower: net.tower.iter().map(layer).collect(),
        layers: net.layers.iter().map(layer).collect(),
        input_dropout: net.input_dropout,
        n_params: params.len(),
        n_stats: stats.len(),
        output: if classifier {
            Output::Classes(classes.clone())
        } else {
            Output::Regression(spec.y_range)
        },
    };
    shape.check().map_err(Error::Driver)?;
    let opt = optimizer(cfg.optimizer);
    let n_train = (spec.expected_steps / cfg.epochs.max(1)) * cfg.batch_size;
    check_fits(
        accel.as_ref(),
        shape.device_bytes(opt.n_state(), cfg.batch_size, spec.expected_steps, n_train),
        Purpose {
            what: "the neural model, its optimizer state, the ratings and the epoch plan",
            setting: "train.batch_size or train.hidden (or use device = \"cpu\")",
        },
    )?;
    let (users, items) = cpu.tables();
    let w = NetWeights {
        users,
        items,
        params: params.to_vec(),
        stats: stats.to_vec(),
    };
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
    let features = spec.item_features.as_ref().map(|(_, f)| &f[..]);
    let dense = DenseNet::new(
        &accel,
        shape,
        &w,
        features,
        mb,
        cfg.batch_size,
        spec.expected_steps,
    )?;
    Ok(NeuralCudaTrainer {
        dev: Resident::new(accel),
        net: dense,
        kind: spec.kind,
        y_range: if classifier { None } else { spec.y_range },
        classes,
        rng: Rng::stream(cfg.seed, 3),
        names: Mutex::new(cpu),
        host: Mutex::new(None),
    })
}

impl NeuralCudaTrainer {
    /// One epoch's launches: masks uploaded per group of batches, losses read every
    /// READ_EVERY batches (as the cpu reports).
    fn epoch(&mut self, task: &EpochTask<'_>, report: Report<'_>) -> Result<EpochResult, Error> {
        let data = self.dev.train(task.data)?;
        let net = &mut self.net;
        let plan = net.plan(task.data.user, task.data.item, task.order, task.batch_size)?;
        let n = plan.n_batches();
        let dropout = !net.shape().mask_sites().is_empty();
        let max_batch = net.max_batch();
        let rng = &mut self.rng;
        let mut words = Vec::new();
        let mut read = 0usize;
        let mut failed: Option<Error> = None;
        let result = task.batches(n, READ_EVERY).run(report, |b, lr| {
            let len = plan.batch_len(b);
            if failed.is_some() {
                return (0.0, len);
            }
            let mut go = || -> Result<Option<f64>, Error> {
                if dropout && b % MASK_GROUP == 0 {
                    words.clear();
                    for g in b..(b + MASK_GROUP).min(n) {
                        let rows = plan.batch_len(g);
                        pack_masks(net.shape(), max_batch, rows, |p| rng.f32() < p, &mut words);
                    }
                    net.upload_masks(&words)?;
                }
                net.step(data, &plan, b, lr, dropout.then_some(b % MASK_GROUP))?;
                if (b + 1) % READ_EVERY != 0 && b + 1 != n {
                    return Ok(None);
                }
                let sse = plan.batch_sse()?;
                let loss: f64 = sse[read..=b].iter().sum();
                read = b + 1;
                Ok(Some(loss))
            };
            match go() {
                Ok(loss) => (loss.unwrap_or(0.0), len),
                Err(e) => {
                    failed = Some(e);
                    (0.0, len)
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        net.end_epoch()?;
        Ok(result)
    }

    /// The output layer for the pairs (NaN, and the error recorded, when the device fails).
    fn outputs(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        self.net.outputs(users, items).unwrap_or_else(|e| {
            self.dev.fail(e);
            vec![f32::NAN; users.len() * self.net.shape().n_out()]
        })
    }

    /// The weights (downloaded once per epoch), or the error recorded and None.
    fn downloaded(&self) -> Option<Arc<NetWeights>> {
        let mut host = self.host.lock().unwrap();
        if host.is_none() {
            *host = Some(Arc::new(
                self.net.weights().map_err(|e| self.dev.fail(e)).ok()?,
            ));
        }
        host.clone()
    }
}

impl Trainer for NeuralCudaTrainer {
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        *self.host.get_mut().unwrap() = None;
        self.epoch(&task, report).unwrap_or_else(|e| {
            self.dev.fail(e);
            Ok(0.0)
        })
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        let z = self.outputs(users, items);
        if self.kind == ModelKind::Classifier {
            let c = self.classes.len();
            for (o, row) in out.iter_mut().zip(z.chunks(c)) {
                *o = softmax_expectation(row, &self.classes).0;
            }
        } else {
            for (o, &v) in out.iter_mut().zip(&z) {
                *o = squash(v, self.y_range);
            }
        }
    }

    fn evaluate(&self, data: RatingsView<'_>) -> Metrics {
        if data.is_empty() {
            return Metrics::default();
        }
        let z = self.outputs(data.user, data.item);
        let mut pred = vec![0.0; data.len()];
        let mut hits = 0usize;
        if self.kind == ModelKind::Classifier {
            let c = self.classes.len();
            for (r, row) in z.chunks(c).enumerate() {
                let (ev, arg) = softmax_expectation(row, &self.classes);
                pred[r] = ev;
                hits += usize::from(arg == nearest_class(&self.classes, data.rating[r]));
            }
        } else {
            for (p, &v) in pred.iter_mut().zip(&z) {
                *p = squash(v, self.y_range);
            }
        }
        let mut m = Metrics::of(Scored {
            pred: &pred,
            truth: data.rating,
        });
        if self.kind == ModelKind::Classifier {
            m.accuracy = Some(hits as f64 / data.len() as f64);
        }
        m
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        let Some(w) = self.downloaded() else {
            return BTreeMap::new();
        };
        let mut names = self.names.lock().unwrap();
        names.load(&w.users, &w.items, &w.params, &w.stats);
        names.tensors()
    }

    fn finite(&self) -> bool {
        self.downloaded().is_some_and(|w| {
            [&w.users, &w.items, &w.params, &w.stats]
                .iter()
                .all(|v| v.iter().all(|x| x.is_finite()))
        })
    }

    fn failure(&self) -> Option<String> {
        self.dev.failure()
    }
}
