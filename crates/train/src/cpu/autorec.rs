//! I-AutoRec (Sedhain, Menon, Sanner & Xie, WWW 2015): each item's column of training
//! ratings r_i (one entry per user, observed ones only) is encoded by one sigmoid layer of
//! `k` units, h_i = σ(μ + Σ_u r_ui·V_u), and decoded linearly back to every user,
//! r̂_ui = W_u·h_i + b_u (squashed into `y_range` when one is set). The loss counts the
//! observed ratings only, summed per batch of items as in the paper; `weight_decay` is its
//! λ on V and W (PyTorch Adam's coupled decay ≡ (λ/2)(‖V‖² + ‖W‖²)).
//!
//! For fixed training data the decoder is a `dot_bias` model — user factors W, item factors
//! h_i, user bias b, no item bias — so the checkpoint is saved in that form and evaluate,
//! export and predict use it unchanged; item embeddings are the items' codes.
//!
//! Rows of V, W and b are updated only for the users a batch touches; [`RowOpt`] applies
//! the steps a row missed in closed form, so this equals dense Adam (see rowopt.rs).

use crate::backend::{EpochResult, EpochTask, ModelSpec, RatingsView, Report, Trainer};
use crate::config::Config;
use crate::cpu::embedding::{Touched, dot};
use crate::cpu::predict_pairs;
use crate::cpu::rowopt::{RowOpt, Table};
use crate::init;
use crate::rng::Rng;
use rayon::prelude::*;
use recpipe_core::math::{sigmoid, squash, unsquash};
use recpipe_core::model::{Tensor, tensor};
use std::collections::BTreeMap;

/// Training ratings grouped by item (file order within an item).
#[derive(Debug, Clone)]
struct ByItem {
    start: Vec<usize>,
    user: Vec<u32>,
    rating: Vec<f32>,
}

impl ByItem {
    fn new(data: RatingsView<'_>, n_items: usize) -> Self {
        let mut start = vec![0usize; n_items + 1];
        for &i in data.item {
            start[i as usize + 1] += 1;
        }
        for i in 0..n_items {
            start[i + 1] += start[i];
        }
        let mut cursor = start.clone();
        let (mut user, mut rating) = (vec![0u32; data.len()], vec![0f32; data.len()]);
        for r in 0..data.len() {
            let c = &mut cursor[data.item[r] as usize];
            user[*c] = data.user[r];
            rating[*c] = data.rating[r];
            *c += 1;
        }
        ByItem {
            start,
            user,
            rating,
        }
    }

    fn item(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.start[i], self.start[i + 1]);
        (&self.user[a..b], &self.rating[a..b])
    }

    /// Items with at least one training rating: the ones an epoch trains on.
    fn rated_items(&self) -> Vec<u32> {
        (0..self.start.len() - 1)
            .filter(|&i| self.start[i + 1] > self.start[i])
            .map(|i| i as u32)
            .collect()
    }
}

/// Items with at least one rating in `data`: AutoRec's training examples per epoch.
pub fn rated_items(data: RatingsView<'_>, n_items: usize) -> usize {
    let mut seen = vec![false; n_items];
    data.item.iter().for_each(|&i| seen[i as usize] = true);
    seen.iter().filter(|&&s| s).count()
}

/// One item's forward and backward pass.
struct ItemPass {
    h: Vec<f32>,
    /// dLoss/dz of the hidden pre-activations.
    dz: Vec<f32>,
    /// dLoss/draw for each observed user, in the item's order.
    d: Vec<f32>,
    sse: f64,
}

#[derive(Clone)]
pub struct AutoRecTrainer {
    k: usize,
    n_items: usize,
    y_range: Option<[f32; 2]>,
    /// Per user `[V_u | W_u]`: encoder column and decoder row, decayed by `weight_decay`.
    users: Table,
    /// Per user decoder bias b_u, not decayed.
    bias: Table,
    /// Hidden bias μ (one row), not decayed.
    mu: Table,
    opt: RowOpt,
    opt_bias: RowOpt,
    data: Option<ByItem>,
    rng: Rng,
    parallel: bool,
    /// Gradient rows `[dV_u | dW_u | db_u]` of the users a batch touches.
    touched: Touched,
}

