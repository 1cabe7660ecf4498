//! Builders for the stage crates' tests and benches (the `test-utils` feature, enabled from
//! their dev-dependencies): the bundled MovieLens ratings in memory, model metadata and
//! factorization checkpoints, catalog tables, and an artifact folder's file list.
//!
//! The bundled ratings stand in for an ingest run, since stage crates may not depend on the
//! ingest crate. Ids are dense in first-seen order; the file is trusted (it ships with the
//! repository), so this is no substitute for ingest.

use crate::layout;
use crate::model::{Checkpoint, ModelKind, ModelMeta, Tensor, tensor};
use crate::parquet_io::write_batches;
use crate::ratings::{Ids, Ratings};
use crate::rng::SplitMix64;
use crate::schema;
use crate::stage::Artifact;
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float32Array, Int16Array, RecordBatch, StringArray, UInt32Array};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// data/ml-latest-small/ratings.csv in the workspace (under `RECPIPE_WORKSPACE_ROOT` when
/// set: test binaries carried to another machine by `just gpu-bundle`).
pub fn bundled_ratings_path() -> PathBuf {
    if let Some(root) = std::env::var_os("RECPIPE_WORKSPACE_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(root).join("data/ml-latest-small/ratings.csv");
    }
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

/// A tensor filler for [`factorization`]: uniform values in `[-half_width, half_width)` from
/// one seeded stream, for tests and benches where the values do not matter.
pub fn uniform(seed: u64, half_width: f32) -> impl FnMut(&str, usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    move |_, n| {
        (0..n)
            .map(|_| ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * half_width)
            .collect()
    }
}

/// An upstream artifact as the runner passes it to a stage.
pub fn artifact(stage: &str, kind: &str, dir: &Path) -> Artifact {
    Artifact {
        stage: stage.into(),
        kind: kind.into(),
        dir: dir.to_path_buf(),
    }
}

/// An ingest folder's id maps (users.parquet, items.parquet) to write in a test. [`new`]
/// gives every field a default; change the fields a test is about.
///
/// [`new`]: TestCatalog::new
#[derive(Debug, Clone)]
pub struct TestCatalog {
    pub user_ids: Ids,
    pub user_ratings: Vec<u32>,
    pub item_ids: Vec<i64>,
    pub titles: Vec<Option<String>>,
    pub years: Vec<Option<i16>>,
    pub genres: Vec<Vec<&'static str>>,
    pub item_ratings: Vec<u32>,
    /// Every user's and item's mean rating.
    pub mean_rating: f32,
}

impl TestCatalog {
    /// Users with ids `first_user_id..`, items with ids `first_item_id..` titled
    /// `Movie {i} ({year})`, all dramas of `year`; one rating each, mean 3.5.
    pub fn new(
        (n_users, first_user_id): (usize, i64),
        (n_items, first_item_id): (usize, i64),
        year: i16,
    ) -> Self {
        TestCatalog {
            user_ids: Ids::Int((0..n_users as i64).map(|u| first_user_id + u).collect()),
            user_ratings: vec![1; n_users],
            item_ids: (0..n_items as i64).map(|i| first_item_id + i).collect(),
            titles: (0..n_items)
                .map(|i| Some(format!("Movie {i} ({year})")))
                .collect(),
            years: vec![Some(year); n_items],
            genres: vec![vec!["Drama"]; n_items],
            item_ratings: vec![1; n_items],
            mean_rating: 3.5,
        }
    }

    /// users.parquet's rows.
    pub fn users(&self) -> RecordBatch {
        let n = self.user_ids.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from_iter_values(0..n as u32)),
            self.user_ids.to_array(),
            Arc::new(UInt32Array::from(self.user_ratings.clone())),
            Arc::new(Float32Array::from(vec![self.mean_rating; n])),
        ];
        let schema = schema::users(self.user_ids.is_numeric(), false);
        RecordBatch::try_new(Arc::new(schema), columns).expect("users columns match the schema")
    }

    /// items.parquet's rows.
    pub fn items(&self) -> RecordBatch {
        let n = self.item_ids.len();
        let mut genres = ListBuilder::new(StringBuilder::new());
        for g in &self.genres {
            for name in g {
                genres.values().append_value(name);
            }
            genres.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from_iter_values(0..n as u32)),
            Ids::Int(self.item_ids.clone()).to_array(),
            Arc::new(StringArray::from(self.titles.clone())),
            Arc::new(Int16Array::from(self.years.clone())),
            Arc::new(genres.finish()),
            Arc::new(UInt32Array::from(self.item_ratings.clone())),
            Arc::new(Float32Array::from(vec![self.mean_rating; n])),
        ];
        let schema = schema::items(true);
        RecordBatch::try_new(Arc::new(schema), columns).expect("items columns match the schema")
    }

    /// Writes users.parquet and items.parquet into `ingest_dir` (created if missing).
    pub fn write(&self, ingest_dir: &Path) {
        write_batches(ingest_dir.join(layout::ingest::USERS), &[self.users()]).unwrap();
        write_batches(ingest_dir.join(layout::ingest::ITEMS), &[self.items()]).unwrap();
    }
}
