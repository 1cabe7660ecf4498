//! Checkpoints (model.safetensors + model.json) and inference.
//!
//! Inference lives in core, not in the train crate, because evaluate and export must score a
//! trained model and stage crates never depend on each other. Training writes checkpoints
//! through [`Checkpoint::save`]; everything downstream reads them through [`Model::load`].

use crate::error::{CoreError, Result};
use crate::fsutil::{read_json, write_atomic, write_json};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const META_FILE: &str = "model.json";

/// model.json: what a reader needs to rebuild the model without the train config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    /// "dot" | "dot_bias" | "autorec" | "blend" | "mlp" | "hybrid" | "classifier"
    pub model: String,
    pub n_users: u32,
    pub n_items: u32,
    /// Embedding dimension.
    pub k: usize,
    /// Output squashed to `lo + (hi - lo) * sigmoid(x)` when set.
    pub y_range: Option<[f32; 2]>,
    /// Mean rating of the training data.
    pub global_mean: f32,
    /// Rating values of the classes (classifier only), in class order.
    #[serde(default)]
    pub classes: Option<Vec<f32>>,
    #[serde(default)]
    pub best_epoch: Option<u32>,
    #[serde(default)]
    pub device: String,
    /// The full train config, for the record.
    #[serde(default)]
    pub config: serde_json::Value,
}

impl ModelMeta {
    /// Models whose checkpoint is a factorization — score = user_factors · item_factors
    /// (+ biases, squashed into y_range) — so all-item scoring is one matrix product.
    /// `autorec` is saved in this form (its item factors are the items' codes), and so is a
    /// `blend` of such models (their factors side by side).
    pub fn is_factorization(&self) -> bool {
        matches!(
            self.model.as_str(),
            "dot" | "dot_bias" | "autorec" | "blend"
        )
    }
}

/// A named f32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }
    pub fn from_array2(a: &Array2<f32>) -> Self {
        Tensor {
            shape: a.shape().to_vec(),
            data: a.iter().copied().collect(),
        }
    }
    pub fn view2(&self) -> Option<ArrayView2<'_, f32>> {
        match self.shape.as_slice() {
            [r, c] => ArrayView2::from_shape((*r, *c), &self.data).ok(),
            _ => None,
        }
    }
}

/// Tensors by name plus the model metadata: what a checkpoint directory holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub meta: ModelMeta,
    pub tensors: BTreeMap<String, Tensor>,
}

