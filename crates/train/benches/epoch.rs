//! One training epoch of dot_bias k=64 on synthetic ratings (ML-25M-shaped id space), in
//! ratings per second. `RECPIPE_BENCH_RATINGS` sets the size (default 2M; the issue's
//! figure uses 25000000), `RECPIPE_BENCH_USERS` / `RECPIPE_BENCH_ITEMS` the id space,
//! `RECPIPE_BENCH_THREADS` the pool, `RECPIPE_BENCH_OPTIMIZER` adam (default) | adamw |
//! sparse_adam | sgd for the batched cases. `per_rating_sgd` is the grid path
//! (`optimizer = "sgd"`, `batch_size = 1`, `momentum = 0`; `RECPIPE_BENCH_PER_RATING=adagrad`
//! for `optimizer = "adagrad"`), the one for large data; run one
//! case with e.g. `cargo bench -p recpipe-train -- per_rating`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use recpipe_train::cpu::CpuBackend;
use recpipe_train::{
    Backend, Config, EpochTask, ModelSpec, OptimizerKind, RatingsView, Schedule, YRange,
};

struct Data {
    user: Vec<u32>,
    item: Vec<u32>,
    rating: Vec<f32>,
    order: Vec<u32>,
}

fn data(n: usize, n_users: u32, n_items: u32) -> Data {
    let mut s = 0x1234_5678u64;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut d = Data {
        user: Vec::with_capacity(n),
        item: Vec::with_capacity(n),
        rating: Vec::with_capacity(n),
        order: (0..n as u32).collect(),
    };
    for _ in 0..n {
        // Skewed item popularity, as in real catalogues: squaring a uniform draw.
        let u = (next() % n_users as u64) as u32;
        let x = (next() >> 11) as f64 / (1u64 << 53) as f64;
        let i = ((x * x) * n_items as f64) as u32;
        d.user.push(u);
        d.item.push(i.min(n_items - 1));
        d.rating.push(0.5 + (next() % 10) as f32 * 0.5);
    }
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        d.order.swap(i, j);
    }
    d
}

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("RECPIPE_BENCH_RATINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let env = |k: &str, d: u32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n_users, n_items) = (
        env("RECPIPE_BENCH_USERS", 162_541),
        env("RECPIPE_BENCH_ITEMS", 59_047),
    );
    let d = data(n, n_users, n_items);
    let view = RatingsView {
        user: &d.user,
        item: &d.item,
        rating: &d.rating,
    };
    let threads = match env("RECPIPE_BENCH_THREADS", 0) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t as usize,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("dot_bias_k64_epoch");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    for (name, cfg) in cases() {
        let batch = cfg.batch_size;
        let steps = n.div_ceil(batch);
        let spec = ModelSpec {
            cfg: cfg.clone(),
            kind: cfg.model,
            n_users: n_users as usize,
            n_items: n_items as usize,
            k: 64,
            global_mean: 3.5,
            y_range: Some([0.0, 5.5]),
            classes: None,
            item_features: None,
            expected_steps: steps * 100,
        };
        let backend = CpuBackend { threads };
        let mut trainer = backend.trainer(&spec).unwrap();
        let sched = Schedule::new(&cfg, steps);
        group.bench_function(format!("{name}_threads{threads}"), |b| {
            b.iter(|| {
                let task = EpochTask {
                    data: view,
                    order: &d.order,
                    batch_size: batch,
                    schedule: &sched,
                    step0: 0,
                };
                pool.install(|| trainer.train_epoch(task, &mut |_, _| {}).unwrap())
            })
        });
    }
    group.finish();
}

/// The benchmarked configurations: batch 64 and 1024 with the chosen optimizer, and the
/// per-rating path.
fn cases() -> [(&'static str, Config); 3] {
    let optimizer = match std::env::var("RECPIPE_BENCH_OPTIMIZER").as_deref() {
        Ok("sparse_adam") => OptimizerKind::SparseAdam,
        Ok("adamw") => OptimizerKind::AdamW,
        Ok("sgd") => OptimizerKind::Sgd,
        _ => OptimizerKind::Adam,
    };
    let batched = |batch: usize| Config {
        k: Some(64),
        optimizer,
        batch_size: batch,
        y_range: YRange::Range(0.0, 5.5),
        ..Config::default()
    };
    let (per_rating_name, per_rating_opt) =
        match std::env::var("RECPIPE_BENCH_PER_RATING").as_deref() {
            Ok("adagrad") => ("per_rating_adagrad", OptimizerKind::Adagrad),
            _ => ("per_rating_sgd", OptimizerKind::Sgd),
        };
    let per_rating = Config {
        k: Some(64),
        optimizer: per_rating_opt,
        momentum: 0.0,
        weight_decay: 0.0,
        l2: 0.01,
        lr: 0.01,
        batch_size: 1,
        y_range: YRange::Range(0.0, 5.5),
        ..Config::default()
    };
    [
        ("batch64", batched(64)),
        ("batch1024", batched(1024)),
        (per_rating_name, per_rating),
    ]
}

criterion_group!(benches, bench);
criterion_main!(benches);
