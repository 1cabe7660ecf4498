//! The cpu backend: ndarray + rayon.

mod autorec;
mod embedding;
pub(crate) mod grid;
mod nn;
pub(crate) mod rowopt;

pub use autorec::{AutoRecTrainer, rated_items};
pub use embedding::EmbeddingTrainer;
pub use grid::GridTrainer;
pub use nn::NeuralTrainer;

use crate::backend::{Backend, Device, Divergence, ModelSpec, Report, Trainer};
use crate::error::{Result, TrainError};
use crate::schedule::Schedule;

/// Trains on the calling thread's rayon pool; `threads` is that pool's size.
#[derive(Debug, Clone, Copy)]
pub struct CpuBackend {
    pub threads: usize,
}

impl Backend for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }

    fn trainer(&self, spec: &ModelSpec) -> Result<Box<dyn Trainer>> {
        let parallel = self.threads > 1;
        if spec.kind == crate::config::ModelKind::Autorec {
            Ok(Box::new(AutoRecTrainer::new(spec, parallel)))
        } else if grid::applies(&spec.cfg) {
            Ok(Box::new(GridTrainer::new(spec, parallel)))
        } else if spec.kind.is_embedding() {
            Ok(Box::new(EmbeddingTrainer::new(spec, parallel)))
        } else if spec.kind == crate::config::ModelKind::Classifier
            && spec.classes.as_ref().is_none_or(|c| c.len() < 2)
        {
            Err(TrainError::config(
                "model",
                "`classifier` needs at least two distinct rating values in train",
            ))
        } else {
            Ok(Box::new(NeuralTrainer::new(spec)))
        }
    }
}

/// The batch loop every CPU trainer shares: the scheduled learning rate of each of
/// `n_batches` steps goes to `step(b, lr)`, which takes the step and returns its summed loss
/// and example count; a non-finite loss stops the epoch with the batch and its rate, and the
/// running mean is reported every `every` batches. Returns (summed loss, examples).
pub(crate) fn batch_loop(
    n_batches: usize,
    schedule: &Schedule,
    step0: usize,
    every: usize,
    report: Report<'_>,
    mut step: impl FnMut(usize, f32) -> (f64, usize),
) -> std::result::Result<(f64, usize), Divergence> {
    let (mut total, mut seen) = (0.0f64, 0usize);
    for b in 0..n_batches {
        let lr = schedule.lr(step0 + b);
        let (loss, n) = step(b, lr);
        if !loss.is_finite() {
            return Err(Divergence {
                batch: b + 1,
                value: loss,
                lr,
            });
        }
        total += loss;
        seen += n;
        if (b + 1) % every == 0 {
            report(b + 1, total / seen.max(1) as f64);
        }
    }
    Ok((total, seen))
}

#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Scores (user, item) pairs with `raw` and squashes them into `y_range`; the embedding
/// trainers share it for their validation predictions.
pub(crate) fn predict_pairs(
    parallel: bool,
    y_range: Option<[f32; 2]>,
    users: &[u32],
    items: &[u32],
    out: &mut [f32],
    raw: impl Fn(usize, usize) -> f32 + Sync,
) {
    use rayon::prelude::*;
    let one = |(o, (&u, &i)): (&mut f32, (&u32, &u32))| {
        let raw = raw(u as usize, i as usize);
        *o = match y_range {
            Some([lo, hi]) => lo + (hi - lo) * sigmoid(raw),
            None => raw,
        };
    };
    if parallel {
        out.par_iter_mut()
            .zip(users.par_iter().zip(items.par_iter()))
            .with_min_len(4096)
            .for_each(one);
    } else {
        out.iter_mut().zip(users.iter().zip(items)).for_each(one);
    }
}
