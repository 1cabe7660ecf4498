//! Parquet files whose row groups are encoded on several threads at once. The Arrow writer
//! encodes (and zstd-compresses) one column at a time on the calling thread, which makes it
//! the bottleneck of writing tens of millions of ratings; here each row group of a window is
//! encoded on its own thread and the finished column chunks are appended in order, giving the
//! same file layout, schema metadata and atomicity as [`crate::parquet_io::ParquetSink`].

use crate::error::{CoreError, Result};
use crate::fsutil::AtomicFile;
use crate::parquet_io::{ROW_GROUP_ROWS, props};
use crate::ratings::Ratings;
use crate::schema;
use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, compute_leaves};
use parquet::errors::ParquetError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Write `n_groups` row groups, the i-th built by `group(i)`, encoding up to one row group
/// per available core at a time. Memory holds one window of row groups.
pub fn write_row_groups<F>(
    path: impl AsRef<Path>,
    schema: SchemaRef,
    n_groups: usize,
    group: F,
) -> Result<PathBuf>
where
    F: Fn(usize) -> RecordBatch + Sync,
{
    let path = path.as_ref();
    let pq = |e: ParquetError| CoreError::Parquet {
        path: path.to_path_buf(),
        source: e,
    };
    let mut atomic = AtomicFile::create(path)?;
    let file = atomic
        .file()
        .try_clone()
        .map_err(|e| CoreError::io(path, e))?;
    let writer = ArrowWriter::try_new(file, schema.clone(), Some(props(&schema))).map_err(pq)?;
    let (mut file_writer, factory) = writer.into_serialized_writer().map_err(pq)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut next = 0;
    while next < n_groups {
        let end = (next + threads).min(n_groups);
        let encoded: Vec<std::result::Result<Vec<ArrowColumnChunk>, ParquetError>> =
            std::thread::scope(|s| {
                let handles: Vec<_> = (next..end)
                    .map(|g| {
                        let (factory, schema, group) = (&factory, &schema, &group);
                        s.spawn(move || {
                            let batch = group(g);
                            let mut writers = factory.create_column_writers(g)?;
                            let mut w = writers.iter_mut();
                            for (field, col) in schema.fields().iter().zip(batch.columns()) {
                                for leaf in compute_leaves(field, col)? {
                                    w.next()
                                        .ok_or_else(|| {
                                            ParquetError::General(
                                                "more leaf columns than writers".into(),
                                            )
                                        })?
                                        .write(&leaf)?;
                                }
                            }
                            writers.into_iter().map(|w| w.close()).collect()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(ParquetError::General("a row group encoder panicked".into()))
                        })
                    })
                    .collect()
            });
        for chunks in encoded {
            let mut rg = file_writer.next_row_group().map_err(pq)?;
            for c in chunks.map_err(pq)? {
                c.append_to_row_group(&mut rg).map_err(pq)?;
            }
            rg.close().map_err(pq)?;
        }
        next = end;
    }
    file_writer.close().map_err(pq)?;
    atomic.commit()
}

/// [`Ratings::write`] with row groups encoded in parallel: same schema, metadata and rows.
pub fn write_ratings(r: &Ratings, path: impl AsRef<Path>) -> Result<PathBuf> {
    let schema = schema::with_metadata(
        schema::ratings(),
        &[
            (schema::META_N_USERS, r.n_users.to_string()),
            (schema::META_N_ITEMS, r.n_items.to_string()),
        ],
    );
    let n_groups = r.len().div_ceil(ROW_GROUP_ROWS);
    let batch_schema = schema.clone();
    let batch = move |g: usize| {
        let range = g * ROW_GROUP_ROWS..((g + 1) * ROW_GROUP_ROWS).min(r.len());
        let ts: ArrayRef = match &r.timestamp {
            Some(t) => Arc::new(Int64Array::from(t[range.clone()].to_vec())),
            None => Arc::new(Int64Array::new_null(range.len())),
        };
        RecordBatch::try_new(
            batch_schema.clone(),
            vec![
                Arc::new(UInt32Array::from(r.user[range.clone()].to_vec())),
                Arc::new(UInt32Array::from(r.item[range.clone()].to_vec())),
                Arc::new(Float32Array::from(r.rating[range].to_vec())),
                ts,
            ],
        )
        .expect("columns match the ratings schema")
    };
    write_row_groups(path, schema, n_groups, batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_write_reads_back_like_the_serial_one() {
        let dir = tempfile::tempdir().unwrap();
        let n = ROW_GROUP_ROWS * 2 + 17;
        let r = Ratings {
            user: (0..n as u32).map(|i| i % 1000).collect(),
            item: (0..n as u32).map(|i| i % 77).collect(),
            rating: (0..n).map(|i| (i % 10) as f32 / 2.0 + 0.5).collect(),
            timestamp: Some((0..n as i64).collect()),
            n_users: 1000,
            n_items: 80,
        };
        let p = dir.path().join("r.parquet");
        write_ratings(&r, &p).unwrap();
        assert_eq!(crate::parquet_io::row_count(&p).unwrap(), n);
        assert_eq!(Ratings::read(&p).unwrap(), r);
        let empty = Ratings {
            timestamp: None,
            n_users: 3,
            ..Ratings::default()
        };
        write_ratings(&empty, &p).unwrap();
        let back = Ratings::read(&p).unwrap();
        assert_eq!((back.len(), back.n_users), (0, 3));
    }
}
