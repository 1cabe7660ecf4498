//! The one `Trainer` of the CUDA backend, around a [`DeviceModel`] (per-rating or
//! mini-batch dot / dot_bias): device errors, which the `Trainer` calls cannot return, are
//! recorded in the [`Resident`] and reported through `Trainer::failure`; validation and
//! predictions run on the device; the checkpoint's tensors are the downloaded tables.

use super::resident::Resident;
use crate::backend::{EpochResult, EpochTask, Metrics, RatingsView, Report, Trainer};
use recpipe_core::model::Tensor;
use recpipe_cuda::Error;
use recpipe_cuda::mf::{MfShape, MfWeights, Tables};
use std::collections::BTreeMap;

/// A dot / dot_bias model resident on a device and how it trains an epoch.
pub trait DeviceModel: Send {
    /// One epoch of `task` (its data uploaded through `dev`).
    fn epoch(
        &mut self,
        dev: &mut Resident,
        task: &EpochTask<'_>,
        report: Report<'_>,
    ) -> Result<EpochResult, Error>;

    fn shape(&self) -> MfShape;

    fn tables(&self) -> Tables<'_>;

    fn weights(&self) -> Result<MfWeights, Error>;
}

/// A [`DeviceModel`] as a `Trainer`.
pub struct CudaTrainer<M> {
    pub(crate) dev: Resident,
    pub(crate) model: M,
    pub(crate) y_range: Option<[f32; 2]>,
}

impl<M: DeviceModel> CudaTrainer<M> {
    /// The weights, or the error recorded and None.
    fn downloaded(&self) -> Option<MfWeights> {
        self.model.weights().map_err(|e| self.dev.fail(e)).ok()
    }
}

impl<M: DeviceModel> Trainer for CudaTrainer<M> {
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        self.model
            .epoch(&mut self.dev, &task, report)
            .unwrap_or_else(|e| {
                self.dev.fail(e);
                Ok(0.0)
            })
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        let t = self.model.tables();
        self.dev.predict(t, (users, items), self.y_range, out);
    }

    fn evaluate(&self, data: RatingsView<'_>) -> Metrics {
        self.dev.metrics(self.model.tables(), data, self.y_range)
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.downloaded()
            .map(|w| super::tensors_of(self.model.shape(), &w))
            .unwrap_or_default()
    }

    fn finite(&self) -> bool {
        // One download of the tables per epoch: the cpu trainers scan theirs too.
        self.downloaded().is_some_and(|w| super::all_finite(&w))
    }

    fn failure(&self) -> Option<String> {
        self.dev.failure()
    }
}
