//! EASE's cost at a given item count: the wall time of one fit (Gram matrix, Cholesky,
//! inverse, weights) and the process's peak resident memory, on seeded synthetic
//! interactions (the dense n_items² algebra dominates, so their shape hardly matters).
//! One item count per process, so the peak is that fit's:
//!
//! ```text
//! cargo run --release -p recpipe-train --example ease_cost -- 5000
//! ```
//! BENCHMARKS.md "EASE's cost" has the figures.

use recpipe_core::csr::Csr;
use recpipe_core::rng::SplitMix64;
use recpipe_train::ranking::{Interactions, ease};
use std::time::Instant;

/// Peak resident set (VmHWM) in bytes, from /proc/self/status.
fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() {
    let n_items: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: ease_cost N_ITEMS");
    let (n_users, per_user) = (10_000usize, 100usize.min(n_items));
    let mut rng = SplitMix64::new(42);
    let mut pairs = Vec::with_capacity(n_users * per_user);
    for u in 0..n_users as u32 {
        for _ in 0..per_user {
            pairs.push((u, rng.below(n_items as u64) as u32));
        }
    }
    let mut items = Csr::group(n_users, pairs.iter().copied());
    items.sort_rows();
    // Drop repeated draws: interactions are distinct per user.
    let pairs: Vec<(u32, u32)> = (0..n_users as u32)
        .flat_map(|u| {
            let mut r = items.row(u).to_vec();
            r.dedup();
            r.into_iter().map(move |i| (u, i))
        })
        .collect();
    let data = Interactions {
        items: Csr::group(n_users, pairs.iter().copied()),
        n_users,
        n_items,
    };
    let before = peak_rss().unwrap_or(0);
    let t = Instant::now();
    let b = ease::fit(&data, 500.0).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let seconds = t.elapsed().as_secs_f64();
    let peak = peak_rss().unwrap_or(0);
    println!(
        "n_items {n_items}: fit {seconds:.2}s, peak RSS {:.2} GiB (before the fit {:.2} GiB), \
         estimate {:.2} GiB, threads {}, B[0][1] = {}",
        peak as f64 / (1u64 << 30) as f64,
        before as f64 / (1u64 << 30) as f64,
        ease::need(n_items).total() as f64 / (1u64 << 30) as f64,
        rayon::current_num_threads(),
        b[1]
    );
}
