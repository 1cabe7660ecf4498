//! embedding.cu against the cpu: the same epochs of mini-batches through the kernels (on host
//! threads) and through recpipe-train's `EmbeddingTrainer`, from the same starting weights,
//! must give the same weights (within 1e-5 relative; the kernels follow the cpu's arithmetic
//! order, so here they agree bit for bit) for every optimizer of the batch path, dot and
//! dot_bias, with and without the y_range sigmoid, k in {3, 8, 40}; the result does not
//! depend on the launch shape; rows that miss hundreds of steps catch up as on the cpu; and
//! dense mode steps every row as PyTorch's dense optimizers do. The device side is
//! recpipe-cuda's host code (`minibatch::MiniBatch`: the epoch plan, the launches, the flush)
//! on the host-thread device, whose warp-per-item launches run on the shape each test names.

mod common;

use common::Rng;
use recpipe_cuda::accel::Accel;
use recpipe_cuda::buf::Purpose;
use recpipe_cuda::kernel::{Kernel, Launch};
use recpipe_cuda::mf::{DeviceRatings, MfShape, MfWeights};
use recpipe_cuda::minibatch::{MbConfig, MbOptimizer, MiniBatch};
use recpipe_cuda_harness::HostAccel;
use recpipe_train::config::ScheduleKind;
use recpipe_train::cpu::EmbeddingTrainer;
use recpipe_train::{
    Config, EpochTask, ModelKind, ModelSpec, OptimizerKind, RatingsView, Schedule, Trainer,
};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Data {
    n_users: usize,
    n_items: usize,
    user: Vec<u32>,
    item: Vec<u32>,
    rating: Vec<f32>,
}

impl Data {
    fn random(rng: &mut Rng, n: usize, n_users: usize, n_items: usize) -> Data {
        let user = (0..n).map(|_| rng.below(n_users) as u32).collect();
        let item = (0..n).map(|_| rng.below(n_items) as u32).collect();
        let rating = (0..n).map(|_| 0.5 + 0.5 * rng.below(10) as f32).collect();
        Data {
            n_users,
            n_items,
            user,
            item,
            rating,
        }
    }
    /// `n` random ratings (seeded by `seed`) and `epochs` shuffled orders of them.
    fn shuffled(
        seed: u64,
        n: usize,
        (nu, ni): (usize, usize),
        epochs: usize,
    ) -> (Data, Vec<Vec<u32>>) {
        let mut rng = Rng(seed);
        let data = Data::random(&mut rng, n, nu, ni);
        let orders = (0..epochs)
            .map(|_| {
                let mut o: Vec<u32> = (0..n as u32).collect();
                rng.shuffle(&mut o);
                o
            })
            .collect();
        (data, orders)
    }

    fn view(&self) -> RatingsView<'_> {
        RatingsView {
            user: &self.user,
            item: &self.item,
            rating: &self.rating,
        }
    }
    fn upload(&self, accel: &Arc<dyn Accel>) -> DeviceRatings {
        let purpose = Purpose {
            what: "the test ratings",
            setting: "none",
        };
        DeviceRatings::upload(accel, (&self.user, &self.item, &self.rating), purpose).unwrap()
    }
}

/// A host-thread device whose warp-per-item launches run as `grid` blocks of `block`.
fn harness(grid: u32, block: u32) -> Arc<dyn Accel> {
    Arc::new(HostAccel::with_shape(Launch { grid, block }))
}

/// One optimizer setting of the matrix.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    optimizer: OptimizerKind,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    l2: f32,
    schedule: ScheduleKind,
}

