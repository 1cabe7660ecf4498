//! embedding.cu's `emb_steps` (R mini-batches in one single-block launch) against the
//! per-batch launches (`emb_begin_step`, `emb_forward`, `emb_update`, `emb_dense_step`):
//! from the same weights through the same epoch plans, `MiniBatch::step_group` in groups of
//! R (and a short last group) must leave every weight, every optimizer step and every
//! batch's Σ e² bit for bit where `MiniBatch::step` leaves them, for each optimizer of the
//! batch path, dot and dot_bias, with and without the y_range sigmoid, lazy and dense; and
//! the block's width does not change a bit (the harness runs a block's threads as host
//! threads, so the matrix runs 2 warps a block and one case the full `FUSED_THREADS`).

mod common;

use common::Rng;
use recpipe_cuda::accel::Accel;
use recpipe_cuda::buf::Purpose;
use recpipe_cuda::kernel::{Kernel, Launch};
use recpipe_cuda::mf::{DeviceRatings, MfShape, MfWeights};
use recpipe_cuda::minibatch::{FUSED_THREADS, MbConfig, MbOptimizer, MiniBatch};
use recpipe_cuda_harness::HostAccel;
use std::sync::Arc;

const PURPOSE: Purpose = Purpose {
    what: "the test data",
    setting: "none",
};

struct Case {
    optimizer: MbOptimizer,
    momentum: f32,
    weight_decay: f32,
    l2: f32,
    lr: f32,
}

const CASES: &[Case] = &[
    Case {
        optimizer: MbOptimizer::Adam,
        momentum: 0.9,
        weight_decay: 1e-3,
        l2: 0.0,
        lr: 1e-2,
    },
    Case {
        optimizer: MbOptimizer::AdamW,
        momentum: 0.9,
        weight_decay: 1e-2,
        l2: 1e-3,
        lr: 1e-2,
    },
    Case {
        optimizer: MbOptimizer::Sgd,
        momentum: 0.9,
        weight_decay: 1e-3,
        l2: 0.0,
        lr: 0.05,
    },
    Case {
        optimizer: MbOptimizer::SparseAdam,
        momentum: 0.0,
        weight_decay: 0.0,
        l2: 1e-2,
        lr: 1e-2,
    },
];

