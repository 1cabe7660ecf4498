//! iALS on the CUDA backend: the cpu's [`Ials`] supplies the starting factors (the same
//! seeded draws), both sides' rows and the loss; recpipe-cuda's `ials::Ials` runs the
//! half-sweeps on the device (`ials.cu`, the cpu's CG arithmetic), and the factors come
//! back after every epoch for the loss and the precision@10 monitor, as on the cpu.

use super::ials::{Ials, IalsParams};
use super::{Factors, Interactions, Iterative};
use crate::backend::Device;
use crate::cuda::cuda_error;
use crate::error::{Result, TrainError};
use recpipe_cuda::Accel;
use recpipe_cuda::ials::{KMAX, Rows};
use std::sync::Arc;

/// An iALS model trained on a device.
pub(super) struct IalsCuda {
    /// The factors as of the last epoch, the rows and the loss.
    host: Ials,
    dev: recpipe_cuda::ials::Ials,
    device: Device,
    failure: Option<TrainError>,
}

impl IalsCuda {
    /// The cpu model's seeded start, uploaded. Refuses k above the kernel's [`KMAX`] and
    /// interactions past its 32-bit offsets.
    pub(super) fn new(
        accel: &Arc<dyn Accel>,
        device: Device,
        data: &Interactions,
        rating: Option<&[f32]>,
        p: IalsParams,
    ) -> Result<IalsCuda> {
        if p.k > KMAX {
            return Err(TrainError::config(
                "k",
                format!(
                    "{} is above the CUDA iALS kernel's {KMAX}; lower it or use device = \"cpu\"",
                    p.k
                ),
            ));
        }
        if data.len() >= u32::MAX as usize {
            return Err(TrainError::Cuda {
                device: device.name(),
                message: format!(
                    "{} interactions are past the iALS kernel's 32-bit offsets; use device = \"cpu\"",
                    data.len()
                ),
            });
        }
        let host = Ials::new(data, rating, p)?;
        let [(us, ui, uw), (is, ii, iw)] = host.sides();
        let rows = |start, idx, w| Rows { start, idx, w };
        let (x0, y0) = host.tables();
        let p = host.params();
        let dev = recpipe_cuda::ials::Ials::new(
            accel,
            (p.k, p.reg, p.cg_steps),
            rows(&us, &ui, &uw),
            rows(&is, &ii, &iw),
            x0,
            y0,
        )
        .map_err(|e| cuda_error(device, e))?;
        Ok(IalsCuda {
            host,
            dev,
            device,
            failure: None,
        })
    }
}

impl Iterative for IalsCuda {
    /// One sweep on the device; the objective after it, from the downloaded factors.
    fn epoch(&mut self) -> f64 {
        match self.dev.epoch().and_then(|()| self.dev.factors()) {
            Ok((x, y)) => {
                self.host.set_tables(x, y);
                self.host.loss()
            }
            Err(e) => {
                self.failure = Some(cuda_error(self.device, e));
                f64::NAN
            }
        }
    }

    fn factors(&self) -> Factors {
        self.host.factors()
    }

    fn failure(&mut self) -> Option<TrainError> {
        self.failure.take()
    }
}
