//! One suite for the CUDA backend, run twice over: on recpipe-cuda-harness's host-thread
//! device (the same `.cu` kernels compiled as C++, so every line of the backend's host code
//! runs here with no GPU), and on a real GPU when one is present. Without a GPU the GPU
//! tests print "skipped: no GPU (why)"; with `RECPIPE_REQUIRE_GPU=1` (as `just gpu-check`
//! sets on a GPU machine) they fail instead.

mod common;

use common::{bundled, gpu, planted};
use recpipe_core::model::tensor;
use recpipe_core::{Progress, Ratings};
use recpipe_cuda::Accel;
use recpipe_cuda_harness::HostAccel;
use recpipe_train::cpu::CpuBackend;
use recpipe_train::cuda::{CudaBackend, Schedule};
use recpipe_train::{
    Backend, Config, Device, ModelKind, OptimizerKind, TrainResult, YRange, train_on,
};
use std::sync::Arc;

fn quiet() -> Progress {
    Progress::hidden()
}

/// Per-rating dot_bias, as the big-data pipelines train it.
fn per_rating(k: usize, epochs: usize, optimizer: OptimizerKind, lr: f32) -> Config {
    Config {
        model: ModelKind::DotBias,
        k: Some(k),
        epochs,
        batch_size: 1,
        optimizer,
        momentum: 0.0,
        lr,
        l2: 0.0,
        weight_decay: 0.02,
        y_range: YRange::Range(0.5, 5.5),
        threads: 1,
        ..Config::default()
    }
}

fn harness(schedule: Schedule) -> (Arc<HostAccel>, CudaBackend) {
    let accel = Arc::new(HostAccel::new());
    let b = CudaBackend::on(accel.clone(), Device::Cuda(0), schedule);
    (accel, b)
}

fn run(b: &dyn Backend, cfg: &Config, (t, v): (&Ratings, &Ratings)) -> TrainResult {
    train_on(b, cfg, (t, v), None, &quiet()).unwrap_or_else(|e| panic!("{e}"))
}

fn best(r: &TrainResult) -> f64 {
    r.best.expect("a valid set").rmse
}

/// The harness-trained model learns as the cpu's does (same rule, same initial draws; the
/// order differs: the cpu walks its conflict-free grid, the CUDA trainer the epoch's
/// shuffle), for sgd and Adagrad.
#[test]
fn harness_per_rating_learns_as_the_cpu_backend_does() {
    // Small, but trained to convergence.
    let p = planted(40, 30, 2, 1200, 0.1);
    for (opt, lr) in [(OptimizerKind::Sgd, 0.03), (OptimizerKind::Adagrad, 0.4)] {
        let cfg = per_rating(6, 15, opt, lr);
        let cpu = run(&CpuBackend { threads: 1 }, &cfg, (&p.train, &p.valid));
        let (accel, gpu) = harness(Schedule::Sequential);
        let dev = run(&gpu, &cfg, (&p.train, &p.valid));
        let mean = p.train.mean_rating() as f32;
        let base = common::rmse(&vec![mean; p.valid.len()], &p.valid.rating);
        eprintln!(
            "{opt:?}: cpu {:.4}, cuda backend on the harness {:.4}, global mean {base:.4}",
            best(&cpu),
            best(&dev)
        );
        assert!(best(&dev) < 0.5 * base, "{opt:?}: {} vs {base}", best(&dev));
        let gap = (best(&dev) - best(&cpu)).abs() / best(&cpu);
        assert!(gap < 0.1, "{opt:?}: {gap:.3} apart");
        assert_eq!(dev.device, Device::Cuda(0));
        assert_eq!(dev.checkpoint.meta.device, "cuda:0");
        let t = &dev.checkpoint.tensors;
        assert_eq!(t[tensor::USER_FACTORS].shape, [40, 6]);
        assert_eq!(t[tensor::ITEM_BIAS].shape, [30]);
        assert_eq!(
            cpu.checkpoint.tensors.keys().collect::<Vec<_>>(),
            t.keys().collect::<Vec<_>>()
        );
        drop(gpu);
        assert_eq!(accel.allocations(), 0, "every device buffer is freed");
    }
}

