//! Builders for the stage crates' tests and benches (the `test-utils` feature, enabled from
//! their dev-dependencies): the bundled MovieLens ratings in memory, model metadata and
//! factorization checkpoints, catalog tables, and an artifact folder's file list.
//!
//! The bundled ratings stand in for an ingest run, since stage crates may not depend on the
//! ingest crate. Ids are dense in first-seen order; the file is trusted (it ships with the
//! repository), so this is no substitute for ingest.

use crate::model::{Checkpoint, ModelKind, ModelMeta, Tensor, tensor};
use crate::ratings::Ratings;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// data/ml-latest-small/ratings.csv in the workspace.
pub fn bundled_ratings_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/ml-latest-small/ratings.csv"
    ))
}

/// Every rating of the bundled file, users and items numbered in first-seen order.
pub fn bundled_ratings() -> Ratings {
    let path = bundled_ratings_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut users, mut items) = (HashMap::new(), HashMap::new());
    let mut r = Ratings::default();
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut f = line.split(',');
        let mut field = || {
            f.next()
                .unwrap_or_else(|| panic!("{}:{}: short line", path.display(), n + 1))
        };
        let (u, i, v) = (field(), field(), field());
        let next = users.len() as u32;
        r.user.push(*users.entry(u.to_string()).or_insert(next));
        let next = items.len() as u32;
        r.item.push(*items.entry(i.to_string()).or_insert(next));
        r.rating.push(
            v.parse()
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1)),
        );
    }
    r.n_users = users.len() as u32;
    r.n_items = items.len() as u32;
    r
}

/// Test metadata: `ModelMeta::new` as trained on the cpu. Override the rest with struct update
/// syntax (`ModelMeta { y_range, ..meta(ModelKind::DotBias, 7, 13, 4) }`).
pub fn meta(kind: ModelKind, n_users: u32, n_items: u32, k: usize) -> ModelMeta {
    ModelMeta {
        device: "cpu".into(),
        ..ModelMeta::new(kind, n_users, n_items, k)
    }
}

/// A factorization checkpoint for `meta`: user and item factors, plus (dot_bias) the user and
/// item biases and a global bias of `meta.global_mean`. `values(name, len)` fills each tensor,
/// called in the order user factors, item factors, user bias, item bias.
pub fn factorization(
    meta: ModelMeta,
    mut values: impl FnMut(&str, usize) -> Vec<f32>,
) -> Checkpoint {
    let (nu, ni, k) = (meta.n_users as usize, meta.n_items as usize, meta.k);
    let mut shapes = vec![
        (tensor::USER_FACTORS, vec![nu, k]),
        (tensor::ITEM_FACTORS, vec![ni, k]),
    ];
    if meta.model == ModelKind::DotBias {
        shapes.push((tensor::USER_BIAS, vec![nu]));
        shapes.push((tensor::ITEM_BIAS, vec![ni]));
    }
    let mut tensors = BTreeMap::new();
    for (name, shape) in shapes {
        let data = values(name, shape.iter().product());
        tensors.insert(name.to_string(), Tensor::new(shape, data));
    }
    if meta.model == ModelKind::DotBias {
        let g = Tensor::new(vec![1], vec![meta.global_mean]);
        tensors.insert(tensor::GLOBAL_BIAS.to_string(), g);
    }
    Checkpoint { meta, tensors }
}

/// The file names in `dir`, sorted: what an artifact folder holds.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
