//! The dense layers of the neural models (mlp, hybrid, classifier) in evaluation mode: read
//! from a checkpoint as model.json's [`NetShape`] lists them, widths validated, BatchNorm
//! folded, so a forward pass cannot panic on a bad file.

use super::checkpoint::Checkpoint;
use super::meta::{Join, NetShape};
use super::tensor::{self, BIAS, BN_BIAS, BN_RUNNING_MEAN, BN_RUNNING_VAR, BN_WEIGHT, WEIGHT};
use crate::error::{CoreError, Result};
use crate::layout;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use std::path::Path;

/// BatchNorm epsilon used by training (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

/// One dense layer in evaluation mode: z = x·Wᵀ + b, BatchNorm folded to z·scale + shift.
#[derive(Debug, Clone)]
struct Layer {
    w: Array2<f32>,
    b: Array1<f32>,
    bn: Option<(Array1<f32>, Array1<f32>)>,
    relu: bool,
}

impl Layer {
    /// The layer at `prefix`, or None when the checkpoint has no `{prefix}.weight`.
    fn read(ckpt: &Checkpoint, prefix: &str, relu: bool, path: &Path) -> Result<Option<Layer>> {
        let Some(w) = ckpt.get(&tensor::param(prefix, WEIGHT)) else {
            return Ok(None);
        };
        let bad = |m: String| CoreError::schema(path, format!("{prefix}: {m}"));
        let w = w
            .view2()
            .ok_or_else(|| bad("weight must be 2-d".into()))?
            .to_owned();
        let vec = |name: &str| -> Result<Array1<f32>> {
            let t = ckpt
                .get(&tensor::param(prefix, name))
                .ok_or_else(|| bad(format!("missing `{name}`")))?;
            if t.data.len() != w.nrows() {
                return Err(bad(format!(
                    "`{name}` has {} values, expected {}",
                    t.data.len(),
                    w.nrows()
                )));
            }
            Ok(Array1::from(t.data.clone()))
        };
        let b = vec(BIAS)?;
        let bn = if ckpt.get(&tensor::param(prefix, BN_WEIGHT)).is_some() {
            let (g, be) = (vec(BN_WEIGHT)?, vec(BN_BIAS)?);
            let (rm, rv) = (vec(BN_RUNNING_MEAN)?, vec(BN_RUNNING_VAR)?);
            let scale = &g / &rv.mapv(|v| (v + BN_EPS).sqrt());
            let shift = &be - &(&rm * &scale);
            Some((scale, shift))
        } else {
            None
        };
        Ok(Some(Layer { w, b, bn, relu }))
    }

    /// The ReLU layers `prefix(0..widths.len())`, each as wide as model.json says; a layer
    /// past the last listed one means model.json and the weights disagree.
    fn read_stack(
        ckpt: &Checkpoint,
        prefix: fn(usize) -> String,
        widths: &[usize],
        path: &Path,
    ) -> Result<Vec<Layer>> {
        let mut stack = Vec::with_capacity(widths.len());
        for (i, &width) in widths.iter().enumerate() {
            let p = prefix(i);
            let l = Layer::read(ckpt, &p, true, path)?.ok_or_else(|| {
                CoreError::schema(
                    path,
                    format!("missing tensor `{}`", tensor::param(&p, WEIGHT)),
                )
            })?;
            if l.w.nrows() != width {
                return Err(CoreError::schema(
                    path,
                    format!("`{p}` has {} units, model.json says {width}", l.w.nrows()),
                ));
            }
            stack.push(l);
        }
        let extra = tensor::param(&prefix(widths.len()), WEIGHT);
        if ckpt.get(&extra).is_some() {
            return Err(CoreError::schema(
                path,
                format!("tensor `{extra}` is not among model.json's layers"),
            ));
        }
        Ok(stack)
    }

    fn apply(&self, x: &Array2<f32>) -> Array2<f32> {
        let mut z = x.dot(&self.w.t());
        z += &self.b;
        if let Some((scale, shift)) = &self.bn {
            z *= scale;
            z += shift;
        }
        if self.relu {
            z.mapv_inplace(|v| v.max(0.0));
        }
        z
    }
}

