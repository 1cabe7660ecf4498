//! EASE and iALS on the CUDA backend: on recpipe-cuda-harness's host-thread device against
//! the cpu through the whole ranking fit (same interactions, same seeded starting factors,
//! same checkpoint layout) on slices of ml-latest-small, and on a real GPU when one is
//! present with the shipped top-N pipeline's settings (without a GPU these print
//! "skipped: no GPU (why)"; with `RECPIPE_REQUIRE_GPU=1` they fail).

mod common;

use common::{bundled, gpu};
use recpipe_core::model::tensor;
use recpipe_core::{Progress, Ratings};
use recpipe_cuda::Launch;
use recpipe_cuda_harness::HostAccel;
use recpipe_train::ranking::{On, train_on};
use recpipe_train::{Config, Device, ModelKind, TrainResult};
use std::sync::Arc;

/// The bundled split's rows with user < `users` and item < `items` (dense ids in first-seen
/// order), on a `users` × `items` grid.
fn slice(users: u32, items: u32) -> (Ratings, Ratings) {
    let (train, valid) = bundled();
    let cut = |r: &Ratings| {
        let idx: Vec<usize> = (0..r.len())
            .filter(|&i| r.user[i] < users && r.item[i] < items)
            .collect();
        Ratings {
            n_users: users,
            n_items: items,
            ..r.select(&idx)
        }
    };
    (cut(&train), cut(&valid))
}

fn harness() -> On {
    let accel = Arc::new(HostAccel::with_shape(Launch { grid: 2, block: 64 }));
    On::Cuda(accel, Device::Cuda(0))
}

fn fit(cfg: &Config, (t, v): (&Ratings, &Ratings), on: On) -> TrainResult {
    train_on(cfg, t, v, on, &Progress::hidden()).unwrap_or_else(|e| panic!("{e}"))
}

fn precision(r: &TrainResult) -> f64 {
    r.ranking.expect("a ranking model").precision
}

/// max |a − b| / max |b| over one tensor of both checkpoints, whose names, shapes and meta
/// (but the device) must agree.
fn gap(a: &TrainResult, b: &TrainResult, name: &str) -> f64 {
    let (ca, cb) = (&a.checkpoint, &b.checkpoint);
    assert_eq!(
        ca.tensors.keys().collect::<Vec<_>>(),
        cb.tensors.keys().collect::<Vec<_>>()
    );
    for (n, t) in &ca.tensors {
        assert_eq!(t.shape, cb.tensors[n].shape, "{n}");
    }
    assert_eq!(
        (ca.meta.model, ca.meta.n_users, ca.meta.n_items, ca.meta.k),
        (cb.meta.model, cb.meta.n_users, cb.meta.n_items, cb.meta.k)
    );
    let (x, y) = (&ca.tensors[name].data, &cb.tensors[name].data);
    let d = x
        .iter()
        .zip(y)
        .map(|(p, q)| f64::from((p - q).abs()))
        .fold(0.0, f64::max);
    d / y.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max)
}

/// Each user's 10 best unseen items under EASE's B (score = Σ over the user's train items).
fn top10(b: &[f32], n: usize, train: &Ratings) -> Vec<Vec<u32>> {
    let mut seen = vec![Vec::new(); train.n_users as usize];
    for i in 0..train.len() {
        seen[train.user[i] as usize].push(train.item[i]);
    }
    seen.iter()
        .map(|s| {
            let mut score = vec![0.0f32; n];
            for &h in s {
                for (j, v) in score.iter_mut().enumerate() {
                    *v += b[h as usize * n + j];
                }
            }
            let mut order: Vec<u32> = (0..n as u32).filter(|j| !s.contains(j)).collect();
            order.sort_by(|&p, &q| {
                score[q as usize]
                    .total_cmp(&score[p as usize])
                    .then(p.cmp(&q))
            });
            order.truncate(10);
            order
        })
        .collect()
}

#[test]
fn ease_on_the_harness_matches_the_cpu() {
    let (train, valid) = slice(610, 700);
    let cfg = Config {
        model: ModelKind::Ease,
        lambda: Some(50.0),
        ..Config::default()
    };
    let cpu = fit(&cfg, (&train, &valid), On::Cpu);
    let dev = fit(&cfg, (&train, &valid), harness());
    assert_eq!(dev.device, Device::Cuda(0));
    assert_eq!(dev.checkpoint.meta.device, "cuda:0");
    assert_eq!(dev.history.device, "cuda:0");
    assert_eq!(cpu.checkpoint.meta.device, "cpu");
    // Both invert the same integer Gram matrix in f32 (faer's Cholesky, the sweep): they
    // differ by rounding times G's condition number (f32's 6e-8 times at most ~10³ for
    // λ = 50 on this slice; measured 4e-6).
    let g = gap(&dev, &cpu, tensor::ITEM_ITEM);
    println!("EASE item_item: max |Δ| / max |B| = {g:e}");
    assert!(g < 1e-4, "{g:e}");
    for t in [tensor::USER_ITEM_COUNTS, tensor::USER_ITEMS] {
        assert_eq!(dev.checkpoint.tensors[t], cpu.checkpoint.tensors[t], "{t}");
    }
    let n = 700;
    let (a, b) = (
        top10(&dev.checkpoint.tensors[tensor::ITEM_ITEM].data, n, &train),
        top10(&cpu.checkpoint.tensors[tensor::ITEM_ITEM].data, n, &train),
    );
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    println!("EASE: {same} of {} users with the same top-10", a.len());
    assert!(
        same as f64 >= 0.95 * a.len() as f64,
        "{same} of {}",
        a.len()
    );
    let (p, q) = (precision(&dev), precision(&cpu));
    assert!((p - q).abs() < 1e-3, "precision@10 {p} vs {q}");
}