impl Checkpoint {
    /// Write model.safetensors and model.json into `dir`, atomically. Refuses non-finite
    /// weights so a diverged run can never leave a usable-looking checkpoint.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let weights = dir.join(WEIGHTS_FILE);
        if let Some((name, _)) = self
            .tensors
            .iter()
            .find(|(_, t)| t.data.iter().any(|v| !v.is_finite()))
        {
            return Err(CoreError::schema(
                &weights,
                format!("tensor `{name}` holds NaN or infinite values; not saving"),
            ));
        }
        let bytes: BTreeMap<&str, Vec<u8>> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.as_str(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = self
            .tensors
            .iter()
            .map(|(n, t)| {
                TensorView::new(Dtype::F32, t.shape.clone(), &bytes[n.as_str()])
                    .map(|v| (n.clone(), v))
                    .map_err(|e| CoreError::schema(&weights, format!("tensor `{n}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut info = std::collections::HashMap::new();
        info.insert("recpipe.version".to_string(), crate::VERSION.to_string());
        info.insert("model".to_string(), self.meta.model.clone());
        let buf = safetensors::serialize(views, Some(info))
            .map_err(|e| CoreError::schema(&weights, e.to_string()))?;
        write_atomic(&weights, &buf)?;
        write_json(dir.join(META_FILE), &self.meta)?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Checkpoint> {
        let meta: ModelMeta = read_json(dir.join(META_FILE))?;
        let weights = dir.join(WEIGHTS_FILE);
        let buf = std::fs::read(&weights).map_err(|e| CoreError::io(&weights, e))?;
        let st = SafeTensors::deserialize(&buf)
            .map_err(|e| CoreError::schema(&weights, e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for name in st.names() {
            let view = st
                .tensor(name)
                .map_err(|e| CoreError::schema(&weights, e.to_string()))?;
            if view.dtype() != Dtype::F32 {
                return Err(CoreError::schema(
                    &weights,
                    format!("tensor `{name}` is {:?}, expected F32", view.dtype()),
                ));
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            tensors.insert(name.to_string(), Tensor::new(view.shape().to_vec(), data));
        }
        Ok(Checkpoint { meta, tensors })
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
}

/// A trained model ready to score (user_idx, item_idx) pairs.
#[derive(Debug, Clone)]
pub struct Model {
    pub meta: ModelMeta,
    ckpt: Checkpoint,
    /// The dense layers of mlp / hybrid / classifier, validated and BatchNorm folded.
    nn: Option<Net>,
}

/// BatchNorm epsilon used by training (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

/// One dense layer in evaluation mode: z = x·Wᵀ + b, BatchNorm folded to z·scale + shift.
#[derive(Debug, Clone)]
struct Layer {
    w: Array2<f32>,
    b: ndarray::Array1<f32>,
    bn: Option<(ndarray::Array1<f32>, ndarray::Array1<f32>)>,
    relu: bool,
}

impl Layer {
    fn read(ckpt: &Checkpoint, prefix: &str, relu: bool, path: &Path) -> Result<Option<Layer>> {
        let Some(w) = ckpt.get(&format!("{prefix}.weight")) else {
            return Ok(None);
        };
        let bad = |m: String| CoreError::schema(path, format!("{prefix}: {m}"));
        let w = w
            .view2()
            .ok_or_else(|| bad("weight must be 2-d".into()))?
            .to_owned();
        let vec = |name: &str| -> Result<ndarray::Array1<f32>> {
            let t = ckpt
                .get(&format!("{prefix}.{name}"))
                .ok_or_else(|| bad(format!("missing `{name}`")))?;
            if t.data.len() != w.nrows() {
                return Err(bad(format!(
                    "`{name}` has {} values, expected {}",
                    t.data.len(),
                    w.nrows()
                )));
            }
            Ok(ndarray::Array1::from(t.data.clone()))
        };
        let b = vec("bias")?;
        let bn = if ckpt.get(&format!("{prefix}.bn.weight")).is_some() {
            let (g, be) = (vec("bn.weight")?, vec("bn.bias")?);
            let (rm, rv) = (vec("bn.running_mean")?, vec("bn.running_var")?);
            let scale = &g / &rv.mapv(|v| (v + BN_EPS).sqrt());
            let shift = &be - &(&rm * &scale);
            Some((scale, shift))
        } else {
            None
        };
        Ok(Some(Layer { w, b, bn, relu }))
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
struct Net {
    product: bool,
    tower: Vec<Layer>,
    layers: Vec<Layer>,
    /// Frozen item features (hybrid), (n_items, width).
    features: Option<Array2<f32>>,
}

impl Net {
    fn read(ckpt: &Checkpoint, dir: &Path) -> Result<Net> {
        let path = dir.join(WEIGHTS_FILE);
        let m = &ckpt.meta;
        let product = m.config.get("join").and_then(|j| j.as_str()) == Some("product");
        let mut tower = Vec::new();
        while let Some(l) = Layer::read(ckpt, &format!("item_tower.{}", tower.len()), true, &path)?
        {
            tower.push(l);
        }
        let mut layers = Vec::new();
        while let Some(l) = Layer::read(ckpt, &format!("layers.{}", layers.len()), true, &path)? {
            layers.push(l);
        }
        let out = Layer::read(ckpt, "output", false, &path)?
            .ok_or_else(|| CoreError::schema(&path, "missing tensor `output.weight`"))?;
        layers.push(out);
        let features = match ckpt.get("item_features") {
            Some(t) => Some(
                t.view2()
                    .filter(|v| v.nrows() == m.n_items as usize)
                    .ok_or_else(|| {
                        CoreError::schema(&path, "`item_features` must be (n_items, width)")
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
                "item tower without `item_features`",
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
        let n_out = match &m.classes {
            Some(c) if m.model == "classifier" => c.len(),
            _ => 1,
        };
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
    fn forward(
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

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Model {
    pub fn load(dir: &Path) -> Result<Model> {
        Self::from_checkpoint(Checkpoint::load(dir)?, dir)
    }

    /// Validate that a checkpoint has what its model kind needs.
    pub fn from_checkpoint(ckpt: Checkpoint, dir: &Path) -> Result<Model> {
        let m = &ckpt.meta;
        let need2 = |name: &str, rows: u32| -> Result<()> {
            match ckpt.get(name) {
                Some(t) if t.shape == [rows as usize, m.k] => Ok(()),
                Some(t) => Err(CoreError::schema(
                    dir.join(WEIGHTS_FILE),
                    format!(
                        "tensor `{name}` has shape {:?}, expected [{rows}, {}]",
                        t.shape, m.k
                    ),
                )),
                None => Err(CoreError::schema(
                    dir.join(WEIGHTS_FILE),
                    format!("missing tensor `{name}`"),
                )),
            }
        };
        let mut nn = None;
        match m.model.as_str() {
            "dot" | "dot_bias" | "autorec" | "blend" => {
                need2("user_factors", m.n_users)?;
                need2("item_factors", m.n_items)?;
            }
            "mlp" | "hybrid" | "classifier" => {
                need2("user_factors", m.n_users)?;
                need2("item_factors", m.n_items)?;
                if m.model == "classifier" && m.classes.as_ref().is_none_or(|c| c.is_empty()) {
                    return Err(CoreError::schema(
                        dir.join(META_FILE),
                        "a classifier needs `classes`",
                    ));
                }
                nn = Some(Net::read(&ckpt, dir)?);
            }
            other => {
                return Err(CoreError::schema(
                    dir.join(META_FILE),
                    format!("unknown model kind `{other}`"),
                ));
            }
        }
        Ok(Model {
            meta: ckpt.meta.clone(),
            ckpt,
            nn,
        })
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.ckpt
    }

    /// (n_users, k) user embedding table.
    pub fn user_factors(&self) -> Option<ArrayView2<'_, f32>> {
        self.ckpt.get("user_factors").and_then(Tensor::view2)
    }

    /// (n_items, k) item embedding table.
    pub fn item_factors(&self) -> Option<ArrayView2<'_, f32>> {
        self.ckpt.get("item_factors").and_then(Tensor::view2)
    }

    pub fn user_bias(&self) -> Option<&[f32]> {
        self.ckpt.get("user_bias").map(|t| t.data.as_slice())
    }

    pub fn item_bias(&self) -> Option<&[f32]> {
        self.ckpt.get("item_bias").map(|t| t.data.as_slice())
    }

    fn global_bias(&self) -> f32 {
        self.ckpt
            .get("global_bias")
            .and_then(|t| t.data.first().copied())
            .unwrap_or(0.0)
    }

    fn finish(&self, raw: f32) -> f32 {
        match self.meta.y_range {
            Some([lo, hi]) => lo + (hi - lo) * sigmoid(raw),
            None => raw,
        }
    }

    /// Predicted ratings of the neural models (the expected rating for the classifier).
    fn predict_nn(&self, net: &Net, users: &[u32], items: &[u32]) -> Vec<f32> {
        let (uf, itf) = self.embedding_tables();
        let mut out = Vec::with_capacity(users.len());
        for (u, i) in users.chunks(4096).zip(items.chunks(4096)) {
            let z = net.forward(uf, itf, u, i);
            match (&self.meta.classes, self.meta.model.as_str()) {
                (Some(classes), "classifier") => {
                    for row in z.rows() {
                        let max = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                        let (mut sum, mut ev) = (0.0f32, 0.0f32);
                        for (c, &v) in row.iter().enumerate() {
                            let e = (v - max).exp();
                            sum += e;
                            ev += e * classes[c];
                        }
                        out.push(ev / sum);
                    }
                }
                _ => out.extend(z.column(0).iter().map(|&v| self.finish(v))),
            }
        }
        out
    }

    /// Predicted ratings for pairs of dense indices.
    pub fn predict(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        assert_eq!(users.len(), items.len(), "one item per user");
        if let Some(net) = &self.nn {
            return self.predict_nn(net, users, items);
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
                scores.row_mut(r).assign(&ndarray::ArrayView1::from(&p));
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

    fn embedding_tables(&self) -> (ArrayView2<'_, f32>, ArrayView2<'_, f32>) {
        (
            self.user_factors().expect("validated at load"),
            self.item_factors().expect("validated at load"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(y_range: Option<[f32; 2]>) -> Checkpoint {
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "user_factors".into(),
            Tensor::new(vec![2, 2], vec![1.0, 0.0, 0.5, -1.0]),
        );
        tensors.insert(
            "item_factors".into(),
            Tensor::new(vec![3, 2], vec![2.0, 1.0, 0.0, 1.0, -1.0, 0.5]),
        );
        tensors.insert("user_bias".into(), Tensor::new(vec![2], vec![0.1, -0.2]));
        tensors.insert(
            "item_bias".into(),
            Tensor::new(vec![3], vec![0.0, 0.3, -0.3]),
        );
        tensors.insert("global_bias".into(), Tensor::new(vec![1], vec![3.5]));
        Checkpoint {
            meta: ModelMeta {
                model: "dot_bias".into(),
                n_users: 2,
                n_items: 3,
                k: 2,
                y_range,
                global_mean: 3.5,
                classes: None,
                best_epoch: Some(1),
                device: "cpu".into(),
                config: serde_json::Value::Null,
            },
            tensors,
        }
    }

    #[test]
    fn dot_bias_predictions_match_hand_computation_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = toy(None);
        ckpt.save(dir.path()).unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), ckpt);
        let m = Model::load(dir.path()).unwrap();
        // user 1 · item 0 = 0.5*2 + -1*1 = 0; + 3.5 - 0.2 + 0.0
        let p = m.predict(&[1, 0], &[0, 2]);
        assert!((p[0] - 3.3).abs() < 1e-6, "{p:?}");
        // user 0 · item 2 = -1; + 3.5 + 0.1 - 0.3
        assert!((p[1] - 2.3).abs() < 1e-6, "{p:?}");
        let all = m.score_users(&[1, 0]);
        assert_eq!(all.shape(), &[2, 3]);
        let pairs = m.predict(&[1, 1, 1, 0, 0, 0], &[0, 1, 2, 0, 1, 2]);
        for (a, b) in all.iter().zip(&pairs) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn y_range_squashes_into_range() {
        let dir = tempfile::tempdir().unwrap();
        toy(Some([0.5, 5.0])).save(dir.path()).unwrap();
        let m = Model::load(dir.path()).unwrap();
        let s = m.score_users(&[0, 1]);
        assert!(s.iter().all(|&v| v > 0.5 && v < 5.0));
        let raw = 3.5 + 0.1 + 0.0 + 2.0;
        let expect = 0.5 + 4.5 / (1.0 + (-raw as f32).exp());
        assert!((s[[0, 0]] - expect).abs() < 1e-6);
    }

    #[test]
    fn nan_weights_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut ckpt = toy(None);
        ckpt.tensors.get_mut("user_bias").unwrap().data[0] = f32::NAN;
        let err = ckpt.save(dir.path()).unwrap_err().to_string();
        assert!(err.contains("user_bias"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn wrong_shapes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut ckpt = toy(None);
        ckpt.meta.n_items = 4;
        ckpt.save(dir.path()).unwrap();
        let err = Model::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("item_factors"), "{err}");
    }
}
