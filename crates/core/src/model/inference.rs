//! [`Model`]: a validated checkpoint that scores (user, item) pairs, and every item for a set
//! of users in one matrix product when the model is a factorization.

use super::checkpoint::{Checkpoint, Tensor};
use super::meta::{ModelKind, ModelMeta};
use super::nn::Net;
use super::tensor;
use crate::csr::Csr;
use crate::error::{CoreError, Result};
use crate::layout;
use crate::math::{softmax_expectation, squash};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use std::path::Path;

/// A trained model ready to score (user_idx, item_idx) pairs.
#[derive(Debug, Clone)]
pub struct Model {
    pub meta: ModelMeta,
    ckpt: Checkpoint,
    /// The dense layers of mlp / hybrid / classifier, validated and BatchNorm folded.
    nn: Option<Net>,
    /// Each user's training items, ascending (item-item models: `ease`).
    history: Option<Csr<u32>>,
}

impl Model {
    pub fn load(dir: &Path) -> Result<Model> {
        Self::from_checkpoint(Checkpoint::load(dir)?, dir)
    }

    /// Validate that a checkpoint has what its model kind needs.
    pub fn from_checkpoint(ckpt: Checkpoint, dir: &Path) -> Result<Model> {
        let m = &ckpt.meta;
        let meta_err = |msg: String| CoreError::schema(dir.join(layout::train::META), msg);
        let need2 = |name: &str, rows: u32| -> Result<()> {
            match ckpt.get(name) {
                Some(t) if t.shape == [rows as usize, m.k] => Ok(()),
                Some(t) => Err(CoreError::schema(
                    dir.join(layout::train::WEIGHTS),
                    format!(
                        "tensor `{name}` has shape {:?}, expected [{rows}, {}]",
                        t.shape, m.k
                    ),
                )),
                None => Err(CoreError::schema(
                    dir.join(layout::train::WEIGHTS),
                    format!("missing tensor `{name}`"),
                )),
            }
        };
        if m.model.is_item_item() {
            let history = item_item_history(&ckpt, dir)?;
            return Ok(Model {
                meta: ckpt.meta.clone(),
                ckpt,
                nn: None,
                history: Some(history),
            });
        }
        need2(tensor::USER_FACTORS, m.n_users)?;
        need2(tensor::ITEM_FACTORS, m.n_items)?;
        let nn = if m.model.is_neural() {
            let n_out = if m.model == ModelKind::Classifier {
                match &m.classes {
                    Some(c) if !c.is_empty() => c.len(),
                    _ => return Err(meta_err("a classifier needs `classes`".into())),
                }
            } else {
                1
            };
            let shape = m
                .net
                .as_ref()
                .ok_or_else(|| meta_err(format!("a {} model needs `net`", m.model)))?;
            Some(Net::read(&ckpt, shape, n_out, dir)?)
        } else {
            None
        };
        Ok(Model {
            meta: ckpt.meta.clone(),
            ckpt,
            nn,
            history: None,
        })
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.ckpt
    }

    /// The checkpoint back, without a copy of its tensors.
    pub fn into_checkpoint(self) -> Checkpoint {
        self.ckpt
    }

