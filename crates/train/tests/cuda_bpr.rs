//! BPR on the CUDA backend against the cpu's BPR, on slices of the bundled
//! ml-latest-small: on recpipe-cuda-harness's host-thread device (bpr.cu compiled as C++,
//! the backend's host code as shipped) and on a real GPU when one is present (else
//! "skipped: no GPU (why)"; a failure under `RECPIPE_REQUIRE_GPU=1`).
//!
//! The device steps the triples the host draws from the cpu's streams in the cpu's order,
//! from the cpu's starting draws, with the cpu's arithmetic in its order: one warp (the
//! sequential schedule) gives the cpu's model bit for bit; Hogwild races and lands near it.

mod common;

use common::{Gen, gpu};
use recpipe_core::model::tensor;
use recpipe_core::{Progress, Ratings};
use recpipe_cuda::{Accel, Launch};
use recpipe_cuda_harness::HostAccel;
use recpipe_train::ranking::{On, train_on};
use recpipe_train::{Config, Device, ModelKind, TrainResult};
use std::sync::Arc;

/// The first `users` users of ml-latest-small (dense ids, first seen), each user's ratings
/// split 3:1 into train and valid by a seeded shuffle.
fn slice(users: u32) -> (Ratings, Ratings) {
    let all = recpipe_core::testutil::bundled_ratings();
    let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); all.n_users as usize];
    for row in 0..all.len() {
        if all.user[row] < users {
            by_user[all.user[row] as usize].push(row);
        }
    }
    let mut g = Gen::new(11);
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for rows in &mut by_user {
        g.shuffle(rows);
        let cut = rows.len() - rows.len() / 4;
        train.extend_from_slice(&rows[..cut]);
        valid.extend_from_slice(&rows[cut..]);
    }
    (all.select(&train), all.select(&valid))
}

fn bpr(k: usize, epochs: usize, negatives: usize) -> Config {
    Config {
        model: ModelKind::Bpr,
        k: Some(k),
        epochs,
        lr: 0.05,
        reg: Some(0.01),
        negatives: Some(negatives),
        threads: 2,
        ..Config::default()
    }
}

fn run(cfg: &Config, (t, v): (&Ratings, &Ratings), on: On) -> TrainResult {
    train_on(cfg, t, v, on, &Progress::hidden()).unwrap_or_else(|e| panic!("{e}"))
}

fn harness(accel: HostAccel) -> (Arc<HostAccel>, On) {
    let accel = Arc::new(accel);
    let on = On::Cuda(accel.clone() as Arc<dyn Accel>, Device::Cuda(0));
    (accel, on)
}

fn precision(r: &TrainResult) -> f64 {
    r.ranking.expect("a ranking model").precision
}

/// One warp steps the cpu's triples in the cpu's order with the cpu's arithmetic: after 2
/// epochs every factor and bias equals the cpu's bit for bit (multi-block grid: 610 × 9724
/// rows deal into 32 × 32 cells), the losses agree to f64 rounding (the device sums them in
/// another order), the precision@10 is the same, and the checkpoint differs only in its
/// device.
#[test]
fn sequential_harness_gives_the_cpu_factors_bit_for_bit() {
    let data = slice(20);
    for (k, negatives) in [(8usize, 2usize), (21, 1)] {
        let cfg = bpr(k, 2, negatives);
        let cpu = run(&cfg, (&data.0, &data.1), On::Cpu);
        let (accel, on) = harness(HostAccel::with_shape(Launch::SEQUENTIAL));
        let dev = run(&cfg, (&data.0, &data.1), on);
        assert_eq!(
            accel.shapes(recpipe_cuda::Kernel::BprSteps),
            [Launch::SEQUENTIAL]
        );
        let (a, b) = (&cpu.checkpoint.tensors, &dev.checkpoint.tensors);
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for name in [
            tensor::USER_FACTORS,
            tensor::ITEM_FACTORS,
            tensor::ITEM_BIAS,
        ] {
            assert_eq!(a[name].shape, b[name].shape, "{name}");
            let differ = a[name]
                .data
                .iter()
                .zip(&b[name].data)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count();
            assert_eq!(
                differ,
                0,
                "k={k}: {differ} of {} {name} differ",
                a[name].data.len()
            );
        }
        for (x, y) in cpu.history.epochs.iter().zip(&dev.history.epochs) {
            let (lx, ly) = (x.train_loss, y.train_loss);
            assert!(
                lx.is_finite() && (lx - ly).abs() <= 1e-12 * lx,
                "{lx} vs {ly}"
            );
            assert_eq!(x.valid_precision, y.valid_precision);
        }
        assert_eq!(precision(&cpu), precision(&dev));
        assert_eq!(dev.device, Device::Cuda(0));
        assert_eq!(dev.checkpoint.meta.device, "cuda:0");
        assert_eq!(dev.history.device, "cuda:0");
        let meta = |r: &TrainResult| {
            let mut m = serde_json::to_value(&r.checkpoint.meta).unwrap();
            m.as_object_mut().unwrap().remove("device");
            m
        };
        assert_eq!(meta(&cpu), meta(&dev));
        drop(dev);
        assert_eq!(accel.allocations(), 0, "every device buffer is freed");
    }
}

