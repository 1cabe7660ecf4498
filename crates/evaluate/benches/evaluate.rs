//! Full ranking evaluation (score every item for every user, top-k, metrics).
//!
//! - `rank_bundled_610x9724`: the bundled ml-latest-small (random 90/10 split), a random
//!   dot_bias k=50 model, all 610 users at k=10.
//! - `rank_10k_users_x_59k_items_k64`: ML-25M-shaped catalogue (59,047 items, ~150 train
//!   ratings per user), random dot_bias k=64 factors, a 10,000-user sample at k=10.
//! - `stage_bundled`: the whole stage on the bundled split (metrics, baselines, ranking,
//!   report, plots, Parquet outputs).

use criterion::{Criterion, criterion_group, criterion_main};
use recpipe_core::model::{Checkpoint, Model, ModelKind, ModelMeta};
use recpipe_core::{Inputs, OutDir, Progress, Ratings, Stage, layout, testutil};
use recpipe_evaluate::data::{ByUser, item_counts};
use recpipe_evaluate::metrics::ranking::{RankingTask, evaluate_ranking};
use recpipe_evaluate::rng::SplitMix64;
use recpipe_evaluate::scoring::ModelScorer;
use recpipe_evaluate::{Config, EvaluateStage};
use std::path::Path;

fn bundled() -> Ratings {
    recpipe_core::testutil::bundled_ratings()
}

fn split(all: &Ratings, seed: u64) -> (Ratings, Ratings) {
    let mut idx: Vec<usize> = (0..all.len()).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..idx.len()).rev() {
        idx.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let n_valid = all.len() / 10;
    (all.select(&idx[n_valid..]), all.select(&idx[..n_valid]))
}

/// A dot_bias model of random factors and biases in ±0.1.
fn random_model(n_users: u32, n_items: u32, k: usize, seed: u64) -> Checkpoint {
    let meta = ModelMeta {
        y_range: Some([0.0, 5.5]),
        global_mean: 3.5,
        ..testutil::meta(ModelKind::DotBias, n_users, n_items, k)
    };
    testutil::factorization(meta, testutil::uniform(seed, 0.1))
}

fn model(ckpt: Checkpoint) -> Model {
    Model::from_checkpoint(ckpt, Path::new("bench")).unwrap()
}

fn bench_bundled(c: &mut Criterion) {
    let all = bundled();
    let (train, valid) = split(&all, 1);
    let (tr, va) = (ByUser::build(&train), ByUser::build(&valid));
    let pop = item_counts(&train);
    let task = RankingTask {
        train: &tr,
        part: &va,
        popularity: &pop,
        n_train_users: all.n_users as usize,
        k: 10,
        relevance_threshold: 4.0,
    };
    let users: Vec<u32> = (0..all.n_users).collect();
    let m = model(random_model(all.n_users, all.n_items, 50, 7));
    let s = ModelScorer(&m);
    c.bench_function("rank_bundled_610x9724", |b| {
        b.iter(|| evaluate_ranking(&s, &users, &task))
    });

    let dir = tempfile::tempdir().unwrap();
    let (split_dir, model_dir) = (dir.path().join("split"), dir.path().join("train"));
    std::fs::create_dir_all(&split_dir).unwrap();
    train.write(split_dir.join(layout::split::TRAIN)).unwrap();
    valid.write(split_dir.join(layout::split::VALID)).unwrap();
    random_model(all.n_users, all.n_items, 50, 7)
        .save(&model_dir)
        .unwrap();
    let inputs = Inputs::new(vec![
        testutil::artifact("train", "train", &model_dir),
        testutil::artifact("split", "split", &split_dir),
    ]);
    let out = OutDir::new(dir.path().join("out")).unwrap();
    c.bench_function("stage_bundled", |b| {
        b.iter(|| {
            EvaluateStage::run(&Config::default(), &inputs, &out, &Progress::hidden()).unwrap()
        })
    });
}

fn bench_large(c: &mut Criterion) {
    const USERS: u32 = 10_000;
    const ITEMS: u32 = 59_047;
    let mut rng = SplitMix64::new(3);
    let mut train = Ratings {
        n_users: USERS,
        n_items: ITEMS,
        ..Ratings::default()
    };
    let mut part = train.clone();
    for u in 0..USERS {
        for n in 0..165 {
            // Skewed popularity: squaring a uniform draw favours low indices.
            let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let i = ((x * x) * ITEMS as f64) as u32;
            let r = 0.5 + rng.below(10) as f32 * 0.5;
            let dst = if n < 150 { &mut train } else { &mut part };
            dst.user.push(u);
            dst.item.push(i.min(ITEMS - 1));
            dst.rating.push(r);
        }
    }
    let (tr, pa) = (ByUser::build(&train), ByUser::build(&part));
    let pop = item_counts(&train);
    let task = RankingTask {
        train: &tr,
        part: &pa,
        popularity: &pop,
        n_train_users: 162_541,
        k: 10,
        relevance_threshold: 4.0,
    };
    let users: Vec<u32> = (0..USERS).collect();
    let m = model(random_model(USERS, ITEMS, 64, 11));
    let s = ModelScorer(&m);
    let mut g = c.benchmark_group("large");
    g.sample_size(10);
    g.bench_function("rank_10k_users_x_59k_items_k64", |b| {
        b.iter(|| evaluate_ranking(&s, &users, &task))
    });
    g.finish();
}

criterion_group!(benches, bench_bundled, bench_large);
criterion_main!(benches);
