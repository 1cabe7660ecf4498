#![allow(dead_code)]

use recpipe_core::Ratings;

/// SplitMix64, so the fixtures do not depend on the crate's private generator.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen(seed)
    }
    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (a, b) = (1.0 - self.unit(), self.unit());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }
    pub fn below(&mut self, n: usize) -> usize {
        ((self.u64() as u128 * n as u128) >> 64) as usize
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Planted data: rating = 3.5 + b_u + b_i + u·v + noise, with the truth's bias-only part
/// returned too (the best any bias-only model could predict).
pub struct Planted {
    pub train: Ratings,
    pub valid: Ratings,
    /// Bias-only truth (3.5 + b_u + b_i) for each valid rating.
    pub valid_bias_only: Vec<f32>,
}

pub fn planted(n_users: usize, n_items: usize, rank: usize, n: usize, noise: f64) -> Planted {
    let mut g = Gen::new(7);
    let fu: Vec<f64> = (0..n_users * rank).map(|_| g.normal() * 0.6).collect();
    let fi: Vec<f64> = (0..n_items * rank).map(|_| g.normal() * 0.6).collect();
    let bu: Vec<f64> = (0..n_users).map(|_| g.normal() * 0.3).collect();
    let bi: Vec<f64> = (0..n_items).map(|_| g.normal() * 0.3).collect();
    let mut all = Ratings {
        n_users: n_users as u32,
        n_items: n_items as u32,
        ..Default::default()
    };
    let mut bias_only = Vec::new();
    for _ in 0..n {
        let (u, i) = (g.below(n_users), g.below(n_items));
        let dot: f64 = (0..rank).map(|d| fu[u * rank + d] * fi[i * rank + d]).sum();
        let b = 3.5 + bu[u] + bi[i];
        all.user.push(u as u32);
        all.item.push(i as u32);
        all.rating.push((b + dot + g.normal() * noise) as f32);
        bias_only.push(b as f32);
    }
    let cut = n * 9 / 10;
    let idx: Vec<usize> = (0..n).collect();
    Planted {
        train: all.select(&idx[..cut]),
        valid: all.select(&idx[cut..]),
        valid_bias_only: bias_only[cut..].to_vec(),
    }
}

/// data/ml-latest-small/ratings.csv with dense ids (first seen) and a seeded 90/10 split.
pub fn bundled() -> (Ratings, Ratings) {
    let all = recpipe_core::testutil::bundled_ratings();
    let mut idx: Vec<usize> = (0..all.len()).collect();
    Gen::new(42).shuffle(&mut idx);
    let cut = all.len() * 9 / 10;
    (all.select(&idx[..cut]), all.select(&idx[cut..]))
}

pub fn rmse(a: &[f32], b: &[f32]) -> f64 {
    let se: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    (se / a.len() as f64).sqrt()
}

/// The real GPU, or why there is none: the GPU tests return early after printing
/// `skipped: no GPU (…)`, and fail instead under `RECPIPE_REQUIRE_GPU=1`.
pub fn gpu() -> Option<recpipe_train::cuda::CudaBackend> {
    match recpipe_train::cuda::CudaBackend::open(0) {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var_os("RECPIPE_REQUIRE_GPU").is_some_and(|v| v == "1") {
                panic!("RECPIPE_REQUIRE_GPU=1 but no GPU: {e}");
            }
            println!("skipped: no GPU ({e})");
            None
        }
    }
}
