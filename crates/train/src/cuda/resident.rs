//! What every CUDA trainer keeps on the device besides its model: the training ratings
//! (uploaded at the first epoch, again only if the data changes), the validation ratings
//! (uploaded at the first validation), and the first device error, which ends training
//! (`Trainer::failure`). Scoring (validation, predictions) is the same for every trainer
//! of dot / dot_bias and lives here too.

use crate::backend::{Metrics, RatingsView};
use recpipe_cuda::mf::{DeviceRatings, Tables};
use recpipe_cuda::{Accel, Error, Purpose};
use std::sync::{Arc, Mutex};

const TRAIN: Purpose = Purpose {
    what: "the training ratings",
    setting: "the number of ratings (or use device = \"cpu\")",
};
const VALID: Purpose = Purpose {
    what: "the validation ratings",
    setting: "the valid fraction (or use device = \"cpu\")",
};

/// Uploaded ratings and which host data they came from (pointer, length).
type Upload = ((usize, usize), DeviceRatings);

fn source(d: RatingsView<'_>) -> (usize, usize) {
    (d.user.as_ptr() as usize, d.len())
}

fn upload(accel: &Arc<dyn Accel>, d: RatingsView<'_>, p: Purpose) -> Result<Upload, Error> {
    let r = DeviceRatings::upload(accel, (d.user, d.item, d.rating), p)?;
    Ok((source(d), r))
}

#[derive(Debug)]
pub struct Resident {
    pub accel: Arc<dyn Accel>,
    train: Option<Upload>,
    valid: Mutex<Option<Upload>>,
    failed: Mutex<Option<String>>,
}

impl Resident {
    pub fn new(accel: Arc<dyn Accel>) -> Self {
        Resident {
            accel,
            train: None,
            valid: Mutex::new(None),
            failed: Mutex::new(None),
        }
    }

    /// The training ratings on the device (uploaded when `d` is new).
    pub fn train(&mut self, d: RatingsView<'_>) -> Result<&DeviceRatings, Error> {
        if self.train.as_ref().is_none_or(|(s, _)| *s != source(d)) {
            // Free the old upload before making the new one.
            self.train = None;
            self.train = Some(upload(&self.accel, d, TRAIN)?);
        }
        Ok(&self.train.as_ref().expect("uploaded above").1)
    }

    /// Records the first device error.
    pub fn fail(&self, e: Error) {
        self.failed.lock().unwrap().get_or_insert(e.to_string());
    }

    pub fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap().clone()
    }

    /// Valid-set RMSE and MAE of `t`, reduced on the device (NaN, and the error recorded,
    /// when the device fails).
    pub fn metrics(&self, t: Tables<'_>, d: RatingsView<'_>, y: Option<[f32; 2]>) -> Metrics {
        if d.is_empty() {
            return Metrics::default();
        }
        let errors = || {
            let mut valid = self.valid.lock().unwrap();
            if valid.as_ref().is_none_or(|(s, _)| *s != source(d)) {
                *valid = None;
                *valid = Some(upload(&self.accel, d, VALID)?);
            }
            t.errors(&valid.as_ref().expect("uploaded above").1, y)
        };
        let (sse, sae) = errors().unwrap_or_else(|e| {
            self.fail(e);
            (f64::NAN, f64::NAN)
        });
        let n = d.len() as f64;
        Metrics {
            rmse: (sse / n).sqrt(),
            mae: sae / n,
            accuracy: None,
        }
    }

    /// Predictions of `t` (NaN, and the error recorded, when the device fails).
    pub fn predict(
        &self,
        t: Tables<'_>,
        pairs: (&[u32], &[u32]),
        y: Option<[f32; 2]>,
        out: &mut [f32],
    ) {
        if let Err(e) = t.predict(pairs.0, pairs.1, y, out) {
            out.fill(f32::NAN);
            self.fail(e);
        }
    }
}
