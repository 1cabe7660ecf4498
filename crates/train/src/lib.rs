//! recpipe train stage: the notebooks' recommender models (`dot`, `dot_bias`, `mlp`,
//! `hybrid`, `classifier`) trained on the split stage's train set, validated per epoch on its
//! valid set, and saved as a checkpoint (model.safetensors + model.json, read back by
//! `recpipe_core::model::Model`) with a learning history (history.parquet).

pub mod backend;
mod blend;
pub mod config;
pub mod cpu;
mod divergence;
pub mod error;
mod features;
mod history;
mod init;
mod memory;
mod predict;
mod rng;
mod schedule;

pub use backend::{Backend, Device, Metrics, ModelSpec, RatingsView, Trainer};
pub use config::{BlendWeights, Config, ModelKind, OptimizerKind, YRange};
pub use error::{Result, TrainError};
pub use history::{Epoch, History};
pub use predict::{Fallback, predict_ids};
pub use schedule::Schedule;

use recpipe_core::model::{Checkpoint, ModelMeta, Tensor};
use recpipe_core::{Inputs, OutDir, Outputs, Progress, Ratings, Stage};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

pub const HISTORY_FILE: &str = "history.parquet";

pub struct TrainStage;

impl Stage for TrainStage {
    const KIND: &'static str = "train";
    const FORMAT_VERSION: u32 = 1;
    type Config = Config;
    type Error = TrainError;

    fn external_inputs(cfg: &Config) -> Vec<std::path::PathBuf> {
        cfg.item_features_file.iter().cloned().collect()
    }

    fn validate(cfg: &Config) -> Result<()> {
        cfg.validate()
    }

    fn run(cfg: &Config, inputs: &Inputs, out: &OutDir, progress: &Progress) -> Result<Outputs> {
        let split = inputs.nearest("split")?;
        let train = Ratings::read(split.file("train.parquet"))?;
        let valid_path = split.file("valid.parquet");
        let valid = if valid_path.exists() {
            Ratings::read(&valid_path)?
        } else {
            Ratings::default()
        };
        if train.is_empty() {
            return Err(TrainError::EmptyTrain {
                path: split.file("train.parquet"),
            });
        }
        if cfg.model == ModelKind::Blend {
            cfg.validate()?;
            let result = blend::blend(cfg, inputs, &train, &valid)?;
            result.save(out.dir())?;
            return Ok(result.outputs());
        }
        let features = if cfg.model == ModelKind::Hybrid {
            Some(features::item_features(
                cfg,
                inputs,
                train.n_items.max(valid.n_items) as usize,
            )?)
        } else {
            None
        };
        let result = train_model_with(cfg, &train, &valid, features, progress)?;
        result.save(out.dir())?;
        Ok(result.outputs())
    }
}

/// A finished training run: the checkpoint to save and the history of how it got there.
#[derive(Debug, Clone)]
pub struct TrainResult {
    pub checkpoint: Checkpoint,
    pub history: History,
    pub best_epoch: usize,
    pub best: Option<Metrics>,
    pub device: Device,
    pub threads: usize,
    pub stopped_early: bool,
}

impl TrainResult {
    /// Writes model.safetensors, model.json and history.parquet into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.checkpoint.save(dir)?;
        self.history.write(&dir.join(HISTORY_FILE))?;
        Ok(())
    }

    pub fn outputs(&self) -> Outputs {
        let h = &self.history.epochs;
        let rps = h.iter().map(|e| e.ratings_per_s).sum::<f64>() / h.len().max(1) as f64;
        let seconds: f64 = h.iter().map(|e| e.seconds).sum();
        let meta = &self.checkpoint.meta;
        let summary = serde_json::json!({
            "model": meta.model,
            "device": self.device.name(),
            "threads": self.threads,
            "epochs_run": h.len(),
            "best_epoch": self.best_epoch,
            "valid_rmse": self.best.map(|m| m.rmse),
            "valid_mae": self.best.map(|m| m.mae),
            "valid_accuracy": self.best.and_then(|m| m.accuracy),
            "train_loss": h.last().map(|e| e.train_loss),
            "ratings_per_s": rps,
            "seconds": seconds,
            "stopped_early": self.stopped_early,
            "n_users": meta.n_users,
            "n_items": meta.n_items,
            "k": meta.k,
        });
        let mut lines = vec![if meta.model == "blend" {
            blend::describe(meta, seconds)
        } else {
            format!(
                "{} k={} on {} ({} threads): {} epochs in {:.2}s, {} ratings/s",
                meta.model,
                meta.k,
                self.device.name(),
                self.threads,
                h.len(),
                seconds,
                recpipe_core::progress::human_rate(rps)
            )
        }];
        if let Some(m) = self.best {
            let acc = m
                .accuracy
                .map(|a| format!(", accuracy {a:.4}"))
                .unwrap_or_default();
            lines.push(if meta.model == "blend" {
                format!("valid RMSE {:.4}, MAE {:.4}{acc}", m.rmse, m.mae)
            } else {
                format!(
                    "best epoch {}: valid RMSE {:.4}, MAE {:.4}{acc}",
                    self.best_epoch, m.rmse, m.mae
                )
            });
        }
        Outputs { summary, lines }
    }
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
            let margin = ((hi - lo) * 0.1).max(0.1);
            Some([lo - margin, hi + margin])
        }
    }
}

