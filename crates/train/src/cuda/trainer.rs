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
    /// The tables as downloaded since the last epoch: `finite` and then `tensors` (keep-best)
    /// read one copy instead of two.
    pub(crate) host: std::sync::Mutex<Option<std::sync::Arc<MfWeights>>>,
}

impl<M: DeviceModel> CudaTrainer<M> {
    pub(crate) fn new(dev: Resident, model: M, y_range: Option<[f32; 2]>) -> Self {
        CudaTrainer {
            dev,
            model,
            y_range,
            host: std::sync::Mutex::new(None),
        }
    }

    /// The weights (downloaded once per epoch), or the error recorded and None.
    fn downloaded(&self) -> Option<std::sync::Arc<MfWeights>> {
        let mut host = self.host.lock().unwrap();
        if host.is_none() {
            *host = Some(std::sync::Arc::new(
                self.model.weights().map_err(|e| self.dev.fail(e)).ok()?,
            ));
        }
        host.clone()
    }
}

impl<M: DeviceModel> Trainer for CudaTrainer<M> {
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        *self.host.get_mut().unwrap() = None;
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
