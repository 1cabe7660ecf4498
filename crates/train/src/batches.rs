//! The batch loop inside one epoch, the same for every trainer on every backend: the
//! scheduled learning rate of each step, the divergence check after each batch, the running
//! mean loss and the progress reports. A trainer supplies only the step itself.

use crate::backend::{Divergence, Report};
use crate::schedule::Schedule;

/// The shape of one epoch's batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batches<'a> {
    /// Batches in the epoch.
    pub n: usize,
    pub schedule: &'a Schedule,
    /// The global schedule step of the epoch's first batch.
    pub step0: usize,
    /// Report the running mean every this many batches.
    pub every: usize,
    /// Whether a batch advances the schedule by its examples rather than by one: per-rating
    /// SGD counts a step per rating and runs them in big blocks (grid sub-epochs).
    pub steps_are_examples: bool,
}

impl Batches<'_> {
    /// Runs `step(b, lr)` for every batch `b` at its scheduled rate; `step` takes the step and
    /// returns the batch's summed loss and its example count. A non-finite loss stops the
    /// epoch with the step it reached and its rate. Returns the mean loss per example.
    pub(crate) fn run(
        &self,
        report: Report<'_>,
        mut step: impl FnMut(usize, f32) -> (f64, usize),
    ) -> std::result::Result<f64, Divergence> {
        let (mut total, mut seen, mut at) = (0.0f64, 0usize, 0usize);
        for b in 0..self.n {
            let lr = self.schedule.lr(self.step0 + at);
            let (loss, n) = step(b, lr);
            at += if self.steps_are_examples { n } else { 1 };
            if !loss.is_finite() {
                return Err(Divergence {
                    batch: at,
                    value: loss,
                    lr,
                });
            }
            total += loss;
            seen += n;
            if (b + 1) % self.every == 0 {
                report(at, total / seen.max(1) as f64);
            }
        }
        Ok(total / seen.max(1) as f64)
    }
}