impl AutoRecTrainer {
    pub fn new(spec: &ModelSpec, parallel: bool) -> Self {
        let cfg = &spec.cfg;
        let k = spec.k;
        let opt = RowOpt::new(cfg, spec.expected_steps);
        let opt_bias = RowOpt::new(
            &Config {
                weight_decay: 0.0,
                ..cfg.clone()
            },
            spec.expected_steps,
        );
        let mut rng = Rng::stream(cfg.seed, 1);
        let (w, _) = init::table(cfg, spec.n_users, 2 * k, false, &mut rng);
        let users = Table::from_rows(spec.n_users, 2 * k, &opt, &w);
        let start = unsquash(spec.global_mean, spec.y_range);
        let mut bias = Table::new(spec.n_users, 1, &opt_bias);
        bias.set_weights(|_, b| b[0] = start);
        AutoRecTrainer {
            k,
            n_items: spec.n_items,
            y_range: spec.y_range,
            users,
            bias,
            mu: Table::new(1, k, &opt_bias),
            opt,
            opt_bias,
            data: None,
            rng: Rng::stream(cfg.seed, 2),
            parallel,
            touched: Touched::new(spec.n_users),
        }
    }

    /// h = σ(μ + Σ r_u·V_u) for one item's observed users.
    fn encode(&self, users: &[u32], ratings: &[f32], h: &mut [f32]) {
        h.copy_from_slice(self.mu.w(0));
        for (&u, &r) in users.iter().zip(ratings) {
            let v = &self.users.w(u as usize)[..self.k];
            h.iter_mut().zip(v).for_each(|(z, &v)| *z += r * v);
        }
        h.iter_mut().for_each(|z| *z = sigmoid(*z));
    }

    fn pass(&self, users: &[u32], ratings: &[f32]) -> ItemPass {
        let k = self.k;
        let mut h = vec![0.0; k];
        self.encode(users, ratings, &mut h);
        let mut dh = vec![0.0f32; k];
        let mut d = Vec::with_capacity(users.len());
        let mut sse = 0.0f64;
        for (&u, &r) in users.iter().zip(ratings) {
            let wu = &self.users.w(u as usize)[k..];
            let raw = dot(wu, &h) + self.bias.w(u as usize)[0];
            let out = squash(raw, self.y_range);
            // d out / d raw from the output, (out − lo)(hi − out)/(hi − lo): the same value as
            // math::squash_slope's (hi − lo)·σ·(1 − σ), rounded differently; kept so trained
            // autorec models stay bit-identical to earlier releases.
            let slope = match self.y_range {
                Some([lo, hi]) => (out - lo) * (hi - out) / (hi - lo),
                None => 1.0,
            };
            let err = out - r;
            sse += (err * err) as f64;
            let du = 2.0 * err * slope;
            d.push(du);
            dh.iter_mut().zip(wu).for_each(|(g, &w)| *g += du * w);
        }
        let dz = dh
            .iter()
            .zip(&h)
            .map(|(&g, &h)| g * h * (1.0 - h))
            .collect();
        ItemPass { h, dz, d, sse }
    }

    /// Every item's code h_i, (n_items, k) row-major; unrated items get σ(μ).
    fn codes(&self) -> Vec<f32> {
        let k = self.k;
        let mut out = vec![0.0; self.n_items * k];
        let one = |(i, h): (usize, &mut [f32])| match &self.data {
            Some(d) => {
                let (u, r) = d.item(i);
                self.encode(u, r, h)
            }
            _ => self.encode(&[], &[], h),
        };
        if self.parallel {
            out.par_chunks_mut(k).enumerate().for_each(one);
        } else {
            out.chunks_mut(k).enumerate().for_each(one);
        }
        out
    }

