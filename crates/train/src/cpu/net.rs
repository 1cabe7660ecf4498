//! The shape of the neural models on cpu and one pass through it: the pairs' user and item
//! embeddings (and, for `hybrid`, the item features through their tower) joined into the
//! first layer's input, the dense layers of layers.rs, and the way back to the embedding
//! rows a batch touched.

use super::embedding::{Touched, axpy};
use super::layers::{self, Cache, Layout, Linear, backward_stack, forward_stack};
use super::rowopt::Table;
use crate::backend::ModelSpec;
use crate::config::{Join, ModelKind};
use crate::rng::Rng;
use ndarray::{Array2, s};

/// The model's shape: item tower (hybrid), join, hidden and output layers.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    pub k: usize,
    pub join: Join,
    pub tower: Vec<Linear>,
    pub layers: Vec<Linear>,
    pub input_dropout: f32,
    pub n_out: usize,
}

/// What a pass reads besides the dense parameters: the embedding tables and, for `hybrid`,
/// the per-item features (width, n_items × width).
#[derive(Debug, Clone, Copy)]
pub(super) struct Embeddings<'a> {
    pub users: &'a Table,
    pub items: &'a Table,
    pub features: Option<&'a (usize, Vec<f32>)>,
}

/// Every activation and gradient buffer of a pass, for up to `rows` pairs.
#[derive(Debug, Clone)]
pub(super) struct Buffers {
    pub rows: usize,
    feat: Array2<f32>,
    tower: Vec<Cache>,
    x0: Array2<f32>,
    mask0: Array2<f32>,
    pub layers: Vec<Cache>,
    pub dout: Array2<f32>,
    dtower: Array2<f32>,
}

impl Buffers {
    pub(super) fn new(net: &Net, rows: usize, feat_width: usize) -> Self {
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

    /// The output layer's values of the last pass (top rows: the pass's pairs).
    pub(super) fn output(&self) -> &Array2<f32> {
        &self.layers.last().expect("output layer").z
    }
}

impl Net {
    /// The layers `spec` asks for, their parameters placed by `layout`: the item tower
    /// (hybrid), hidden layers (batch norm and dropout as configured) and the output layer
    /// (one value, or one logit per class for the classifier).
    pub(super) fn build(spec: &ModelSpec, layout: &mut Layout) -> Net {
        let cfg = &spec.cfg;
        let k = spec.k;
        let mut tower = Vec::new();
        let mut tower_out = 0;
        if let Some((width, _)) = &spec.item_features {
            let mut din = *width;
            for &h in &cfg.item_features_hidden {
                tower.push(layout.linear(din, h, false, true, 0.0));
                din = h;
            }
            tower_out = din;
        }
        let classifier = spec.kind == ModelKind::Classifier;
        let hidden = cfg.hidden();
        let mut layers = Vec::new();
        let mut din = join_width(cfg.join, k) + tower_out;
        for (i, &h) in hidden.iter().enumerate() {
            let last = i + 1 == hidden.len();
            let p = if classifier || last {
                cfg.output_dropout()
            } else {
                0.0
            };
            layers.push(layout.linear(din, h, cfg.batch_norm(), true, p));
            din = h;
        }
        let n_out = if classifier {
            spec.classes.as_ref().map_or(0, Vec::len)
        } else {
            1
        };
        layers.push(layout.linear(din, n_out, false, false, 0.0));
        Net {
            k,
            join: cfg.join,
            tower,
            layers,
            input_dropout: cfg.dropout(),
            n_out,
        }
    }

    /// Fills x0 for the pairs and runs every layer; the output layer's `z` holds the result.
    /// `train` (the dropout stream) selects training mode: batch statistics and dropout.
    pub(super) fn forward(
        &self,
        p: &[f32],
        stats: &mut [f32],
        emb: Embeddings<'_>,
        (users, items): (&[u32], &[u32]),
        buf: &mut Buffers,
        train: Option<&mut Rng>,
    ) {
        let b = users.len();
        let mut unused = Rng::new(0);
        let (train, rng) = match train {
            Some(rng) => (true, rng),
            None => (false, &mut unused),
        };
        if let Some((w, f)) = emb.features {
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
        self.join(emb, (users, items), buf);
        if train && self.input_dropout > 0.0 {
            let n = b * buf.x0.ncols();
            let mask = &mut buf.mask0.as_slice_mut().expect("row-major")[..n];
            let x0 = &mut buf.x0.as_slice_mut().expect("row-major")[..n];
            layers::dropout(self.input_dropout, mask, x0, rng);
        }
        let input = buf.x0.slice(s![..b, ..]);
        forward_stack(&self.layers, &mut buf.layers, p, stats, input, train, rng);
    }

    /// The first layer's input rows: the two embeddings concatenated or multiplied, then
    /// (hybrid) the tower's output, or the raw features when there is no tower.
    fn join(&self, emb: Embeddings<'_>, (users, items): (&[u32], &[u32]), buf: &mut Buffers) {
        let k = self.k;
        let emb_width = join_width(self.join, k);
        for (r, (&u, &i)) in users.iter().zip(items).enumerate() {
            let (wu, wi) = (emb.users.w(u as usize), emb.items.w(i as usize));
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
            if emb.features.is_some() {
                let src = buf.tower.last().map_or(&buf.feat, |c| &c.out);
                row[emb_width..]
                    .iter_mut()
                    .zip(src.row(r))
                    .for_each(|(d, s)| *d = *s);
            }
        }
    }

    /// Backpropagates `buf.dout` into `grad` (dense) and the touched embedding rows.
    pub(super) fn backward(
        &self,
        p: &[f32],
        grad: &mut [f32],
        emb: Embeddings<'_>,
        (users, items): (&[u32], &[u32]),
        buf: &mut Buffers,
        touched: (&mut Touched, &mut Touched),
    ) {
        let b = users.len();
        let k = self.k;
        let input = buf.x0.slice(s![..b, ..]);
        backward_stack(&self.layers, &mut buf.layers, p, grad, input, &mut buf.dout);
        let dx0 = &mut buf.layers[0].dx;
        if self.input_dropout > 0.0 {
            let mut d = dx0.slice_mut(s![..b, ..]);
            d *= &buf.mask0.slice(s![..b, ..]);
        }
        if !self.tower.is_empty() {
            buf.dtower
                .slice_mut(s![..b, ..])
                .assign(&dx0.slice(s![..b, join_width(self.join, k)..]));
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
                    let (wu, wi) = (emb.users.w(u), emb.items.w(i));
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

/// Width of the joined embeddings: both (concat) or their elementwise product.
fn join_width(join: Join, k: usize) -> usize {
    match join {
        Join::Concat => 2 * k,
        Join::Product => k,
    }
}