/// The valid RMSE of the kept epoch, when there is a valid set.
fn metrics_rmse(valid: &Ratings, m: &Metrics) -> Option<f64> {
    (!valid.is_empty()).then_some(m.rmse)
}

/// The distinct rating values, ascending: the classifier's classes.
fn classes_of(train: &Ratings) -> Vec<f32> {
    let mut v: Vec<f32> = train.rating.clone();
    v.sort_by(f32::total_cmp);
    v.dedup();
    v
}

fn check_ratings(r: &Ratings, which: &str) -> Result<()> {
    if let Some(p) = r.rating.iter().position(|x| !x.is_finite()) {
        return Err(TrainError::Data {
            path: which.into(),
            message: format!("rating at row {p} is {}; fix the source data", r.rating[p]),
        });
    }
    Ok(())
}

/// Trains a model on `train`, validating on `valid` (may be empty) after every epoch.
pub fn train_model(
    cfg: &Config,
    train: &Ratings,
    valid: &Ratings,
    progress: &Progress,
) -> Result<TrainResult> {
    train_model_with(cfg, train, valid, None, progress)
}

/// [`train_model`] with per-item content features for `hybrid`: (width, n_items × width).
pub fn train_model_with(
    cfg: &Config,
    train: &Ratings,
    valid: &Ratings,
    item_features: Option<(usize, Vec<f32>)>,
    progress: &Progress,
) -> Result<TrainResult> {
    cfg.validate()?;
    if cfg.model == ModelKind::Blend {
        return Err(TrainError::config(
            "model",
            "\"blend\" combines trained models: run it as a pipeline stage whose `inputs` \
             are train stages",
        ));
    }
    check_ratings(train, "train.parquet")?;
    check_ratings(valid, "valid.parquet")?;
    if train.is_empty() {
        return Err(TrainError::config(
            "epochs",
            "there are no training ratings",
        ));
    }
    let device = Device::select(cfg.device)?;
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| TrainError::Threads {
            threads,
            message: e.to_string(),
        })?;
    let backend = cpu::CpuBackend { threads };
    if cfg.model == ModelKind::Hybrid && item_features.is_none() {
        return Err(TrainError::config(
            "model",
            "`hybrid` needs item features: run it in a pipeline with an ingest stage \
             (for genres) or set item_features_file",
        ));
    }
    pool.install(|| {
        run_epochs(
            cfg,
            train,
            valid,
            item_features,
            progress,
            &backend,
            (device, threads),
        )
    })
}