    /// One Adam step on a batch of items; returns the summed squared error and its count.
    fn step(&mut self, data: &ByItem, items: &[u32]) -> (f64, usize) {
        let k = self.k;
        let pass = |&i: &u32| {
            let (u, r) = data.item(i as usize);
            self.pass(u, r)
        };
        let passes: Vec<ItemPass> = if self.parallel {
            items.par_iter().map(pass).collect()
        } else {
            items.iter().map(pass).collect()
        };
        let stride = 2 * k + 1;
        let mut g_mu = vec![0.0f32; k];
        let (mut sse, mut n) = (0.0, 0);
        for (&i, p) in items.iter().zip(&passes) {
            let (users, ratings) = data.item(i as usize);
            sse += p.sse;
            n += users.len();
            g_mu.iter_mut().zip(&p.dz).for_each(|(g, &d)| *g += d);
            self.touched.reserve(n.min(self.users.n), stride);
            for ((&u, &r), &du) in users.iter().zip(ratings).zip(&p.d) {
                let g = self.touched.grad(u as usize, stride);
                let (gv, rest) = g.split_at_mut(k);
                let (gw, gb) = rest.split_at_mut(k);
                gv.iter_mut().zip(&p.dz).for_each(|(g, &d)| *g += r * d);
                gw.iter_mut().zip(&p.h).for_each(|(g, &h)| *g += du * h);
                gb[0] += du;
            }
        }
        let (users, bias, opt, opt_bias) =
            (&mut self.users, &mut self.bias, &self.opt, &self.opt_bias);
        self.touched.drain(stride, |u, g| {
            let (row, last) = users.row_mut(u);
            opt.update(row, last, &g[..2 * k]);
            let (row, last) = bias.row_mut(u);
            opt_bias.update(row, last, &g[2 * k..]);
        });
        let (row, last) = self.mu.row_mut(0);
        self.opt_bias.update(row, last, &g_mu);
        (sse, n)
    }
}

