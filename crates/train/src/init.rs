//! Weight initialisation matching the reference notebooks.

use crate::config::{Config, InitKind};
use crate::rng::Rng;

/// One embedding table's starting weights, drawn from `rng` in this order: `n × k` factors,
/// then with `bias` `n` biases (left at zero under he_normal, as Keras does). Every trainer
/// draws its tables here, so all paths start from the same model for a seed.
pub fn table(cfg: &Config, n: usize, k: usize, bias: bool, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let mut w = vec![0.0; n * k];
    fill(&mut w, cfg.init, cfg.init_scale, n, rng);
    let mut b = vec![0.0; if bias { n } else { 0 }];
    if bias && cfg.init != InitKind::HeNormal {
        fill(&mut b, cfg.init, cfg.init_scale, n, rng);
    }
    (w, b)
}

/// Fills `w` (a table with `fan_in` rows, as Keras counts an embedding's fan-in).
pub fn fill(w: &mut [f32], init: InitKind, scale: Option<f32>, fan_in: usize, rng: &mut Rng) {
    match init {
        InitKind::Uniform => {
            let s = scale.unwrap_or(0.01);
            w.iter_mut().for_each(|x| *x = (2.0 * rng.f32() - 1.0) * s);
        }
        InitKind::UniformPos => {
            let s = scale.unwrap_or(0.05);
            w.iter_mut().for_each(|x| *x = rng.f32() * s);
        }
        InitKind::Normal => {
            let s = scale.unwrap_or(0.01);
            w.iter_mut().for_each(|x| *x = rng.normal() * s);
        }
        InitKind::HeNormal => {
            // Keras draws from a normal truncated at 2 std and rescales so the truncated
            // distribution keeps the std sqrt(2 / fan_in).
            let std = (2.0 / fan_in.max(1) as f32).sqrt() / 0.879_625_7 * scale.unwrap_or(1.0);
            for x in w.iter_mut() {
                let z = loop {
                    let z = rng.normal();
                    if z.abs() <= 2.0 {
                        break z;
                    }
                };
                *x = z * std;
            }
        }
    }
}
