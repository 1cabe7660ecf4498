//! The dense layers of the neural models on cpu: Linear → BatchNorm (optional) → ReLU →
//! Dropout, forward and backward by hand over buffers allocated once, with their parameters
//! laid out in one flat row (so the optimizer steps them as one always-touched row).
//!
//! PyTorch conventions: Linear weights (out, in) initialised U(±1/√fan_in); BatchNorm eps
//! 1e-5, momentum 0.1, unbiased running variance, gamma 1 and beta 0 at the start; inverted
//! dropout. Dropout masks come from a seeded stream, so runs are reproducible.

use crate::rng::Rng;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};
use recpipe_core::model::{BN_EPS, Tensor, tensor};
use std::collections::BTreeMap;

const BN_MOMENTUM: f32 = 0.1;

/// Where one linear layer's parameters sit in the flat dense parameter row.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub din: usize,
    pub dout: usize,
    pub w: usize,
    pub b: usize,
    /// (gamma offset, beta offset, running-stat offset) when batch-normalised.
    pub bn: Option<(usize, usize, usize)>,
    pub relu: bool,
    pub dropout: f32,
}

/// Hands out the places of layers' parameters in the flat row (`n` so far) and of their
/// batch-norm running statistics (`n_stats` so far).
#[derive(Debug, Default)]
pub(super) struct Layout {
    pub n: usize,
    pub n_stats: usize,
}

impl Layout {
    /// The next layer: weights, bias, then gamma and beta when batch-normalised.
    pub(super) fn linear(
        &mut self,
        din: usize,
        dout: usize,
        bn: bool,
        relu: bool,
        dropout: f32,
    ) -> Linear {
        let w = self.n;
        let b = w + din * dout;
        self.n = b + dout;
        let bn = bn.then(|| {
            let g = self.n;
            self.n += 2 * dout;
            let st = self.n_stats;
            self.n_stats += 2 * dout;
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
    }
}

/// The starting parameters of `layers` (in this order, drawing from `rng`): PyTorch's Linear
/// init U(±1/√fan_in) for weights and biases; BatchNorm gamma 1, beta 0.
pub(super) fn init_params<'a>(
    layers: impl Iterator<Item = &'a Linear>,
    n: usize,
    rng: &mut Rng,
) -> Vec<f32> {
    let mut p = vec![0.0f32; n];
    for l in layers {
        let bound = 1.0 / (l.din as f32).sqrt();
        for v in &mut p[l.w..l.b + l.dout] {
            *v = (2.0 * rng.f32() - 1.0) * bound;
        }
        if let Some((g, _, _)) = l.bn {
            p[g..g + l.dout].fill(1.0);
        }
    }
    p
}

/// The starting running statistics: means 0, variances 1.
pub(super) fn init_stats<'a>(layers: impl Iterator<Item = &'a Linear>, n_stats: usize) -> Vec<f32> {
    let mut stats = vec![0.0f32; n_stats];
    for l in layers {
        if let Some((_, _, st)) = l.bn {
            stats[st + l.dout..st + 2 * l.dout].fill(1.0);
        }
    }
    stats
}

/// A layer's weights under the checkpoint names of recpipe_core::model:
/// `{prefix}.weight`, `.bias`, and `.bn.weight`, `.bn.bias`, `.bn.running_mean`,
/// `.bn.running_var` when batch-normalised.
pub(super) fn layer_tensors(
    l: &Linear,
    prefix: &str,
    p: &[f32],
    stats: &[f32],
    m: &mut BTreeMap<String, Tensor>,
) {
    m.insert(
        tensor::param(prefix, tensor::WEIGHT),
        Tensor::new(vec![l.dout, l.din], p[l.w..l.w + l.dout * l.din].to_vec()),
    );
    m.insert(
        tensor::param(prefix, tensor::BIAS),
        Tensor::new(vec![l.dout], p[l.b..l.b + l.dout].to_vec()),
    );
    if let Some((g, be, st)) = l.bn {
        let t = |v: &[f32]| Tensor::new(vec![l.dout], v.to_vec());
        m.insert(
            tensor::param(prefix, tensor::BN_WEIGHT),
            t(&p[g..g + l.dout]),
        );
        m.insert(
            tensor::param(prefix, tensor::BN_BIAS),
            t(&p[be..be + l.dout]),
        );
        m.insert(
            tensor::param(prefix, tensor::BN_RUNNING_MEAN),
            t(&stats[st..st + l.dout]),
        );
        m.insert(
            tensor::param(prefix, tensor::BN_RUNNING_VAR),
            t(&stats[st + l.dout..st + 2 * l.dout]),
        );
    }
}

