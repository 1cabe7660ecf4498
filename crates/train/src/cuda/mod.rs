//! The CUDA backend: the trainers of each [`Family`] the GPU runs, on an
//! [`Accel`](recpipe_cuda::Accel) — a real device ([`recpipe_cuda::gpu::Gpu`]) in use, or
//! recpipe-cuda-harness's host-thread device in tests, so this code runs end to end on
//! machines with no GPU. The kernels, buffers and launches live in the recpipe-cuda crate;
//! what is here is the trainer glue: initial weights as the cpu draws them, the chunking
//! of an epoch, and the checkpoint's tensors.
//!
//! Trains `dot` / `dot_bias` with per-rating SGD or Adagrad ([`Family::PerRating`],
//! `per_rating.rs`) and with mini-batches ([`Family::Embedding`], `minibatch.rs`), and
//! `mlp` / `hybrid` / `classifier` ([`Family::Neural`], `neural.rs`), and I-AutoRec
//! ([`Family::AutoRec`], `autorec.rs`).

mod autorec;
pub(crate) mod bpr;
mod minibatch;
mod neural;
mod per_rating;
mod resident;
mod trainer;
mod weights;

pub use autorec::AutoRecCudaTrainer;
pub use minibatch::MiniBatchTrainer;
pub use neural::NeuralCudaTrainer;
pub use per_rating::PerRatingTrainer;
pub use resident::Resident;
pub use trainer::{CudaTrainer, DeviceModel};

use weights::{all_finite, initial_weights, shape_of, tensors_of};

use crate::backend::{Backend, Device, Family, ModelSpec, Trainer};
use crate::error::{Result, TrainError};
use recpipe_cuda::Accel;
use std::sync::Arc;

/// How the per-rating kernel walks an epoch's chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every warp of a wide grid takes ratings of the chunk and races on shared rows
    /// (Hogwild): the fast path.
    Hogwild,
    /// One warp walks the chunk in order: deterministic, for tests.
    Sequential,
}

/// Trains on one CUDA device (or the harness's stand-in for one).
#[derive(Debug, Clone)]
pub struct CudaBackend {
    accel: Arc<dyn Accel>,
    device: Device,
    schedule: Schedule,
}

impl CudaBackend {
    /// Opens CUDA device `n` and loads the kernels.
    pub fn open(n: usize) -> Result<Self> {
        let gpu = recpipe_cuda::gpu::Gpu::open(n).map_err(|e| cuda_error(Device::Cuda(n), e))?;
        tracing::info!("training on {}", gpu.describe());
        Ok(CudaBackend {
            accel: gpu,
            device: Device::Cuda(n),
            schedule: Schedule::Hogwild,
        })
    }

    /// The device it trains on (the ranking models take it directly).
    pub fn accel(&self) -> Arc<dyn Accel> {
        self.accel.clone()
    }

    /// A backend on any accel (the harness's in tests), recorded as `device`.
    pub fn on(accel: Arc<dyn Accel>, device: Device, schedule: Schedule) -> Self {
        CudaBackend {
            accel,
            device,
            schedule,
        }
    }
}

/// A recpipe-cuda error as the train stage reports it.
pub(crate) fn cuda_error(device: Device, e: recpipe_cuda::Error) -> TrainError {
    TrainError::Cuda {
        device: device.name(),
        message: e.to_string(),
    }
}

impl Backend for CudaBackend {
    fn device(&self) -> Device {
        self.device
    }

    fn build(&self, family: Family, spec: &ModelSpec) -> Result<Box<dyn Trainer>> {
        match family {
            Family::PerRating => Ok(Box::new(
                per_rating::trainer(self.accel.clone(), spec, self.schedule)
                    .map_err(|e| cuda_error(self.device, e))?,
            )),
            Family::AutoRec => Ok(Box::new(
                autorec::trainer(self.accel.clone(), spec)
                    .map_err(|e| cuda_error(self.device, e))?,
            )),
            Family::Embedding => Ok(Box::new(
                minibatch::trainer(self.accel.clone(), spec)
                    .map_err(|e| cuda_error(self.device, e))?,
            )),
            Family::Neural => Ok(Box::new(
                neural::trainer(self.accel.clone(), spec)
                    .map_err(|e| cuda_error(self.device, e))?,
            )),
        }
    }
}
