//! Item content features for `hybrid`: genres multi-hot from the ingest artifact's items
//! table, and/or a frozen dense vector per item from a user-given Parquet file.

use crate::config::Config;
use crate::error::{Result, TrainError};
use arrow_array::{Array, FixedSizeListArray, Float32Array};
use arrow_schema::DataType;
use recpipe_core::Inputs;
use recpipe_core::parquet_io::read_batches;
use recpipe_core::ratings::{Catalog, Ids};
use std::path::Path;

/// (width, n_items × width) features, rows by dense item idx.
pub fn item_features(cfg: &Config, inputs: &Inputs, n_items: usize) -> Result<(usize, Vec<f32>)> {
    let ingest = inputs.nearest("ingest").map_err(|_| {
        TrainError::config(
            "model",
            "`hybrid` reads item genres and ids from the ingest stage; \
             add an ingest stage upstream of this train stage",
        )
    })?;
    let catalog = Catalog::read(&ingest.dir)?;
    let mut parts: Vec<(usize, Vec<f32>)> = Vec::new();
    if cfg.genres {
        parts.push(genres(&catalog, n_items));
    }
    if let Some(path) = &cfg.item_features_file {
        parts.push(from_file(path, &catalog.item_ids, n_items)?);
    }
    let width: usize = parts.iter().map(|p| p.0).sum();
    if width == 0 {
        return Err(TrainError::config(
            "genres",
            "the items have no genres and no item_features_file is set; \
             `hybrid` has no item features to use (train `mlp` instead)",
        ));
    }
    let mut out = vec![0.0f32; n_items * width];
    let mut off = 0;
    for (w, v) in &parts {
        for i in 0..n_items {
            out[i * width + off..i * width + off + w].copy_from_slice(&v[i * w..(i + 1) * w]);
        }
        off += w;
    }
    Ok((width, out))
}

fn genres(catalog: &Catalog, n_items: usize) -> (usize, Vec<f32>) {
    let mut names: Vec<&str> = catalog
        .genres
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|g| *g != "(no genres listed)")
        .collect();
    names.sort_unstable();
    names.dedup();
    let w = names.len();
    let mut v = vec![0.0f32; n_items * w];
    for (i, gs) in catalog.genres.iter().enumerate().take(n_items) {
        for g in gs {
            if let Ok(j) = names.binary_search(&g.as_str()) {
                v[i * w + j] = 1.0;
            }
        }
    }
    (w, v)
}

fn from_file(path: &Path, ids: &Ids, n_items: usize) -> Result<(usize, Vec<f32>)> {
    let err = |message: String| TrainError::Data {
        path: path.to_path_buf(),
        message: format!("{message} (from `item_features_file`)"),
    };
    let (schema, batches) = read_batches(path)?;
    let id_col = schema
        .index_of("item_id")
        .map_err(|_| err("no `item_id` column".into()))?;
    let (vec_col, width) = schema
        .fields()
        .iter()
        .enumerate()
        .find_map(|(i, f)| match f.data_type() {
            DataType::FixedSizeList(inner, n) if inner.data_type() == &DataType::Float32 => {
                Some((i, *n as usize))
            }
            _ => None,
        })
        .ok_or_else(|| err("no FixedSizeList<f32> column of features".into()))?;
    let index = ids.index();
    let mut v = vec![0.0f32; n_items * width];
    let mut unknown = 0usize;
    for b in &batches {
        let idc = b.column(id_col);
        let key = |r: usize| -> Option<String> {
            if let Some(a) = idc.as_any().downcast_ref::<arrow_array::Int64Array>() {
                Some(a.value(r).to_string())
            } else if let Some(a) = idc.as_any().downcast_ref::<arrow_array::Int32Array>() {
                Some(a.value(r).to_string())
            } else {
                idc.as_any()
                    .downcast_ref::<arrow_array::StringArray>()
                    .map(|a| a.value(r).to_string())
            }
        };
        let list = b
            .column(vec_col)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .ok_or_else(|| err("feature column is not a FixedSizeList".into()))?;
        let values = list
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| err("feature values are not f32".into()))?;
        for r in 0..b.num_rows() {
            let id = key(r).ok_or_else(|| err("`item_id` must be an integer or string".into()))?;
            match index.get(&id).map(|&i| i as usize).filter(|&i| i < n_items) {
                Some(i) => {
                    let start = list.value_offset_at(r);
                    let src = &values.values()[start..start + width];
                    if src.iter().any(|x| !x.is_finite()) {
                        return Err(err(format!("row {}: item {id} has a NaN feature", r + 1)));
                    }
                    v[i * width..(i + 1) * width].copy_from_slice(src);
                }
                None => unknown += 1,
            }
        }
    }
    if unknown > 0 {
        tracing::warn!(
            "{}: {unknown} rows name items not in the ratings; ignored",
            path.display()
        );
    }
    Ok((width, v))
}
