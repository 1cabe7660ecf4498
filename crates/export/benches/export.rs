//! Export at MovieLens-25M item scale: 59,047 items × k=64, 20 neighbours each, over random
//! factors (the cost does not depend on the values).
//!
//! - `similar_items_59k_k64_top20`: the neighbour search alone (normalise, blockwise matrix
//!   multiply, top-k scan), every item against every item.
//! - `export_59k_k64_top20`: the whole stage without recommendations: embeddings, similar
//!   items and PCA written as Parquet from a checkpoint and an ingest artifact on disk.

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use recpipe_core::Progress;
use recpipe_core::model::{ModelKind, ModelMeta};
use recpipe_core::testutil::{self, TestCatalog};
use recpipe_export::neighbors::{normalize_rows, similar_items};
use recpipe_export::{Config, ExportInputs, export};
use std::path::Path;
use std::time::Duration;

const N_ITEMS: usize = 59_047;
const N_USERS: usize = 1_000;
const K: usize = 64;
const NEIGHBORS: usize = 20;

/// xorshift64*: random factors without a rand dependency.
fn factors(n: usize, k: usize, seed: u64) -> Array2<f32> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed;
    Array2::from_shape_simple_fn((n, k), || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    })
}

/// An ingest artifact (users.parquet, items.parquet) and a dot checkpoint in `dir`.
fn artifacts(dir: &Path) {
    TestCatalog {
        user_ratings: vec![20; N_USERS],
        // Every item well rated, so similar_min_ratings keeps all 59k.
        item_ratings: (0..N_ITEMS as u32).map(|i| 1000 - i % 900).collect(),
        ..TestCatalog::new((N_USERS, 1), (N_ITEMS, 1), 2000)
    }
    .write(&dir.join("ingest"));
    let meta = ModelMeta {
        global_mean: 3.5,
        ..testutil::meta(ModelKind::Dot, N_USERS as u32, N_ITEMS as u32, K)
    };
    // Factor seeds 1 (users) and 2 (items).
    let mut seed = 0;
    testutil::factorization(meta, |_, n| {
        seed += 1;
        factors(n / K, K, seed).into_iter().collect()
    })
    .save(&dir.join("train"))
    .unwrap();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("export");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(40))
        .warm_up_time(Duration::from_secs(1));

    let f = factors(N_ITEMS, K, 2);
    let all: Vec<u32> = (0..N_ITEMS as u32).collect();
    g.bench_function("similar_items_59k_k64_top20", |b| {
        b.iter(|| {
            let normed = normalize_rows(f.view());
            similar_items(normed.view(), &all, &all, NEIGHBORS, &|_| {})
        })
    });

    let tmp = tempfile::tempdir().unwrap();
    artifacts(tmp.path());
    let cfg = Config {
        neighbors: NEIGHBORS,
        recommendations_n: 0,
        ..Config::default()
    };
    let out = tmp.path().join("export");
    g.bench_function("export_59k_k64_top20", |b| {
        b.iter(|| {
            let inputs = ExportInputs {
                model: &tmp.path().join("train"),
                recommender: None,
                ingest: &tmp.path().join("ingest"),
                split: None,
            };
            export(&cfg, &inputs, &out, &Progress::hidden()).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