/// Mini-batch dot / dot_bias (the notebooks' Adam, AdamW, SGD with momentum): through the
/// whole epoch loop, the CUDA backend on the harness gives the cpu backend's weights bit for
/// bit, and the same history.
#[test]
fn harness_mini_batch_gives_the_cpu_weights_bit_for_bit() {
    let p = planted(30, 20, 2, 500, 0.1);
    for (model, optimizer, momentum) in [
        (ModelKind::DotBias, OptimizerKind::Adam, 0.9),
        (ModelKind::Dot, OptimizerKind::AdamW, 0.9),
        (ModelKind::DotBias, OptimizerKind::Sgd, 0.9),
    ] {
        let cfg = Config {
            model,
            optimizer,
            momentum,
            k: Some(8),
            epochs: 2,
            batch_size: 64,
            lr: if optimizer == OptimizerKind::Sgd {
                0.05
            } else {
                1e-2
            },
            weight_decay: 1e-4,
            threads: 1,
            ..Config::default()
        };
        let cpu = run(&CpuBackend { threads: 1 }, &cfg, (&p.train, &p.valid));
        let (accel, gpu) = harness(Schedule::Sequential);
        let dev = run(&gpu, &cfg, (&p.train, &p.valid));
        assert_eq!(
            dev.checkpoint.tensors, cpu.checkpoint.tensors,
            "{model:?} {optimizer:?}"
        );
        let losses = |r: &TrainResult| {
            r.history
                .epochs
                .iter()
                .map(|e| e.train_loss)
                .collect::<Vec<_>>()
        };
        let (a, b) = (losses(&cpu), losses(&dev));
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-9 * x),
            "{a:?} vs {b:?}"
        );
        // Same weights; the device's dot products and sums run in another order (fp32).
        assert!(
            (best(&cpu) - best(&dev)).abs() < 1e-5,
            "{model:?} {optimizer:?}: {} vs {}",
            best(&cpu),
            best(&dev)
        );
        assert_eq!(dev.history.device, "cuda:0");
        drop(gpu);
        assert_eq!(accel.allocations(), 0, "every device buffer is freed");
    }
}

/// The checkpoint's weights predict what the device predicted: core's inference on the
/// downloaded tensors gives the validation RMSE the device reduced.
#[test]
fn downloaded_checkpoint_scores_like_the_device() {
    let p = planted(40, 30, 2, 1500, 0.1);
    let cfg = per_rating(5, 3, OptimizerKind::Sgd, 0.02);
    let (_, gpu) = harness(Schedule::Sequential);
    let r = run(&gpu, &cfg, (&p.train, &p.valid));
    let model = recpipe_core::model::Model::from_checkpoint(
        r.checkpoint.clone(),
        std::path::Path::new("."),
    )
    .unwrap();
    let pred = model.predict(&p.valid.user, &p.valid.item);
    let host = common::rmse(&pred, &p.valid.rating);
    assert!((host - best(&r)).abs() < 1e-5, "{host} vs {}", best(&r));
}

/// The sequential schedule is deterministic: two runs give the same bits.
#[test]
fn sequential_runs_repeat_exactly() {
    let p = planted(30, 20, 2, 800, 0.1);
    let cfg = per_rating(4, 2, OptimizerKind::Adagrad, 0.1);
    let a = run(&harness(Schedule::Sequential).1, &cfg, (&p.train, &p.valid));
    let b = run(&harness(Schedule::Sequential).1, &cfg, (&p.train, &p.valid));
    assert_eq!(a.checkpoint.tensors, b.checkpoint.tensors);
}

