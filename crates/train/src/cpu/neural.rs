//! `mlp`, `hybrid` and `classifier` on cpu: the trainer around net.rs. Embeddings are
//! gathered per batch, joined, passed through the dense layers (ndarray matmuls into buffers
//! allocated once) and backpropagated by hand. Embedding rows use the lazy row optimizer of
//! the embedding models; the dense weights are one always-touched row of the same
//! optimizer, i.e. plain dense Adam/SGD.

use super::embedding::Touched;
use super::layers::{self, Layout};
use super::net::{Buffers, Embeddings, Net};
use super::rowopt::{RowOpt, Table};
use crate::backend::{EpochResult, EpochTask, Metrics, ModelSpec, RatingsView, Report, Trainer};
use crate::config::ModelKind;
use crate::init;
use crate::rng::Rng;
use recpipe_core::math::{
    Scored, nearest_class, softmax_expectation, squash, squash_slope, unsquash,
};
use recpipe_core::model::{Tensor, tensor};
use std::collections::BTreeMap;

#[derive(Clone)]
pub struct NeuralTrainer {
    kind: ModelKind,
    net: Net,
    y_range: Option<[f32; 2]>,
    classes: Vec<f32>,
    l2: f32,
    users: Table,
    items: Table,
    /// All dense parameters as one row, touched every step: plain dense Adam/SGD.
    dense: Table,
    /// BatchNorm running means and variances.
    stats: Vec<f32>,
    features: Option<(usize, Vec<f32>)>,
    opt: RowOpt,
    rng: Rng,
    buf: Option<Buffers>,
    grad: Vec<f32>,
    touched_u: Touched,
    touched_i: Touched,
    bu: Vec<u32>,
    bi: Vec<u32>,
    by: Vec<f32>,
}

impl NeuralTrainer {
    pub fn new(spec: &ModelSpec) -> Self {
        let cfg = &spec.cfg;
        let k = spec.k;
        let opt = RowOpt::new(cfg, spec.expected_steps);
        let mut rng = Rng::stream(cfg.seed, 1);
        let mut emb =
            |n: usize| Table::from_rows(n, k, &opt, &init::table(cfg, n, k, false, &mut rng).0);
        let users = emb(spec.n_users);
        let items = emb(spec.n_items);
        let mut layout = Layout::default();
        let net = Net::build(spec, &mut layout);
        let mut p = layers::init_params(net.tower.iter().chain(&net.layers), layout.n, &mut rng);
        let classifier = spec.kind == ModelKind::Classifier;
        if !classifier {
            // Start the output at the mean rating, as the embedding models do.
            let out = net.layers.last().expect("output layer");
            p[out.b] = unsquash(spec.global_mean, spec.y_range);
        }
        let mut dense = Table::new(1, layout.n, &opt);
        dense.set_weights(|_, w| w.copy_from_slice(&p));
        NeuralTrainer {
            kind: spec.kind,
            stats: layers::init_stats(net.layers.iter(), layout.n_stats),
            net,
            y_range: if classifier { None } else { spec.y_range },
            classes: spec.classes.clone().unwrap_or_default(),
            l2: cfg.l2,
            touched_u: Touched::new(users.n),
            touched_i: Touched::new(items.n),
            users,
            items,
            dense,
            features: spec.item_features.clone(),
            opt,
            rng: Rng::stream(cfg.seed, 3),
            buf: None,
            grad: vec![0.0; layout.n],
            bu: Vec::new(),
            bi: Vec::new(),
            by: Vec::new(),
        }
    }

    fn feat_width(&self) -> usize {
        self.features.as_ref().map_or(0, |(w, _)| *w)
    }

