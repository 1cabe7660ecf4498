//! A checkpoint directory: the tensors (model.safetensors) and the metadata (model.json),
//! written atomically and read back with their types checked.

use super::meta::ModelMeta;
use crate::error::{CoreError, Result};
use crate::fsutil::{read_json, write_atomic, write_json};
use crate::layout;
use crate::schema;
use ndarray::{Array2, ArrayView2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

/// The safetensors header key recording the model kind (as in model.json); the recpipe
/// version that wrote the file is under [`schema::META_VERSION`], as in Parquet files.
pub const MODEL_KEY: &str = "model";

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
        let weights = dir.join(layout::train::WEIGHTS);
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
        info.insert(schema::META_VERSION.to_string(), crate::VERSION.to_string());
        info.insert(MODEL_KEY.to_string(), self.meta.model.name().to_string());
        let buf = safetensors::serialize(views, Some(info))
            .map_err(|e| CoreError::schema(&weights, e.to_string()))?;
        write_atomic(&weights, &buf)?;
        write_json(dir.join(layout::train::META), &self.meta)?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Checkpoint> {
        let meta: ModelMeta = read_json(dir.join(layout::train::META))?;
        let weights = dir.join(layout::train::WEIGHTS);
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