const CASES: &[Case] = &[
    Case {
        name: "sgd",
        optimizer: OptimizerKind::Sgd,
        lr: 0.05,
        momentum: 0.0,
        weight_decay: 1e-3,
        l2: 0.0,
        schedule: ScheduleKind::Constant,
    },
    Case {
        name: "sgd+momentum",
        optimizer: OptimizerKind::Sgd,
        lr: 0.02,
        momentum: 0.9,
        weight_decay: 1e-3,
        l2: 1e-3,
        schedule: ScheduleKind::OneCycle,
    },
    Case {
        name: "adam (coupled decay)",
        optimizer: OptimizerKind::Adam,
        lr: 1e-2,
        momentum: 0.9,
        weight_decay: 1e-4,
        l2: 0.0,
        schedule: ScheduleKind::Constant,
    },
    Case {
        name: "adam (l2)",
        optimizer: OptimizerKind::Adam,
        lr: 1e-2,
        momentum: 0.9,
        weight_decay: 0.0,
        l2: 1e-2,
        schedule: ScheduleKind::OneCycle,
    },
    Case {
        name: "sparse_adam",
        optimizer: OptimizerKind::SparseAdam,
        lr: 1e-2,
        momentum: 0.9,
        weight_decay: 1e-4,
        l2: 0.0,
        schedule: ScheduleKind::Constant,
    },
    Case {
        name: "adamw",
        optimizer: OptimizerKind::AdamW,
        lr: 1e-2,
        momentum: 0.9,
        weight_decay: 1e-2,
        l2: 0.0,
        schedule: ScheduleKind::Constant,
    },
    Case {
        name: "adagrad (RowOpt's)",
        optimizer: OptimizerKind::Adagrad,
        lr: 1e-2,
        momentum: 0.9,
        weight_decay: 1e-4,
        l2: 1e-3,
        schedule: ScheduleKind::Constant,
    },
];

/// The device's settings for `spec` (`dense`: step every row at every batch).
fn mb_config(spec: &ModelSpec, dense: bool) -> MbConfig {
    let cfg = &spec.cfg;
    MbConfig {
        optimizer: match cfg.optimizer {
            OptimizerKind::Adam => MbOptimizer::Adam,
            OptimizerKind::AdamW => MbOptimizer::AdamW,
            OptimizerKind::Sgd => MbOptimizer::Sgd,
            OptimizerKind::SparseAdam => MbOptimizer::SparseAdam,
            OptimizerKind::Adagrad => MbOptimizer::Adagrad,
        },
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        l2: cfg.l2,
        dense,
        y_range: spec.y_range,
    }
}

fn spec(
    case: &Case,
    kind: ModelKind,
    k: usize,
    y_range: Option<[f32; 2]>,
    d: &Data,
    steps: usize,
) -> ModelSpec {
    let cfg = Config {
        model: kind,
        k: Some(k),
        optimizer: case.optimizer,
        lr: case.lr,
        momentum: case.momentum,
        weight_decay: case.weight_decay,
        l2: case.l2,
        init_scale: Some(0.1),
        schedule: case.schedule,
        epochs: 2,
        seed: 7,
        ..Config::default()
    };
    let mean = d.rating.iter().sum::<f32>() / d.rating.len() as f32;
    ModelSpec {
        cfg,
        kind,
        n_users: d.n_users,
        n_items: d.n_items,
        k,
        global_mean: mean,
        y_range,
        classes: None,
        item_features: None,
        expected_steps: steps,
    }
}

/// The cpu trainer's weights `t` in the device layout.
fn device_weights(spec: &ModelSpec, t: &BTreeMap<String, Vec<f32>>) -> (MfShape, MfWeights) {
    let (k, bias) = (spec.k, spec.kind == ModelKind::DotBias);
    let rows = |f: &str, b: &str, n: usize| -> Vec<f32> {
        let mut out = Vec::new();
        for r in 0..n {
            out.extend_from_slice(&t[f][r * k..(r + 1) * k]);
            if bias {
                out.push(t[b][r]);
            }
        }
        out
    };
    let shape = MfShape {
        n_users: spec.n_users,
        n_items: spec.n_items,
        k,
        bias,
    };
    let w = MfWeights {
        p: rows("user_factors", "user_bias", spec.n_users),
        q: rows("item_factors", "item_bias", spec.n_items),
        global: if bias { t["global_bias"][0] } else { 0.0 },
    };
    (shape, w)
}

