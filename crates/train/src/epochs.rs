//! The epoch loop every backend shares: the model spec resolved from the config and the
//! data, then per epoch a fresh shuffle, one pass of the backend's trainer, the divergence
//! checks, validation, the history row and log line, the explosion watch, keep-best and
//! early stopping; at the end the checkpoint of the kept epoch.

use crate::backend::{Backend, Device, EpochTask, Metrics, ModelSpec, RatingsView, Trainer};
use crate::config::{Config, ModelKind, YRange};
use crate::divergence::Watch;
use crate::error::{Result, TrainError};
use crate::history::{Epoch, History};
use crate::schedule::Schedule;
use crate::{TrainResult, cpu, memory, rng};
use indicatif::ProgressBar;
use recpipe_core::model::{Checkpoint, ModelMeta, NetShape, Tensor};
use recpipe_core::{Progress, Ratings};
use std::collections::BTreeMap;
use std::time::Instant;

/// Trains `spec`'s model on `backend` for up to `cfg.epochs` epochs (`threads`: the pool
/// the caller installed, for the record).
pub(crate) fn run_epochs(
    cfg: &Config,
    (train, valid): (&Ratings, &Ratings),
    item_features: Option<(usize, Vec<f32>)>,
    progress: &Progress,
    backend: &dyn Backend,
    threads: usize,
) -> Result<TrainResult> {
    let data = RatingsView::from(train);
    let (spec, steps_per_epoch) = model_spec(cfg, train, valid, item_features);
    memory::check(&spec, train.len(), valid.len())?;
    let trainer = backend.trainer(&spec)?;
    let sets = Sets {
        data,
        n_train: train.len(),
        valid,
        shuffle: true,
    };
    run_loop(
        cfg,
        &spec,
        steps_per_epoch,
        sets,
        trainer,
        progress,
        backend.device(),
        threads,
    )
}

/// What the epoch loop trains on: `data` (empty when the trainer already holds its
/// ratings, as the streamed grid does) of `n_train` ratings, and the valid set; `shuffle`
/// false skips the per-epoch order a trainer that fixes its own never reads.
pub(crate) struct Sets<'a> {
    pub data: RatingsView<'a>,
    pub n_train: usize,
    pub valid: &'a Ratings,
    pub shuffle: bool,
}

/// The epochs of `trainer`, built for `spec`: shuffle, train, check, validate, keep.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_loop(
    cfg: &Config,
    spec: &ModelSpec,
    steps_per_epoch: usize,
    sets: Sets<'_>,
    mut trainer: Box<dyn Trainer>,
    progress: &Progress,
    device: Device,
    threads: usize,
) -> Result<TrainResult> {
    let valid = sets.valid;
    let run = Run {
        cfg,
        data: sets.data,
        valid: RatingsView::from(valid),
        schedule: Schedule::new(cfg, steps_per_epoch),
        steps_per_epoch,
        // One bar over every epoch's batches, so its rate and ETA are the whole run's.
        bar: progress.count(cfg.epochs.saturating_mul(steps_per_epoch) as u64, "train"),
        progress,
        device,
    };
    let n_order = if sets.shuffle { sets.n_train } else { 0 };
    let mut order: Vec<u32> = (0..n_order as u32).collect();
    let mut shuffle_rng = rng::Rng::stream(cfg.seed, 2);
    let mut history = History {
        epochs: Vec::new(),
        device: device.name(),
    };
    let mut keep = KeepBest::new(cfg);
    let mut watch = Watch::new(valid, spec.global_mean, cfg.lr);
    let mut stopped_early = false;
    for epoch in 1..=cfg.epochs {
        shuffle_rng.shuffle(&mut order);
        let done = run.epoch(epoch, &order, trainer.as_mut())?;
        history
            .epochs
            .push(done.record(epoch, cfg.epochs, sets.n_train));
        // An exploded epoch is never the best one.
        let exploded = watch.epoch(epoch, done.loss, done.metrics.map(|m| m.rmse));
        let stop = keep.epoch(epoch, done.metrics, exploded, trainer.as_ref());
        if let Some(message) = trainer.failure() {
            return Err(TrainError::Cuda {
                device: device.name(),
                message: format!("copying epoch {epoch}'s weights back: {message}"),
            });
        }
        if stop {
            stopped_early = true;
            break;
        }
    }
    run.bar.finish_and_clear();
    let kept = keep.best.as_ref();
    watch.check_result(kept.map(|(e, m, _)| (*e, (!valid.is_empty()).then_some(m.rmse))))?;
    let (best_epoch, best_metrics, tensors) =
        keep.best.expect("check_result refuses no kept epoch");
    Ok(TrainResult {
        checkpoint: Checkpoint {
            meta: model_meta(cfg, spec, best_epoch, device),
            tensors,
        },
        history,
        best_epoch,
        best: (!valid.is_empty()).then_some(best_metrics),
        device,
        threads,
        stopped_early,
        ranking: None,
    })
}