fn run_epochs(
    cfg: &Config,
    train: &Ratings,
    valid: &Ratings,
    item_features: Option<(usize, Vec<f32>)>,
    progress: &Progress,
    backend: &dyn Backend,
    (device, threads): (Device, usize),
) -> Result<TrainResult> {
    let n_users = train.n_users.max(valid.n_users) as usize;
    let n_items = train.n_items.max(valid.n_items) as usize;
    let data = RatingsView {
        user: &train.user,
        item: &train.item,
        rating: &train.rating,
    };
    // An AutoRec step is a batch of items, not of ratings.
    let examples = match cfg.model {
        ModelKind::Autorec => cpu::rated_items(data, n_items),
        _ => train.len(),
    };
    let steps_per_epoch = examples.div_ceil(cfg.batch_size);
    let global_mean = train.mean_rating() as f32;
    let y_range = resolve_y_range(cfg, train);
    let spec = ModelSpec {
        cfg: cfg.clone(),
        kind: cfg.model,
        n_users,
        n_items,
        k: cfg.k(),
        global_mean,
        y_range,
        classes: (cfg.model == ModelKind::Classifier).then(|| classes_of(train)),
        item_features,
        expected_steps: steps_per_epoch.saturating_mul(cfg.epochs),
    };
    memory::check(&spec, train.len(), valid.len())?;
    let mut trainer = backend.trainer(&spec)?;
    let schedule = Schedule::new(cfg, steps_per_epoch);
    let vdata = RatingsView {
        user: &valid.user,
        item: &valid.item,
        rating: &valid.rating,
    };
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    let mut shuffle_rng = rng::Rng::stream(cfg.seed, 2);
    let mut history = History::default();
    let mut best: Option<(usize, Metrics, BTreeMap<String, Tensor>)> = None;
    let mut best_rmse: Option<f64> = None;
    let mut since_best = 0usize;
    let mut stopped_early = false;
    let mut watch = divergence::Watch::new(valid, global_mean, cfg.lr);
    // One bar over every epoch's batches, so its rate and ETA are the whole run's.
    let bar = progress.count(cfg.epochs.saturating_mul(steps_per_epoch) as u64, "train");
    for epoch in 1..=cfg.epochs {
        shuffle_rng.shuffle(&mut order);
        bar.set_message(format!("epoch {epoch}/{}", cfg.epochs));
        let start = Instant::now();
        let step0 = (epoch - 1) * steps_per_epoch;
        let mut report = |b: usize, loss: f64| {
            bar.set_position((step0 + b) as u64);
            if progress.enabled() {
                bar.set_message(format!("epoch {epoch}/{} loss {loss:.4}", cfg.epochs));
            }
        };
        let loss = trainer
            .train_epoch(data, &order, cfg.batch_size, &schedule, step0, &mut report)
            .map_err(|d| TrainError::Diverged {
                epoch,
                batch: d.batch,
                value: d.value,
                lr: d.lr,
                suggest: d.lr / 10.0,
            })?;
        let seconds = start.elapsed().as_secs_f64();
        let lr = schedule.lr(step0 + steps_per_epoch - 1);
        if !trainer.finite() {
            return Err(TrainError::Diverged {
                epoch,
                batch: steps_per_epoch,
                value: f64::NAN,
                lr,
                suggest: lr / 10.0,
            });
        }
        let metrics = (!valid.is_empty()).then(|| trainer.evaluate(vdata));
        history.epochs.push(Epoch {
            epoch: epoch as u32,
            train_loss: loss,
            valid_rmse: metrics.map(|m| m.rmse),
            valid_mae: metrics.map(|m| m.mae),
            seconds,
            ratings_per_s: train.len() as f64 / seconds.max(1e-9),
            lr: lr as f64,
        });
        match metrics {
            Some(m) => tracing::info!(
                "epoch {epoch}/{}: train loss {loss:.4}, valid RMSE {:.4}, MAE {:.4}{}, {:.2}s, {} ratings/s",
                cfg.epochs,
                m.rmse,
                m.mae,
                m.accuracy
                    .map(|a| format!(", accuracy {a:.4}"))
                    .unwrap_or_default(),
                seconds,
                recpipe_core::progress::human_rate(train.len() as f64 / seconds.max(1e-9))
            ),
            None => tracing::info!(
                "epoch {epoch}/{}: train loss {loss:.4}, {seconds:.2}s (no valid set)",
                cfg.epochs
            ),
        }
        // An exploded epoch is never the best one.
        let exploded = watch.epoch(epoch, loss, metrics.map(|m| m.rmse));
        let improved = !exploded
            && match (best_rmse, metrics) {
                (Some(b), Some(m)) => m.rmse < b,
                _ => true,
            };
        if improved {
            best_rmse = metrics.map(|m| m.rmse);
        }
        if improved || !cfg.keep_best {
            let m = metrics.unwrap_or_default();
            best = Some((epoch, m, trainer.tensors()));
        }
        if improved {
            since_best = 0;
        } else {
            since_best += 1;
            if metrics.is_some() && cfg.early_stopping_patience.is_some_and(|p| since_best >= p) {
                tracing::info!(
                    "early stopping after epoch {epoch}: no better valid RMSE in {since_best} epochs"
                );
                stopped_early = true;
                break;
            }
        }
    }
    bar.finish_and_clear();
    let kept = best.as_ref().map(|(e, m, _)| (*e, metrics_rmse(valid, m)));
    watch.check_result(kept)?;
    let (best_epoch, best_metrics, tensors) = best.expect("check_result refuses no kept epoch");
    let meta = ModelMeta {
        model: cfg.model.name().to_string(),
        n_users: n_users as u32,
        n_items: n_items as u32,
        k: spec.k,
        y_range,
        global_mean,
        classes: spec.classes.clone(),
        best_epoch: Some(best_epoch as u32),
        device: device.name(),
        config: serde_json::to_value(cfg).unwrap_or_default(),
    };
    Ok(TrainResult {
        checkpoint: Checkpoint { meta, tensors },
        history,
        best_epoch,
        best: (!valid.is_empty()).then_some(best_metrics),
        device,
        threads,
        stopped_early,
    })
}
