//! Learning-rate schedules, as a function of the global step.

use crate::config::{Config, ScheduleKind};

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    kind: ScheduleKind,
    lr: f32,
    steps_per_epoch: usize,
    total: usize,
    step_size: usize,
    gamma: f32,
    pct_start: f32,
}

impl Schedule {
    pub fn new(cfg: &Config, steps_per_epoch: usize) -> Self {
        Schedule {
            kind: cfg.schedule,
            lr: cfg.lr,
            steps_per_epoch: steps_per_epoch.max(1),
            total: steps_per_epoch.saturating_mul(cfg.epochs).max(1),
            step_size: cfg.step_size,
            gamma: cfg.gamma,
            pct_start: cfg.pct_start,
        }
    }

    /// The learning rate of 0-based global step `step`.
    pub fn lr(&self, step: usize) -> f32 {
        match self.kind {
            ScheduleKind::Constant => self.lr,
            ScheduleKind::Step => {
                let epoch = step / self.steps_per_epoch;
                self.lr * self.gamma.powi((epoch / self.step_size) as i32)
            }
            ScheduleKind::OneCycle => {
                // fastai: div = 25, final div = 1e4 relative to the start.
                let (start, end) = (self.lr / 25.0, self.lr / 25.0 / 1e4);
                let warm = ((self.total as f32 * self.pct_start) as usize).max(1);
                let cos = |a: f32, b: f32, p: f32| {
                    b + (a - b) / 2.0 * (1.0 + (std::f32::consts::PI * p.clamp(0.0, 1.0)).cos())
                };
                if step < warm {
                    cos(start, self.lr, step as f32 / warm as f32)
                } else {
                    let rest = (self.total - warm).max(1);
                    cos(self.lr, end, (step - warm) as f32 / rest as f32)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let cfg = Config {
            schedule: ScheduleKind::OneCycle,
            lr: 1e-2,
            epochs: 4,
            ..Config::default()
        };
        let s = Schedule::new(&cfg, 100);
        assert!((s.lr(0) - 4e-4).abs() < 1e-7);
        assert!((s.lr(100) - 1e-2).abs() < 1e-6);
        assert!(s.lr(399) < 1e-5 && s.lr(250) < s.lr(150));
        let cfg = Config {
            schedule: ScheduleKind::Step,
            lr: 1.0,
            step_size: 2,
            gamma: 0.1,
            ..Config::default()
        };
        let s = Schedule::new(&cfg, 10);
        assert_eq!((s.lr(19), s.lr(20), s.lr(45)), (1.0, 0.1, 0.1f32.powi(2)));
    }
}