/// Per-layer buffers, sized for a full batch; a short last batch uses the top rows.
#[derive(Debug, Clone)]
pub(super) struct Cache {
    pub z: Array2<f32>,
    xhat: Array2<f32>,
    inv_std: Vec<f32>,
    /// Batch-norm scratch: the batch mean per column, its f64 sums, and the four per-column
    /// sums of the backward pass.
    bn_mean: Vec<f32>,
    bn_sum: Vec<f64>,
    bn_sq: Vec<f64>,
    bn_acc: Vec<f32>,
    /// Output after activation and dropout: the next layer's input.
    pub out: Array2<f32>,
    mask: Array2<f32>,
    /// Gradient w.r.t. this layer's input.
    pub dx: Array2<f32>,
}

impl Cache {
    pub(super) fn new(b: usize, l: &Linear) -> Self {
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

const CONTIGUOUS: &str = "the top rows of a buffer are contiguous";

/// The forward pass of one layer on `x` (rows = batch). `train` uses batch statistics and
/// dropout; otherwise running statistics and no dropout.
pub(super) fn forward(
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
    for row in z.as_slice_mut().expect(CONTIGUOUS).chunks_exact_mut(l.dout) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
    c.out.slice_mut(s![..b, ..]).assign(&z);
    if let Some(bn) = l.bn {
        let st = bn.2;
        let (rmean, rvar) = stats[st..st + 2 * l.dout].split_at_mut(l.dout);
        if train {
            batch_stats(l.dout, b, c, rmean, rvar);
        } else {
            for j in 0..l.dout {
                c.bn_mean[j] = rmean[j];
                c.inv_std[j] = 1.0 / (rvar[j] + BN_EPS).sqrt();
            }
        }
        normalize(l.dout, b, bn, p, c, train);
    }
    let n = b * l.dout;
    let out = &mut c.out.as_slice_mut().expect(CONTIGUOUS)[..n];
    if l.relu {
        out.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    if train && l.dropout > 0.0 {
        let mask = &mut c.mask.as_slice_mut().expect(CONTIGUOUS)[..n];
        dropout(l.dropout, mask, out, rng);
    }
}

/// Inverted dropout: each value kept with probability 1 − `p` and scaled by 1 / (1 − p);
/// the mask (0 or the scale) is kept for the backward pass.
pub(super) fn dropout(p: f32, mask: &mut [f32], out: &mut [f32], rng: &mut Rng) {
    let keep = 1.0 / (1.0 - p);
    for (m, o) in mask.iter_mut().zip(out.iter_mut()) {
        *m = if rng.f32() < p { 0.0 } else { keep };
        *o *= *m;
    }
}

/// The batch's mean and inverse standard deviation per column of `c.z` into `c.bn_mean` and
/// `c.inv_std`, and the running statistics moved towards them. Row-major passes with one
/// accumulator per column (rows added in order, as a column-by-column loop would) so the
/// loops run over contiguous memory.
fn batch_stats(dout: usize, b: usize, c: &mut Cache, rmean: &mut [f32], rvar: &mut [f32]) {
    let (sum, sq) = (&mut c.bn_sum, &mut c.bn_sq);
    sum.fill(0.0);
    sq.fill(0.0);
    let zf = &c.z.as_slice().expect(CONTIGUOUS)[..b * dout];
    for row in zf.chunks_exact(dout) {
        sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
    }
    sum.iter_mut().for_each(|s| *s /= b as f64);
    for row in zf.chunks_exact(dout) {
        sq.iter_mut()
            .zip(row)
            .zip(sum.iter())
            .for_each(|((q, &v), &m)| {
                let d = v as f64 - m;
                *q += d * d;
            });
    }
    for j in 0..dout {
        let (m, var) = (sum[j], sq[j] / b as f64);
        let unbiased = if b > 1 {
            var * b as f64 / (b - 1) as f64
        } else {
            var
        };
        rmean[j] = (1.0 - BN_MOMENTUM) * rmean[j] + BN_MOMENTUM * m as f32;
        rvar[j] = (1.0 - BN_MOMENTUM) * rvar[j] + BN_MOMENTUM * unbiased as f32;
        c.bn_mean[j] = m as f32;
        c.inv_std[j] = 1.0 / (var as f32 + BN_EPS).sqrt();
    }
}

/// `c.out = gamma · (z − mean) · inv_std + beta` over the top `b` rows, keeping the
/// normalised values in `c.xhat` when training.
fn normalize(
    dout: usize,
    b: usize,
    (g, be, _): (usize, usize, usize),
    p: &[f32],
    c: &mut Cache,
    train: bool,
) {
    let (gamma, beta) = (&p[g..g + dout], &p[be..be + dout]);
    let (mean, inv) = (&c.bn_mean, &c.inv_std);
    let zf = &c.z.as_slice().expect(CONTIGUOUS)[..b * dout];
    let of = &mut c.out.as_slice_mut().expect(CONTIGUOUS)[..b * dout];
    for (r, (zr, or)) in zf
        .chunks_exact(dout)
        .zip(of.chunks_exact_mut(dout))
        .enumerate()
    {
        let cols = zr
            .iter()
            .zip(or.iter_mut())
            .zip(mean.iter().zip(inv.iter()));
        if train {
            let xr = &mut c.xhat.as_slice_mut().expect(CONTIGUOUS)[r * dout..(r + 1) * dout];
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

/// Backpropagates `d` (gradient w.r.t. the layer's output; overwritten) through the layer,
/// adding parameter gradients into `grad` and leaving the input gradient in `c.dx`.
pub(super) fn backward(
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
        let df = d.as_slice_mut().expect(CONTIGUOUS);
        if l.dropout > 0.0 {
            let mask = &c.mask.as_slice().expect(CONTIGUOUS)[..b * n];
            df.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
        }
        if l.relu {
            // out > 0 exactly where the ReLU passed; where dropout zeroed it, d is already 0.
            let out = &c.out.as_slice().expect(CONTIGUOUS)[..b * n];
            df.iter_mut()
                .zip(out)
                .for_each(|(d, &o)| *d = if o <= 0.0 { 0.0 } else { *d });
        }
        if let Some(bn) = l.bn {
            batch_norm_backward(n, b, bn, p, grad, df, c);
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

/// Batch norm's backward pass: gamma and beta gradients into `grad`, and `df` (the gradient
/// w.r.t. its output, top `b` rows) turned into the gradient w.r.t. its input.
fn batch_norm_backward(
    n: usize,
    b: usize,
    (g, be, _): (usize, usize, usize),
    p: &[f32],
    grad: &mut [f32],
    df: &mut [f32],
    c: &mut Cache,
) {
    let gamma = &p[g..g + n];
    let xhat = &c.xhat.as_slice().expect(CONTIGUOUS)[..b * n];
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

/// Runs `layers` on `input`, each reading the previous layer's output.
pub(super) fn forward_stack(
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
pub(super) fn backward_stack(
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