/// Device-layout weights of `spec`'s model under the checkpoint names.
fn device_tensors(spec: &ModelSpec, w: &MfWeights) -> BTreeMap<String, Vec<f32>> {
    let bias = spec.kind == ModelKind::DotBias;
    let (k, s) = (spec.k, spec.k + usize::from(bias));
    let factors = |t: &[f32]| -> Vec<f32> {
        t.chunks_exact(s)
            .flat_map(|r| r[..k].iter().copied())
            .collect()
    };
    let biases = |t: &[f32]| -> Vec<f32> { t.chunks_exact(s).map(|r| r[k]).collect() };
    let mut out = BTreeMap::new();
    out.insert("user_factors".to_string(), factors(&w.p));
    out.insert("item_factors".to_string(), factors(&w.q));
    if bias {
        out.insert("user_bias".to_string(), biases(&w.p));
        out.insert("item_bias".to_string(), biases(&w.q));
        out.insert("global_bias".to_string(), vec![w.global]);
    }
    out
}

/// Max over every weight of |a - b| / max(|b|, 1e-3), and the max |a - b|.
fn compare(
    ctx: &str,
    gpu: &BTreeMap<String, Vec<f32>>,
    cpu: &BTreeMap<String, Vec<f32>>,
) -> (f64, f64) {
    assert_eq!(
        gpu.keys().collect::<Vec<_>>(),
        cpu.keys().collect::<Vec<_>>(),
        "{ctx}"
    );
    let (mut rel, mut abs) = (0.0f64, 0.0f64);
    for (name, g) in gpu {
        let c = &cpu[name];
        assert_eq!(g.len(), c.len(), "{ctx} {name}");
        for (a, b) in g.iter().zip(c) {
            assert!(a.is_finite(), "{ctx} {name}: {a}");
            let d = (*a as f64 - *b as f64).abs();
            abs = abs.max(d);
            rel = rel.max(d / (*b as f64).abs().max(1e-3));
        }
    }
    (rel, abs)
}

/// The cpu trainer's weights under the checkpoint names.
fn cpu_tensors(tr: &EmbeddingTrainer) -> BTreeMap<String, Vec<f32>> {
    tr.tensors().into_iter().map(|(k, t)| (k, t.data)).collect()
}

/// Epoch orders: `orders[e]` for epoch e.
struct Run<'a> {
    data: &'a Data,
    orders: &'a [Vec<u32>],
    batch: usize,
}

impl Run<'_> {
    fn n_batches(&self) -> usize {
        self.orders[0].len().div_ceil(self.batch)
    }

    fn cpu_from(&self, spec: &ModelSpec, mut tr: EmbeddingTrainer) -> (EmbeddingTrainer, Vec<f64>) {
        let sched = Schedule::new(&spec.cfg, self.n_batches());
        let mut losses = Vec::new();
        for (e, order) in self.orders.iter().enumerate() {
            let task = EpochTask {
                data: self.data.view(),
                order,
                batch_size: self.batch,
                schedule: &sched,
                step0: e * self.n_batches(),
            };
            losses.push(tr.train_epoch(task, &mut |_, _| {}).expect("finite"));
        }
        (tr, losses)
    }

    /// recpipe-cuda's `MiniBatch` on `accel` from the cpu trainer's weights `start` through
    /// the epochs (each flushed at its end): the final weights and each epoch's per-batch
    /// Σ e².
    fn device(
        &self,
        spec: &ModelSpec,
        start: &BTreeMap<String, Vec<f32>>,
        dense: bool,
        accel: &Arc<dyn Accel>,
    ) -> (MfWeights, Vec<Vec<f64>>) {
        let data = self.data.upload(accel);
        let (shape, w) = device_weights(spec, start);
        let cfg = mb_config(spec, dense);
        let steps = spec.expected_steps;
        let mut m = MiniBatch::new(accel, shape, &w, cfg, self.batch, steps).unwrap();
        let sched = Schedule::new(&spec.cfg, self.n_batches());
        let mut sse = Vec::new();
        for (e, order) in self.orders.iter().enumerate() {
            let (user, item) = (&self.data.user, &self.data.item);
            let plan = m.plan(user, item, order, self.batch).unwrap();
            assert_eq!(plan.n_batches(), self.n_batches());
            for b in 0..plan.n_batches() {
                let lr = sched.lr(e * self.n_batches() + b);
                m.step(&data, &plan, b, lr).unwrap();
            }
            m.end_epoch().unwrap();
            sse.push(plan.batch_sse().unwrap());
        }
        (m.weights().unwrap(), sse)
    }

    /// Each epoch's mean loss from its per-batch Σ e².
    fn losses(&self, sse: &[Vec<f64>]) -> Vec<f64> {
        sse.iter()
            .zip(self.orders)
            .map(|(s, o)| s.iter().sum::<f64>() / o.len() as f64)
            .collect()
    }
}

