//! The ranking models (`ease`, `ials`, `bpr`): trained on implicit interactions rather than
//! rating values, scored by how they order a user's unseen items.
//!
//! This module is the seam they share: [`Interactions`] (the train split as per-user item
//! lists, `positive_threshold` applied), [`Factors`] (what an iterative model hands back),
//! [`Iterative`] (one epoch at a time), the dispatch from [`ModelKind`] to a fit, the history
//! (train loss and valid precision@10 per epoch) and the checkpoint: a factorization
//! (`user_factors`/`item_factors`, optional `item_bias`) for `ials` and `bpr`, an item-item
//! matrix for `ease`. The rating models' epoch loop (valid RMSE, divergence against the
//! global mean) does not apply; instead [`monitor`] compares the model's precision@10 with
//! most-popular's and the summary warns when the model ranks below it.

pub(crate) mod bpr;
pub mod ease;
mod ease_cuda;
mod ials;
mod ials_cuda;
mod monitor;

use crate::TrainResult;
use crate::backend::Device;
use crate::config::{Confidence, Config, ModelKind};
use crate::error::{Result, TrainError};
use crate::history::{Epoch, History};
use monitor::Monitor;
use recpipe_core::csr::Csr;
use recpipe_core::model::{Checkpoint, ModelMeta, Tensor, tensor};
use recpipe_core::{Progress, Ratings};
use recpipe_cuda::Accel;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub use monitor::RankCheck;

/// The train split as implicit feedback: each user's distinct positive items, ascending.
#[derive(Debug, Clone)]
pub struct Interactions {
    /// Items of user `u` at `items.row(u)`, ascending, no duplicates.
    pub items: Csr<u32>,
    pub n_users: usize,
    pub n_items: usize,
}

impl Interactions {
    /// The rows of `r` with rating ≥ `threshold` (every row without one) on a `n_users` ×
    /// `n_items` grid, and each kept interaction's rating in the same order (user by user,
    /// items ascending; a pair given twice keeps its highest rating).
    pub fn from_ratings(
        r: &Ratings,
        n_users: usize,
        n_items: usize,
        threshold: Option<f32>,
    ) -> (Interactions, Vec<f32>) {
        let keep = |row: usize| threshold.is_none_or(|t| r.rating[row] >= t);
        let pairs = (0..r.len())
            .filter(move |&row| keep(row))
            .map(|row| (r.user[row], (r.item[row], r.rating[row])));
        let mut grouped = Csr::group(n_users, pairs);
        grouped.sort_rows_by_key(|&(i, _)| i);
        let (mut users, mut items, mut ratings) = (Vec::new(), Vec::new(), Vec::new());
        for u in 0..n_users as u32 {
            let mut last: Option<u32> = None;
            for &(i, x) in grouped.row(u) {
                if last == Some(i) {
                    let r = ratings.last_mut().expect("a previous pair");
                    *r = f32::max(*r, x);
                    continue;
                }
                last = Some(i);
                users.push(u);
                items.push(i);
                ratings.push(x);
            }
        }
        let csr = Csr::group(n_users, users.iter().copied().zip(items.iter().copied()));
        (
            Interactions {
                items: csr,
                n_users,
                n_items,
            },
            ratings,
        )
    }