/// The model to build, from the config and the data, and the steps of one epoch.
fn model_spec(
    cfg: &Config,
    train: &Ratings,
    valid: &Ratings,
    item_features: Option<(usize, Vec<f32>)>,
) -> (ModelSpec, usize) {
    let n_users = train.n_users.max(valid.n_users) as usize;
    let n_items = train.n_items.max(valid.n_items) as usize;
    // An AutoRec step is a batch of items, not of ratings.
    let examples = match cfg.model {
        ModelKind::Autorec => cpu::rated_items(RatingsView::from(train), n_items),
        _ => train.len(),
    };
    let steps_per_epoch = examples.div_ceil(cfg.batch_size);
    let spec = ModelSpec {
        cfg: cfg.clone(),
        kind: cfg.model,
        n_users,
        n_items,
        k: cfg.k(),
        global_mean: train.mean_rating() as f32,
        y_range: resolve_y_range(cfg, train),
        classes: (cfg.model == ModelKind::Classifier).then(|| classes_of(train)),
        item_features,
        expected_steps: steps_per_epoch.saturating_mul(cfg.epochs),
    };
    (spec, steps_per_epoch)
}

/// [`model_spec`] of an embedding model from the train set's figures alone (streamed
/// training): `n_train` ratings of mean `mean` (f64, summed in row order as
/// `Ratings::mean_rating` does) in `lo..=hi`.
pub(crate) fn embedding_spec(
    cfg: &Config,
    (n_users, n_items): (usize, usize),
    n_train: usize,
    mean: f64,
    (lo, hi): (f32, f32),
) -> (ModelSpec, usize) {
    let steps_per_epoch = n_train.div_ceil(cfg.batch_size);
    let y_range = match cfg.y_range {
        YRange::None => None,
        YRange::Range(lo, hi) => Some([lo, hi]),
        YRange::Auto => Some(auto_range(lo, hi)),
    };
    let spec = ModelSpec {
        cfg: cfg.clone(),
        kind: cfg.model,
        n_users,
        n_items,
        k: cfg.k(),
        global_mean: mean as f32,
        y_range,
        classes: None,
        item_features: None,
        expected_steps: steps_per_epoch.saturating_mul(cfg.epochs),
    };
    (spec, steps_per_epoch)
}

/// `y_range = "auto"` of ratings in `lo..=hi`.
fn auto_range(lo: f32, hi: f32) -> [f32; 2] {
    let margin = ((hi - lo) * 0.1).max(0.1);
    [lo - margin, hi + margin]
}

/// Resolves `y_range = "auto"`: the training ratings' range widened by 10% on each side, so
/// the sigmoid can reach the extreme ratings (fastai's (0, 5.5) for 0.5..5 stars).
fn resolve_y_range(cfg: &Config, train: &Ratings) -> Option<[f32; 2]> {
    match cfg.y_range {
        YRange::None => None,
        YRange::Range(lo, hi) => Some([lo, hi]),
        YRange::Auto => {
            let (lo, hi) = train
                .rating
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &r| {
                    (a.min(r), b.max(r))
                });
            Some(auto_range(lo, hi))
        }
    }
}

/// The distinct rating values, ascending: the classifier's classes.
fn classes_of(train: &Ratings) -> Vec<f32> {
    let mut v: Vec<f32> = train.rating.clone();
    v.sort_by(f32::total_cmp);
    v.dedup();
    v
}

/// model.json of the kept epoch.
fn model_meta(cfg: &Config, spec: &ModelSpec, best_epoch: usize, device: Device) -> ModelMeta {
    let net = cfg.model.is_neural().then(|| NetShape {
        join: cfg.join,
        hidden: cfg.hidden(),
        item_tower: match spec.item_features {
            Some(_) => cfg.item_features_hidden.clone(),
            None => Vec::new(),
        },
    });
    ModelMeta {
        y_range: spec.y_range,
        global_mean: spec.global_mean,
        classes: spec.classes.clone(),
        net,
        best_epoch: Some(best_epoch as u32),
        device: device.name(),
        config: serde_json::to_value(cfg).unwrap_or_default(),
        ..ModelMeta::new(cfg.model, spec.n_users as u32, spec.n_items as u32, spec.k)
    }
}

/// What stays the same from epoch to epoch.
struct Run<'a> {
    cfg: &'a Config,
    data: RatingsView<'a>,
    valid: RatingsView<'a>,
    schedule: Schedule,
    steps_per_epoch: usize,
    bar: ProgressBar,
    progress: &'a Progress,
    device: Device,
}

/// What one epoch gave.
#[derive(Debug, Clone, Copy)]
struct Done {
    loss: f64,
    seconds: f64,
    /// The learning rate of the epoch's last step.
    lr: f32,
    /// Valid-set metrics, when there is a valid set.
    metrics: Option<Metrics>,
}

