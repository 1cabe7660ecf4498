//! `dot` and `dot_bias` on cpu: one fused loop per batch gathers the two rows of each
//! rating, predicts, and accumulates the gradient of every row the batch touches; then the
//! optimizer steps those rows only.
//!
//! Threads: a batch of 64 ratings is ~50 µs of work, too little to split by rating; for big
//! batches (see `PAR_STEP_MIN`) the user-table and item-table updates (independent once the
//! gradients are known) run on two threads. Validation and the end-of-epoch catch-up use all
//! cores. Gradients of a row are summed in batch order, so results are identical for any
//! thread count (no Hogwild races).

use super::rowopt::{RowOpt, Table, prefetch};
use crate::backend::{EpochResult, EpochTask, ModelSpec, RatingsView, Report, Trainer};
use crate::config::ModelKind;
use crate::init;
use crate::rng::Rng;
use recpipe_core::math::{squash_slope, unsquash};
use recpipe_core::model::{Tensor, tensor};
use std::collections::BTreeMap;

const FREE: u32 = u32::MAX;
/// Batches smaller than this many gradient values (ratings × row width) step the two tables
/// on one thread: handing half a step to another core cost more than it saved on the 2-core
/// machine of BENCHMARKS.md at every batch size up to 1024 × 51 and broke even at 4096 × 51.
const PAR_STEP_MIN: usize = 1 << 18;

/// Gradient accumulators of the rows one table's side of a batch touches.
#[derive(Debug, Clone)]
pub(crate) struct Touched {
    /// Row → slot in `grad`, FREE when the batch has not touched it.
    slot: Vec<u32>,
    rows: Vec<u32>,
    grad: Vec<f32>,
}

impl Touched {
    pub(crate) fn new(n: usize) -> Self {
        Touched {
            slot: vec![FREE; n],
            rows: Vec::new(),
            grad: Vec::new(),
        }
    }

    pub(crate) fn reserve(&mut self, batch: usize, dim: usize) {
        if self.grad.len() < batch * dim {
            self.grad.resize(batch * dim, 0.0);
            self.rows.reserve(batch);
        }
    }

    /// The gradient slice of `row`, zeroed on first touch in this batch.
    #[inline]
    pub(crate) fn grad(&mut self, row: usize, dim: usize) -> &mut [f32] {
        let mut s = self.slot[row];
        if s == FREE {
            s = self.rows.len() as u32;
            self.slot[row] = s;
            self.rows.push(row as u32);
            self.grad[s as usize * dim..(s as usize + 1) * dim].fill(0.0);
        }
        &mut self.grad[s as usize * dim..(s as usize + 1) * dim]
    }

    /// Hands every touched row and its gradient to `step`, then clears the batch's
    /// bookkeeping.
    #[inline(always)]
    pub(crate) fn drain(&mut self, dim: usize, mut step: impl FnMut(usize, &mut [f32])) {
        for (s, &r) in self.rows.iter().enumerate() {
            step(r as usize, &mut self.grad[s * dim..(s + 1) * dim]);
            self.slot[r as usize] = FREE;
        }
        self.rows.clear();
    }

    /// Steps every touched row and clears the batch's bookkeeping. (A plain loop rather
    /// than `drain` with a closure, so the whole row update inlines into the AVX2 build.)
    #[inline(always)]
    pub(crate) fn apply(&mut self, table: &mut Table, opt: &RowOpt, l2: f32) {
        let dim = table.dim;
        for (s, &r) in self.rows.iter().enumerate() {
            let g = &mut self.grad[s * dim..(s + 1) * dim];
            let (row, last) = table.row_mut(r as usize);
            if l2 > 0.0 {
                for (g, w) in g.iter_mut().zip(&row[..dim]) {
                    *g += 2.0 * l2 * w;
                }
            }
            opt.update(row, last, g);
            self.slot[r as usize] = FREE;
        }
        self.rows.clear();
    }
}

/// Whether this CPU runs the AVX2 builds of the hot loops.
pub(crate) fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent partial sums let the compiler vectorise without reassociating.
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

#[inline]
pub(crate) fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