/// Hogwild (racing warps, 8 a block at once on the harness) trains as the cpu does: each
/// epoch's loss within 10% of the cpu's (measured: at most 4%, in epoch 3), the last
/// within 2% (measured: 0.01%), and valid precision@10 within 0.02 of the cpu's after 8
/// epochs (measured: 0.0025, one step of 40 users' valid sets).
#[test]
fn hogwild_harness_trains_as_the_cpu_does() {
    let data = slice(40);
    let cfg = Config {
        lr: 0.1,
        ..bpr(16, 8, 2)
    };
    let cpu = run(&cfg, (&data.0, &data.1), On::Cpu);
    let (accel, on) = harness(HostAccel::new());
    let dev = run(&cfg, (&data.0, &data.1), on);
    let shapes = accel.shapes(recpipe_cuda::Kernel::BprSteps);
    assert!(shapes.iter().all(|s| s.total_warps() > 1), "{shapes:?}");
    let losses = |r: &TrainResult| {
        r.history
            .epochs
            .iter()
            .map(|e| e.train_loss)
            .collect::<Vec<_>>()
    };
    let (lc, ld) = (losses(&cpu), losses(&dev));
    let (pc, pd) = (precision(&cpu), precision(&dev));
    eprintln!("train loss: cpu {lc:.4?}\n      harness Hogwild {ld:.4?}");
    eprintln!("valid precision@10: cpu {pc:.4}, harness Hogwild {pd:.4}");
    assert!(lc[7] < 0.2 * lc[0], "the cpu trained: {lc:?}");
    for (e, (c, d)) in lc.iter().zip(&ld).enumerate() {
        assert!(
            (c - d).abs() < 0.1 * c,
            "epoch {}: cpu {c} vs Hogwild {d}",
            e + 1
        );
    }
    assert!((lc[7] - ld[7]).abs() < 0.02 * lc[7], "{lc:?} vs {ld:?}");
    assert!((pc - pd).abs() < 0.02, "cpu {pc} vs Hogwild {pd}");
    let f = &dev.checkpoint.tensors[tensor::USER_FACTORS].data;
    assert!(f.iter().all(|x| x.is_finite()));
}

/// A device too small for the tables is refused before training with the size and the
/// setting to lower; a k above the kernel's is refused with the fix.
#[test]
fn out_of_device_memory_and_wide_k_are_refused_with_the_fix() {
    let data = slice(5);
    let (_, on) = harness(HostAccel::with_memory(64 << 10));
    let e = train_on(&bpr(64, 1, 1), &data.0, &data.1, on, &Progress::hidden())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "device = \"cuda:0\": harness: out of device memory for the BPR factor tables"
        ),
        "{e}"
    );
    assert!(e.contains("lower `train.k`"), "{e}");
    let (_, on) = harness(HostAccel::new());
    let e = train_on(&bpr(300, 1, 1), &data.0, &data.1, on, &Progress::hidden())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("k = 300") && e.contains("device = \"cpu\""),
        "{e}"
    );
}

/// On a GPU, `device = "cuda"` trains bpr with pipelines/ml-latest-small-topn.toml's
/// settings (k = 128, 50 epochs, lr 0.02, reg 0.01, 4 negatives) on all of ml-latest-small
/// (a per-user 3:1 split) to the cpu's valid precision@10 within 0.01.
#[test]
fn gpu_bpr_reaches_the_cpu_precision_on_ml_latest_small() {
    if gpu().is_none() {
        return;
    }
    let data = slice(u32::MAX);
    let cfg = Config {
        lr: 0.02,
        threads: 0,
        ..bpr(128, 50, 4)
    };
    let cpu = recpipe_train::train_model(&cfg, &data.0, &data.1, &Progress::hidden()).unwrap();
    let on_gpu = Config {
        device: recpipe_train::config::DeviceChoice::Cuda(0),
        ..cfg.clone()
    };
    let dev = recpipe_train::train_model(&on_gpu, &data.0, &data.1, &Progress::hidden()).unwrap();
    assert_eq!(dev.device, Device::Cuda(0));
    let (pc, pd) = (precision(&cpu), precision(&dev));
    let s: f64 = dev.history.epochs.iter().map(|e| e.seconds).sum();
    let c: f64 = cpu.history.epochs.iter().map(|e| e.seconds).sum();
    eprintln!("valid precision@10: cpu {pc:.4} ({c:.1}s), GPU {pd:.4} ({s:.1}s)");
    assert!((pc - pd).abs() < 0.01, "cpu {pc} vs GPU {pd}");
}
