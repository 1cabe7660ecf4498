//! A MovieLens-shaped synthetic data set: power-law user activity and item popularity,
//! ratings from planted low-rank factors plus biases plus Gaussian noise, rounded to 0.5
//! steps in 0.5..5, written as ml-latest `ratings.csv` + `movies.csv` so the real loader
//! reads them.
//!
//! Deterministic for a seed whatever the thread count: every user draws from its own random
//! stream, and users are generated in fixed blocks written in order. Memory is bounded by one
//! window of users and the item tables, so 25M+ rows need no more than a small data set.

use crate::error::IngestError;
use rayon::prelude::*;
use recpipe_core::fsutil::AtomicFile;
use recpipe_core::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Shape of the generated data. Defaults mimic ML-25M scaled down about 16x in users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    pub n_users: u32,
    pub n_items: u32,
    /// Exactly this many ratings are written.
    pub n_ratings: u64,
    /// Rank of the planted user/item factors.
    pub k: usize,
    /// Standard deviation of the Gaussian noise added before rounding.
    pub noise: f32,
    /// Standard deviation of the planted interaction term <p_u, q_i>.
    pub signal: f32,
    pub user_bias: f32,
    pub item_bias: f32,
    /// Global mean rating before clipping and rounding.
    pub mean: f32,
    /// Zipf exponent of item popularity (higher: a steeper head).
    pub item_popularity: f64,
    /// Zipf exponent of user activity.
    pub user_activity: f64,
    /// Every user rates at least this many items (MovieLens keeps users with >= 20).
    pub min_ratings_per_user: u32,
    /// Timestamps lie in [start_timestamp, start_timestamp + span_days).
    pub start_timestamp: i64,
    pub span_days: u32,
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            n_users: 10_000,
            n_items: 4_000,
            n_ratings: 1_500_000,
            k: 8,
            noise: 0.5,
            signal: 0.7,
            user_bias: 0.35,
            item_bias: 0.45,
            mean: 3.5,
            item_popularity: 0.9,
            user_activity: 0.8,
            min_ratings_per_user: 20,
            start_timestamp: 946_684_800,
            span_days: 7_300,
            seed: 42,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    pub ratings_file: PathBuf,
    pub movies_file: PathBuf,
    pub n_users: u64,
    pub n_items: u64,
    pub n_ratings: u64,
    /// Items that received at least one rating.
    pub items_rated: u64,
    /// RMSE of the planted model (mean + biases + factors) against the written ratings:
    /// the floor a perfect learner reaches.
    pub oracle_rmse: f64,
    /// RMSE of the planted biases alone: what a bias-only model reaches at best.
    pub bias_only_rmse: f64,
    /// Empirical standard deviation of the planted interaction term.
    pub signal_std: f64,
    pub seconds: f64,
}

fn check(cfg: &SynthConfig) -> Result<(), IngestError> {
    let bad = |key: &'static str, msg: String| Err(IngestError::config(key, msg));
    if cfg.n_users == 0 || cfg.n_items == 0 {
        return bad(
            "synthetic.n_users",
            "n_users and n_items must be at least 1".into(),
        );
    }
    if cfg.n_ratings < cfg.n_users as u64 {
        return bad(
            "synthetic.n_ratings",
            format!(
                "{} ratings cannot give each of {} users a rating; raise n_ratings or lower n_users",
                cfg.n_ratings, cfg.n_users
            ),
        );
    }
    if cfg.n_ratings > cfg.n_users as u64 * cfg.n_items as u64 {
        return bad(
            "synthetic.n_ratings",
            format!(
                "{} ratings exceed n_users * n_items = {}; each pair is rated at most once",
                cfg.n_ratings,
                cfg.n_users as u64 * cfg.n_items as u64
            ),
        );
    }
    if cfg.k == 0 || cfg.k > 1024 {
        return bad("synthetic.k", format!("k = {} must be in 1..=1024", cfg.k));
    }
    for (key, v) in [
        ("synthetic.noise", cfg.noise),
        ("synthetic.signal", cfg.signal),
        ("synthetic.user_bias", cfg.user_bias),
        ("synthetic.item_bias", cfg.item_bias),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return bad(key, format!("{v} must be a finite number >= 0"));
        }
    }
    Ok(())
}