const Y: Option<[f32; 2]> = Some([0.5, 5.5]);

#[test]
fn one_epoch_matches_the_cpu_trainer_for_every_optimizer() {
    let (data, orders) = Data::shuffled(0x00e0_bedd, 600, (50, 40), 1);
    let run = Run {
        data: &data,
        orders: &orders,
        batch: 64,
    };
    let accel = harness(1, 64);
    let (mut worst_rel, mut worst_abs, mut checked) = (0.0f64, 0.0f64, 0);
    for case in CASES {
        for kind in [ModelKind::Dot, ModelKind::DotBias] {
            for y_range in [None, Y] {
                for k in [3usize, 8, 40] {
                    let ctx = format!("{} {kind:?} y_range {y_range:?} k {k}", case.name);
                    let spec = spec(case, kind, k, y_range, &data, run.n_batches());
                    let tr = EmbeddingTrainer::new(&spec, false);
                    let start = cpu_tensors(&tr);
                    let (tr, cpu_loss) = run.cpu_from(&spec, tr);
                    let (w, sse) = run.device(&spec, &start, false, &accel);
                    let (dev, dev_loss) = (device_tensors(&spec, &w), run.losses(&sse));
                    let (moved, _) = compare(&ctx, &dev, &start);
                    assert!(moved > 1e-3, "{ctx}: the weights did not move");
                    let (rel, abs) = compare(&ctx, &dev, &cpu_tensors(&tr));
                    assert!(
                        rel <= 1e-5,
                        "{ctx}: weights differ by {rel:e} relative ({abs:e})"
                    );
                    let dl = (dev_loss[0] - cpu_loss[0]).abs();
                    assert!(
                        dl <= 1e-9 * cpu_loss[0],
                        "{ctx}: loss {dev_loss:?} vs {cpu_loss:?}"
                    );
                    worst_rel = worst_rel.max(rel);
                    worst_abs = worst_abs.max(abs);
                    checked += 1;
                }
            }
        }
    }
    println!("{checked} settings: max weight difference {worst_abs:e} ({worst_rel:e} relative)");
}

/// A row's catch-up over 200+ missed steps takes the precomputed window, and rows never
/// rated start from zero moments (coupled Adam's decay towards zero): ratings of a few rare
/// rows come first in epoch 0 and last in epoch 1, batch 1, so their gaps exceed 200 steps.
#[test]
fn long_gaps_catch_up_as_on_the_cpu() {
    let mut rng = Rng(0x0109_9a95);
    let n = 230;
    let mut data = Data::random(&mut rng, n, 30, 20);
    // Users 26..30 and items 16..20: rated only by ratings 0..4; user 25 / item 15: never.
    for r in 0..n {
        if r < 4 {
            data.user[r] = 26 + r as u32;
            data.item[r] = 16 + r as u32;
        } else {
            data.user[r] %= 25;
            data.item[r] %= 15;
        }
    }
    let mut rest: Vec<u32> = (4..n as u32).collect();
    rng.shuffle(&mut rest);
    let first: Vec<u32> = (0..4).chain(rest.iter().copied()).collect();
    rng.shuffle(&mut rest);
    let second: Vec<u32> = rest.iter().copied().chain(0..4).collect();
    let orders = [first, second];
    let run = Run {
        data: &data,
        orders: &orders,
        batch: 1,
    };
    let accel = harness(1, 32);
    let mut worst = 0.0f64;
    for case in CASES.iter().filter(|c| {
        matches!(
            c.name,
            "adam (coupled decay)" | "adam (l2)" | "adamw" | "sgd+momentum"
        )
    }) {
        let ctx = format!("{} long gaps", case.name);
        let spec = spec(case, ModelKind::DotBias, 8, Y, &data, 2 * n);
        let tr = EmbeddingTrainer::new(&spec, false);
        let start = cpu_tensors(&tr);
        let (tr, _) = run.cpu_from(&spec, tr);
        let got = device_tensors(&spec, &run.device(&spec, &start, false, &accel).0);
        let want = cpu_tensors(&tr);
        // The rare and never-rated rows moved (the catch-up did something).
        let moved = |t: &BTreeMap<String, Vec<f32>>| t["user_factors"][25 * 8..30 * 8].to_vec();
        assert!(
            moved(&got).iter().zip(moved(&start)).any(|(a, b)| a != &b),
            "{ctx}: rare rows never moved"
        );
        let (rel, abs) = compare(&ctx, &got, &want);
        assert!(
            rel <= 1e-5,
            "{ctx}: weights differ by {rel:e} relative ({abs:e})"
        );
        worst = worst.max(rel);
    }
    println!("long gaps: max relative weight difference {worst:e}");
}

