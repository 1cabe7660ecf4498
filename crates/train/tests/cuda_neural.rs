//! The neural models (mlp, hybrid, classifier) on the CUDA backend: on recpipe-cuda-harness's
//! host-thread device against the cpu backend through the whole epoch loop (same starting
//! weights, same dropout masks, same lazy row optimizer; only the matrix products sum in
//! another order), and on a real GPU when one is present (ml-latest-small; without a GPU
//! these print "skipped: no GPU (why)", with `RECPIPE_REQUIRE_GPU=1` they fail).

mod common;

use common::{Gen, bundled, gpu, planted};
use recpipe_core::model::Tensor;
use recpipe_core::{Progress, Ratings};
use recpipe_cuda::Launch;
use recpipe_cuda_harness::HostAccel;
use recpipe_train::config::Join;
use recpipe_train::cpu::CpuBackend;
use recpipe_train::cuda::{CudaBackend, Schedule};
use recpipe_train::{Backend, Config, Device, ModelKind, OptimizerKind, TrainResult, YRange};
use std::collections::BTreeMap;
use std::sync::Arc;

fn run(
    b: &dyn Backend,
    cfg: &Config,
    (t, v): (&Ratings, &Ratings),
    features: Option<(usize, Vec<f32>)>,
) -> TrainResult {
    recpipe_train::train_on(b, cfg, (t, v), features, &Progress::hidden())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn best(r: &TrainResult) -> f64 {
    r.best.expect("a valid set").rmse
}

/// The harness device with its grid-stride launches on one block of two warps (the GEMM's
/// own blocks stay as the host code sizes them): few fibers per launch.
fn harness() -> (Arc<HostAccel>, CudaBackend) {
    let accel = Arc::new(HostAccel::with_shape(Launch { grid: 1, block: 64 }));
    let b = CudaBackend::on(accel.clone(), Device::Cuda(0), Schedule::Sequential);
    (accel, b)
}

/// Planted genre-like item features: 4 multi-hot columns.
fn genres(n_items: usize) -> (usize, Vec<f32>) {
    let mut g = Gen::new(11);
    let f = (0..n_items * 4)
        .map(|_| f32::from(g.below(3) == 0))
        .collect();
    (4, f)
}

/// The largest |a − b| / (1 + |b|) over every tensor, with the two name lists equal.
fn tensor_gap(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) -> (f32, String) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "checkpoint tensor names"
    );
    let mut worst = (0.0f32, String::new());
    for (name, t) in a {
        assert_eq!(t.shape, b[name].shape, "{name}");
        for (x, y) in t.data.iter().zip(&b[name].data) {
            let d = (x - y).abs() / (1.0 + y.abs());
            if d > worst.0 {
                worst = (d, name.clone());
            }
        }
    }
    worst
}

fn neural(model: ModelKind, join: Join, batch_norm: bool, dropout: f32) -> Config {
    Config {
        model,
        join,
        k: Some(6),
        hidden: Some(vec![12, 7]),
        batch_norm: Some(batch_norm),
        dropout: Some(dropout),
        output_dropout: Some(2.0 * dropout),
        item_features_hidden: vec![5],
        epochs: 3,
        batch_size: 64,
        lr: 2e-2,
        weight_decay: 1e-4,
        l2: 1e-4,
        optimizer: OptimizerKind::Adam,
        y_range: YRange::Range(0.5, 5.5),
        threads: 1,
        ..Config::default()
    }
}

