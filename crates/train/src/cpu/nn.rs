//! `mlp`, `hybrid` and `classifier` on cpu: embeddings gathered per batch, joined, passed
//! through dense layers (ndarray matmuls into buffers allocated once), backpropagated by
//! hand. Embedding rows use the lazy row optimizer of the embedding models; the dense
//! weights are one always-touched row of the same optimizer, i.e. plain dense Adam/SGD.
//!
//! Layer order per hidden layer: Linear → BatchNorm (optional) → ReLU → Dropout, PyTorch
//! conventions (BatchNorm eps 1e-5, momentum 0.1, unbiased running variance; inverted
//! dropout). Dropout masks come from a seeded stream, so runs are reproducible.

use super::embedding::{Touched, axpy};
use super::rowopt::{RowOpt, Table};
use crate::backend::{Divergence, Metrics, ModelSpec, RatingsView, Report, Trainer};
use crate::config::{Join, ModelKind};
use crate::init;
use crate::rng::Rng;
use crate::schedule::Schedule;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};
use recpipe_core::model::Tensor;
use std::collections::BTreeMap;

pub const BN_EPS: f32 = 1e-5;
const BN_MOMENTUM: f32 = 0.1;

/// Where one linear layer's parameters sit in the flat dense parameter row.
#[derive(Debug, Clone)]
struct Linear {
    din: usize,
    dout: usize,
    w: usize,
    b: usize,
    /// (gamma offset, beta offset, running-stat offset) when batch-normalised.
    bn: Option<(usize, usize, usize)>,
    relu: bool,
    dropout: f32,
}

/// Per-layer buffers, sized for a full batch; a short last batch uses the top rows.
#[derive(Debug, Clone)]
struct Cache {
    z: Array2<f32>,
    xhat: Array2<f32>,
    inv_std: Vec<f32>,
    /// Batch-norm scratch: the batch mean per column, its f64 sums, and the four per-column
    /// sums of the backward pass.
    bn_mean: Vec<f32>,
    bn_sum: Vec<f64>,
    bn_sq: Vec<f64>,
    bn_acc: Vec<f32>,
    /// Output after activation and dropout: the next layer's input.
    out: Array2<f32>,
    mask: Array2<f32>,
    /// Gradient w.r.t. this layer's input.
    dx: Array2<f32>,
}