    /// Number of interactions.
    pub fn len(&self) -> usize {
        (0..self.n_users as u32)
            .map(|u| self.items.row(u).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Interactions per item (most-popular's scores).
    pub fn popularity(&self) -> Vec<u32> {
        let mut n = vec![0u32; self.n_items];
        for u in 0..self.n_users as u32 {
            for &i in self.items.row(u) {
                n[i as usize] += 1;
            }
        }
        n
    }
}

/// A trained factorization: score(u, i) = user[u]·item[i] (+ item_bias[i]).
#[derive(Debug, Clone, PartialEq)]
pub struct Factors {
    pub k: usize,
    /// n_users × k, row-major.
    pub user: Vec<f32>,
    /// n_items × k, row-major.
    pub item: Vec<f32>,
    pub item_bias: Option<Vec<f32>>,
}

impl Factors {
    /// True when every weight is a finite number.
    pub fn finite(&self) -> bool {
        self.user
            .iter()
            .chain(&self.item)
            .chain(self.item_bias.iter().flatten())
            .all(|v| v.is_finite())
    }
}

/// An iterative ranking model (`ials`, `bpr`) being trained, one epoch per call.
pub trait Iterative {
    /// One epoch over the interactions; returns its train loss (the model's own objective).
    fn epoch(&mut self) -> f64;
    /// The current factors, in id order.
    fn factors(&self) -> Factors;
    /// A device error that cut the last epoch short (its loss is then NaN); the cpu's
    /// models never fail.
    fn failure(&mut self) -> Option<TrainError> {
        None
    }
}

/// Where a ranking model trains: the cpu, or a CUDA device (a GPU, or the harness's
/// host-thread stand-in for one in tests) recorded as `Device`.
#[derive(Debug, Clone)]
pub enum On {
    Cpu,
    Cuda(Arc<dyn Accel>, Device),
}

impl On {
    /// The device the history and the checkpoint name.
    pub fn device(&self) -> Device {
        match self {
            On::Cpu => Device::Cpu,
            On::Cuda(_, d) => *d,
        }
    }
}

/// What a fit produced.
enum Fitted {
    Factors(Factors),
    /// (n_items × n_items) row-major item-item weights.
    ItemItem(Vec<f32>),
}

/// The iterative model `cfg` asks for, at its seeded start. `ratings` holds each
/// interaction's rating in `data`'s order. Each model checks its memory need here.
fn iterative<'a>(
    cfg: &Config,
    data: &'a Interactions,
    ratings: &'a [f32],
    on: &On,
) -> Result<Box<dyn Iterative + 'a>> {
    match cfg.model {
        ModelKind::Ials => {
            let rating = (cfg.confidence() == Confidence::Rating).then_some(ratings);
            let p = ials::IalsParams::from_config(cfg);
            match on {
                On::Cpu => Ok(Box::new(ials::Ials::new(data, rating, p)?)),
                On::Cuda(accel, device) => Ok(Box::new(ials_cuda::IalsCuda::new(
                    accel, *device, data, rating, p,
                )?)),
            }
        }
        ModelKind::Bpr => {
            let p = bpr::BprParams::from_config(cfg);
            match on {
                On::Cpu => Ok(Box::new(bpr::Bpr::new(data, p)?)),
                On::Cuda(accel, device) => Ok(Box::new(crate::cuda::bpr::CudaBpr::new(
                    accel, *device, data, p,
                )?)),
            }
        }
        other => Err(TrainError::config(
            "model",
            format!("\"{other}\" is not an iterative ranking model"),
        )),
    }
}

/// Trains the ranking model of `cfg` on `train`'s interactions, monitoring precision@10 on
/// `valid` (may be empty: then on the train fold).
pub fn train(
    cfg: &Config,
    train: &Ratings,
    valid: &Ratings,
    progress: &Progress,
) -> Result<TrainResult> {
    cfg.validate()?;
    let on = match crate::device::select(cfg)? {
        Device::Cpu => On::Cpu,
        device @ Device::Cuda(n) => {
            let gpu =
                recpipe_cuda::gpu::Gpu::open(n).map_err(|e| crate::cuda::cuda_error(device, e))?;
            tracing::info!("training on {}", gpu.describe());
            On::Cuda(gpu, device)
        }
    };
    train_on(cfg, train, valid, on, progress)
}

/// [`train`] on a given device (tests run the CUDA path on recpipe-cuda-harness's
/// host-thread device).
pub fn train_on(
    cfg: &Config,
    train: &Ratings,
    valid: &Ratings,
    on: On,
    progress: &Progress,
) -> Result<TrainResult> {
    cfg.validate()?;
    let n_users = train.n_users.max(valid.n_users) as usize;
    let n_items = train.n_items.max(valid.n_items) as usize;
    let (data, ratings) =
        Interactions::from_ratings(train, n_users, n_items, cfg.positive_threshold);
    if data.is_empty() {
        return Err(TrainError::config(
            "positive_threshold",
            format!(
                "leaves no interactions to train on (no train rating is ≥ {})",
                cfg.positive_threshold.unwrap_or(f32::NAN)
            ),
        ));
    }
    let (pool, threads) = crate::thread_pool(cfg)?;
    pool.install(|| fit(cfg, &data, &ratings, valid, progress, threads, &on))
}

/// The fit on the installed thread pool.
fn fit(
    cfg: &Config,
    data: &Interactions,
    ratings: &[f32],
    valid: &Ratings,
    progress: &Progress,
    threads: usize,
    on: &On,
) -> Result<TrainResult> {
    let device = on.device();
    let monitor = Monitor::new(data, valid);
    let mut epochs = Vec::new();
    let fitted = if cfg.model == ModelKind::Ease {
        let start = Instant::now();
        let b = match on {
            On::Cuda(accel, device) => ease_cuda::fit(accel, *device, data, cfg.lambda())?,
            On::Cpu => ease::fit(data, cfg.lambda())?,
        };
        let seconds = start.elapsed().as_secs_f64();
        let (ckpt, p) = monitor.precision(checkpoint(cfg, data, Fitted::ItemItem(b), device));
        epochs.push(epoch_row(1, f64::NAN, p, seconds, data.len()));
        ckpt
    } else {
        let mut model = iterative(cfg, data, ratings, on)?;
        let bar = progress.count(cfg.epochs as u64, "train");
        let mut last = None;
        for e in 1..=cfg.epochs {
            let start = Instant::now();
            let loss = model.epoch();
            if let Some(e) = model.failure() {
                return Err(e);
            }
            let f = model.factors();
            if !loss.is_finite() || !f.finite() {
                return Err(TrainError::Exploded(format!(
                    "{} diverged in epoch {e}: the loss became {loss}; lower `lr` (now {}) \
                     or raise `reg` (now {}); no checkpoint was written",
                    cfg.model,
                    cfg.lr,
                    cfg.reg()
                )));
            }
            let seconds = start.elapsed().as_secs_f64();
            let (ckpt, p) = monitor.precision(checkpoint(cfg, data, Fitted::Factors(f), device));
            tracing::info!(
                "epoch {e}/{}: train loss {loss:.4}, {} precision@10 {p:.4}, {seconds:.2}s",
                cfg.epochs,
                monitor.fold()
            );
            epochs.push(epoch_row(e as u32, loss, p, seconds, data.len()));
            bar.inc(1);
            last = Some(ckpt);
        }
        bar.finish_and_clear();
        last.expect("at least one epoch (validated)")
    };
    finish(fitted, epochs, &monitor, threads, device)
}

fn epoch_row(epoch: u32, loss: f64, precision: f64, seconds: f64, n: usize) -> Epoch {
    Epoch {
        epoch,
        train_loss: loss,
        valid_rmse: None,
        valid_mae: None,
        valid_precision: Some(precision),
        seconds,
        ratings_per_s: n as f64 / seconds.max(1e-9),
        lr: 0.0,
    }
}

/// The training result of a finished ranking fit (its last epoch is the model).
fn finish(
    checkpoint: Checkpoint,
    epochs: Vec<Epoch>,
    monitor: &Monitor,
    threads: usize,
    device: Device,
) -> Result<TrainResult> {
    let n = epochs.len();
    let last_precision = epochs.last().and_then(|e| e.valid_precision).unwrap_or(0.0);
    Ok(TrainResult {
        checkpoint,
        history: History {
            epochs,
            device: device.name(),
        },
        best_epoch: n,
        best: None,
        device,
        threads,
        stopped_early: false,
        ranking: Some(monitor.check(last_precision)),
    })
}

/// The checkpoint of a fit: the factor tensors, or the item-item matrix with each user's
/// training items (score(u, ·) = x_u · B needs them).
fn checkpoint(cfg: &Config, data: &Interactions, fitted: Fitted, device: Device) -> Checkpoint {
    let (n_users, n_items) = (data.n_users, data.n_items);
    let mut tensors = BTreeMap::new();
    let k = match fitted {
        Fitted::Factors(f) => {
            tensors.insert(
                tensor::USER_FACTORS.into(),
                Tensor::new(vec![n_users, f.k], f.user),
            );
            tensors.insert(
                tensor::ITEM_FACTORS.into(),
                Tensor::new(vec![n_items, f.k], f.item),
            );
            if let Some(b) = f.item_bias {
                tensors.insert(tensor::ITEM_BIAS.into(), Tensor::new(vec![n_items], b));
            }
            f.k
        }
        Fitted::ItemItem(b) => {
            tensors.insert(
                tensor::ITEM_ITEM.into(),
                Tensor::new(vec![n_items, n_items], b),
            );
            let counts: Vec<f32> = (0..n_users as u32)
                .map(|u| data.items.row(u).len() as f32)
                .collect();
            let items: Vec<f32> = (0..n_users as u32)
                .flat_map(|u| data.items.row(u).iter().map(|&i| i as f32))
                .collect();
            tensors.insert(
                tensor::USER_ITEM_COUNTS.into(),
                Tensor::new(vec![n_users], counts),
            );
            tensors.insert(
                tensor::USER_ITEMS.into(),
                Tensor::new(vec![items.len()], items),
            );
            0
        }
    };
    let meta = ModelMeta {
        device: device.name(),
        config: serde_json::to_value(cfg).unwrap_or_default(),
        ..ModelMeta::new(cfg.model, n_users as u32, n_items as u32, k)
    };
    Checkpoint { meta, tensors }
}

impl TrainResult {
    /// The summary and lines of a ranking model: its precision@10 next to most-popular's,
    /// with a warning line when it ranks below.
    pub(crate) fn ranking_outputs(&self, check: RankCheck) -> recpipe_core::Outputs {
        let h = &self.history.epochs;
        let seconds: f64 = h.iter().map(|e| e.seconds).sum();
        let meta = &self.checkpoint.meta;
        let ratio = check.precision / check.popular.max(f64::MIN_POSITIVE);
        let on_valid = check.fold == "valid";
        let summary = serde_json::json!({
            "model": meta.model,
            "device": self.device.name(),
            "threads": self.threads,
            "epochs_run": h.len(),
            "best_epoch": self.best_epoch,
            "valid_rmse": null,
            "valid_precision_at_10": on_valid.then_some(check.precision),
            "train_precision_at_10": (!on_valid).then_some(check.precision),
            "popular_precision_at_10": check.popular,
            "vs_popular": ratio,
            "below_popular": check.below_popular(),
            "train_loss": h.last().map(|e| e.train_loss).filter(|l| l.is_finite()),
            "seconds": seconds,
            "n_users": meta.n_users,
            "n_items": meta.n_items,
            "k": meta.k,
        });
        let what = if meta.model.is_item_item() {
            format!(
                "{} (λ={}) on {} ({} threads): {} × {} item-item weights in {seconds:.2}s",
                meta.model,
                meta.config["lambda"]
                    .as_f64()
                    .map_or(crate::config::EASE_LAMBDA as f64, |l| l),
                self.device.name(),
                self.threads,
                meta.n_items,
                meta.n_items
            )
        } else {
            format!(
                "{} k={} on {} ({} threads): {} epochs in {seconds:.2}s",
                meta.model,
                meta.k,
                self.device.name(),
                self.threads,
                h.len()
            )
        };
        let mut lines = vec![
            what,
            format!(
                "{} precision@10 {:.4} vs most-popular {:.4} ({ratio:.2}×)",
                check.fold, check.precision, check.popular
            ),
        ];
        if check.below_popular() {
            lines.push(format!(
                "WARNING: {} ranks below most-popular on {} (precision@10 {:.4} < {:.4}): \
                 its recommendations are worse than the most popular unseen items; tune it \
                 (epochs, k, lr/reg/alpha/lambda) before using them",
                meta.model, check.fold, check.precision, check.popular
            ));
        }
        recpipe_core::Outputs { summary, lines }
    }
}
