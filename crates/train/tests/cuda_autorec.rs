//! I-AutoRec on the CUDA backend against the cpu backend through the whole epoch loop
//! (`train_on`: shuffles, schedule, validation, keep-best, checkpoint): on
//! recpipe-cuda-harness's host-thread device with a slice of the bundled MovieLens data, and
//! on a real GPU with all of ml-latest-small when one is present (else "skipped: no GPU").

mod common;

use common::{bundled, gpu};
use recpipe_core::Progress;
use recpipe_core::Ratings;
use recpipe_core::model::tensor;
use recpipe_cuda::Launch;
use recpipe_cuda_harness::HostAccel;
use recpipe_train::cpu::CpuBackend;
use recpipe_train::cuda::{CudaBackend, Schedule};
use recpipe_train::{
    Backend, Config, Device, ModelKind, OptimizerKind, TrainResult, YRange, train_on,
};
use std::sync::Arc;

fn run(b: &dyn Backend, cfg: &Config, (t, v): (&Ratings, &Ratings)) -> TrainResult {
    train_on(b, cfg, (t, v), None, &Progress::hidden()).unwrap_or_else(|e| panic!("{e}"))
}

fn best(r: &TrainResult) -> f64 {
    r.best.expect("a valid set").rmse
}

/// The bundled ratings of the first `users` users on the first `items` items (dense ids in
/// file order), split 90/10 with a seeded shuffle.
fn slice(users: u32, items: u32) -> (Ratings, Ratings) {
    let (train, valid) = bundled();
    let keep = |r: &Ratings| {
        let idx: Vec<usize> = (0..r.len())
            .filter(|&j| r.user[j] < users && r.item[j] < items)
            .collect();
        let mut s = r.select(&idx);
        (s.n_users, s.n_items) = (users, items);
        s
    };
    (keep(&train), keep(&valid))
}

fn autorec(k: usize, optimizer: OptimizerKind, y_range: YRange, epochs: usize) -> Config {
    Config {
        model: ModelKind::Autorec,
        k: Some(k),
        optimizer,
        lr: if optimizer == OptimizerKind::AdamW {
            3e-3
        } else {
            1e-3
        },
        momentum: 0.9,
        weight_decay: 1e-3,
        batch_size: 16,
        epochs,
        y_range,
        threads: 1,
        ..Config::default()
    }
}

/// Max |a − b| / max(|b|, 1e-3) over every tensor of two checkpoints (same names, shapes).
fn tensor_gap(a: &TrainResult, b: &TrainResult) -> f64 {
    let (ta, tb) = (&a.checkpoint.tensors, &b.checkpoint.tensors);
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    let mut worst = 0.0f64;
    for (name, x) in ta {
        let y = &tb[name];
        assert_eq!(x.shape, y.shape, "{name}");
        for (p, q) in x.data.iter().zip(&y.data) {
            assert!(p.is_finite(), "{name}: {p}");
            let d = (*p as f64 - *q as f64).abs() / (*q as f64).abs().max(1e-3);
            worst = worst.max(d);
        }
    }
    worst
}

/// On the harness the CUDA backend trains the cpu's model: the same checkpoint tensors
/// (measured: bit for bit, asserted within 1e-5 relative), the same epoch losses (1e-9
/// relative) and valid RMSE within 1e-4, for Adam, AdamW and SGD with momentum, with and
/// without the y_range sigmoid, k below and above a warp's width and above the dot / dot_bias
/// kernels' KMAX of 256.
#[test]
fn harness_autorec_matches_the_cpu_backend() {
    let (train, valid) = slice(60, 200);
    assert!(train.len() > 1000 && !valid.is_empty(), "{}", train.len());
    let mut worst = 0.0f64;
    for (k, optimizer, y_range, epochs) in [
        (40, OptimizerKind::Adam, YRange::None, 3),
        (40, OptimizerKind::AdamW, YRange::Range(0.5, 5.5), 2),
        (20, OptimizerKind::Sgd, YRange::Range(0.0, 5.5), 2),
        (300, OptimizerKind::Adam, YRange::Range(0.0, 5.5), 2),
    ] {
        let cfg = autorec(k, optimizer, y_range, epochs);
        let ctx = format!("k {k} {optimizer:?} {y_range:?}");
        let cpu = run(&CpuBackend { threads: 1 }, &cfg, (&train, &valid));
        let accel = Arc::new(HostAccel::with_shape(Launch { grid: 1, block: 64 }));
        let gpu = CudaBackend::on(accel.clone(), Device::Cuda(0), Schedule::Sequential);
        let dev = run(&gpu, &cfg, (&train, &valid));
        let gap = tensor_gap(&dev, &cpu);
        worst = worst.max(gap);
        assert!(gap <= 1e-5, "{ctx}: tensors {gap:e} apart");
        let losses = |r: &TrainResult| {
            r.history
                .epochs
                .iter()
                .map(|e| e.train_loss)
                .collect::<Vec<_>>()
        };
        let (a, b) = (losses(&cpu), losses(&dev));
        assert_eq!(a.len(), epochs, "{ctx}");
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-9 * x),
            "{ctx}: {a:?} vs {b:?}"
        );
        assert!(
            (best(&cpu) - best(&dev)).abs() < 1e-4,
            "{ctx}: valid RMSE {} vs {}",
            best(&cpu),
            best(&dev)
        );
        // It learned: the loss fell, and the codes moved away from σ(μ) = 0.5 (the
        // untrained model's code of every item).
        let codes = &dev.checkpoint.tensors[tensor::ITEM_FACTORS];
        assert!(codes.data.iter().any(|h| (h - 0.5).abs() > 1e-3), "{ctx}");
        assert!(a[epochs - 1] < a[0], "{ctx}: {a:?}");
        assert_eq!(codes.shape, [200, k]);
        assert_eq!(dev.checkpoint.meta.device, "cuda:0");
        drop(gpu);
        assert_eq!(
            accel.allocations(),
            0,
            "{ctx}: every device buffer is freed"
        );
    }
    println!("autorec on the harness vs the cpu backend: tensors at most {worst:e} apart");
}

/// GPU parity on ml-latest-small: I-AutoRec with its default 500 hidden units, Adam, batches
/// of 64 items; the best valid RMSE within 0.002 of the cpu backend's.
#[test]
fn gpu_autorec_matches_the_cpu_on_the_bundled_data() {
    let Some(gpu) = gpu() else { return };
    let (train, valid) = bundled();
    let cfg = Config {
        model: ModelKind::Autorec,
        epochs: 8,
        batch_size: 64,
        lr: 1e-3,
        weight_decay: 1e-3,
        y_range: YRange::None,
        ..Config::default()
    };
    let cpu = run(&CpuBackend { threads: 2 }, &cfg, (&train, &valid));
    let dev = run(&gpu, &cfg, (&train, &valid));
    let secs = |r: &TrainResult| r.history.epochs.iter().map(|e| e.seconds).sum::<f64>();
    eprintln!(
        "autorec k=500: cpu {:.4} in {:.2}s, {} {:.4} in {:.2}s",
        best(&cpu),
        secs(&cpu),
        dev.device.name(),
        best(&dev),
        secs(&dev)
    );
    assert!((best(&dev) - best(&cpu)).abs() < 0.002);
}