    fn embeddings(&self) -> Embeddings<'_> {
        Embeddings {
            users: &self.users,
            items: &self.items,
            features: self.features.as_ref(),
        }
    }

    /// Loss of the batch in the buffers' output, writing d(loss)/d(output) into `dout`.
    /// Returns the summed per-rating loss (squared error, or cross-entropy).
    fn loss_and_grad(&self, buf: &mut Buffers, ratings: &[f32]) -> f64 {
        let b = ratings.len();
        let z = &buf.layers.last().expect("output layer").z;
        let mut total = 0.0f64;
        if self.kind == ModelKind::Classifier {
            for (r, &y) in ratings.iter().enumerate() {
                let t = nearest_class(&self.classes, y);
                let row = z.row(r);
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
                total += (sum.ln() - (row[t] - max)) as f64;
                for (c, &v) in row.iter().enumerate() {
                    let pc = (v - max).exp() / sum;
                    buf.dout[[r, c]] = (pc - f32::from(c == t)) / b as f32;
                }
            }
        } else {
            for (r, &y) in ratings.iter().enumerate() {
                let (p, dp) = squash_slope(z[[r, 0]], self.y_range);
                let e = p - y;
                total += (e * e) as f64;
                buf.dout[[r, 0]] = 2.0 * e * dp / b as f32;
            }
        }
        total
    }

    /// One optimizer step on the ratings at `idx`; returns their summed loss.
    fn step(&mut self, data: RatingsView<'_>, idx: &[u32]) -> f64 {
        self.bu.clear();
        self.bi.clear();
        self.by.clear();
        for &r in idx {
            self.bu.push(data.user[r as usize]);
            self.bi.push(data.item[r as usize]);
            self.by.push(data.rating[r as usize]);
        }
        let mut buf = self.buf.take().expect("buffers sized by train_epoch");
        let p = self.dense.w(0);
        let emb = Embeddings {
            users: &self.users,
            items: &self.items,
            features: self.features.as_ref(),
        };
        let pairs = (&self.bu[..], &self.bi[..]);
        let train = Some(&mut self.rng);
        self.net
            .forward(p, &mut self.stats, emb, pairs, &mut buf, train);
        let loss = self.loss_and_grad(&mut buf, &self.by);
        self.grad.fill(0.0);
        self.net.backward(
            p,
            &mut self.grad,
            emb,
            pairs,
            &mut buf,
            (&mut self.touched_u, &mut self.touched_i),
        );
        self.buf = Some(buf);
        self.touched_u.apply(&mut self.users, &self.opt, self.l2);
        self.touched_i.apply(&mut self.items, &self.opt, self.l2);
        let (row, last) = self.dense.row_mut(0);
        self.opt.update(row, last, &self.grad);
        loss
    }

    /// The model's shape (another backend trains the same one).
    pub(crate) fn net(&self) -> &Net {
        &self.net
    }

    /// (Dense parameters, batch-norm running statistics): their counts are the layout's.
    pub(crate) fn dense_parts(&self) -> (&[f32], &[f32]) {
        (self.dense.w(0), &self.stats)
    }

    /// The weights (user and item tables row-major, dense parameters, running statistics)
    /// replaced by another backend's, so `tensors` names them as this trainer does.
    pub(crate) fn load(&mut self, users: &[f32], items: &[f32], params: &[f32], stats: &[f32]) {
        let k = self.net.k;
        self.users
            .set_weights(|r, w| w.copy_from_slice(&users[r * k..(r + 1) * k]));
        self.items
            .set_weights(|r, w| w.copy_from_slice(&items[r * k..(r + 1) * k]));
        self.dense.set_weights(|_, w| w.copy_from_slice(params));
        self.stats.copy_from_slice(stats);
    }

    /// The starting user and item tables (row-major).
    pub(crate) fn tables(&self) -> (Vec<f32>, Vec<f32>) {
        (self.users.weights(), self.items.weights())
    }

    /// Output-layer values for pairs, evaluation mode, in chunks.
    fn outputs(&self, users: &[u32], items: &[u32], mut each: impl FnMut(usize, &[f32])) {
        use rayon::prelude::*;
        const CHUNK: usize = 2048;
        let n_out = self.net.n_out;
        let p = self.dense.w(0);
        // Chunks on all cores (evaluation mode: no dropout draws, no statistics updates, so
        // the order does not matter), handed to `each` in row order.
        let chunks: Vec<Vec<f32>> = users
            .par_chunks(CHUNK)
            .zip(items.par_chunks(CHUNK))
            .map(|(u, i)| {
                let mut buf = Buffers::new(&self.net, u.len(), self.feat_width());
                let mut stats = self.stats.clone();
                self.net
                    .forward(p, &mut stats, self.embeddings(), (u, i), &mut buf, None);
                let z = buf.output();
                (0..u.len()).flat_map(|r| z.row(r).to_vec()).collect()
            })
            .collect();
        for (c, z) in chunks.iter().enumerate() {
            for (r, row) in z.chunks(n_out).enumerate() {
                each(c * CHUNK + r, row);
            }
        }
    }
}