/// A device too small for the model is refused before training, naming the size needed
/// and the setting to lower.
#[test]
fn out_of_device_memory_names_the_size_and_the_setting() {
    let p = planted(30, 20, 2, 800, 0.1);
    let accel = Arc::new(HostAccel::with_memory(4096));
    let b = CudaBackend::on(accel, Device::Cuda(0), Schedule::Sequential);
    let e = train_on(
        &b,
        &per_rating(64, 1, OptimizerKind::Sgd, 0.01),
        (&p.train, &p.valid),
        None,
        &quiet(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("device = \"cuda:0\": harness: out of device memory"),
        "{e}"
    );
    assert!(
        e.contains("needs 1.0 MiB but 4.0 KiB of 4.0 KiB is free"),
        "{e}"
    );
    assert!(e.contains("lower `train.k"), "{e}");
}

/// The notebooks' reference setting (dot_bias k=50, Adam 1e-3, weight decay 1e-4, batch 64,
/// y_range (0, 5.5)) on ml-latest-small on the GPU: the cpu's RMSE within 0.002.
#[test]
fn gpu_reference_setting_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let (train, valid) = bundled();
    let cfg = Config {
        model: ModelKind::DotBias,
        k: Some(50),
        epochs: 5,
        batch_size: 64,
        lr: 1e-3,
        weight_decay: 1e-4,
        y_range: YRange::Range(0.0, 5.5),
        ..Config::default()
    };
    let cpu = run(&CpuBackend { threads: 2 }, &cfg, (&train, &valid));
    let dev = run(&gpu, &cfg, (&train, &valid));
    let secs = |r: &TrainResult| r.history.epochs.iter().map(|e| e.seconds).sum::<f64>();
    eprintln!(
        "reference setting: cpu {:.4} in {:.2}s, {} {:.4} in {:.2}s",
        best(&cpu),
        secs(&cpu),
        dev.device.name(),
        best(&dev),
        secs(&dev)
    );
    assert!((best(&dev) - best(&cpu)).abs() < 0.002);
}

/// Models no rating backend trains (the ranking models) are refused by name.
#[test]
fn other_families_are_refused_by_the_cuda_backend() {
    let p = planted(30, 20, 2, 800, 0.1);
    let cfg = Config {
        model: ModelKind::Ease,
        epochs: 1,
        ..Config::default()
    };
    let e = train_on(
        &harness(Schedule::Sequential).1,
        &cfg,
        (&p.train, &p.valid),
        None,
        &quiet(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"ease\" is a ranking model"), "{e}");
}

/// GPU parity on ml-latest-small: dot_bias per-rating sgd, same data and schedule; the
/// final valid RMSE within 0.002 of the cpu's.
#[test]
fn gpu_per_rating_matches_the_cpu_on_the_bundled_data() {
    let Some(gpu) = gpu() else { return };
    let (train, valid) = bundled();
    let cfg = per_rating(64, 12, OptimizerKind::Sgd, 0.01);
    let cpu = run(&CpuBackend { threads: 2 }, &cfg, (&train, &valid));
    let dev = run(&gpu, &cfg, (&train, &valid));
    eprintln!(
        "valid RMSE: cpu {:.4}, {} {:.4}",
        best(&cpu),
        dev.device.name(),
        best(&dev)
    );
    assert!((best(&dev) - best(&cpu)).abs() < 0.002);
}

/// On the GPU the sequential schedule and mini-batch training repeat exactly, and an
/// allocation larger than the device is refused with its size.
#[test]
fn gpu_sequential_repeats_and_oversized_buffers_are_refused() {
    let Some(_) = gpu() else { return };
    let p = planted(200, 100, 3, 5000, 0.1);
    let cfg = per_rating(32, 2, OptimizerKind::Adagrad, 0.1);
    let open = || {
        let g = recpipe_cuda::gpu::Gpu::open(0).unwrap();
        CudaBackend::on(g, Device::Cuda(0), Schedule::Sequential)
    };
    let a = run(&open(), &cfg, (&p.train, &p.valid));
    let b = run(&open(), &cfg, (&p.train, &p.valid));
    assert_eq!(a.checkpoint.tensors, b.checkpoint.tensors);
    // Mini-batch sums every row's gradient in batch order: deterministic at any width.
    let adam = Config {
        model: ModelKind::DotBias,
        k: Some(16),
        epochs: 2,
        threads: 1,
        ..Config::default()
    };
    let wide = || {
        CudaBackend::on(
            recpipe_cuda::gpu::Gpu::open(0).unwrap(),
            Device::Cuda(0),
            Schedule::Hogwild,
        )
    };
    let a = run(&wide(), &adam, (&p.train, &p.valid));
    let b = run(&wide(), &adam, (&p.train, &p.valid));
    assert_eq!(a.checkpoint.tensors, b.checkpoint.tensors);
    let g: Arc<dyn Accel> = recpipe_cuda::gpu::Gpu::open(0).unwrap();
    let purpose = recpipe_cuda::Purpose {
        what: "a test buffer",
        setting: "nothing",
    };
    let e = recpipe_cuda::Buf::<f32>::zeros(&g, 1 << 40, purpose)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("out of device memory for a test buffer: needs 4096.00 GiB"),
        "{e}"
    );
}