impl Cache {
    fn new(b: usize, l: &Linear) -> Self {
        Cache {
            z: Array2::zeros((b, l.dout)),
            xhat: Array2::zeros((if l.bn.is_some() { b } else { 0 }, l.dout)),
            inv_std: vec![0.0; l.dout],
            bn_mean: vec![0.0; l.dout],
            bn_sum: vec![0.0; l.dout],
            bn_sq: vec![0.0; l.dout],
            bn_acc: vec![0.0; 4 * l.dout],
            out: Array2::zeros((b, l.dout)),
            mask: Array2::zeros((if l.dropout > 0.0 { b } else { 0 }, l.dout)),
            dx: Array2::zeros((b, l.din)),
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The forward pass of one layer on `x` (rows = batch). `train` uses batch statistics and
/// dropout; otherwise running statistics and no dropout.
fn forward(
    l: &Linear,
    p: &[f32],
    stats: &mut [f32],
    x: ArrayView2<'_, f32>,
    c: &mut Cache,
    train: bool,
    rng: &mut Rng,
) {
    let b = x.nrows();
    let w = ArrayView2::from_shape((l.dout, l.din), &p[l.w..l.w + l.dout * l.din]).unwrap();
    let bias = &p[l.b..l.b + l.dout];
    let mut z = c.z.slice_mut(s![..b, ..]);
    general_mat_mul(1.0, &x, &w.t(), 0.0, &mut z);
    for row in z
        .as_slice_mut()
        .expect("the top rows of a buffer are contiguous")
        .chunks_exact_mut(l.dout)
    {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
    let mut out = c.out.slice_mut(s![..b, ..]);
    out.assign(&z);
    if let Some((g, be, st)) = l.bn {
        let (gamma, beta) = (&p[g..g + l.dout], &p[be..be + l.dout]);
        let (rmean, rvar) = stats[st..st + 2 * l.dout].split_at_mut(l.dout);
        // Row-major passes with one accumulator per column (rows added in order, as a
        // column-by-column loop would) so the loops run over contiguous memory.
        let (mean, inv) = (&mut c.bn_mean, &mut c.inv_std);
        if train {
            let (sum, sq) = (&mut c.bn_sum, &mut c.bn_sq);
            sum.fill(0.0);
            sq.fill(0.0);
            let zf = z
                .as_slice()
                .expect("the top rows of a buffer are contiguous");
            for row in zf.chunks_exact(l.dout) {
                sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
            }
            sum.iter_mut().for_each(|s| *s /= b as f64);
            for row in zf.chunks_exact(l.dout) {
                sq.iter_mut()
                    .zip(row)
                    .zip(sum.iter())
                    .for_each(|((q, &v), &m)| {
                        let d = v as f64 - m;
                        *q += d * d;
                    });
            }
            for j in 0..l.dout {
                let (m, var) = (sum[j], sq[j] / b as f64);
                let unbiased = if b > 1 {
                    var * b as f64 / (b - 1) as f64
                } else {
                    var
                };
                rmean[j] = (1.0 - BN_MOMENTUM) * rmean[j] + BN_MOMENTUM * m as f32;
                rvar[j] = (1.0 - BN_MOMENTUM) * rvar[j] + BN_MOMENTUM * unbiased as f32;
                mean[j] = m as f32;
                inv[j] = 1.0 / (var as f32 + BN_EPS).sqrt();
            }
        } else {
            for j in 0..l.dout {
                mean[j] = rmean[j];
                inv[j] = 1.0 / (rvar[j] + BN_EPS).sqrt();
            }
        }
        for r in 0..b {
            let (zr, mut or) = (z.row(r), out.row_mut(r));
            let zr = zr
                .as_slice()
                .expect("rows of a batch buffer are contiguous");
            let or = or
                .as_slice_mut()
                .expect("rows of a batch buffer are contiguous");
            let cols = zr
                .iter()
                .zip(or.iter_mut())
                .zip(mean.iter().zip(inv.iter()));
            if train {
                let mut xr = c.xhat.row_mut(r);
                let xr = xr
                    .as_slice_mut()
                    .expect("rows of a batch buffer are contiguous");
                for (j, (((&zv, o), (&m, &iv)), xh_out)) in cols.zip(xr).enumerate() {
                    let xh = (zv - m) * iv;
                    *xh_out = xh;
                    *o = gamma[j] * xh + beta[j];
                }
            } else {
                for (j, ((&zv, o), (&m, &iv))) in cols.enumerate() {
                    *o = gamma[j] * ((zv - m) * iv) + beta[j];
                }
            }
        }
    }
    if l.relu {
        out.mapv_inplace(|v| v.max(0.0));
    }
    if train && l.dropout > 0.0 {
        let keep = 1.0 / (1.0 - l.dropout);
        let n = b * l.dout;
        let mask = &mut c.mask.as_slice_mut().expect("batch buffers are contiguous")[..n];
        let out = &mut out
            .as_slice_mut()
            .expect("the top rows of a buffer are contiguous")[..n];
        for (m, o) in mask.iter_mut().zip(out.iter_mut()) {
            *m = if rng.f32() < l.dropout { 0.0 } else { keep };
            *o *= *m;
        }
    }
}

/// Backpropagates `d` (gradient w.r.t. the layer's output; overwritten) through the layer,
/// adding parameter gradients into `grad` and leaving the input gradient in `c.dx`.
fn backward(
    l: &Linear,
    p: &[f32],
    grad: &mut [f32],
    x: ArrayView2<'_, f32>,
    mut d: ArrayViewMut2<'_, f32>,
    c: &mut Cache,
) {
    let b = x.nrows();
    let n = l.dout;
    {
        // Elementwise work on the flat buffers: the top `b` rows of each are contiguous.
        let df = d
            .as_slice_mut()
            .expect("the top rows of a buffer are contiguous");
        if l.dropout > 0.0 {
            let mask = &c.mask.as_slice().expect("batch buffers are contiguous")[..b * n];
            df.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
        }
        if l.relu {
            // out > 0 exactly where the ReLU passed; where dropout zeroed it, d is already 0.
            let out = &c.out.as_slice().expect("batch buffers are contiguous")[..b * n];
            df.iter_mut()
                .zip(out)
                .for_each(|(d, &o)| *d = if o <= 0.0 { 0.0 } else { *d });
        }
        if let Some((g, be, _)) = l.bn {
            let gamma = &p[g..g + n];
            let xhat = &c.xhat.as_slice().expect("batch buffers are contiguous")[..b * n];
            // Per-column sums accumulated row by row (same order as a column loop).
            let acc = &mut c.bn_acc;
            acc.fill(0.0);
            let (dgamma, rest) = acc.split_at_mut(n);
            let (dbeta, rest) = rest.split_at_mut(n);
            let (sd, sdx) = rest.split_at_mut(n);
            for (dr, xr) in df.chunks_exact(n).zip(xhat.chunks_exact(n)) {
                for j in 0..n {
                    let (dy, xh) = (dr[j], xr[j]);
                    dgamma[j] += dy * xh;
                    dbeta[j] += dy;
                    let dxh = dy * gamma[j];
                    sd[j] += dxh;
                    sdx[j] += dxh * xh;
                }
            }
            for j in 0..n {
                grad[g + j] += dgamma[j];
                grad[be + j] += dbeta[j];
            }
            let bf = b as f32;
            let inv = &c.inv_std;
            for (dr, xr) in df.chunks_exact_mut(n).zip(xhat.chunks_exact(n)) {
                for j in 0..n {
                    let k = inv[j] / bf;
                    let dxh = dr[j] * gamma[j];
                    dr[j] = k * (bf * dxh - sd[j] - xr[j] * sdx[j]);
                }
            }
        }
    }
    for (j, col) in d.columns().into_iter().enumerate() {
        grad[l.b + j] += col.sum();
    }
    let mut gw =
        ArrayViewMut2::from_shape((l.dout, l.din), &mut grad[l.w..l.w + l.dout * l.din]).unwrap();
    general_mat_mul(1.0, &d.t(), &x, 1.0, &mut gw);
    let w = ArrayView2::from_shape((l.dout, l.din), &p[l.w..l.w + l.dout * l.din]).unwrap();
    let mut dx = c.dx.slice_mut(s![..b, ..]);
    general_mat_mul(1.0, &d, &w, 0.0, &mut dx);
}

/// The model's shape: item tower (hybrid), join, hidden and output layers.
#[derive(Debug, Clone)]
struct Net {
    k: usize,
    join: Join,
    tower: Vec<Linear>,
    layers: Vec<Linear>,
    input_dropout: f32,
    n_out: usize,
}

/// Every activation and gradient buffer of a pass, for up to `rows` pairs.
#[derive(Debug, Clone)]
struct Buffers {
    rows: usize,
    feat: Array2<f32>,
    tower: Vec<Cache>,
    x0: Array2<f32>,
    mask0: Array2<f32>,
    layers: Vec<Cache>,
    dout: Array2<f32>,
    dtower: Array2<f32>,
}

impl Buffers {
    fn new(net: &Net, rows: usize, feat_width: usize) -> Self {
        let d0 = net.layers[0].din;
        let tower_out = net.tower.last().map_or(0, |l| l.dout);
        Buffers {
            rows,
            feat: Array2::zeros((rows, feat_width)),
            tower: net.tower.iter().map(|l| Cache::new(rows, l)).collect(),
            x0: Array2::zeros((rows, d0)),
            mask0: Array2::zeros((rows, d0)),
            layers: net.layers.iter().map(|l| Cache::new(rows, l)).collect(),
            dout: Array2::zeros((rows, net.n_out)),
            dtower: Array2::zeros((rows, tower_out)),
        }
    }
}

/// Runs `layers` on `input`, each reading the previous layer's output.
fn forward_stack(
    layers: &[Linear],
    caches: &mut [Cache],
    p: &[f32],
    stats: &mut [f32],
    input: ArrayView2<'_, f32>,
    train: bool,
    rng: &mut Rng,
) {
    let b = input.nrows();
    for (li, l) in layers.iter().enumerate() {
        let (prev, rest) = caches.split_at_mut(li);
        let x = match prev.last() {
            Some(c) => c.out.slice(s![..b, ..]),
            None => input.view(),
        };
        forward(l, p, stats, x, &mut rest[0], train, rng);
    }
}

/// Backpropagates `dlast` through `layers`; the first layer's input gradient ends in
/// `caches[0].dx`.
fn backward_stack(
    layers: &[Linear],
    caches: &mut [Cache],
    p: &[f32],
    grad: &mut [f32],
    input: ArrayView2<'_, f32>,
    dlast: &mut Array2<f32>,
) {
    let b = input.nrows();
    for li in (0..layers.len()).rev() {
        let (left, right) = caches.split_at_mut(li + 1);
        let (prev, cur) = left.split_at_mut(li);
        let x = match prev.last() {
            Some(c) => c.out.slice(s![..b, ..]),
            None => input.view(),
        };
        let d = match right.first_mut() {
            Some(next) => next.dx.slice_mut(s![..b, ..]),
            None => dlast.slice_mut(s![..b, ..]),
        };
        backward(&layers[li], p, grad, x, d, &mut cur[0]);
    }
}

impl Net {
    /// Fills x0 for the pairs and runs every layer; the output layer's `z` holds the result.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        p: &[f32],
        stats: &mut [f32],
        emb: (&Table, &Table),
        features: Option<&(usize, Vec<f32>)>,
        pairs: (&[u32], &[u32]),
        buf: &mut Buffers,
        train: bool,
        rng: &mut Rng,
    ) {
        let (users, items) = pairs;
        let b = users.len();
        let k = self.k;
        if let Some((w, f)) = features {
            for (r, &i) in items.iter().enumerate() {
                let i = i as usize;
                buf.feat
                    .row_mut(r)
                    .iter_mut()
                    .zip(&f[i * w..(i + 1) * w])
                    .for_each(|(d, s)| *d = *s);
            }
            let input = buf.feat.slice(s![..b, ..]);
            forward_stack(&self.tower, &mut buf.tower, p, stats, input, train, rng);
        }
        let emb_width = match self.join {
            Join::Concat => 2 * k,
            Join::Product => k,
        };
        for (r, (&u, &i)) in users.iter().zip(items).enumerate() {
            let (wu, wi) = (emb.0.w(u as usize), emb.1.w(i as usize));
            let mut row = buf.x0.row_mut(r);
            let row = row.as_slice_mut().expect("row-major");
            match self.join {
                Join::Concat => {
                    row[..k].copy_from_slice(wu);
                    row[k..2 * k].copy_from_slice(wi);
                }
                Join::Product => {
                    for j in 0..k {
                        row[j] = wu[j] * wi[j];
                    }
                }
            }
            if features.is_some() {
                // Without tower layers the raw features join the embeddings directly.
                let src = buf.tower.last().map_or(&buf.feat, |c| &c.out);
                row[emb_width..]
                    .iter_mut()
                    .zip(src.row(r))
                    .for_each(|(d, s)| *d = *s);
            }
        }
        if train && self.input_dropout > 0.0 {
            let keep = 1.0 / (1.0 - self.input_dropout);
            let mut x0 = buf.x0.slice_mut(s![..b, ..]);
            let mut mask = buf.mask0.slice_mut(s![..b, ..]);
            for (m, x) in mask.iter_mut().zip(x0.iter_mut()) {
                *m = if rng.f32() < self.input_dropout {
                    0.0
                } else {
                    keep
                };
                *x *= *m;
            }
        }
        let input = buf.x0.slice(s![..b, ..]);
        forward_stack(&self.layers, &mut buf.layers, p, stats, input, train, rng);
    }

    /// Backpropagates `buf.dout` into `grad` (dense) and the touched embedding rows.
    fn backward(
        &self,
        p: &[f32],
        grad: &mut [f32],
        emb: (&Table, &Table),
        pairs: (&[u32], &[u32]),
        buf: &mut Buffers,
        touched: (&mut Touched, &mut Touched),
    ) {
        let (users, items) = pairs;
        let b = users.len();
        let k = self.k;
        let input = buf.x0.slice(s![..b, ..]);
        backward_stack(&self.layers, &mut buf.layers, p, grad, input, &mut buf.dout);
        let dx0 = &mut buf.layers[0].dx;
        if self.input_dropout > 0.0 {
            let mut d = dx0.slice_mut(s![..b, ..]);
            d *= &buf.mask0.slice(s![..b, ..]);
        }
        let emb_width = match self.join {
            Join::Concat => 2 * k,
            Join::Product => k,
        };
        if !self.tower.is_empty() {
            buf.dtower
                .slice_mut(s![..b, ..])
                .assign(&dx0.slice(s![..b, emb_width..]));
            let input = buf.feat.slice(s![..b, ..]);
            backward_stack(&self.tower, &mut buf.tower, p, grad, input, &mut buf.dtower);
        }
        let dx0 = &buf.layers[0].dx;
        for (r, (&u, &i)) in users.iter().zip(items).enumerate() {
            let (u, i) = (u as usize, i as usize);
            let d = dx0.row(r);
            let d = d.as_slice().expect("row-major");
            match self.join {
                Join::Concat => {
                    axpy(touched.0.grad(u, k), 1.0, &d[..k]);
                    axpy(touched.1.grad(i, k), 1.0, &d[k..2 * k]);
                }
                Join::Product => {
                    let (wu, wi) = (emb.0.w(u), emb.1.w(i));
                    let gu = touched.0.grad(u, k);
                    for j in 0..k {
                        gu[j] += d[j] * wi[j];
                    }
                    let gi = touched.1.grad(i, k);
                    for j in 0..k {
                        gi[j] += d[j] * wu[j];
                    }
                }
            }
        }
    }
}

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
        let mut emb = |n: usize| {
            let mut t = Table::new(n, k, &opt);
            let mut w = vec![0.0; n * k];
            init::fill(&mut w, cfg.init, cfg.init_scale, n, &mut rng);
            t.set_weights(|r, row| row.copy_from_slice(&w[r * k..(r + 1) * k]));
            t
        };
        let users = emb(spec.n_users);
        let items = emb(spec.n_items);

        let mut n = 0usize;
        let mut n_stats = 0usize;
        let mut linear = |din: usize, dout: usize, bn: bool, relu: bool, dropout: f32| {
            let w = n;
            let b = w + din * dout;
            n = b + dout;
            let bn = bn.then(|| {
                let g = n;
                n += 2 * dout;
                let st = n_stats;
                n_stats += 2 * dout;
                (g, g + dout, st)
            });
            Linear {
                din,
                dout,
                w,
                b,
                bn,
                relu,
                dropout,
            }
        };
        let mut tower = Vec::new();
        let mut tower_out = 0;
        if let Some((width, _)) = &spec.item_features {
            let mut din = *width;
            for &h in &cfg.item_features_hidden {
                tower.push(linear(din, h, false, true, 0.0));
                din = h;
            }
            tower_out = din;
        }
        let d0 = match cfg.join {
            Join::Concat => 2 * k,
            Join::Product => k,
        } + tower_out;
        let classifier = spec.kind == ModelKind::Classifier;
        let hidden = cfg.hidden();
        let mut layers = Vec::new();
        let mut din = d0;
        for (i, &h) in hidden.iter().enumerate() {
            let last = i + 1 == hidden.len();
            let p = if classifier || last {
                cfg.output_dropout()
            } else {
                0.0
            };
            layers.push(linear(din, h, cfg.batch_norm(), true, p));
            din = h;
        }
        let classes = spec.classes.clone().unwrap_or_default();
        let n_out = if classifier { classes.len() } else { 1 };
        layers.push(linear(din, n_out, false, false, 0.0));

        // PyTorch's Linear init: U(±1/√fan_in) for weights and biases; BN gamma 1, beta 0.
        let mut p = vec![0.0f32; n];
        for l in tower.iter().chain(&layers) {
            let bound = 1.0 / (l.din as f32).sqrt();
            for v in &mut p[l.w..l.b + l.dout] {
                *v = (2.0 * rng.f32() - 1.0) * bound;
            }
            if let Some((g, _, _)) = l.bn {
                p[g..g + l.dout].fill(1.0);
            }
        }
        if !classifier {
            // Start the output at the mean rating, as the embedding models do.
            let out = layers.last().expect("output layer");
            p[out.b] = match spec.y_range {
                Some([lo, hi]) => {
                    let q = ((spec.global_mean - lo) / (hi - lo)).clamp(1e-3, 1.0 - 1e-3);
                    (q / (1.0 - q)).ln()
                }
                None => spec.global_mean,
            };
        }
        let mut dense = Table::new(1, n, &opt);
        dense.set_weights(|_, w| w.copy_from_slice(&p));
        let mut stats = vec![0.0f32; n_stats];
        for l in &layers {
            if let Some((_, _, st)) = l.bn {
                stats[st + l.dout..st + 2 * l.dout].fill(1.0);
            }
        }
        NeuralTrainer {
            kind: spec.kind,
            net: Net {
                k,
                join: cfg.join,
                tower,
                layers,
                input_dropout: cfg.dropout(),
                n_out,
            },
            y_range: if classifier { None } else { spec.y_range },
            classes,
            l2: cfg.l2,
            touched_u: Touched::new(users.n),
            touched_i: Touched::new(items.n),
            users,
            items,
            dense,
            stats,
            features: spec.item_features.clone(),
            opt,
            rng: Rng::stream(cfg.seed, 3),
            buf: None,
            grad: vec![0.0; n],
            bu: Vec::new(),
            bi: Vec::new(),
            by: Vec::new(),
        }
    }

    fn feat_width(&self) -> usize {
        self.features.as_ref().map_or(0, |(w, _)| *w)
    }

    /// Loss of the batch in the buffers' output, writing d(loss)/d(output) into `dout`.
    /// Returns the summed per-rating loss (squared error, or cross-entropy).
    fn loss_and_grad(&self, buf: &mut Buffers, ratings: &[f32]) -> f64 {
        let b = ratings.len();
        let z = &buf.layers.last().expect("output layer").z;
        let mut total = 0.0f64;
        if self.kind == ModelKind::Classifier {
            for (r, &y) in ratings.iter().enumerate() {
                let t = class_of(&self.classes, y);
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
                let raw = z[[r, 0]];
                let (p, dp) = match self.y_range {
                    Some([lo, hi]) => {
                        let s = sigmoid(raw);
                        (lo + (hi - lo) * s, (hi - lo) * s * (1.0 - s))
                    }
                    None => (raw, 1.0),
                };
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
        self.net.forward(
            p,
            &mut self.stats,
            (&self.users, &self.items),
            self.features.as_ref(),
            (&self.bu, &self.bi),
            &mut buf,
            true,
            &mut self.rng,
        );
        let loss = self.loss_and_grad(&mut buf, &self.by);
        self.grad.fill(0.0);
        self.net.backward(
            p,
            &mut self.grad,
            (&self.users, &self.items),
            (&self.bu, &self.bi),
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
                self.net.forward(
                    p,
                    &mut stats,
                    (&self.users, &self.items),
                    self.features.as_ref(),
                    (u, i),
                    &mut buf,
                    false,
                    &mut Rng::new(0),
                );
                let z = &buf.layers.last().expect("output layer").z;
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

/// The class index of a rating value (nearest class).
pub(crate) fn class_of(classes: &[f32], y: f32) -> usize {
    let mut best = 0;
    for (c, &v) in classes.iter().enumerate() {
        if (v - y).abs() < (classes[best] - y).abs() {
            best = c;
        }
    }
    best
}

fn softmax_expectation(z: &[f32], classes: &[f32]) -> (f32, usize) {
    let max = z.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let (mut sum, mut ev, mut arg) = (0.0f32, 0.0f32, 0);
    for (c, &v) in z.iter().enumerate() {
        let e = (v - max).exp();
        sum += e;
        ev += e * classes[c];
        if v > z[arg] {
            arg = c;
        }
    }
    (ev / sum, arg)
}

impl Trainer for NeuralTrainer {
    fn train_epoch(
        &mut self,
        data: RatingsView<'_>,
        order: &[u32],
        batch_size: usize,
        schedule: &Schedule,
        step0: usize,
        report: Report<'_>,
    ) -> std::result::Result<f64, Divergence> {
        if self.buf.as_ref().is_none_or(|b| b.rows < batch_size) {
            self.buf = Some(Buffers::new(&self.net, batch_size, self.feat_width()));
            self.touched_u.reserve(batch_size, self.net.k);
            self.touched_i.reserve(batch_size, self.net.k);
        }
        let batches: Vec<&[u32]> = order.chunks(batch_size).collect();
        let (total, seen) =
            super::batch_loop(batches.len(), schedule, step0, 64, report, |b, lr| {
                self.opt.begin_step(lr);
                (self.step(data, batches[b]), batches[b].len())
            })?;
        self.users.flush(&self.opt, false);
        self.items.flush(&self.opt, false);
        Ok(total / seen.max(1) as f64)
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        if self.kind == ModelKind::Classifier {
            self.outputs(users, items, |r, z| {
                out[r] = softmax_expectation(z, &self.classes).0
            });
        } else {
            self.outputs(users, items, |r, z| {
                out[r] = match self.y_range {
                    Some([lo, hi]) => lo + (hi - lo) * sigmoid(z[0]),
                    None => z[0],
                }
            });
        }
    }

    fn evaluate(&self, data: RatingsView<'_>) -> Metrics {
        let mut pred = vec![0.0; data.len()];
        self.predict(data.user, data.item, &mut pred);
        let mut m = crate::backend::rating_metrics(&pred, data.rating);
        if self.kind == ModelKind::Classifier && !data.is_empty() {
            let mut hits = 0usize;
            self.outputs(data.user, data.item, |r, z| {
                let (_, arg) = softmax_expectation(z, &self.classes);
                hits += usize::from(arg == class_of(&self.classes, data.rating[r]));
            });
            m.accuracy = Some(hits as f64 / data.len() as f64);
        }
        m
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        let mut m = BTreeMap::new();
        let k = self.net.k;
        m.insert(
            "user_factors".to_string(),
            Tensor::new(vec![self.users.n, k], self.users.weights()),
        );
        m.insert(
            "item_factors".to_string(),
            Tensor::new(vec![self.items.n, k], self.items.weights()),
        );
        let p = self.dense.w(0);
        let mut put = |prefix: String, l: &Linear| {
            m.insert(
                format!("{prefix}.weight"),
                Tensor::new(vec![l.dout, l.din], p[l.w..l.w + l.dout * l.din].to_vec()),
            );
            m.insert(
                format!("{prefix}.bias"),
                Tensor::new(vec![l.dout], p[l.b..l.b + l.dout].to_vec()),
            );
            if let Some((g, be, st)) = l.bn {
                let t = |v: &[f32]| Tensor::new(vec![l.dout], v.to_vec());
                m.insert(format!("{prefix}.bn.weight"), t(&p[g..g + l.dout]));
                m.insert(format!("{prefix}.bn.bias"), t(&p[be..be + l.dout]));
                m.insert(
                    format!("{prefix}.bn.running_mean"),
                    t(&self.stats[st..st + l.dout]),
                );
                m.insert(
                    format!("{prefix}.bn.running_var"),
                    t(&self.stats[st + l.dout..st + 2 * l.dout]),
                );
            }
        };
        let n = self.net.layers.len();
        for (i, l) in self.net.layers.iter().enumerate() {
            let name = if i + 1 == n {
                "output".to_string()
            } else {
                format!("layers.{i}")
            };
            put(name, l);
        }
        for (i, l) in self.net.tower.iter().enumerate() {
            put(format!("item_tower.{i}"), l);
        }
        if let Some((w, f)) = &self.features {
            m.insert(
                "item_features".to_string(),
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
    use crate::config::{Config, OptimizerKind};

    fn spec(kind: ModelKind, join: Join, features: bool) -> ModelSpec {
        let cfg = Config {
            model: kind,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.0,
            weight_decay: 0.0,
            lr: 1.0,
            init_scale: Some(0.5),
            join,
            dropout: Some(0.0),
            output_dropout: Some(0.0),
            hidden: Some(vec![4, 3]),
            batch_norm: Some(true),
            item_features_hidden: vec![3],
            ..Config::default()
        };
        // Seed chosen so no ReLU input sits within the finite-difference step of its kink
        // (a crossing makes the difference quotient meaningless there, not the gradient).
        let mut rng = Rng::new(6);
        ModelSpec {
            cfg,
            kind,
            n_users: 4,
            n_items: 5,
            k: 3,
            global_mean: 3.0,
            y_range: (kind != ModelKind::Classifier).then_some([0.0, 5.5]),
            classes: (kind == ModelKind::Classifier).then(|| vec![1.0, 2.5, 4.0, 5.0]),
            item_features: features.then(|| (2, (0..10).map(|_| rng.f32()).collect())),
            expected_steps: 1,
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
        t.net.forward(
            &p,
            &mut stats,
            (&t.users, &t.items),
            t.features.as_ref(),
            (d.user, d.item),
            &mut buf,
            true,
            &mut t.rng,
        );
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
            let l_train = after
                .train_epoch(d, &order, user.len(), &sched, 0, &mut |_, _| {})
                .unwrap();
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
