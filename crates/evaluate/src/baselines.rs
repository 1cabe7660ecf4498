//! Baselines fitted on the same train part as the models, so the report can say how much a
//! model adds over "predict the mean" and over the classic biases-only estimator.

use crate::data::{ByUser, item_counts};
use recpipe_core::Ratings;

/// Regularisation and sweeps of Surprise's `BaselineOnly` (ALS): the figures it is known by.
pub const REG_USER: f64 = 15.0;
pub const REG_ITEM: f64 = 10.0;
pub const SWEEPS: usize = 10;

/// The rating-prediction baselines, by name in every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    GlobalMean,
    UserMean,
    ItemMean,
    /// μ + b_u + b_i with regularised biases (Koren 2010; Surprise's BaselineOnly).
    Bias,
}

impl Baseline {
    pub const ALL: [Baseline; 4] = [
        Baseline::GlobalMean,
        Baseline::UserMean,
        Baseline::ItemMean,
        Baseline::Bias,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::GlobalMean => "global_mean",
            Baseline::UserMean => "user_mean",
            Baseline::ItemMean => "item_mean",
            Baseline::Bias => "bias_baseline",
        }
    }
}

/// Name of the most-popular ranking baseline.
pub const MOST_POPULAR: &str = "most_popular";

/// Every baseline, fitted on one train part.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub global_mean: f32,
    /// Mean train rating per user; the global mean for users without train ratings.
    pub user_mean: Vec<f32>,
    pub item_mean: Vec<f32>,
    pub user_bias: Vec<f32>,
    pub item_bias: Vec<f32>,
    /// Train rating count per item: the most-popular ranking.
    pub popularity: Vec<u32>,
    /// Lowest and highest train rating: the bias baseline is clipped to them, as Surprise does.
    pub rating_range: [f32; 2],
}

fn means(sums: &[f64], counts: &[u32], fallback: f32) -> Vec<f32> {
    sums.iter()
        .zip(counts)
        .map(|(&s, &c)| {
            if c == 0 {
                fallback
            } else {
                (s / c as f64) as f32
            }
        })
        .collect()
}

impl Fitted {
    pub fn fit(train: &Ratings) -> Fitted {
        let (nu, ni) = (train.n_users as usize, train.n_items as usize);
        let mu = train.mean_rating();
        let (mut su, mut si) = (vec![0f64; nu], vec![0f64; ni]);
        let (mut cu, mut ci) = (vec![0u32; nu], vec![0u32; ni]);
        for ((&u, &i), &r) in train.user.iter().zip(&train.item).zip(&train.rating) {
            su[u as usize] += r as f64;
            si[i as usize] += r as f64;
            cu[u as usize] += 1;
            ci[i as usize] += 1;
        }
        let (bu, bi) = als_biases(train, mu, &cu, &ci);
        let lo = train.rating.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = train
            .rating
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        Fitted {
            global_mean: mu as f32,
            user_mean: means(&su, &cu, mu as f32),
            item_mean: means(&si, &ci, mu as f32),
            user_bias: bu.iter().map(|&b| b as f32).collect(),
            item_bias: bi.iter().map(|&b| b as f32).collect(),
            popularity: item_counts(train),
            rating_range: if lo <= hi { [lo, hi] } else { [0.0, 0.0] },
        }
    }

    /// Predictions of `b` for pairs; users and items unseen in train get the global mean
    /// (and zero bias).
    pub fn predict(&self, b: Baseline, users: &[u32], items: &[u32]) -> Vec<f32> {
        let [lo, hi] = self.rating_range;
        let get = |v: &[f32], i: u32, d: f32| v.get(i as usize).copied().unwrap_or(d);
        let g = self.global_mean;
        users
            .iter()
            .zip(items)
            .map(|(&u, &i)| match b {
                Baseline::GlobalMean => g,
                Baseline::UserMean => get(&self.user_mean, u, g),
                Baseline::ItemMean => get(&self.item_mean, i, g),
                Baseline::Bias => {
                    let p = g + get(&self.user_bias, u, 0.0) + get(&self.item_bias, i, 0.0);
                    if lo < hi { p.clamp(lo, hi) } else { p }
                }
            })
            .collect()
    }
}

