//! recpipe train stage: the notebooks' recommender models (`dot`, `dot_bias`, `mlp`,
//! `hybrid`, `classifier`) trained on the split stage's train set, validated per epoch on its
//! valid set, and saved as a checkpoint (model.safetensors + model.json, read back by
//! `recpipe_core::model::Model`) with a learning history (history.parquet).

pub mod backend;
mod batches;
mod blend;
pub mod config;
pub mod cpu;
pub mod cuda;
pub mod device;
mod divergence;
mod epochs;
pub mod error;
mod features;
mod history;
mod init;
mod memory;
mod predict;
pub mod ranking;
mod rng;
mod schedule;
mod streamed;

pub use backend::{Backend, Device, EpochTask, Family, Metrics, ModelSpec, RatingsView, Trainer};
pub use config::{BlendWeights, Config, ModelKind, OptimizerKind, YRange};
pub use error::{Result, TrainError};
pub use history::{Epoch, History};
pub use predict::{Fallback, predict_ids};
pub use schedule::Schedule;
pub use streamed::train_streamed;

use recpipe_core::layout;
use recpipe_core::model::Checkpoint;
use recpipe_core::{Goal, Headline, Inputs, OutDir, Outputs, Progress, Ratings, Stage};
use std::path::Path;

pub struct TrainStage;

impl Stage for TrainStage {
    const KIND: &'static str = "train";
    // 3: history.parquet gained the `device` column; 4: and `valid_precision_at_10`.
    const FORMAT_VERSION: u32 = 4;
    type Config = Config;
    type Error = TrainError;
    const HEADLINES: &'static [Headline] = &[
        Headline {
            path: "valid_rmse",
            goal: Goal::Minimize,
            label: "validation RMSE of the best epoch",
        },
        Headline {
            path: "valid_mae",
            goal: Goal::Minimize,
            label: "validation MAE of the best epoch",
        },
        Headline {
            path: "valid_precision_at_10",
            goal: Goal::Maximize,
            label: "valid precision@10 of a ranking model (ease, ials, bpr)",
        },
        Headline {
            path: "valid_accuracy",
            goal: Goal::Maximize,
            label: "validation accuracy of the best epoch (classifier)",
        },
    ];
    const SIGNATURES: &'static [&'static [&'static str]] = &[
        &[recpipe_core::layout::train::HISTORY],
        &[recpipe_core::layout::train::META],
    ];

    fn external_inputs(cfg: &Config) -> Vec<std::path::PathBuf> {
        cfg.item_features_file.iter().cloned().collect()
    }

    /// The CUDA device the run trains on (null on the cpu).
    fn environment(cfg: &Config) -> serde_json::Value {
        device::planned(cfg)
    }

    fn validate(cfg: &Config) -> Result<()> {
        cfg.validate()
    }

    fn run(cfg: &Config, inputs: &Inputs, out: &OutDir, progress: &Progress) -> Result<Outputs> {
        let split = inputs.nearest("split")?;
        let train_path = split.file(layout::split::TRAIN);
        let valid_path = split.file(layout::split::VALID);
        let valid = if valid_path.exists() {
            Ratings::read(&valid_path)?
        } else {
            Ratings::default()
        };
        // Per-rating SGD on a train table too big to read whole streams it (issue #18).
        let n_train = recpipe_core::parquet_io::row_count(&train_path).unwrap_or(0);
        if cfg.model != ModelKind::Blend
            && !streamed::in_memory_fits(n_train, valid.len(), None)
            && streamed::streams(cfg)?
        {
            let result = train_streamed(cfg, &train_path, &valid, progress)?;
            result.save(out.dir())?;
            return Ok(result.outputs());
        }
        let train = Ratings::read(&train_path)?;
        if train.is_empty() {
            return Err(TrainError::EmptyTrain {
                path: split.file(layout::split::TRAIN),
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
    /// A ranking model's precision@10 next to most-popular's (None for rating models).
    pub ranking: Option<ranking::RankCheck>,
}

impl TrainResult {
    /// Writes model.safetensors, model.json and history.parquet into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.checkpoint.save(dir)?;
        self.history.write(&dir.join(layout::train::HISTORY))?;
        Ok(())
    }

    pub fn outputs(&self) -> Outputs {
        if let Some(check) = self.ranking {
            return self.ranking_outputs(check);
        }
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
        let mut lines = vec![if meta.model == ModelKind::Blend {
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
            lines.push(if meta.model == ModelKind::Blend {
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
    if cfg.model.is_ranking() {
        return ranking::train(cfg, train, valid, progress);
    }
    let threads = threads(cfg);
    let backend = backend::backend_for(device::select(cfg)?, threads)?;
    train_on(&*backend, cfg, (train, valid), item_features, progress)
}

/// [`train_model_with`] on a given backend (tests run one suite against every backend: the
/// CUDA backend on recpipe-cuda-harness's host-thread device, say).
pub fn train_on(
    backend: &dyn Backend,
    cfg: &Config,
    (train, valid): (&Ratings, &Ratings),
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
    check_ratings(train, layout::split::TRAIN)?;
    check_ratings(valid, layout::split::VALID)?;
    if train.is_empty() {
        return Err(TrainError::config(
            "epochs",
            "there are no training ratings",
        ));
    }
    let (pool, threads) = thread_pool(cfg)?;
    if cfg.model == ModelKind::Hybrid && item_features.is_none() {
        return Err(TrainError::config(
            "model",
            "`hybrid` needs item features: run it in a pipeline with an ingest stage \
             (for genres) or set item_features_file",
        ));
    }
    let sets = (train, valid);
    pool.install(|| epochs::run_epochs(cfg, sets, item_features, progress, backend, threads))
}

/// The training threads: `threads`, or every core when 0.
fn threads(cfg: &Config) -> usize {
    if cfg.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.threads
    }
}

/// The pool a training run is installed on, of [`threads`] threads, and that count (the
/// trainers split their work by it); an error naming the count when the pool cannot start.
fn thread_pool(cfg: &Config) -> Result<(rayon::ThreadPool, usize)> {
    let threads = threads(cfg);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| TrainError::Threads {
            threads,
            message: e.to_string(),
        })?;
    Ok((pool, threads))
}