impl Run<'_> {
    /// Trains epoch `epoch` (from 1) in `order`, checks the weights stayed finite, and
    /// validates.
    fn epoch(&self, epoch: usize, order: &[u32], trainer: &mut dyn Trainer) -> Result<Done> {
        let (cfg, spe) = (self.cfg, self.steps_per_epoch);
        self.bar
            .set_message(format!("epoch {epoch}/{}", cfg.epochs));
        let start = Instant::now();
        let step0 = (epoch - 1) * spe;
        let mut report = |b: usize, loss: f64| {
            self.bar.set_position((step0 + b) as u64);
            if self.progress.enabled() {
                self.bar
                    .set_message(format!("epoch {epoch}/{} loss {loss:.4}", cfg.epochs));
            }
        };
        let task = EpochTask {
            data: self.data,
            order,
            batch_size: cfg.batch_size,
            schedule: &self.schedule,
            step0,
        };
        let loss = trainer.train_epoch(task, &mut report);
        if let Some(message) = trainer.failure() {
            return Err(TrainError::Cuda {
                device: self.device.name(),
                message: format!("epoch {epoch}: {message}"),
            });
        }
        let loss = loss.map_err(|d| diverged(epoch, d.batch, d.value, d.lr))?;
        let seconds = start.elapsed().as_secs_f64();
        let lr = self.schedule.lr(step0 + spe - 1);
        if !trainer.finite() {
            return Err(diverged(epoch, spe, f64::NAN, lr));
        }
        let metrics = (!self.valid.is_empty()).then(|| trainer.evaluate(self.valid));
        if let Some(message) = trainer.failure() {
            return Err(TrainError::Cuda {
                device: self.device.name(),
                message: format!("validating epoch {epoch}: {message}"),
            });
        }
        Ok(Done {
            loss,
            seconds,
            lr,
            metrics,
        })
    }
}

fn diverged(epoch: usize, batch: usize, value: f64, lr: f32) -> TrainError {
    TrainError::Diverged {
        epoch,
        batch,
        value,
        lr,
        suggest: lr / 10.0,
    }
}

impl Done {
    /// Logs the epoch and returns its history row (`n_train`: ratings trained on).
    fn record(&self, epoch: usize, epochs: usize, n_train: usize) -> Epoch {
        let (loss, seconds) = (self.loss, self.seconds);
        let rate = n_train as f64 / seconds.max(1e-9);
        match self.metrics {
            Some(m) => tracing::info!(
                "epoch {epoch}/{epochs}: train loss {loss:.4}, valid RMSE {:.4}, MAE {:.4}{}, {:.2}s, {} ratings/s",
                m.rmse,
                m.mae,
                m.accuracy
                    .map(|a| format!(", accuracy {a:.4}"))
                    .unwrap_or_default(),
                seconds,
                recpipe_core::progress::human_rate(rate)
            ),
            None => tracing::info!(
                "epoch {epoch}/{epochs}: train loss {loss:.4}, {seconds:.2}s (no valid set)"
            ),
        }
        Epoch {
            epoch: epoch as u32,
            train_loss: loss,
            valid_rmse: self.metrics.map(|m| m.rmse),
            valid_mae: self.metrics.map(|m| m.mae),
            valid_precision: None,
            seconds,
            ratings_per_s: rate,
            lr: self.lr as f64,
        }
    }
}

/// Which epoch's weights to keep (the best valid RMSE with `keep_best`, else the last), and
/// early stopping after `early_stopping_patience` epochs without a better one.
struct KeepBest {
    keep_best: bool,
    patience: Option<usize>,
    /// (epoch, its valid metrics or zeros, its weights).
    best: Option<(usize, Metrics, BTreeMap<String, Tensor>)>,
    best_rmse: Option<f64>,
    since_best: usize,
}

impl KeepBest {
    fn new(cfg: &Config) -> Self {
        KeepBest {
            keep_best: cfg.keep_best,
            patience: cfg.early_stopping_patience,
            best: None,
            best_rmse: None,
            since_best: 0,
        }
    }

    /// Takes an epoch's outcome (`exploded`: the watch refused it); true when early stopping
    /// ends the run after it.
    fn epoch(
        &mut self,
        epoch: usize,
        metrics: Option<Metrics>,
        exploded: bool,
        trainer: &dyn Trainer,
    ) -> bool {
        let improved = !exploded
            && match (self.best_rmse, metrics) {
                (Some(b), Some(m)) => m.rmse < b,
                _ => true,
            };
        if improved {
            self.best_rmse = metrics.map(|m| m.rmse);
        }
        if improved || !self.keep_best {
            self.best = Some((epoch, metrics.unwrap_or_default(), trainer.tensors()));
        }
        if improved {
            self.since_best = 0;
            return false;
        }
        self.since_best += 1;
        let since = self.since_best;
        if metrics.is_some() && self.patience.is_some_and(|p| since >= p) {
            tracing::info!(
                "early stopping after epoch {epoch}: no better valid RMSE in {since} epochs"
            );
            return true;
        }
        false
    }
}
