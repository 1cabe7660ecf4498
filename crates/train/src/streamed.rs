//! Per-rating SGD (`dot` / `dot_bias` with `batch_size = 1`, on the cpu) on a train table
//! too big for the in-memory path (issue #18). Read whole, the table is columns of 20 bytes
//! a rating, and the grid trainer then copies it into its cells (12 bytes) next to the
//! per-epoch order (4 bytes). Here the table is streamed instead: a pass for the mean and
//! range of the ratings, then the trainer builds its cells from two more passes, so the
//! ratings are held once, as cells. The model is the in-memory path's bit for bit: the
//! same spec, the same cells in the same order, the same seeded draws.

use crate::backend::{Device, RatingsView, per_rating};
use crate::config::Config;
use crate::cpu::GridTrainer;
use crate::epochs::{self, Sets};
use crate::error::{Result, TrainError};
use crate::{TrainResult, memory};
use recpipe_core::memory::{Need, check_need};
use recpipe_core::ratings_stream::{Columns, RatingsFile};
use recpipe_core::{Progress, Ratings, layout};
use std::path::Path;

/// Whether `cfg` trains on the per-rating grid of the cpu backend, the path that streams.
pub(crate) fn streams(cfg: &Config) -> Result<bool> {
    Ok(cfg.model.is_embedding() && per_rating(cfg) && crate::device::select(cfg)? == Device::Cpu)
}

/// Whether reading `n_train` + `n_valid` ratings whole, with the grid's cells and order
/// next to them, fits `budget` bytes (None: what the memory guard allows). The model
/// itself is the same on both paths and checked by the trainer.
pub(crate) fn in_memory_fits(n_train: usize, n_valid: usize, budget: Option<u64>) -> bool {
    let mut need = Need::new();
    need.add("train ratings", n_train as u64, 20 + 12 + 4)
        .add("valid ratings", n_valid as u64, 20);
    match budget {
        Some(b) => need.total() <= b,
        None => check_need("train", &need, "").is_ok(),
    }
}

/// Trains `cfg` (a config [`streams`] accepts) on the train table at `train_path`,
/// validating on `valid` after every epoch.
pub fn train_streamed(
    cfg: &Config,
    train_path: &Path,
    valid: &Ratings,
    progress: &Progress,
) -> Result<TrainResult> {
    cfg.validate()?;
    if !cfg.model.is_embedding() || !per_rating(cfg) {
        return Err(TrainError::config(
            "batch_size",
            "streamed training is the per-rating path: `dot` or `dot_bias` with \
             batch_size = 1 and optimizer \"sgd\" (momentum 0) or \"adagrad\"",
        ));
    }
    let file = RatingsFile::open(train_path)?;
    if file.rows == 0 {
        return Err(TrainError::EmptyTrain {
            path: train_path.to_path_buf(),
        });
    }
    crate::check_ratings(valid, layout::split::VALID)?;
    let (sum, lo, hi) = rating_stats(&file, progress)?;
    let mean = sum / file.rows as f64;
    let shape = (
        file.n_users.max(valid.n_users) as usize,
        file.n_items.max(valid.n_items) as usize,
    );
    let (spec, steps_per_epoch) = epochs::embedding_spec(cfg, shape, file.rows, mean, (lo, hi));
    memory::check(&spec, file.rows, valid.len())?;
    let (pool, threads) = crate::thread_pool(cfg)?;
    pool.install(|| {
        let mut trainer = GridTrainer::new(&spec, threads > 1);
        trainer.load_grid(&file, progress)?;
        let sets = Sets {
            data: RatingsView {
                user: &[],
                item: &[],
                rating: &[],
            },
            n_train: file.rows,
            valid,
            shuffle: false,
        };
        let trainer = Box::new(trainer);
        epochs::run_loop(
            cfg,
            &spec,
            steps_per_epoch,
            sets,
            trainer,
            progress,
            Device::Cpu,
            threads,
        )
    })
}

/// (Σ rating in row order, min, max) of the train table; a non-finite rating is refused
/// with its row, as the in-memory path does.
fn rating_stats(file: &RatingsFile, progress: &Progress) -> Result<(f64, f32, f32)> {
    let (mut sum, mut lo, mut hi) = (0.0f64, f32::INFINITY, f32::NEG_INFINITY);
    let cols = Columns {
        rating: true,
        ..Columns::default()
    };
    let bar = progress.count(file.rows as u64, "train: read");
    file.for_each(cols, |c| {
        for (j, &r) in c.rating.iter().enumerate() {
            if !r.is_finite() {
                return Err(TrainError::Data {
                    path: layout::split::TRAIN.into(),
                    message: format!("rating at row {} is {r}; fix the source data", c.start + j),
                });
            }
            sum += r as f64;
            (lo, hi) = (lo.min(r), hi.max(r));
        }
        bar.inc(c.rating.len() as u64);
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok((sum, lo, hi))
}
