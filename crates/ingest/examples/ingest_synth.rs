//! Generate a synthetic ml-latest data set and time ingesting it, with peak RSS:
//! `cargo run --release -p recpipe-ingest --example ingest_synth -- 25000000 [dir]`.

use recpipe_core::Progress;
use recpipe_ingest::{Config, SynthConfig, ingest, synth};
use std::time::Instant;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let dir = args
        .next()
        .map_or_else(|| std::env::temp_dir().join("recpipe-synth"), Into::into);
    let src = dir.join(format!("synth-{n}"));
    if !src.join("ratings.csv").exists() {
        // ML-25M proportions: 162k users, 59k movies per 25M ratings.
        let scale = n as f64 / 25e6;
        let cfg = SynthConfig {
            n_users: ((162_541.0 * scale) as u32).max(100),
            n_items: ((59_047.0 * scale.sqrt()) as u32).max(100),
            n_ratings: n,
            ..SynthConfig::default()
        };
        let t = Instant::now();
        let s = synth::generate(&cfg, &src)?;
        println!(
            "generate {n} rows: {:.2}s (oracle rmse {:.3}, bias-only {:.3})",
            t.elapsed().as_secs_f64(),
            s.oracle_rmse,
            s.bias_only_rmse
        );
    }
    let out = dir.join(format!("out-{n}"));
    let t = Instant::now();
    let s = ingest(&Config::for_path(&src), &out, &Progress::from_env())?;
    println!(
        "ingest {} rows: {:.2}s (read {:.2}s, prepare {:.2}s, write {:.2}s), peak RSS {:.0} MiB",
        s.rows_kept,
        t.elapsed().as_secs_f64(),
        s.seconds_read,
        s.seconds_prepare,
        s.seconds_write,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