impl Trainer for AutoRecTrainer {
    /// An epoch visits every rated item once, in a fresh order, `batch_size` items a step;
    /// `order` (over ratings) does not apply.
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        let by_item = match self.data.take() {
            Some(d) => d,
            None => ByItem::new(task.data, self.n_items),
        };
        let mut items = by_item.rated_items();
        self.rng.shuffle(&mut items);
        let batches: Vec<&[u32]> = items.chunks(task.batch_size).collect();
        let result = task.batches(batches.len(), 16).run(report, |b, lr| {
            self.opt.begin_step(lr);
            self.opt_bias.begin_step(lr);
            self.step(&by_item, batches[b])
        });
        self.data = Some(by_item);
        let mean = result?;
        self.users.flush(&self.opt, self.parallel);
        self.bias.flush(&self.opt_bias, self.parallel);
        self.mu.flush(&self.opt_bias, false);
        Ok(mean)
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        let codes = self.codes();
        let k = self.k;
        predict_pairs(self.parallel, self.y_range, users, items, out, |u, i| {
            dot(&self.users.w(u)[k..], &codes[i * k..(i + 1) * k]) + self.bias.w(u)[0]
        });
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        let k = self.k;
        let n_users = self.users.n;
        let mut w = Vec::with_capacity(n_users * k);
        for u in 0..n_users {
            w.extend_from_slice(&self.users.w(u)[k..]);
        }
        let mut m = BTreeMap::new();
        m.insert(
            tensor::USER_FACTORS.into(),
            Tensor::new(vec![n_users, k], w),
        );
        m.insert(
            tensor::ITEM_FACTORS.into(),
            Tensor::new(vec![self.n_items, k], self.codes()),
        );
        m.insert(
            tensor::USER_BIAS.into(),
            Tensor::new(vec![n_users], self.bias.column(0)),
        );
        m.insert(
            tensor::ITEM_BIAS.into(),
            Tensor::new(vec![self.n_items], vec![0.0; self.n_items]),
        );
        m.insert(tensor::GLOBAL_BIAS.into(), Tensor::new(vec![1], vec![0.0]));
        m
    }

    fn finite(&self) -> bool {
        self.users.all_finite() && self.bias.all_finite() && self.mu.all_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelKind;
    use crate::schedule::Schedule;

    fn spec(y_range: Option<[f32; 2]>) -> ModelSpec {
        ModelSpec::toy(Config::plain_sgd(ModelKind::Autorec), 6, y_range)
    }

    /// (table, row, column) of every weight: 0 = [V|W], 1 = b, 2 = μ.
    fn params(t: &AutoRecTrainer) -> Vec<(u8, usize, usize)> {
        let mut v = Vec::new();
        for (id, tab) in [(0u8, &t.users), (1, &t.bias), (2, &t.mu)] {
            for r in 0..tab.n {
                for c in 0..tab.dim {
                    v.push((id, r, c));
                }
            }
        }
        v
    }

    fn table(t: &mut AutoRecTrainer, id: u8) -> &mut Table {
        match id {
            0 => &mut t.users,
            1 => &mut t.bias,
            _ => &mut t.mu,
        }
    }

    fn get(t: &mut AutoRecTrainer, (id, r, c): (u8, usize, usize)) -> f32 {
        table(t, id).w(r)[c]
    }

    fn nudge(t: &mut AutoRecTrainer, (id, r, c): (u8, usize, usize), h: f32) {
        table(t, id).set_weights(|row, w| {
            if row == r {
                w[c] += h;
            }
        });
    }

    /// Nine ratings of 4 users on 6 items, every user and item rated.
    fn toy() -> RatingsView<'static> {
        RatingsView {
            user: &[0, 1, 1, 3, 2, 0, 2, 3, 1],
            item: &[0, 2, 4, 4, 1, 2, 3, 0, 5],
            rating: &[4.0, 2.5, 5.0, 1.0, 4.0, 2.5, 5.0, 3.5, 2.0],
        }
    }

    fn sse(t: &AutoRecTrainer, d: &ByItem) -> f64 {
        (0..6)
            .map(|i| {
                let (u, r) = d.item(i);
                t.pass(u, r).sse
            })
            .sum()
    }

    /// With plain SGD at lr 1 and every item in one batch, a step moves each weight by minus
    /// the gradient of the batch's summed squared error; compare with central differences.
    #[test]
    fn gradients_match_finite_differences() {
        let d = toy();
        let by_item = ByItem::new(d, 6);
        for y_range in [None, Some([0.0, 5.5])] {
            let spec = spec(y_range);
            let before = AutoRecTrainer::new(&spec, false);
            let mut after = before.clone();
            let sched = Schedule::new(&spec.cfg, 1);
            let mean = after
                .train_epoch(EpochTask::first(d, &[], 6, &sched), &mut |_, _| {})
                .unwrap();
            let total = sse(&before, &by_item);
            assert!((mean - total / d.len() as f64).abs() < 1e-9);
            let mut nonzero = 0;
            for q in params(&before) {
                let analytic = (get(&mut before.clone(), q) - get(&mut after, q)) as f64;
                let h = 1e-3f32;
                let (mut plus, mut minus) = (before.clone(), before.clone());
                nudge(&mut plus, q, h);
                nudge(&mut minus, q, -h);
                let fd = (sse(&plus, &by_item) - sse(&minus, &by_item)) / (2.0 * h as f64);
                assert!(
                    (fd - analytic).abs() <= 2e-3 + 2e-2 * fd.abs(),
                    "{y_range:?} param {q:?}: analytic {analytic} vs finite difference {fd}"
                );
                nonzero += usize::from(analytic.abs() > 1e-6);
            }
            // 4 users × (3 encoder + 3 decoder + 1 bias) + 3 hidden biases, all reached.
            assert_eq!(nonzero, 31, "{y_range:?}");
        }
    }

    /// The saved factorization scores exactly what the trainer predicts.
    #[test]
    fn folded_tensors_predict_like_the_trainer() {
        let d = toy();
        let spec = spec(Some([0.0, 5.5]));
        let mut t = AutoRecTrainer::new(&spec, false);
        let sched = Schedule::new(&spec.cfg, 1);
        t.train_epoch(EpochTask::first(d, &[], 2, &sched), &mut |_, _| {})
            .unwrap();
        let m = t.tensors();
        let (uf, itf, ub) = (
            &m[tensor::USER_FACTORS],
            &m[tensor::ITEM_FACTORS],
            &m[tensor::USER_BIAS],
        );
        assert_eq!(
            (uf.shape.clone(), itf.shape.clone()),
            (vec![4, 3], vec![6, 3])
        );
        let pairs: Vec<(u32, u32)> = (0..4).flat_map(|u| (0..6).map(move |i| (u, i))).collect();
        let (us, is): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
        let mut out = vec![0.0; pairs.len()];
        t.predict(&us, &is, &mut out);
        for (p, &(u, i)) in out.iter().zip(&pairs) {
            let (u, i) = (u as usize, i as usize);
            let raw = dot(&uf.data[u * 3..u * 3 + 3], &itf.data[i * 3..i * 3 + 3]) + ub.data[u];
            let want = 5.5 * sigmoid(raw);
            assert!((p - want).abs() < 1e-6, "({u}, {i}): {p} vs {want}");
        }
    }
}