/// Alternating least squares on the biases, items then users each sweep, exactly as
/// Surprise's `BaselineOnly(bsl_options={"method": "als"})`.
fn als_biases(train: &Ratings, mu: f64, cu: &[u32], ci: &[u32]) -> (Vec<f64>, Vec<f64>) {
    let by_user = ByUser::build(train);
    let by_item = ByUser::build(&Ratings {
        user: train.item.clone(),
        item: train.user.clone(),
        rating: train.rating.clone(),
        timestamp: None,
        n_users: train.n_items,
        n_items: train.n_users,
    });
    let mut bu = vec![0f64; cu.len()];
    let mut bi = vec![0f64; ci.len()];
    for _ in 0..SWEEPS {
        solve_biases(&mut bi, &by_item, mu, &bu, REG_ITEM, ci);
        solve_biases(&mut bu, &by_user, mu, &bi, REG_USER, cu);
    }
    (bu, bi)
}

/// One half of an ALS sweep: the bias of every row of `groups` (users, or items with the
/// ratings transposed) from its ratings' residuals against the other side's biases.
fn solve_biases(
    out: &mut [f64],
    groups: &ByUser,
    mu: f64,
    other: &[f64],
    reg: f64,
    counts: &[u32],
) {
    for (k, b) in out.iter_mut().enumerate() {
        let k = k as u32;
        let dev: f64 = groups
            .items(k)
            .iter()
            .zip(groups.ratings(k))
            .map(|(&j, &r)| r as f64 - mu - other[j as usize])
            .sum();
        *b = dev / (reg + counts[k as usize] as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Ratings {
        Ratings {
            user: vec![0, 0, 1, 1, 1],
            item: vec![0, 1, 0, 1, 2],
            rating: vec![5.0, 3.0, 4.0, 2.0, 1.0],
            timestamp: None,
            n_users: 3,
            n_items: 4,
        }
    }

    #[test]
    fn means_fall_back_to_the_global_mean() {
        let f = Fitted::fit(&toy());
        assert!((f.global_mean - 3.0).abs() < 1e-6);
        let users = [0, 1, 2, 0];
        let items = [0, 1, 2, 3];
        assert_eq!(f.predict(Baseline::GlobalMean, &users, &items), [3.0; 4]);
        assert_eq!(
            f.predict(Baseline::UserMean, &users, &items),
            [4.0, 7.0 / 3.0, 3.0, 4.0]
        );
        assert_eq!(
            f.predict(Baseline::ItemMean, &users, &items),
            [4.5, 2.5, 1.0, 3.0]
        );
        assert_eq!(f.popularity, [2, 2, 1, 0]);
        assert_eq!(f.rating_range, [1.0, 5.0]);
    }

    #[test]
    fn als_biases_solve_the_regularised_normal_equations() {
        let train = toy();
        let f = Fitted::fit(&train);
        let mu = 3.0f64;
        // After the last sweep the user biases are exact for the final item biases.
        let bu0 = ((5.0 - mu - f.item_bias[0] as f64) + (3.0 - mu - f.item_bias[1] as f64))
            / (REG_USER + 2.0);
        assert!((f.user_bias[0] as f64 - bu0).abs() < 1e-6);
        // and the item biases nearly so (one half-sweep behind, converged after 10 sweeps).
        let bi2 = (1.0 - mu - f.user_bias[1] as f64) / (REG_ITEM + 1.0);
        assert!((f.item_bias[2] as f64 - bi2).abs() < 1e-4);
        assert_eq!(f.user_bias[2], 0.0);
        assert_eq!(f.item_bias[3], 0.0);
        let p = f.predict(Baseline::Bias, &[0], &[0])[0] as f64;
        assert!((p - (mu + bu0 + f.item_bias[0] as f64)).abs() < 1e-5);
    }
}
