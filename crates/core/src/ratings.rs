//! In-memory ratings (struct of arrays) and the id maps that join dense indices back to the
//! source's original ids.

use crate::error::{CoreError, Result};
use crate::layout;
use crate::parquet_io::{ParquetSink, column, read_batches, stream_batches};
use crate::schema;
use arrow_array::{
    Array, ArrayRef, Float32Array, Int64Array, ListArray, RecordBatch, StringArray, UInt32Array,
};
use std::path::Path;
use std::sync::Arc;

/// Ratings as parallel columns. `timestamp` is `None` when the source had none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ratings {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub rating: Vec<f32>,
    pub timestamp: Option<Vec<i64>>,
    /// Size of the dense user id space (may exceed max(user)+1 in a split).
    pub n_users: u32,
    pub n_items: u32,
}

impl Ratings {
    pub fn len(&self) -> usize {
        self.user.len()
    }
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Ratings {
        Ratings {
            user: idx.iter().map(|&i| self.user[i]).collect(),
            item: idx.iter().map(|&i| self.item[i]).collect(),
            rating: idx.iter().map(|&i| self.rating[i]).collect(),
            timestamp: self
                .timestamp
                .as_ref()
                .map(|t| idx.iter().map(|&i| t[i]).collect()),
            n_users: self.n_users,
            n_items: self.n_items,
        }
    }

    pub fn mean_rating(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.rating.iter().map(|&r| r as f64).sum::<f64>() / self.len() as f64
    }

    pub(crate) fn batch(
        &self,
        range: std::ops::Range<usize>,
        schema: &arrow_schema::SchemaRef,
    ) -> RecordBatch {
        let ts: ArrayRef = match &self.timestamp {
            Some(t) => Arc::new(Int64Array::from(t[range.clone()].to_vec())),
            None => Arc::new(Int64Array::new_null(range.len())),
        };
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt32Array::from(self.user[range.clone()].to_vec())),
                Arc::new(UInt32Array::from(self.item[range.clone()].to_vec())),
                Arc::new(Float32Array::from(self.rating[range].to_vec())),
                ts,
            ],
        )
        .expect("columns match the ratings schema")
    }

    /// Write with the ratings schema; n_users / n_items go into the schema metadata.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let schema = schema::with_metadata(
            schema::ratings(),
            &[
                (schema::META_N_USERS, self.n_users.to_string()),
                (schema::META_N_ITEMS, self.n_items.to_string()),
            ],
        );
        let mut sink = ParquetSink::create(path, schema.clone())?;
        let mut start = 0;
        loop {
            let end = (start + crate::parquet_io::ROW_GROUP_ROWS).min(self.len());
            sink.write(&self.batch(start..end, &schema))?;
            start = end;
            if start >= self.len() {
                break;
            }
        }
        sink.finish()?;
        Ok(())
    }

    /// Read a ratings-shaped table (ratings, train, valid, test).
    pub fn read(path: impl AsRef<Path>) -> Result<Ratings> {
        let path = path.as_ref();
        // Batch by batch into the columns, so the Arrow batches and the columns are never
        // both held whole (twice the table at the peak).
        let (schema, batches) = stream_batches(path)?;
        let mut r = Ratings::default();
        let mut any_null_ts = false;
        let mut ts = Vec::new();
        for b in batches {
            let b = &b.map_err(|e| CoreError::Arrow {
                path: path.to_path_buf(),
                source: e,
            })?;
            r.user
                .extend_from_slice(column::<UInt32Array>(b, "user_idx", path)?.values());
            r.item
                .extend_from_slice(column::<UInt32Array>(b, "item_idx", path)?.values());
            r.rating
                .extend_from_slice(column::<Float32Array>(b, "rating", path)?.values());
            let t = column::<Int64Array>(b, "timestamp", path)?;
            any_null_ts |= t.null_count() > 0;
            ts.extend_from_slice(t.values());
        }
        r.timestamp = (!any_null_ts).then_some(ts);
        let meta = |k: &str| schema.metadata().get(k).and_then(|v| v.parse::<u32>().ok());
        r.n_users =
            meta(schema::META_N_USERS).unwrap_or_else(|| r.user.iter().max().map_or(0, |m| m + 1));
        r.n_items =
            meta(schema::META_N_ITEMS).unwrap_or_else(|| r.item.iter().max().map_or(0, |m| m + 1));
        if r.user.iter().any(|&u| u >= r.n_users) || r.item.iter().any(|&i| i >= r.n_items) {
            return Err(CoreError::schema(
                path,
                "a user_idx or item_idx is outside the id space recorded in the metadata",
            ));
        }
        Ok(r)
    }
}