/// The kernels sum every gradient in batch order whatever the launch shape: a one-warp
/// launch and wide ones give the same bits.
#[test]
fn results_do_not_depend_on_the_launch_shape() {
    let (data, orders) = Data::shuffled(0x5a4e, 300, (20, 30), 1);
    let run = Run {
        data: &data,
        orders: &orders,
        batch: 64,
    };
    for case in [&CASES[1], &CASES[2]] {
        let spec = spec(case, ModelKind::DotBias, 40, Y, &data, run.n_batches());
        let start = cpu_tensors(&EmbeddingTrainer::new(&spec, false));
        let shapes = [(1, 32), (3, 64), (2, 256)];
        let results: Vec<_> = shapes
            .iter()
            .map(|&(grid, block)| {
                let h = Arc::new(HostAccel::with_shape(Launch { grid, block }));
                let (w, _) = run.device(&spec, &start, false, &(h.clone() as Arc<dyn Accel>));
                // Every warp-per-item launch ran on this shape (at most the grid asked for).
                for k in [Kernel::EmbForward, Kernel::EmbUpdate, Kernel::EmbFlush] {
                    let ran = h.shapes(k);
                    assert!(
                        !ran.is_empty() && ran.iter().all(|l| l.block == block && l.grid <= grid)
                    );
                }
                assert_eq!(h.shapes(Kernel::EmbForward), [Launch { grid, block }]);
                device_tensors(&spec, &w)
            })
            .collect();
        for (shape, r) in shapes.iter().zip(&results).skip(1) {
            for (name, v) in r {
                let same = v
                    .iter()
                    .zip(&results[0][name])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{}: {name} differs between (1, 32) and {shape:?}",
                    case.name
                );
            }
        }
    }
}

/// The cpu's `dot` (embedding.rs): eight partial sums, then the tail.
fn cpu_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// PyTorch's dense optimizers on a dot_bias model, written out: every row steps at every
/// batch (zero gradient where the batch has none), RowOpt's per-weight formulas.
struct DenseRef {
    k: usize,
    w: [Vec<f32>; 3],
    m: [Vec<f32>; 3],
    v: [Vec<f32>; 3],
    t: i32,
}