/// Whether the cpu backend's matrix products fuse their multiply-adds (matrixmultiply's
/// FMA kernels), as dense.cu's GEMM does.
fn cpu_fuses() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// mlp (concat and product, batch norm on and off, dropout on and off), hybrid with genre
/// features through a tower, and the classifier: through three epochs the harness-trained
/// model is the cpu's bit for bit (every tensor, every epoch's loss; where the cpu has no
/// FMA, within rounding), the best valid RMSE within 1e-4, and its checkpoint scores like
/// the device.
#[test]
fn harness_neural_models_match_the_cpu_backend() {
    let p = planted(40, 30, 2, 1000, 0.1);
    let cases = [
        (ModelKind::Mlp, Join::Concat, false, 0.0, false),
        (ModelKind::Mlp, Join::Concat, true, 0.1, false),
        (ModelKind::Mlp, Join::Product, false, 0.1, false),
        (ModelKind::Mlp, Join::Product, true, 0.0, false),
        (ModelKind::Hybrid, Join::Concat, false, 0.1, true),
        (ModelKind::Classifier, Join::Concat, true, 0.1, false),
    ];
    for (model, join, bn, dropout, feats) in cases {
        let what = format!("{model:?} {join:?} batch_norm {bn} dropout {dropout}");
        let cfg = neural(model, join, bn, dropout);
        let features = || feats.then(|| genres(30));
        let cpu = run(
            &CpuBackend { threads: 1 },
            &cfg,
            (&p.train, &p.valid),
            features(),
        );
        let (accel, gpu) = harness();
        let dev = run(&gpu, &cfg, (&p.train, &p.valid), features());
        let (gap, worst) = tensor_gap(&dev.checkpoint.tensors, &cpu.checkpoint.tensors);
        let losses = |r: &TrainResult| {
            r.history
                .epochs
                .iter()
                .map(|e| e.train_loss)
                .collect::<Vec<_>>()
        };
        let (a, b) = (losses(&cpu), losses(&dev));
        let loss_gap = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() / x.abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{what}: valid RMSE cpu {:.6} cuda/harness {:.6}; tensors within {gap:.2e} \
             (worst {worst}), losses within {loss_gap:.2e}",
            best(&cpu),
            best(&dev)
        );
        assert_eq!(a.len(), cfg.epochs, "{what}");
        // Where the cpu's matrixmultiply fuses its multiply-adds (x86 with FMA), the
        // harness sums in its order and the weights are equal; elsewhere the linear bias
        // before a batch norm (its gradient is pure cancellation, which Adam normalises)
        // drifts by rounding while the outputs agree.
        let (tol, loss_tol) = if cpu_fuses() {
            (0.0, 0.0)
        } else {
            (1e-2, 1e-5)
        };
        assert!(gap <= tol, "{what}: tensors {gap} apart at {worst}");
        assert!(loss_gap <= loss_tol, "{what}: losses {a:?} vs {b:?}");
        assert!(
            (best(&cpu) - best(&dev)).abs() < 1e-4,
            "{what}: {} vs {}",
            best(&cpu),
            best(&dev)
        );
        // (Both beat the global mean: train_on refuses a model that does not.)
        if model == ModelKind::Classifier {
            let acc = |r: &TrainResult| r.best.unwrap().accuracy.expect("classifier accuracy");
            assert!((acc(&cpu) - acc(&dev)).abs() < 0.02, "{what}");
        }
        assert_eq!(dev.device, Device::Cuda(0));
        assert_eq!(dev.history.device, "cuda:0");
        // The checkpoint's weights predict what the device predicted.
        let m = recpipe_core::model::Model::from_checkpoint(
            dev.checkpoint.clone(),
            std::path::Path::new("."),
        )
        .unwrap();
        let pred = m.predict(&p.valid.user, &p.valid.item);
        let host = common::rmse(&pred, &p.valid.rating);
        assert!(
            (host - best(&dev)).abs() < 1e-5,
            "{what}: {host} vs {}",
            best(&dev)
        );
        drop(gpu);
        assert_eq!(
            accel.allocations(),
            0,
            "{what}: every device buffer is freed"
        );
    }
}

/// A device too small for the model is refused before training, with the size needed and
/// the settings to lower.
#[test]
fn neural_out_of_device_memory_names_the_size_and_the_setting() {
    let p = planted(30, 20, 2, 300, 0.1);
    let accel = Arc::new(HostAccel::with_memory(64 * 1024));
    let b = CudaBackend::on(accel, Device::Cuda(0), Schedule::Sequential);
    let cfg = Config {
        hidden: Some(vec![512, 512]),
        batch_size: 256,
        ..neural(ModelKind::Mlp, Join::Concat, false, 0.0)
    };
    let e = recpipe_train::train_on(&b, &cfg, (&p.train, &p.valid), None, &Progress::hidden())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("device = \"cuda:0\": harness: out of device memory"),
        "{e}"
    );
    assert!(e.contains("lower `train.batch_size or train.hidden"), "{e}");
}

/// Issue 16's parity on the GPU: mlp (the default shape: k 50, hidden [10], dropout, Adam
/// 1e-3, batch 64) on ml-latest-small, final valid RMSE within 0.002 of the cpu's.
#[test]
fn gpu_mlp_matches_the_cpu_on_the_bundled_data() {
    let Some(gpu) = gpu() else { return };
    let (train, valid) = bundled();
    let cfg = Config {
        model: ModelKind::Mlp,
        epochs: 4,
        batch_size: 64,
        lr: 1e-3,
        weight_decay: 1e-4,
        y_range: YRange::Range(0.0, 5.5),
        ..Config::default()
    };
    let cpu = run(&CpuBackend { threads: 2 }, &cfg, (&train, &valid), None);
    let dev = run(&gpu, &cfg, (&train, &valid), None);
    let last = |r: &TrainResult| r.history.epochs.last().unwrap().valid_rmse.unwrap();
    eprintln!(
        "mlp on ml-latest-small: final valid RMSE cpu {:.4}, {} {:.4}",
        last(&cpu),
        dev.device.name(),
        last(&dev)
    );
    assert!((last(&dev) - last(&cpu)).abs() < 0.002);
}