/// The neural models' layers: item tower (hybrid), hidden layers, output.
#[derive(Debug, Clone)]
pub(super) struct Net {
    product: bool,
    tower: Vec<Layer>,
    layers: Vec<Layer>,
    /// Frozen item features (hybrid), (n_items, width).
    features: Option<Array2<f32>>,
}

impl Net {
    /// The layers `shape` lists, checked to chain from the joined embeddings (k or 2k wide,
    /// plus the item tower's output) to `n_out` outputs.
    pub(super) fn read(
        ckpt: &Checkpoint,
        shape: &NetShape,
        n_out: usize,
        dir: &Path,
    ) -> Result<Net> {
        let path = dir.join(layout::train::WEIGHTS);
        let m = &ckpt.meta;
        let product = shape.join == Join::Product;
        let tower = Layer::read_stack(ckpt, tensor::tower, &shape.item_tower, &path)?;
        let mut layers = Layer::read_stack(ckpt, tensor::hidden, &shape.hidden, &path)?;
        let out = Layer::read(ckpt, tensor::OUTPUT, false, &path)?.ok_or_else(|| {
            CoreError::schema(
                &path,
                format!("missing tensor `{}`", tensor::param(tensor::OUTPUT, WEIGHT)),
            )
        })?;
        layers.push(out);
        let features = match ckpt.get(tensor::ITEM_FEATURES) {
            Some(t) => Some(
                t.view2()
                    .filter(|v| v.nrows() == m.n_items as usize)
                    .ok_or_else(|| {
                        CoreError::schema(
                            &path,
                            format!("`{}` must be (n_items, width)", tensor::ITEM_FEATURES),
                        )
                    })?
                    .to_owned(),
            ),
            None => None,
        };
        // Check that the layer widths chain, so predict cannot panic on a bad file.
        let mut width = if product { m.k } else { 2 * m.k };
        if let Some(f) = &features {
            let mut w = f.ncols();
            for l in &tower {
                if l.w.ncols() != w {
                    return Err(CoreError::schema(&path, "item tower widths do not chain"));
                }
                w = l.w.nrows();
            }
            width += w;
        } else if !tower.is_empty() {
            return Err(CoreError::schema(
                &path,
                format!("item tower without `{}`", tensor::ITEM_FEATURES),
            ));
        }
        for (i, l) in layers.iter().enumerate() {
            if l.w.ncols() != width {
                return Err(CoreError::schema(
                    &path,
                    format!("layer {i} expects {} inputs, gets {width}", l.w.ncols()),
                ));
            }
            width = l.w.nrows();
        }
        if width != n_out {
            return Err(CoreError::schema(
                &path,
                format!("output has {width} values, expected {n_out}"),
            ));
        }
        Ok(Net {
            product,
            tower,
            layers,
            features,
        })
    }

    /// Output-layer values for pairs, (pairs, n_out).
    pub(super) fn forward(
        &self,
        uf: ArrayView2<'_, f32>,
        itf: ArrayView2<'_, f32>,
        users: &[u32],
        items: &[u32],
    ) -> Array2<f32> {
        let k = uf.ncols();
        let emb = if self.product { k } else { 2 * k };
        let tower_out = self.features.as_ref().map(|f| {
            let mut x = f.select(
                Axis(0),
                &items.iter().map(|&i| i as usize).collect::<Vec<_>>(),
            );
            for l in &self.tower {
                x = l.apply(&x);
            }
            x
        });
        let width = emb + tower_out.as_ref().map_or(0, |t| t.ncols());
        let mut x = Array2::<f32>::zeros((users.len(), width));
        for (r, (&u, &i)) in users.iter().zip(items).enumerate() {
            let (wu, wi) = (uf.row(u as usize), itf.row(i as usize));
            let mut row = x.row_mut(r);
            if self.product {
                for j in 0..k {
                    row[j] = wu[j] * wi[j];
                }
            } else {
                for j in 0..k {
                    row[j] = wu[j];
                    row[k + j] = wi[j];
                }
            }
            if let Some(t) = &tower_out {
                for (j, v) in t.row(r).iter().enumerate() {
                    row[emb + j] = *v;
                }
            }
        }
        for l in &self.layers {
            x = l.apply(&x);
        }
        x
    }
}
