//! Ingest throughput on a synthetic ml-latest data set (generated once per run), and the
//! generator itself. `cargo bench -p recpipe-ingest`; RECPIPE_BENCH_ROWS sets the size.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use recpipe_core::Progress;
use recpipe_ingest::{Config, SynthConfig, ingest, synth};
use std::hint::black_box;

fn rows() -> u64 {
    std::env::var("RECPIPE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000)
}

fn shape(n: u64) -> SynthConfig {
    let scale = n as f64 / 25e6;
    SynthConfig {
        n_users: ((162_541.0 * scale) as u32).max(100),
        n_items: ((59_047.0 * scale.sqrt()) as u32).max(100),
        n_ratings: n,
        ..SynthConfig::default()
    }
}

fn bench_ingest(c: &mut Criterion) {
    let n = rows();
    let src = tempfile::tempdir().expect("temp dir");
    synth::generate(&shape(n), src.path()).expect("generate");
    let bytes = std::fs::metadata(src.path().join("ratings.csv"))
        .expect("ratings.csv")
        .len();
    let out = tempfile::tempdir().expect("temp dir");
    let cfg = Config::for_path(src.path());
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function(format!("ml-latest csv {n} rows"), |b| {
        b.iter(|| black_box(ingest(&cfg, out.path(), &Progress::hidden()).expect("ingest")))
    });
    g.finish();

    let mut g = c.benchmark_group("synth");
    g.sample_size(10);
    let small = shape(n / 4);
    g.throughput(Throughput::Elements(small.n_ratings));
    let dir = tempfile::tempdir().expect("temp dir");
    g.bench_function(format!("generate {} rows", small.n_ratings), |b| {
        b.iter(|| black_box(synth::generate(&small, dir.path()).expect("generate")))
    });
    g.finish();
}

criterion_group!(benches, bench_ingest);
criterion_main!(benches);
