//! Runs that blow up without a NaN: a learning rate so large that the sigmoid saturates
//! and the model settles far from the data, finishing with a valid RMSE worse than
//! predicting the training mean. Each epoch is compared with that global-mean baseline on
//! the valid set and the training loss is watched for steady growth; an exploded epoch is
//! warned about and never kept as the best, and a run whose result does not beat the
//! baseline fails rather than passing for a trained model.

use crate::error::{Result, TrainError};
use recpipe_core::Ratings;

/// An epoch whose valid RMSE exceeds the baseline by more than this fraction exploded.
const MARGIN: f64 = 0.10;
/// Epochs of growing training loss in a row that mark an explosion.
const GROWING: usize = 3;

#[derive(Debug)]
pub(crate) struct Watch {
    /// RMSE of predicting the training mean for every valid rating (None: no valid set).
    pub baseline: Option<f64>,
    lr: f32,
    last_loss: Option<f64>,
    growing: usize,
    pub exploded_epochs: Vec<usize>,
}

impl Watch {
    pub fn new(valid: &Ratings, global_mean: f32, lr: f32) -> Self {
        let baseline = (!valid.is_empty()).then(|| {
            let m = global_mean as f64;
            let se: f64 = valid.rating.iter().map(|&r| (r as f64 - m).powi(2)).sum();
            (se / valid.len() as f64).sqrt()
        });
        Watch {
            baseline,
            lr,
            last_loss: None,
            growing: 0,
            exploded_epochs: Vec::new(),
        }
    }

    /// Records an epoch; true when it exploded (and then it has been warned about).
    pub fn epoch(&mut self, epoch: usize, loss: f64, rmse: Option<f64>) -> bool {
        self.growing = match self.last_loss {
            Some(prev) if loss > prev => self.growing + 1,
            _ => 0,
        };
        self.last_loss = Some(loss);
        let lr = self.lr;
        let worse = match (rmse, self.baseline) {
            (Some(r), Some(b)) if r > b * (1.0 + MARGIN) => Some((r, b)),
            _ => None,
        };
        if let Some((r, b)) = worse {
            tracing::warn!(
                "training exploded in epoch {epoch}: valid RMSE {r:.4} is worse than \
                 predicting the global mean ({b:.4}); lower lr (now {lr}), e.g. to {}",
                lr / 10.0
            );
        } else if self.growing >= GROWING {
            tracing::warn!(
                "training loss grew {} epochs in a row (epoch {epoch}: {loss:.4}): the run may \
                 be diverging; lower lr (now {lr}), e.g. to {}",
                self.growing,
                lr / 10.0
            );
            // With a valid set its RMSE decides which epoch is kept; without one, the
            // growing loss is all there is to go by.
            if self.baseline.is_some() {
                return false;
            }
        } else {
            return false;
        }
        self.exploded_epochs.push(epoch);
        true
    }

    /// The saved epoch (None: every epoch exploded and keep_best kept none) must beat the
    /// global-mean baseline, and must not have exploded.
    pub fn check_result(&self, kept: Option<(usize, Option<f64>)>) -> Result<()> {
        let lr = self.lr;
        let Some((epoch, rmse)) = kept else {
            return Err(TrainError::Exploded(format!(
                "training exploded in every epoch ({:?}); lower lr (now {lr}), e.g. to {}; \
                 no checkpoint was written",
                self.exploded_epochs,
                lr / 10.0
            )));
        };
        if let (Some(r), Some(b)) = (rmse, self.baseline)
            && r >= b
        {
            return Err(TrainError::Exploded(format!(
                "training did not beat the global mean: the kept model (epoch {epoch}) has valid \
                 RMSE {r:.4}, predicting the training mean gives {b:.4}; lower lr (now {lr}), \
                 e.g. to {}, or train longer; no checkpoint was written",
                lr / 10.0
            )));
        }
        if self.exploded_epochs.contains(&epoch) {
            return Err(TrainError::Exploded(format!(
                "training exploded (epochs {:?}) and no earlier epoch can be kept; lower lr \
                 (now {lr}), e.g. to {}, or set keep_best = true; no checkpoint was written",
                self.exploded_epochs,
                lr / 10.0
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Ratings {
        Ratings {
            user: vec![0, 1, 2, 3],
            item: vec![0, 0, 1, 1],
            rating: vec![1.0, 2.0, 4.0, 5.0],
            timestamp: None,
            n_users: 4,
            n_items: 2,
        }
    }

    #[test]
    fn baseline_is_the_global_mean_rmse_and_bad_epochs_are_caught() {
        let mut w = Watch::new(&valid(), 3.0, 0.01);
        let b = w.baseline.unwrap();
        assert!((b - 2.5f64.sqrt()).abs() < 1e-12);
        assert!(!w.epoch(1, 1.0, Some(b * 1.05)), "within the margin");
        assert!(w.epoch(2, 0.9, Some(b * 1.2)));
        assert!(!w.epoch(3, 0.8, Some(b * 0.5)));
        assert!(w.check_result(Some((3, Some(b * 0.5)))).is_ok());
        assert!(w.check_result(Some((2, Some(b * 1.2)))).is_err());
        let e = w.check_result(Some((1, Some(b * 1.05)))).unwrap_err();
        assert!(
            e.to_string().contains("did not beat the global mean"),
            "{e}"
        );
        assert!(w.check_result(None).is_err());
        // Loss growing three epochs in a row, no valid set.
        let mut w = Watch::new(&Ratings::default(), 3.0, 0.01);
        assert!(!w.epoch(1, 1.0, None) && !w.epoch(2, 1.1, None) && !w.epoch(3, 1.2, None));
        assert!(w.epoch(4, 1.3, None));
        assert!(w.check_result(Some((4, None))).is_err());
        assert!(w.check_result(Some((3, None))).is_ok());
        // With a valid set, a growing loss alone is a warning, not an explosion.
        let mut w = Watch::new(&valid(), 3.0, 0.01);
        let b = w.baseline.unwrap();
        for (e, loss) in [(1, 1.0), (2, 1.1), (3, 1.2)] {
            assert!(!w.epoch(e, loss, Some(b * 0.5)));
        }
        assert!(!w.epoch(4, 1.3, Some(b * 0.5)));
    }
}