/// Ratings per user: Zipf weights over a random order of users, at least the minimum each,
/// summing to exactly n_ratings, none above n_items.
fn user_counts(cfg: &SynthConfig, rng: &mut SplitMix64) -> Vec<u32> {
    let n = cfg.n_users as usize;
    let cap = cfg.n_items;
    let min = (cfg.min_ratings_per_user as u64)
        .min(cfg.n_ratings / n as u64)
        .min(cap as u64) as u32;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below_biased(i as u64 + 1) as usize);
    }
    let mut weight = vec![0f64; n];
    for (rank, &u) in order.iter().enumerate() {
        weight[u] = (rank as f64 + 1.0).powf(-cfg.user_activity);
    }
    let total: f64 = weight.iter().sum();
    let spare = cfg.n_ratings - min as u64 * n as u64;
    let mut counts: Vec<u32> = weight
        .iter()
        .map(|w| (min as u64 + (spare as f64 * w / total) as u64).min(cap as u64) as u32)
        .collect();
    let mut left = cfg.n_ratings - counts.iter().map(|&c| c as u64).sum::<u64>();
    // Hand out what rounding and the cap left over, most active users first.
    while left > 0 {
        for &u in &order {
            if left == 0 {
                break;
            }
            if counts[u] < cap {
                counts[u] += 1;
                left -= 1;
            }
        }
    }
    counts
}

struct Items {
    factors: Vec<f32>,
    bias: Vec<f32>,
    /// Cumulative popularity over items, for inverse-CDF sampling.
    cdf: Vec<f64>,
}

fn items(cfg: &SynthConfig, rng: &mut SplitMix64, factor_std: f64) -> Items {
    let n = cfg.n_items as usize;
    let factors = (0..n * cfg.k)
        .map(|_| (rng.normal_f64() * factor_std) as f32)
        .collect();
    let bias = (0..n)
        .map(|_| (rng.normal_f64() * cfg.item_bias as f64) as f32)
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.below_biased(i as u64 + 1) as usize);
    }
    let mut weight = vec![0f64; n];
    for (rank, &i) in order.iter().enumerate() {
        weight[i] = (rank as f64 + 1.0).powf(-cfg.item_popularity);
    }
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = weight
        .iter()
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    Items { factors, bias, cdf }
}

#[derive(Default, Clone, Copy)]
struct Sums {
    oracle: f64,
    bias: f64,
    dot: f64,
    dot2: f64,
}

/// A window of consecutive users generated as CSV text.
fn user_block(
    cfg: &SynthConfig,
    items: &Items,
    counts: &[u32],
    first_user: usize,
    factor_std: f64,
    hits: &mut [u32],
) -> (Vec<u8>, Sums, Vec<u32>) {
    let k = cfg.k;
    let mut out = Vec::with_capacity(counts.iter().map(|&c| c as usize * 24).sum());
    let mut sums = Sums::default();
    let mut chosen: Vec<u32> = Vec::new();
    let mut p = vec![0f32; k];
    let mut rated_items = Vec::new();
    let span = cfg.span_days as f64 * 86_400.0;
    for (off, &count) in counts.iter().enumerate() {
        let user = first_user + off;
        let stamp = user as u32 + 1;
        let mut rng = SplitMix64::stream(cfg.seed, user as u64 + 1);
        for x in &mut p {
            *x = (rng.normal_f64() * factor_std) as f32;
        }
        let bu = rng.normal_f64() * cfg.user_bias as f64;
        chosen.clear();
        let n_items = cfg.n_items as usize;
        for _ in 0..count {
            let mut pick = None;
            for _ in 0..32 {
                let u = rng.f64();
                let i = items.cdf.partition_point(|&c| c <= u).min(n_items - 1);
                if hits[i] != stamp {
                    pick = Some(i);
                    break;
                }
            }
            // Heavy users exhaust the popular head; walk to the next unrated item.
            let i = pick.unwrap_or_else(|| {
                let mut i = rng.below_biased(n_items as u64) as usize;
                while hits[i] == stamp {
                    i = (i + 1) % n_items;
                }
                i
            });
            hits[i] = stamp;
            chosen.push(i as u32);
        }
        chosen.sort_unstable();
        let t0 = cfg.start_timestamp as f64 + rng.f64() * span * 0.9;
        let user_span = rng.f64() * (cfg.start_timestamp as f64 + span - t0);
        for (j, &i) in chosen.iter().enumerate() {
            let i = i as usize;
            let q = &items.factors[i * k..(i + 1) * k];
            let dot: f64 = p.iter().zip(q).map(|(a, b)| (*a * *b) as f64).sum();
            let base = cfg.mean as f64 + bu + items.bias[i] as f64;
            let raw = base + dot + rng.normal_f64() * cfg.noise as f64;
            let r = ((raw.clamp(0.5, 5.0) * 2.0).round() / 2.0).clamp(0.5, 5.0);
            sums.oracle += (r - (base + dot)).powi(2);
            sums.bias += (r - base).powi(2);
            sums.dot += dot;
            sums.dot2 += dot * dot;
            let ts = (t0 + user_span * (j as f64 + rng.f64()) / count as f64) as i64;
            let _ = writeln!(out, "{},{},{:.1},{}", user + 1, i + 1, r, ts);
            rated_items.push(i as u32);
        }
    }
    rated_items.sort_unstable();
    rated_items.dedup();
    (out, sums, rated_items)
}