#[test]
fn ials_on_the_harness_matches_the_cpu() {
    let (train, valid) = slice(610, 2_000);
    let cfg = Config {
        model: ModelKind::Ials,
        k: Some(16),
        epochs: 3,
        reg: Some(30.0),
        alpha: Some(1.0),
        ..Config::default()
    };
    let cpu = fit(&cfg, (&train, &valid), On::Cpu);
    let dev = fit(&cfg, (&train, &valid), harness());
    assert_eq!(dev.checkpoint.meta.device, "cuda:0");
    // The kernel does the cpu's CG operation for operation and the harness fuses no
    // multiply-adds, so the factors agree bit for bit here (measured gap 0); the bound
    // leaves room for a GEMM that sums YᵀY in another order on another cpu.
    for name in [tensor::USER_FACTORS, tensor::ITEM_FACTORS] {
        let g = gap(&dev, &cpu, name);
        println!("iALS {name}: max |Δ| / max |x| = {g:e}");
        assert!(g < 1e-4, "{name}: {g:e}");
    }
    let (lc, ld): (Vec<f64>, Vec<f64>) = (
        cpu.history.epochs.iter().map(|e| e.train_loss).collect(),
        dev.history.epochs.iter().map(|e| e.train_loss).collect(),
    );
    for (a, b) in ld.iter().zip(&lc) {
        assert!((a - b).abs() <= 1e-6 * b.abs(), "loss {ld:?} vs {lc:?}");
    }
    let (p, q) = (precision(&dev), precision(&cpu));
    assert_eq!(format!("{p:.3}"), format!("{q:.3}"), "precision@10");
}

/// The shipped pipeline's settings (pipelines/ml-latest-small-topn.toml) on the whole
/// bundled split, on the GPU and on the cpu.
#[test]
fn ease_and_ials_on_a_gpu_rank_as_the_cpu_does() {
    let Some(backend) = gpu() else { return };
    let accel = backend.accel();
    let (train, valid) = bundled();
    let ease = Config {
        model: ModelKind::Ease,
        lambda: Some(500.0),
        ..Config::default()
    };
    let ials = Config {
        model: ModelKind::Ials,
        k: Some(64),
        epochs: 10,
        reg: Some(30.0),
        alpha: Some(1.0),
        ..Config::default()
    };
    for cfg in [ease, ials] {
        let cpu = fit(&cfg, (&train, &valid), On::Cpu);
        let dev = fit(
            &cfg,
            (&train, &valid),
            On::Cuda(accel.clone(), Device::Cuda(0)),
        );
        let (p, q) = (precision(&dev), precision(&cpu));
        let secs = |r: &TrainResult| r.history.epochs.iter().map(|e| e.seconds).sum::<f64>();
        println!(
            "{}: precision@10 gpu {p:.4} ({:.2}s) cpu {q:.4} ({:.2}s)",
            cfg.model,
            secs(&dev),
            secs(&cpu)
        );
        assert!((p - q).abs() <= 0.005, "{}: {p} vs {q}", cfg.model);
    }
}

#[test]
fn a_model_the_device_cannot_hold_is_refused_with_its_size() {
    let (train, valid) = slice(100, 300);
    let small = || On::Cuda(Arc::new(HostAccel::with_memory(64 << 10)), Device::Cuda(0));
    let ials = Config {
        model: ModelKind::Ials,
        k: Some(64),
        epochs: 1,
        ..Config::default()
    };
    let ease = Config {
        model: ModelKind::Ease,
        ..Config::default()
    };
    for (cfg, what, setting) in [
        (ials, "the iALS factors and interactions", "train.k"),
        (ease, "the EASE item-item matrix", "min_ratings"),
    ] {
        let e = train_on(&cfg, &train, &valid, small(), &Progress::hidden())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("device = \"cuda:0\": harness: out of device memory for "),
            "{e}"
        );
        assert!(
            e.contains(what) && e.contains("of 64.0 KiB is free") && e.contains(setting),
            "{e}"
        );
    }
}

/// `device = "cuda"` goes through the device choice: a GPU trains EASE, no driver is a
/// one-line error naming what is missing; `auto` falls back to the cpu.
#[test]
fn device_cuda_trains_ease_on_a_gpu_or_says_what_is_missing() {
    use recpipe_train::config::DeviceChoice;
    let (train, valid) = slice(100, 200);
    let cfg = |device| Config {
        model: ModelKind::Ease,
        device,
        ..Config::default()
    };
    let run = |c: &Config| recpipe_train::ranking::train(c, &train, &valid, &Progress::hidden());
    let cuda = run(&cfg(DeviceChoice::Cuda(0)));
    let auto = run(&cfg(DeviceChoice::Auto)).unwrap();
    match recpipe_cuda::probe::devices() {
        Ok(d) if !d.is_empty() => {
            assert_eq!(cuda.unwrap().device, Device::Cuda(0));
            assert_eq!(auto.device, Device::Cuda(0));
        }
        _ => {
            let e = cuda.unwrap_err().to_string();
            assert!(
                e.starts_with("device = \"cuda:0\": ") && !e.contains('\n'),
                "{e}"
            );
            assert!(e.contains("use device = \"cpu\" or \"auto\""), "{e}");
            assert_eq!(auto.device, Device::Cpu);
            assert_eq!(auto.checkpoint.meta.device, "cpu");
        }
    }
}
