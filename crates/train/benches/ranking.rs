//! Seconds per epoch of the iterative ranking models on synthetic interactions in an
//! ML-25M-shaped id space (162,541 users, 59,047 items, item popularity skewed by squaring a
//! uniform draw), through the train stage's ranking path (`recpipe_train::ranking::train`);
//! the epoch times are the history's, which leave out the per-epoch precision@10 monitor
//! (here on 200 users' held-out rows).
//!
//! `RECPIPE_BENCH_RATINGS` sets the interactions drawn (default 2M; the BENCHMARKS.md figure
//! uses 25000000), `RECPIPE_BENCH_MODEL` ials (default) | bpr, `RECPIPE_BENCH_EPOCHS` (2),
//! `RECPIPE_BENCH_K` (64), `RECPIPE_BENCH_THREADS` (0 = every core):
//!
//! ```text
//! RECPIPE_BENCH_RATINGS=25000000 cargo bench -p recpipe-train --bench ranking
//! ```

use recpipe_core::rng::SplitMix64;
use recpipe_core::{Progress, Ratings};
use recpipe_train::{Config, ModelKind};

fn env(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` seeded (user, item) draws with ratings 0.5..5, and a held-out set of 200 users' rows.
fn data(n: usize, n_users: u32, n_items: u32) -> (Ratings, Ratings) {
    let mut rng = SplitMix64::new(0x1234_5678);
    let (mut user, mut item, mut rating) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for _ in 0..n {
        user.push(rng.below(u64::from(n_users)) as u32);
        let x = rng.f64();
        item.push((((x * x) * f64::from(n_items)) as u32).min(n_items - 1));
        rating.push(0.5 + rng.below(10) as f32 * 0.5);
    }
    let valid = Ratings {
        user: (0..200u32).collect(),
        item: (0..200u32).map(|u| u % n_items).collect(),
        rating: vec![4.0; 200],
        timestamp: None,
        n_users,
        n_items,
    };
    let train = Ratings {
        user,
        item,
        rating,
        timestamp: None,
        n_users,
        n_items,
    };
    (train, valid)
}

fn main() {
    let n = env("RECPIPE_BENCH_RATINGS", 2_000_000);
    let model = match std::env::var("RECPIPE_BENCH_MODEL").as_deref() {
        Ok("bpr") => ModelKind::Bpr,
        _ => ModelKind::Ials,
    };
    let (train, valid) = data(n, 162_541, 59_047);
    let mut cfg = Config {
        model,
        k: Some(env("RECPIPE_BENCH_K", 64)),
        epochs: env("RECPIPE_BENCH_EPOCHS", 2),
        threads: env("RECPIPE_BENCH_THREADS", 0),
        ..Config::default()
    };
    if model == ModelKind::Bpr {
        cfg.lr = 0.02;
    }
    let res = recpipe_train::ranking::train(&cfg, &train, &valid, &Progress::hidden())
        .expect("training runs");
    for e in &res.history.epochs {
        println!(
            "{model} k={} {n} draws ({} threads): epoch {} {:.2}s, {:.0} interactions/s",
            cfg.k(),
            res.threads,
            e.epoch,
            e.seconds,
            e.ratings_per_s
        );
    }
}