impl DenseRef {
    fn step(&mut self, c: &Config, d: &Data, idx: &[u32], lr: f32, y: Option<[f32; 2]>) {
        let (k, dim) = (self.k, self.k + 1);
        self.t += 1;
        let bc1 = 1.0 - (c.beta1 as f64).powi(self.t);
        let bc2 = 1.0 - (c.beta2 as f64).powi(self.t);
        let (ss, ib) = ((lr as f64 / bc1) as f32, (1.0 / bc2.sqrt()) as f32);
        let mut g = [
            vec![0.0f32; self.w[0].len()],
            vec![0.0f32; self.w[1].len()],
            vec![0.0f32],
        ];
        let mut used = [
            vec![false; self.w[0].len() / dim],
            vec![false; self.w[1].len() / dim],
        ];
        let scale = 2.0 / idx.len() as f32;
        for &r in idx {
            let (u, i) = (d.user[r as usize] as usize, d.item[r as usize] as usize);
            let (wu, wi) = (&self.w[0][u * dim..][..dim], &self.w[1][i * dim..][..dim]);
            let raw = self.w[2][0] + cpu_dot(&wu[..k], &wi[..k]) + (wu[k] + wi[k]);
            let (p, dp) = match y {
                Some([lo, hi]) => {
                    let s = 1.0 / (1.0 + (-raw).exp());
                    (lo + (hi - lo) * s, (hi - lo) * s * (1.0 - s))
                }
                None => (raw, 1.0),
            };
            let cf = scale * (p - d.rating[r as usize]) * dp;
            for x in 0..k {
                g[0][u * dim + x] += cf * wi[x];
                g[1][i * dim + x] += cf * wu[x];
            }
            g[0][u * dim + k] += cf;
            g[1][i * dim + k] += cf;
            g[2][0] += cf;
            used[0][u] = true;
            used[1][i] = true;
        }
        for (tab, used) in used.iter().enumerate() {
            for (row, _) in used.iter().enumerate().filter(|(_, u)| **u && c.l2 > 0.0) {
                let r = row * dim..(row + 1) * dim;
                for (g, w) in g[tab][r.clone()].iter_mut().zip(&self.w[tab][r]) {
                    *g += 2.0 * c.l2 * w;
                }
            }
        }
        for (tab, g) in g.iter().enumerate() {
            let (ws, ms, vs) = (&mut self.w[tab], &mut self.m[tab], &mut self.v[tab]);
            for (((w, m), v), &gx) in ws.iter_mut().zip(ms.iter_mut()).zip(vs.iter_mut()).zip(g) {
                match c.optimizer {
                    OptimizerKind::Sgd => {
                        let gx = gx + c.weight_decay * *w;
                        *m = c.momentum * *m + gx;
                        *w -= lr * *m;
                    }
                    _ => {
                        let adamw = c.optimizer == OptimizerKind::AdamW;
                        let x = *w
                            * if adamw {
                                1.0 - lr * c.weight_decay
                            } else {
                                1.0
                            };
                        let gx = gx + if adamw { 0.0 } else { c.weight_decay } * x;
                        *m = c.beta1 * *m + (1.0 - c.beta1) * gx;
                        *v = c.beta2 * *v + (1.0 - c.beta2) * gx * gx;
                        *w = x - ss * *m / (v.sqrt() * ib + c.eps);
                    }
                }
            }
        }
    }
}

/// Dense mode steps every row at every batch with a zero gradient where the batch has none
/// (PyTorch's dense SGD / Adam / AdamW), against that rule written out in Rust; and it is
/// not the lazy path (the cpu trainer's forward pass reads a skipped row before its
/// catch-up, so the two differ at first order in a row's drift).
#[test]
fn dense_mode_matches_dense_optimizers() {
    let (data, orders) = Data::shuffled(0xde05e, 600, (50, 40), 1);
    let run = Run {
        data: &data,
        orders: &orders,
        batch: 64,
    };
    let (k, accel) = (8, harness(2, 64));
    let mut worst = 0.0f64;
    for case in CASES.iter().filter(|c| {
        matches!(
            c.name,
            "sgd+momentum" | "adam (coupled decay)" | "adam (l2)" | "adamw"
        )
    }) {
        let spec = spec(case, ModelKind::DotBias, k, Y, &data, run.n_batches());
        let tr = EmbeddingTrainer::new(&spec, false);
        let start = cpu_tensors(&tr);
        let (dense, _) = run.device(&spec, &start, true, &accel);
        let (_, start_dev) = device_weights(&spec, &start);
        let zeros = |v: &Vec<f32>| vec![0.0f32; v.len()];
        let (p, q) = (start_dev.p.clone(), start_dev.q.clone());
        let mut r = DenseRef {
            k,
            m: [zeros(&p), zeros(&q), vec![0.0]],
            v: [zeros(&p), zeros(&q), vec![0.0]],
            w: [p, q, vec![start_dev.global]],
            t: 0,
        };
        let sched = Schedule::new(&spec.cfg, run.n_batches());
        for b in 0..run.n_batches() {
            let idx = &orders[0][b * 64..((b + 1) * 64).min(600)];
            r.step(&spec.cfg, &data, idx, sched.lr(b), Y);
        }
        let (got, want) = ([&dense.p, &dense.q], [&r.w[0], &r.w[1]]);
        let mut rel = (dense.global - r.w[2][0]).abs() as f64;
        for (a, b) in got.iter().zip(want) {
            for (x, y) in a.iter().zip(b.iter()) {
                rel = rel.max(((x - y).abs() / y.abs().max(1e-3)) as f64);
            }
        }
        assert!(rel <= 1e-5, "dense {}: {rel:e} relative", case.name);
        worst = worst.max(rel);
        let (tr, _) = run.cpu_from(&spec, tr);
        let (off, _) = compare(case.name, &device_tensors(&spec, &dense), &cpu_tensors(&tr));
        println!(
            "dense {}: {rel:e} from the dense rule, {off:e} from lazy",
            case.name
        );
        assert!(
            off > 1e-4,
            "dense {}: no different from lazy ({off:e})",
            case.name
        );
    }
    println!("dense mode: max relative difference {worst:e} from the written-out dense rule");
}

