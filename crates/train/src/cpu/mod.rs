//! The CPU backend (ndarray + rayon): the CPU implementation of each trainer [`Family`].
//! Everything that does not depend on the device (dispatch, the batch and epoch loops) is
//! outside this folder; see `backend.rs`.

mod autorec;
mod embedding;
pub(crate) mod grid;
mod layers;
mod net;
mod neural;
pub(crate) mod rowopt;

pub use autorec::{AutoRecTrainer, rated_items};
pub use embedding::EmbeddingTrainer;
pub use grid::GridTrainer;
pub(crate) use layers::Linear;
pub use neural::NeuralTrainer;

use crate::backend::{Backend, Device, Family, ModelSpec, Trainer};
use crate::error::Result;
use recpipe_core::math::squash;

/// Trains on the calling thread's rayon pool; `threads` is that pool's size.
#[derive(Debug, Clone, Copy)]
pub struct CpuBackend {
    pub threads: usize,
}

impl Backend for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }

    fn build(&self, family: Family, spec: &ModelSpec) -> Result<Box<dyn Trainer>> {
        let parallel = self.threads > 1;
        Ok(match family {
            Family::AutoRec => Box::new(AutoRecTrainer::new(spec, parallel)),
            Family::PerRating => Box::new(GridTrainer::new(spec, parallel)),
            Family::Embedding => Box::new(EmbeddingTrainer::new(spec, parallel)),
            Family::Neural => Box::new(NeuralTrainer::new(spec)),
        })
    }
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
        *o = squash(raw(u as usize, i as usize), y_range);
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