/// Trains two copies of one model through `epochs` epochs of the same plans: one batch a
/// launch set, and `group` batches a launch. Returns (per-batch, fused) weights and sse.
#[allow(clippy::type_complexity)]
fn both(
    accel: &Arc<dyn Accel>,
    case: &Case,
    bias: bool,
    y_range: Option<[f32; 2]>,
    dense: bool,
    (group, threads): (usize, u32),
) -> ((MfWeights, Vec<f64>), (MfWeights, Vec<f64>)) {
    let mut rng = Rng(0x5eed);
    let (nu, ni, n, k, batch, epochs) = (30usize, 20usize, 320usize, 9usize, 32usize, 2usize);
    let user: Vec<u32> = (0..n).map(|_| rng.below(nu) as u32).collect();
    let item: Vec<u32> = (0..n).map(|_| rng.below(ni) as u32).collect();
    let rating: Vec<f32> = (0..n).map(|_| 0.5 + 0.5 * rng.below(10) as f32).collect();
    let data = DeviceRatings::upload(accel, (&user, &item, &rating), PURPOSE).unwrap();
    let shape = MfShape {
        n_users: nu,
        n_items: ni,
        k,
        bias,
    };
    let s = shape.stride();
    let w = MfWeights {
        p: (0..nu * s).map(|_| 0.2 * rng.unit() - 0.1).collect(),
        q: (0..ni * s).map(|_| 0.2 * rng.unit() - 0.1).collect(),
        global: if bias { 0.4 } else { 0.0 },
    };
    let cfg = MbConfig {
        optimizer: case.optimizer,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        momentum: case.momentum,
        weight_decay: case.weight_decay,
        l2: case.l2,
        dense,
        y_range,
    };
    let n_batches = n.div_ceil(batch);
    let steps = n_batches * epochs;
    let mut one = MiniBatch::new(accel, shape, &w, cfg, batch, steps).unwrap();
    let mut fused = MiniBatch::new(accel, shape, &w, cfg, batch, steps).unwrap();
    fused.set_fused_threads(threads);
    let (mut sse_one, mut sse_fused) = (Vec::new(), Vec::new());
    for e in 0..epochs {
        let mut order: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let lr = |b: usize| case.lr * (1.0 - 0.3 * (e * n_batches + b) as f32 / steps as f32);
        let plan = one.plan(&user, &item, &order, batch).unwrap();
        for b in 0..plan.n_batches() {
            one.step(&data, &plan, b, lr(b)).unwrap();
        }
        one.end_epoch().unwrap();
        sse_one.extend(plan.batch_sse().unwrap());
        let plan = fused.plan(&user, &item, &order, batch).unwrap();
        let mut b0 = 0;
        while b0 < plan.n_batches() {
            let b1 = (b0 + group).min(plan.n_batches());
            let lrs: Vec<f32> = (b0..b1).map(lr).collect();
            fused.step_group(&data, &plan, b0, &lrs).unwrap();
            b0 = b1;
        }
        fused.end_epoch().unwrap();
        sse_fused.extend(plan.batch_sse().unwrap());
    }
    assert_eq!(one.steps(), fused.steps());
    (
        (one.weights().unwrap(), sse_one),
        (fused.weights().unwrap(), sse_fused),
    )
}

#[test]
fn fused_steps_equal_the_per_batch_launches_bit_for_bit() {
    let host = Arc::new(HostAccel::with_shape(Launch { grid: 2, block: 64 }));
    let accel: Arc<dyn Accel> = host.clone();
    let mut checked = 0;
    for case in CASES {
        for (bias, y_range) in [(true, Some([0.5f32, 5.5])), (false, None)] {
            for dense in [false, true] {
                let ctx = format!("{:?} bias {bias} dense {dense}", case.optimizer);
                let ((a, sa), (b, sb)) = both(&accel, case, bias, y_range, dense, (4, 64));
                assert!(sa.iter().all(|x| *x > 0.0), "{ctx}: every batch stepped");
                assert_eq!(sa, sb, "{ctx}: batch losses");
                assert_eq!(a, b, "{ctx}: weights");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 16);
    let shapes = host.shapes(Kernel::EmbSteps);
    assert_eq!(shapes, [Launch { grid: 1, block: 64 }]);
}

/// At the full width of FUSED_THREADS, with whole epochs in one launch and with groups of
/// one batch, the fused path is the per-batch one; and it trains (the loss falls).
#[test]
fn full_width_and_single_batch_groups_match_and_the_loss_falls() {
    let host = Arc::new(HostAccel::with_shape(Launch { grid: 1, block: 64 }));
    let accel: Arc<dyn Accel> = host.clone();
    let case = &CASES[0];
    let y = Some([0.5, 5.5]);
    let ((a, sa), (b, sb)) = both(&accel, case, true, y, false, (64, FUSED_THREADS));
    assert_eq!((&a, &sa), (&b, &sb));
    let full = Launch {
        grid: 1,
        block: FUSED_THREADS,
    };
    assert_eq!(host.shapes(Kernel::EmbSteps), [full]);
    let ((_, _), (c, sc)) = both(&accel, case, true, y, false, (1, 32));
    assert_eq!((&c, &sc), (&a, &sa), "groups of one batch");
    let n = sa.len() / 2;
    let (e1, e2): (f64, f64) = (sa[..n].iter().sum(), sa[n..].iter().sum());
    assert!(
        e2 < e1,
        "the second epoch's loss {e2} is below the first's {e1}"
    );
}