impl Trainer for NeuralTrainer {
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        let batch_size = task.batch_size;
        if self.buf.as_ref().is_none_or(|b| b.rows < batch_size) {
            self.buf = Some(Buffers::new(&self.net, batch_size, self.feat_width()));
            self.touched_u.reserve(batch_size, self.net.k);
            self.touched_i.reserve(batch_size, self.net.k);
        }
        let batches: Vec<&[u32]> = task.order.chunks(batch_size).collect();
        let mean = task.batches(batches.len(), 64).run(report, |b, lr| {
            self.opt.begin_step(lr);
            (self.step(task.data, batches[b]), batches[b].len())
        })?;
        self.users.flush(&self.opt, false);
        self.items.flush(&self.opt, false);
        Ok(mean)
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        if self.kind == ModelKind::Classifier {
            self.outputs(users, items, |r, z| {
                out[r] = softmax_expectation(z, &self.classes).0
            });
        } else {
            self.outputs(users, items, |r, z| out[r] = squash(z[0], self.y_range));
        }
    }

    fn evaluate(&self, data: RatingsView<'_>) -> Metrics {
        let mut pred = vec![0.0; data.len()];
        self.predict(data.user, data.item, &mut pred);
        let mut m = Metrics::of(Scored {
            pred: &pred,
            truth: data.rating,
        });
        if self.kind == ModelKind::Classifier && !data.is_empty() {
            let mut hits = 0usize;
            self.outputs(data.user, data.item, |r, z| {
                let (_, arg) = softmax_expectation(z, &self.classes);
                hits += usize::from(arg == nearest_class(&self.classes, data.rating[r]));
            });
            m.accuracy = Some(hits as f64 / data.len() as f64);
        }
        m
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        let mut m = BTreeMap::new();
        let k = self.net.k;
        m.insert(
            tensor::USER_FACTORS.to_string(),
            Tensor::new(vec![self.users.n, k], self.users.weights()),
        );
        m.insert(
            tensor::ITEM_FACTORS.to_string(),
            Tensor::new(vec![self.items.n, k], self.items.weights()),
        );
        let (p, stats) = (self.dense.w(0), &self.stats[..]);
        let mut put = |prefix: String, l| layers::layer_tensors(l, &prefix, p, stats, &mut m);
        let n = self.net.layers.len();
        for (i, l) in self.net.layers.iter().enumerate() {
            let name = if i + 1 == n {
                tensor::OUTPUT.to_string()
            } else {
                tensor::hidden(i)
            };
            put(name, l);
        }
        for (i, l) in self.net.tower.iter().enumerate() {
            put(tensor::tower(i), l);
        }
        if let Some((w, f)) = &self.features {
            m.insert(
                tensor::ITEM_FEATURES.to_string(),
                Tensor::new(vec![self.items.n, *w], f.clone()),
            );
        }
        m
    }

    fn finite(&self) -> bool {
        self.users.all_finite()
            && self.items.all_finite()
            && self.dense.all_finite()
            && self.stats.iter().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Join};
    use crate::schedule::Schedule;

    fn spec(kind: ModelKind, join: Join, features: bool) -> ModelSpec {
        let cfg = Config {
            join,
            dropout: Some(0.0),
            output_dropout: Some(0.0),
            hidden: Some(vec![4, 3]),
            batch_norm: Some(true),
            item_features_hidden: vec![3],
            ..Config::plain_sgd(kind)
        };
        // Seed chosen so no ReLU input sits within the finite-difference step of its kink
        // (a crossing makes the difference quotient meaningless there, not the gradient).
        let mut rng = Rng::new(6);
        let y_range = (kind != ModelKind::Classifier).then_some([0.0, 5.5]);
        ModelSpec {
            classes: (kind == ModelKind::Classifier).then(|| vec![1.0, 2.5, 4.0, 5.0]),
            item_features: features.then(|| (2, (0..10).map(|_| rng.f32()).collect())),
            ..ModelSpec::toy(cfg, 5, y_range)
        }
    }

    /// Every parameter as (table, row, column) so the test can perturb it.
    fn params(t: &NeuralTrainer) -> Vec<(u8, usize, usize)> {
        let mut v = Vec::new();
        for (id, tab) in [(0u8, &t.users), (1, &t.items), (2, &t.dense)] {
            for r in 0..tab.n {
                for c in 0..tab.dim {
                    v.push((id, r, c));
                }
            }
        }
        v
    }

    fn get(t: &NeuralTrainer, (id, r, c): (u8, usize, usize)) -> f32 {
        [&t.users, &t.items, &t.dense][id as usize].w(r)[c]
    }

    fn nudge(t: &mut NeuralTrainer, (id, r, c): (u8, usize, usize), h: f32) {
        let tab = match id {
            0 => &mut t.users,
            1 => &mut t.items,
            _ => &mut t.dense,
        };
        tab.set_weights(|row, w| {
            if row == r {
                w[c] += h;
            }
        });
    }

    fn loss(t: &mut NeuralTrainer, d: RatingsView<'_>) -> f64 {
        let mut buf = Buffers::new(&t.net, d.len(), t.feat_width());
        let p = t.dense.w(0).to_vec();
        let mut stats = t.stats.clone();
        let emb = Embeddings {
            users: &t.users,
            items: &t.items,
            features: t.features.as_ref(),
        };
        let train = Some(&mut t.rng);
        t.net
            .forward(&p, &mut stats, emb, (d.user, d.item), &mut buf, train);
        t.loss_and_grad(&mut buf, d.rating) / d.len() as f64
    }

    /// With plain SGD at lr 1 one step moves every weight by minus its gradient; compare it
    /// with central finite differences of the training-mode loss (batch-norm statistics of
    /// the batch, no dropout), for every model shape.
    #[test]
    fn gradients_match_finite_differences() {
        let user = [0u32, 1, 1, 3, 2, 0, 2];
        let item = [0u32, 2, 4, 4, 1, 2, 3];
        let rating = [4.0f32, 2.5, 5.0, 1.0, 4.0, 2.5, 5.0];
        let d = RatingsView {
            user: &user,
            item: &item,
            rating: &rating,
        };
        for (kind, join, feats) in [
            (ModelKind::Mlp, Join::Concat, false),
            (ModelKind::Mlp, Join::Product, false),
            (ModelKind::Hybrid, Join::Concat, true),
            (ModelKind::Classifier, Join::Concat, false),
        ] {
            let spec = spec(kind, join, feats);
            let before = NeuralTrainer::new(&spec);
            let mut after = before.clone();
            let order: Vec<u32> = (0..user.len() as u32).collect();
            let sched = Schedule::new(&spec.cfg, 1);
            let task = EpochTask::first(d, &order, user.len(), &sched);
            let l_train = after.train_epoch(task, &mut |_, _| {}).unwrap();
            assert!((l_train - loss(&mut before.clone(), d)).abs() < 1e-9);
            let mut nonzero = 0;
            for q in params(&before) {
                let analytic = (get(&before, q) - get(&after, q)) as f64;
                let h = 1e-3f32;
                let mut plus = before.clone();
                nudge(&mut plus, q, h);
                let mut minus = before.clone();
                nudge(&mut minus, q, -h);
                let fd = (loss(&mut plus, d) - loss(&mut minus, d)) / (2.0 * h as f64);
                assert!(
                    (fd - analytic).abs() <= 2e-3 + 2e-2 * fd.abs(),
                    "{kind:?} {join:?} param {q:?}: analytic {analytic} vs finite difference {fd}"
                );
                nonzero += usize::from(analytic.abs() > 1e-6);
            }
            assert!(nonzero > 30, "{kind:?}: only {nonzero} nonzero gradients");
        }
    }
}