/// Original ids, indexed by dense idx.
#[derive(Debug, Clone, PartialEq)]
pub enum Ids {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl Ids {
    pub fn len(&self) -> usize {
        match self {
            Ids::Int(v) => v.len(),
            Ids::Str(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn is_numeric(&self) -> bool {
        matches!(self, Ids::Int(_))
    }
    /// The id as text, as the user would type it.
    pub fn display(&self, idx: usize) -> String {
        match self {
            Ids::Int(v) => v[idx].to_string(),
            Ids::Str(v) => v[idx].clone(),
        }
    }
    pub fn to_array(&self) -> ArrayRef {
        match self {
            Ids::Int(v) => Arc::new(Int64Array::from(v.clone())),
            Ids::Str(v) => Arc::new(StringArray::from_iter_values(v)),
        }
    }
    /// The ids at `idx`, as an Arrow array of the same type.
    pub fn take(&self, idx: &[u32]) -> ArrayRef {
        match self {
            Ids::Int(v) => Arc::new(Int64Array::from_iter_values(
                idx.iter().map(|&i| v[i as usize]),
            )),
            Ids::Str(v) => Arc::new(StringArray::from_iter_values(
                idx.iter().map(|&i| v[i as usize].as_str()),
            )),
        }
    }
    fn extend_from(&mut self, array: &dyn Array, path: &Path, name: &str) -> Result<()> {
        match self {
            Ids::Int(v) => {
                let a = array.as_any().downcast_ref::<Int64Array>().ok_or_else(|| {
                    CoreError::schema(path, format!("column `{name}` has an unexpected type"))
                })?;
                v.extend_from_slice(a.values());
            }
            Ids::Str(v) => {
                let a = array
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| {
                        CoreError::schema(path, format!("column `{name}` has an unexpected type"))
                    })?;
                v.extend(a.iter().map(|s| s.unwrap_or_default().to_string()));
            }
        }
        Ok(())
    }
    /// A map from the id as text to its dense idx.
    pub fn index(&self) -> std::collections::HashMap<String, u32> {
        (0..self.len())
            .map(|i| (self.display(i), i as u32))
            .collect()
    }
}

fn read_ids(path: &Path, idx_col: &str, id_col: &str) -> Result<(Ids, Vec<RecordBatch>)> {
    let (schema, batches) = read_batches(path)?;
    let field = schema
        .field_with_name(id_col)
        .map_err(|_| CoreError::schema(path, format!("missing column `{id_col}`")))?;
    let mut ids = match field.data_type() {
        arrow_schema::DataType::Int64 => Ids::Int(Vec::new()),
        _ => Ids::Str(Vec::new()),
    };
    let mut expected = 0u32;
    for b in &batches {
        let idx = column::<UInt32Array>(b, idx_col, path)?;
        for &i in idx.values() {
            if i != expected {
                return Err(CoreError::schema(
                    path,
                    format!("`{idx_col}` must be 0..n-1 in order; found {i} at row {expected}"),
                ));
            }
            expected += 1;
        }
        let col = b
            .column_by_name(id_col)
            .ok_or_else(|| CoreError::schema(path, format!("missing column `{id_col}`")))?;
        ids.extend_from(col.as_ref(), path, id_col)?;
    }
    Ok((ids, batches))
}

/// The users and items tables of an ingest artifact: original ids, titles and genres by idx.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub user_ids: Ids,
    pub item_ids: Ids,
    pub titles: Vec<Option<String>>,
    pub genres: Vec<Vec<String>>,
}

impl Catalog {
    /// Read `users.parquet` and `items.parquet` from an ingest artifact directory.
    pub fn read(ingest_dir: impl AsRef<Path>) -> Result<Catalog> {
        let dir = ingest_dir.as_ref();
        let (user_ids, _) = read_ids(&dir.join(layout::ingest::USERS), "user_idx", "user_id")?;
        let items_path = dir.join(layout::ingest::ITEMS);
        let (item_ids, batches) = read_ids(&items_path, "item_idx", "item_id")?;
        let mut titles = Vec::with_capacity(item_ids.len());
        let mut genres = Vec::with_capacity(item_ids.len());
        for b in &batches {
            let t = column::<StringArray>(b, "title", &items_path)?;
            titles.extend(t.iter().map(|s| s.map(str::to_string)));
            let g = column::<ListArray>(b, "genres", &items_path)?;
            for i in 0..g.len() {
                let values = g.value(i);
                let values = values
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| CoreError::schema(&items_path, "genres must be list<utf8>"))?;
                genres.push(values.iter().flatten().map(str::to_string).collect());
            }
        }
        Ok(Catalog {
            user_ids,
            item_ids,
            titles,
            genres,
        })
    }

    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_round_trip_keeps_values_and_id_space() {
        let dir = tempfile::tempdir().unwrap();
        let r = Ratings {
            user: vec![0, 2, 1],
            item: vec![3, 0, 1],
            rating: vec![4.5, 1.0, 3.0],
            timestamp: Some(vec![10, 20, 30]),
            n_users: 5,
            n_items: 7,
        };
        let p = dir.path().join("r.parquet");
        r.write(&p).unwrap();
        assert_eq!(Ratings::read(&p).unwrap(), r);
        let no_ts = Ratings {
            timestamp: None,
            ..r.clone()
        };
        no_ts.write(&p).unwrap();
        assert_eq!(Ratings::read(&p).unwrap(), no_ts);
        let empty = Ratings {
            n_users: 5,
            n_items: 7,
            timestamp: Some(vec![]),
            ..Default::default()
        };
        empty.write(&p).unwrap();
        assert_eq!(Ratings::read(&p).unwrap().n_items, 7);
    }
}