/// recpipe-cuda's host code (minibatch.rs: the epoch plan, the launches on an `Accel`, the
/// flush) on `accel` against the cpu trainer over two epochs: the largest relative weight
/// difference (asserted <= `tol`) and the largest absolute one.
fn minibatch_vs_cpu(accel: Arc<dyn Accel>, tol: f64) -> (f64, f64) {
    let (data, orders) = Data::shuffled(0x3b_a7c4, 400, (30, 25), 2);
    let run = Run {
        data: &data,
        orders: &orders,
        batch: 64,
    };
    let (mut worst, mut worst_abs) = (0.0f64, 0.0f64);
    for case in CASES
        .iter()
        .filter(|c| matches!(c.name, "sgd+momentum" | "adam (coupled decay)" | "adamw"))
    {
        for (kind, y_range) in [(ModelKind::Dot, None), (ModelKind::DotBias, Y)] {
            let ctx = format!("minibatch.rs {} {kind:?}", case.name);
            let spec = spec(case, kind, 8, y_range, &data, 2 * run.n_batches());
            let tr = EmbeddingTrainer::new(&spec, false);
            let start = cpu_tensors(&tr);
            let (tr, cpu_loss) = run.cpu_from(&spec, tr);
            let (w, sse) = run.device(&spec, &start, false, &accel);
            for (e, (per_batch, loss)) in sse.iter().zip(run.losses(&sse)).enumerate() {
                assert!(
                    per_batch.iter().all(|&s| s > 0.0),
                    "{ctx}: epoch {e} {per_batch:?}"
                );
                assert!(
                    (loss - cpu_loss[e]).abs() <= tol.max(1e-9) * cpu_loss[e],
                    "{ctx}: epoch {e} loss {loss} vs {}",
                    cpu_loss[e]
                );
            }
            let (rel, abs) = compare(&ctx, &device_tensors(&spec, &w), &cpu_tensors(&tr));
            assert!(rel <= tol, "{ctx}: {rel:e} relative ({abs:e})");
            worst = worst.max(rel);
            worst_abs = worst_abs.max(abs);
        }
    }
    assert_eq!(Arc::strong_count(&accel), 1, "a buffer outlived its model");
    (worst, worst_abs)
}

/// On the harness device the host code gives the cpu trainer's weights bit for bit.
#[test]
fn minibatch_host_code_matches_the_cpu_trainer() {
    let (rel, _) = minibatch_vs_cpu(Arc::new(HostAccel::new()), 0.0);
    assert_eq!(rel, 0.0);
}

/// On a real GPU (when there is one) within fp32 tolerance: NVRTC contracts a·b + c into
/// fused multiply-adds and the device's expf / log differ from glibc's by an ulp, so the
/// weights are not bit-identical there. Without a GPU: "skipped: no GPU (why)"; with
/// `RECPIPE_REQUIRE_GPU=1` that fails instead.
#[test]
fn gpu_minibatch_matches_the_cpu_trainer() {
    let gpu = match recpipe_cuda::gpu::Gpu::open(0) {
        Ok(g) => g,
        Err(e) => {
            if std::env::var_os("RECPIPE_REQUIRE_GPU").is_some_and(|v| v == "1") {
                panic!("RECPIPE_REQUIRE_GPU=1 but no GPU: {e}");
            }
            println!("skipped: no GPU ({e})");
            return;
        }
    };
    let name = gpu.describe();
    let (rel, abs) = minibatch_vs_cpu(gpu, 1e-3);
    println!("{name}: max weight difference {abs:e} ({rel:e} relative) from the cpu trainer");
}