pub struct EmbeddingTrainer {
    k: usize,
    bias: bool,
    y_range: Option<[f32; 2]>,
    l2: f32,
    users: Table,
    items: Table,
    global: Option<Table>,
    opt: RowOpt,
    parallel: bool,
    /// Step with the AVX2 build of the batch code (runtime detection).
    avx2: bool,
    touched_u: Touched,
    touched_i: Touched,
}

impl EmbeddingTrainer {
    pub fn new(spec: &ModelSpec, parallel: bool) -> Self {
        let cfg = &spec.cfg;
        let bias = spec.kind == ModelKind::DotBias;
        let k = spec.k;
        let dim = k + usize::from(bias);
        let opt = RowOpt::new(cfg, spec.expected_steps);
        let mut rng = Rng::stream(cfg.seed, 1);
        let mut table = |n: usize| {
            let (w, b) = init::table(cfg, n, k, bias, &mut rng);
            let mut t = Table::new(n, dim, &opt);
            t.set_weights(|r, row| {
                row[..k].copy_from_slice(&w[r * k..(r + 1) * k]);
                if bias {
                    row[k] = b[r];
                }
            });
            t
        };
        let users = table(spec.n_users);
        let items = table(spec.n_items);
        let global = bias.then(|| {
            let mut g = Table::new(1, 1, &opt);
            // Start at the mean rating.
            let start = unsquash(spec.global_mean, spec.y_range);
            g.set_weights(|_, w| w[0] = start);
            g
        });
        EmbeddingTrainer {
            k,
            bias,
            y_range: spec.y_range,
            l2: cfg.l2,
            touched_u: Touched::new(users.n),
            touched_i: Touched::new(items.n),
            users,
            items,
            global,
            opt,
            parallel,
            avx2: avx2_available(),
        }
    }

    #[inline]
    fn raw(&self, u: usize, i: usize, g: f32) -> f32 {
        let (wu, wi) = (self.users.w(u), self.items.w(i));
        let k = self.k;
        let mut raw = g + dot(&wu[..k], &wi[..k]);
        if self.bias {
            raw += wu[k] + wi[k];
        }
        raw
    }

    fn global_bias(&self) -> f32 {
        self.global.as_ref().map_or(0.0, |g| g.w(0)[0])
    }

    /// One optimizer step on the ratings at `idx`; returns their summed squared error.
    fn batch(&mut self, data: RatingsView<'_>, idx: &[u32]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only when the running CPU reports AVX2.
            return unsafe { self.batch_avx2(data, idx) };
        }
        self.batch_body(data, idx)
    }

    /// The same step compiled for AVX2: the row updates are elementwise over `k`, so twice
    /// the vector width is up to twice the speed. Rust never fuses or reorders float
    /// operations on its own, so both builds compute bit-identical results.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn batch_avx2(&mut self, data: RatingsView<'_>, idx: &[u32]) -> f64 {
        self.batch_body(data, idx)
    }

    #[inline(always)]
    fn batch_body(&mut self, data: RatingsView<'_>, idx: &[u32]) -> f64 {
        let (k, dim) = (self.k, self.users.dim);
        // PyTorch's MSELoss averages over the batch, so each rating's gradient carries 2/B.
        let scale = 2.0 / idx.len() as f32;
        let g0 = self.global_bias();
        let mut sse = 0.0f64;
        let mut gsum = 0.0f32;
        for &r in idx {
            let r = r as usize;
            let (u, i, y) = (data.user[r] as usize, data.item[r] as usize, data.rating[r]);
            let (p, dp) = squash_slope(self.raw(u, i, g0), self.y_range);
            let e = p - y;
            sse += (e * e) as f64;
            let c = scale * e * dp;
            gsum += c;
            let (wu, wi) = (self.users.w(u), self.items.w(i));
            let gu = self.touched_u.grad(u, dim);
            axpy(&mut gu[..k], c, &wi[..k]);
            if self.bias {
                gu[k] += c;
            }
            let gi = self.touched_i.grad(i, dim);
            axpy(&mut gi[..k], c, &wu[..k]);
            if self.bias {
                gi[k] += c;
            }
        }
        let (opt, l2) = (&self.opt, self.l2);
        let (users, items) = (&mut self.users, &mut self.items);
        let (tu, ti) = (&mut self.touched_u, &mut self.touched_i);
        if self.parallel && idx.len() * dim >= PAR_STEP_MIN {
            rayon::join(|| tu.apply(users, opt, l2), || ti.apply(items, opt, l2));
        } else {
            tu.apply(users, opt, l2);
            ti.apply(items, opt, l2);
        }
        if let Some(g) = &mut self.global {
            let (row, last) = g.row_mut(0);
            opt.update(row, last, &[gsum]);
        }
        sse
    }
}