    /// (n_users, k) user embedding table.
    pub fn user_factors(&self) -> Option<ArrayView2<'_, f32>> {
        self.ckpt.get(tensor::USER_FACTORS).and_then(Tensor::view2)
    }

    /// (n_items, k) item embedding table.
    pub fn item_factors(&self) -> Option<ArrayView2<'_, f32>> {
        self.ckpt.get(tensor::ITEM_FACTORS).and_then(Tensor::view2)
    }

    /// (n_items, n_items) item-item weights of an item-item model (`ease`).
    pub fn item_item(&self) -> Option<ArrayView2<'_, f32>> {
        self.ckpt.get(tensor::ITEM_ITEM).and_then(Tensor::view2)
    }

    /// The training items an item-item model scores user `u` from (ascending; empty for
    /// other kinds and for users without any).
    pub fn user_items(&self, u: u32) -> &[u32] {
        self.history.as_ref().map_or(&[], |h| h.row(u))
    }

    pub fn user_bias(&self) -> Option<&[f32]> {
        self.ckpt.get(tensor::USER_BIAS).map(|t| t.data.as_slice())
    }

    pub fn item_bias(&self) -> Option<&[f32]> {
        self.ckpt.get(tensor::ITEM_BIAS).map(|t| t.data.as_slice())
    }

    fn global_bias(&self) -> f32 {
        self.ckpt
            .get(tensor::GLOBAL_BIAS)
            .and_then(|t| t.data.first().copied())
            .unwrap_or(0.0)
    }

    fn finish(&self, raw: f32) -> f32 {
        squash(raw, self.meta.y_range)
    }

    /// Predicted ratings of the neural models (the expected rating for the classifier).
    fn predict_nn(&self, net: &Net, users: &[u32], items: &[u32]) -> Vec<f32> {
        let (uf, itf) = self.embedding_tables();
        let mut out = Vec::with_capacity(users.len());
        for (u, i) in users.chunks(4096).zip(items.chunks(4096)) {
            let z = net.forward(uf, itf, u, i);
            match (&self.meta.classes, self.meta.model) {
                (Some(classes), ModelKind::Classifier) => {
                    for row in z.rows() {
                        let (ev, _) = match row.as_slice() {
                            Some(r) => softmax_expectation(r, classes),
                            None => softmax_expectation(&row.to_vec(), classes),
                        };
                        out.push(ev);
                    }
                }
                _ => out.extend(z.column(0).iter().map(|&v| self.finish(v))),
            }
        }
        out
    }

    /// Predicted ratings for pairs of dense indices (for a ranking model, its ranking score).
    pub fn predict(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        assert_eq!(users.len(), items.len(), "one item per user");
        if let Some(net) = &self.nn {
            return self.predict_nn(net, users, items);
        }
        if let Some(b) = self.item_item() {
            return users
                .iter()
                .zip(items)
                .map(|(&u, &i)| {
                    self.user_items(u)
                        .iter()
                        .map(|&h| b[[h as usize, i as usize]])
                        .sum()
                })
                .collect();
        }
        let (uf, itf) = self.embedding_tables();
        let ub = self.user_bias();
        let ib = self.item_bias();
        let g = self.global_bias();
        users
            .iter()
            .zip(items)
            .map(|(&u, &i)| {
                let (u, i) = (u as usize, i as usize);
                let mut raw = uf.row(u).dot(&itf.row(i)) + g;
                if let (Some(ub), Some(ib)) = (ub, ib) {
                    raw += ub[u] + ib[i];
                }
                self.finish(raw)
            })
            .collect()
    }

    /// Predicted ratings of every item for each user in `users`: (users.len(), n_items),
    /// one matrix multiply per call.
    pub fn score_users(&self, users: &[u32]) -> Array2<f32> {
        if let Some(net) = &self.nn {
            let n = self.meta.n_items as usize;
            let all: Vec<u32> = (0..n as u32).collect();
            let mut scores = Array2::zeros((users.len(), n));
            for (r, &u) in users.iter().enumerate() {
                let p = self.predict_nn(net, &vec![u; n], &all);
                scores.row_mut(r).assign(&ArrayView1::from(&p));
            }
            return scores;
        }
        if let Some(b) = self.item_item() {
            // x_u · B: the sum of the rows of B of the user's training items.
            let mut scores = Array2::zeros((users.len(), b.ncols()));
            for (mut row, &u) in scores.axis_iter_mut(Axis(0)).zip(users) {
                for &h in self.user_items(u) {
                    row += &b.row(h as usize);
                }
            }
            return scores;
        }
        let (uf, itf) = self.embedding_tables();
        let rows = uf.select(
            Axis(0),
            &users.iter().map(|&u| u as usize).collect::<Vec<_>>(),
        );
        let mut scores = rows.dot(&itf.t());
        let g = self.global_bias();
        let ib: Option<ArrayView1<f32>> = self.item_bias().map(ArrayView1::from);
        let ub = self.user_bias();
        for (r, mut row) in scores.axis_iter_mut(Axis(0)).enumerate() {
            let add = g + ub.map_or(0.0, |b| b[users[r] as usize]);
            match &ib {
                Some(ib) => row.zip_mut_with(ib, |s, &b| *s = self.finish(*s + add + b)),
                None => row.mapv_inplace(|s| self.finish(s + add)),
            }
        }
        scores
    }

    /// The embedding tables (factorizations and neural models; validated at load).
    fn embedding_tables(&self) -> (ArrayView2<'_, f32>, ArrayView2<'_, f32>) {
        (
            self.user_factors().expect("validated at load"),
            self.item_factors().expect("validated at load"),
        )
    }
}

/// An item-item checkpoint's tensors checked — B is (n_items, n_items), the counts one per
/// user, every item index whole and in range — and the users' training items grouped.
fn item_item_history(ckpt: &Checkpoint, dir: &Path) -> Result<Csr<u32>> {
    let m = &ckpt.meta;
    let weights = dir.join(layout::train::WEIGHTS);
    let bad = |msg: String| CoreError::schema(&weights, msg);
    let get = |name: &str| {
        ckpt.get(name)
            .ok_or_else(|| bad(format!("missing tensor `{name}`")))
    };
    let (n_users, n_items) = (m.n_users as usize, m.n_items as usize);
    let b = get(tensor::ITEM_ITEM)?;
    if b.shape != [n_items, n_items] {
        return Err(bad(format!(
            "tensor `{}` has shape {:?}, expected [{n_items}, {n_items}]",
            tensor::ITEM_ITEM,
            b.shape
        )));
    }
    let counts = get(tensor::USER_ITEM_COUNTS)?;
    let items = get(tensor::USER_ITEMS)?;
    let whole = |v: f32, below: usize| v >= 0.0 && v.fract() == 0.0 && (v as usize) < below;
    if counts.shape != [n_users] || counts.data.iter().any(|&c| !whole(c, n_items + 1)) {
        return Err(bad(format!(
            "tensor `{}` must hold {n_users} whole counts of at most {n_items}",
            tensor::USER_ITEM_COUNTS
        )));
    }
    let total: usize = counts.data.iter().map(|&c| c as usize).sum();
    if items.shape != [total] || items.data.iter().any(|&i| !whole(i, n_items)) {
        return Err(bad(format!(
            "tensor `{}` must hold {total} item indices below {n_items}",
            tensor::USER_ITEMS
        )));
    }
    let owners = counts
        .data
        .iter()
        .enumerate()
        .flat_map(|(u, &c)| std::iter::repeat_n(u as u32, c as usize));
    let pairs = owners.zip(items.data.iter().map(|&i| i as u32));
    let mut history = Csr::group(n_users, pairs);
    history.sort_rows();
    Ok(history)
}
