//! The cpu backend: ndarray + rayon.

mod embedding;
pub(crate) mod grid;
mod nn;
pub(crate) mod rowopt;

pub use embedding::EmbeddingTrainer;
pub use grid::GridTrainer;
pub use nn::NeuralTrainer;

use crate::backend::{Backend, Device, ModelSpec, Trainer};
use crate::error::{Result, TrainError};

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
        if grid::applies(&spec.cfg) {
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