impl Trainer for EmbeddingTrainer {
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        let (data, order, batch_size) = (task.data, task.order, task.batch_size);
        let dim = self.users.dim;
        self.touched_u.reserve(batch_size, dim);
        self.touched_i.reserve(batch_size, dim);
        let n_batches = order.len().div_ceil(batch_size);
        let batch = |b: usize| {
            &order[(b * batch_size).min(order.len())..((b + 1) * batch_size).min(order.len())]
        };
        let mean = task.batches(n_batches, 64).run(report, |b, lr| {
            let idx = batch(b);
            // Random rows of big tables miss every cache level; start loading the ratings
            // two batches ahead and their rows one batch ahead.
            for &r in batch(b + 2) {
                let r = r as usize;
                prefetch(&data.user[r]);
                prefetch(&data.item[r]);
                prefetch(&data.rating[r]);
            }
            for &r in batch(b + 1) {
                self.users.prefetch(data.user[r as usize] as usize);
                self.items.prefetch(data.item[r as usize] as usize);
            }
            self.opt.begin_step(lr);
            (self.batch(data, idx), idx.len())
        })?;
        let parallel = self.parallel;
        self.users.flush(&self.opt, parallel);
        self.items.flush(&self.opt, parallel);
        Ok(mean)
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        let g = self.global_bias();
        super::predict_pairs(self.parallel, self.y_range, users, items, out, |u, i| {
            self.raw(u, i, g)
        });
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        let k = self.k;
        let factors = |t: &Table| {
            let w = t.weights();
            let dim = t.dim;
            let data = w
                .chunks_exact(dim)
                .flat_map(|r| r[..k].iter().copied())
                .collect();
            Tensor::new(vec![t.n, k], data)
        };
        let mut m = BTreeMap::new();
        m.insert(tensor::USER_FACTORS.to_string(), factors(&self.users));
        m.insert(tensor::ITEM_FACTORS.to_string(), factors(&self.items));
        if self.bias {
            m.insert(
                tensor::USER_BIAS.to_string(),
                Tensor::new(vec![self.users.n], self.users.column(k)),
            );
            m.insert(
                tensor::ITEM_BIAS.to_string(),
                Tensor::new(vec![self.items.n], self.items.column(k)),
            );
            m.insert(
                tensor::GLOBAL_BIAS.to_string(),
                Tensor::new(vec![1], vec![self.global_bias()]),
            );
        }
        m
    }

    fn finite(&self) -> bool {
        self.users.all_finite()
            && self.items.all_finite()
            && self.global.as_ref().is_none_or(Table::all_finite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, OptimizerKind};
    use crate::schedule::Schedule;
    use recpipe_core::model::{Checkpoint, Model, ModelMeta};

    fn spec(kind: ModelKind, y_range: Option<[f32; 2]>) -> ModelSpec {
        ModelSpec::toy(Config::plain_sgd(kind), 5, y_range)
    }

    fn loss(spec: &ModelSpec, t: &BTreeMap<String, Tensor>, d: RatingsView<'_>) -> f64 {
        let meta = ModelMeta {
            y_range: spec.y_range,
            global_mean: spec.global_mean,
            device: "cpu".into(),
            ..ModelMeta::new(spec.kind, spec.n_users as u32, spec.n_items as u32, spec.k)
        };
        let ckpt = Checkpoint {
            meta,
            tensors: t.clone(),
        };
        let m = Model::from_checkpoint(ckpt, std::path::Path::new(".")).unwrap();
        let p = m.predict(d.user, d.item);
        p.iter()
            .zip(d.rating)
            .map(|(p, y)| ((p - y) as f64).powi(2))
            .sum::<f64>()
            / p.len() as f64
    }

    /// With plain SGD at lr 1 one step moves every weight by minus its gradient, which must
    /// match central finite differences of the loss computed by core's inference code.
    #[test]
    fn gradients_match_finite_differences() {
        let user = [0u32, 1, 1, 3, 2, 0];
        let item = [0u32, 2, 4, 4, 1, 2];
        let rating = [4.0f32, 2.5, 5.0, 1.0, 3.5, 3.0];
        let d = RatingsView {
            user: &user,
            item: &item,
            rating: &rating,
        };
        for (kind, yr) in [
            (ModelKind::DotBias, Some([0.0, 5.5])),
            (ModelKind::DotBias, None),
            (ModelKind::Dot, Some([0.5, 5.0])),
        ] {
            let spec = spec(kind, yr);
            let mut tr = EmbeddingTrainer::new(&spec, false);
            let before = tr.tensors();
            let order: Vec<u32> = (0..user.len() as u32).collect();
            let sched = Schedule::new(&spec.cfg, 1);
            let task = EpochTask::first(d, &order, user.len(), &sched);
            tr.train_epoch(task, &mut |_, _| {}).unwrap();
            let after = tr.tensors();
            let mut checked = 0;
            for (name, t0) in &before {
                for j in 0..t0.data.len() {
                    let analytic = (t0.data[j] - after[name].data[j]) as f64;
                    let h = 1e-2f32;
                    let mut plus = before.clone();
                    plus.get_mut(name).unwrap().data[j] += h;
                    let mut minus = before.clone();
                    minus.get_mut(name).unwrap().data[j] -= h;
                    let fd = (loss(&spec, &plus, d) - loss(&spec, &minus, d)) / (2.0 * h as f64);
                    assert!(
                        (fd - analytic).abs() <= 2e-3 + 1e-2 * fd.abs(),
                        "{kind:?} {yr:?} {name}[{j}]: analytic {analytic} vs finite difference {fd}"
                    );
                    checked += usize::from(analytic != 0.0);
                }
            }
            assert!(checked > 20, "{kind:?}: only {checked} nonzero gradients");
        }
    }

    /// The AVX2 build of the batch step must give bit-identical weights to the baseline
    /// build (runtime dispatch must never change results), here over three epochs of the
    /// notebooks' Adam with coupled weight decay and a sigmoid on random data.
    #[test]
    fn avx2_build_matches_the_baseline_bit_for_bit() {
        if !avx2_available() {
            eprintln!("this CPU has no AVX2: only the baseline build exists here");
            return;
        }
        let mut rng = Rng::stream(7, 0);
        let n: usize = 3000;
        let user: Vec<u32> = (0..n).map(|_| rng.below(60) as u32).collect();
        let item: Vec<u32> = (0..n).map(|_| rng.below(90) as u32).collect();
        let rating: Vec<f32> = (0..n).map(|_| 0.5 + 0.5 * rng.below(10) as f32).collect();
        let d = RatingsView {
            user: &user,
            item: &item,
            rating: &rating,
        };
        let mut spec = spec(ModelKind::DotBias, Some([0.0, 5.5]));
        spec.cfg.optimizer = OptimizerKind::Adam;
        spec.cfg.lr = 1e-2;
        spec.cfg.weight_decay = 1e-3;
        spec.cfg.init_scale = Some(0.01);
        (spec.n_users, spec.n_items, spec.k) = (60, 90, 13);
        let run = |avx2: bool| {
            let mut tr = EmbeddingTrainer::new(&spec, false);
            tr.avx2 = avx2;
            let order: Vec<u32> = (0..n as u32).collect();
            let sched = Schedule::new(&spec.cfg, n.div_ceil(64));
            for e in 0..3 {
                let task = EpochTask {
                    data: d,
                    order: &order,
                    batch_size: 64,
                    schedule: &sched,
                    step0: e * n.div_ceil(64),
                };
                tr.train_epoch(task, &mut |_, _| {}).unwrap();
            }
            tr.tensors()
        };
        let (fast, base) = (run(true), run(false));
        assert_eq!(
            fast.keys().collect::<Vec<_>>(),
            base.keys().collect::<Vec<_>>()
        );
        for (name, t) in &fast {
            let (a, b) = (&t.data, &base[name].data);
            assert!(a.iter().any(|&x| x != 0.0), "{name} never trained");
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{name}: the AVX2 and baseline builds differ");
        }
    }
}