const GENRES: [&str; 12] = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Horror",
    "Romance",
    "Sci-Fi",
];

fn write_movies(path: &Path, cfg: &SynthConfig, items: &Items) -> Result<(), IngestError> {
    let mut f = AtomicFile::create(path)?;
    let mut w = std::io::BufWriter::new(f.file());
    let io = |e| IngestError::io(path, e);
    writeln!(w, "movieId,title,genres").map_err(io)?;
    let k = cfg.k;
    for i in 0..cfg.n_items as usize {
        let year = 1930 + (i * 7919) % 90;
        // A few titles carry commas and quotes, as real MovieLens titles do.
        let title = match i % 50 {
            7 => format!("\"Movie {}, The (\"\"Director's Cut\"\") ({year})\"", i + 1),
            13 => format!("\"Movie {}, The ({year})\"", i + 1),
            _ => format!("Movie {} ({year})", i + 1),
        };
        // Genres follow the dominant planted factors, so they carry signal.
        let q = &items.factors[i * k..(i + 1) * k];
        let mut genres: Vec<&str> = q
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v > 0.5 * q.iter().map(|x| x.abs()).fold(0.0, f32::max))
            .map(|(d, _)| GENRES[d % GENRES.len()])
            .collect();
        genres.dedup();
        let genres = if genres.is_empty() {
            "(no genres listed)".to_string()
        } else {
            genres.join("|")
        };
        writeln!(w, "{},{title},{genres}", i + 1).map_err(io)?;
    }
    w.flush().map_err(io)?;
    drop(w);
    f.commit()?;
    Ok(())
}

/// Write `ratings.csv` and `movies.csv` (ml-latest layout) into `dir`.
pub fn generate(cfg: &SynthConfig, dir: &Path) -> Result<SynthSummary, IngestError> {
    let started = Instant::now();
    check(cfg)?;
    std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
    // Var(<p, q>) = k * s^4 for independent N(0, s^2) entries.
    let factor_std = (cfg.signal as f64 * cfg.signal as f64 / cfg.k as f64).powf(0.25);
    let mut rng = SplitMix64::stream(cfg.seed, 0);
    let counts = user_counts(cfg, &mut rng);
    let items = items(cfg, &mut rng, factor_std);

    let ratings_path = dir.join("ratings.csv");
    let mut file = AtomicFile::create(&ratings_path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file.file());
    let io = |e| IngestError::io(&ratings_path, e);
    writeln!(w, "userId,movieId,rating,timestamp").map_err(io)?;
    const BLOCK_USERS: usize = 64;
    let window = BLOCK_USERS * rayon::current_num_threads().max(1) * 4;
    let mut total = Sums::default();
    let mut rated = vec![false; cfg.n_items as usize];
    let mut start = 0;
    while start < counts.len() {
        let end = (start + window).min(counts.len());
        let blocks: Vec<(Vec<u8>, Sums, Vec<u32>)> = counts[start..end]
            .par_chunks(BLOCK_USERS)
            .enumerate()
            .map_init(
                || vec![0u32; cfg.n_items as usize],
                |hits, (b, chunk)| {
                    user_block(
                        cfg,
                        &items,
                        chunk,
                        start + b * BLOCK_USERS,
                        factor_std,
                        hits,
                    )
                },
            )
            .collect();
        for (text, s, r) in blocks {
            w.write_all(&text).map_err(io)?;
            total.oracle += s.oracle;
            total.bias += s.bias;
            total.dot += s.dot;
            total.dot2 += s.dot2;
            for i in r {
                rated[i as usize] = true;
            }
        }
        start = end;
    }
    w.flush().map_err(io)?;
    drop(w);
    file.commit()?;
    let movies_path = dir.join("movies.csv");
    write_movies(&movies_path, cfg, &items)?;
    let n = cfg.n_ratings as f64;
    let dot_mean = total.dot / n;
    Ok(SynthSummary {
        ratings_file: ratings_path,
        movies_file: movies_path,
        n_users: cfg.n_users as u64,
        n_items: cfg.n_items as u64,
        n_ratings: cfg.n_ratings,
        items_rated: rated.iter().filter(|&&r| r).count() as u64,
        oracle_rmse: (total.oracle / n).sqrt(),
        bias_only_rmse: (total.bias / n).sqrt(),
        signal_std: (total.dot2 / n - dot_mean * dot_mean).max(0.0).sqrt(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
