//! Fixtures: the bundled ml-latest-small ratings as an ingest-shaped artifact, and small
//! hand-written catalogs for `predefined`.
#![allow(dead_code)]

use arrow_array::{
    ArrayRef, Float32Array, Int16Array, Int64Array, RecordBatch, StringArray, UInt32Array,
    builder::ListBuilder, builder::StringBuilder,
};
use recpipe_core::{Ratings, parquet_io, schema};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ml-latest-small")
}

/// ml-latest-small's ratings.csv with ids mapped densely in sorted order, plus the original
/// user and movie ids by idx.
pub struct Movielens {
    pub ratings: Ratings,
    pub user_ids: Vec<i64>,
    pub item_ids: Vec<i64>,
}

pub fn movielens() -> &'static Movielens {
    static ML: OnceLock<Movielens> = OnceLock::new();
    ML.get_or_init(|| {
        let text = std::fs::read_to_string(data_dir().join("ratings.csv")).unwrap();
        let rows: Vec<(i64, i64, f32, i64)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                )
            })
            .collect();
        let dense = |ids: BTreeMap<i64, u32>| -> (BTreeMap<i64, u32>, Vec<i64>) {
            let order: Vec<i64> = ids.keys().copied().collect();
            let map = order
                .iter()
                .enumerate()
                .map(|(i, &id)| (id, i as u32))
                .collect();
            (map, order)
        };
        let (users, user_ids) = dense(rows.iter().map(|r| (r.0, 0)).collect());
        let (items, item_ids) = dense(rows.iter().map(|r| (r.1, 0)).collect());
        let ratings = Ratings {
            user: rows.iter().map(|r| users[&r.0]).collect(),
            item: rows.iter().map(|r| items[&r.1]).collect(),
            rating: rows.iter().map(|r| r.2).collect(),
            timestamp: Some(rows.iter().map(|r| r.3).collect()),
            n_users: user_ids.len() as u32,
            n_items: item_ids.len() as u32,
        };
        Movielens {
            ratings,
            user_ids,
            item_ids,
        }
    })
}

/// A temp dir holding `ingest/` (ratings, users, items) and an empty `out/`.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
}

impl Fixture {
    pub fn ingest(&self) -> PathBuf {
        self.tmp.path().join("ingest")
    }
    pub fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    pub fn part(&self, name: &str) -> Ratings {
        Ratings::read(self.out().join(name)).unwrap()
    }
}

pub fn fixture(ratings: &Ratings, user_ids: &[i64], item_ids: &[i64]) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let fx = Fixture { tmp };
    std::fs::create_dir_all(fx.ingest()).unwrap();
    std::fs::create_dir_all(fx.out()).unwrap();
    ratings.write(fx.ingest().join("ratings.parquet")).unwrap();
    write_catalog(&fx.ingest(), user_ids, item_ids);
    fx
}

pub fn movielens_fixture() -> Fixture {
    let ml = movielens();
    fixture(&ml.ratings, &ml.user_ids, &ml.item_ids)
}

fn write_catalog(dir: &Path, user_ids: &[i64], item_ids: &[i64]) {
    let nu = user_ids.len();
    let users = RecordBatch::try_new(
        schema::with_metadata(schema::users(true, false), &[]),
        vec![
            Arc::new(UInt32Array::from_iter_values(0..nu as u32)) as ArrayRef,
            Arc::new(Int64Array::from(user_ids.to_vec())),
            Arc::new(UInt32Array::from(vec![1; nu])),
            Arc::new(Float32Array::from(vec![3.5; nu])),
        ],
    )
    .unwrap();
    parquet_io::write_batches(dir.join("users.parquet"), &[users]).unwrap();
    let ni = item_ids.len();
    let mut genres = ListBuilder::new(StringBuilder::new());
    for _ in 0..ni {
        genres.values().append_value("Drama");
        genres.append(true);
    }
    let genres = genres.finish();
    let genres = arrow_array::ListArray::new(
        match schema::genres_type() {
            arrow_schema::DataType::List(f) => f,
            _ => unreachable!(),
        },
        genres.offsets().clone(),
        genres.values().clone(),
        None,
    );
    let items = RecordBatch::try_new(
        schema::with_metadata(schema::items(true), &[]),
        vec![
            Arc::new(UInt32Array::from_iter_values(0..ni as u32)) as ArrayRef,
            Arc::new(Int64Array::from(item_ids.to_vec())),
            Arc::new(StringArray::from_iter_values(
                item_ids.iter().map(|i| format!("Movie {i}")),
            )),
            Arc::new(Int16Array::new_null(ni)),
            Arc::new(genres),
            Arc::new(UInt32Array::from(vec![1; ni])),
            Arc::new(Float32Array::from(vec![3.5; ni])),
        ],
    )
    .unwrap();
    parquet_io::write_batches(dir.join("items.parquet"), &[items]).unwrap();
}

/// Every rating as a sortable tuple (rating as bits: exact comparison).
pub fn tuples(r: &Ratings) -> Vec<(u32, u32, u32, i64)> {
    (0..r.len())
        .map(|i| {
            (
                r.user[i],
                r.item[i],
                r.rating[i].to_bits(),
                r.timestamp.as_ref().map_or(i64::MIN, |t| t[i]),
            )
        })
        .collect()
}
