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
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::errors::ParquetError;
use parquet::file::writer::SerializedFileWriter;
use std::fs::File;
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
    let pq = parquet_error(path);
    let (atomic, mut file_writer, factory, threads) = open(path, &schema)?;
    let mut next = 0;
    while next < n_groups {
        let end = (next + threads).min(n_groups);
        let encoded: Vec<std::result::Result<Vec<ArrowColumnChunk>, ParquetError>> =
            std::thread::scope(|s| {
                let handles: Vec<_> = (next..end)
                    .map(|g| {
                        let (factory, schema, group) = (&factory, &schema, &group);
                        s.spawn(move || encode_group(factory, schema, g, &group(g)))
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

/// [`write_row_groups`] for row groups that come one after another from a stream (rows
/// decoded from a spill file, say): `produce` hands each batch to its `emit` argument, in
/// order; batches are encoded on one worker thread per core while `produce` builds the
/// next, and appended in order. Memory holds about two batches per core.
pub fn write_row_group_stream<E, F>(
    path: impl AsRef<Path>,
    schema: SchemaRef,
    produce: F,
) -> std::result::Result<PathBuf, E>
where
    E: From<CoreError> + Send,
    F: FnOnce(
        &mut dyn FnMut(RecordBatch) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>,
{
    use std::collections::BTreeMap;
    use std::sync::{Mutex, mpsc};
    let path = path.as_ref();
    let pq = parquet_error(path);
    let (mut atomic, mut file_writer, factory, threads) = open(path, &schema)?;
    type Encoded = std::result::Result<Vec<ArrowColumnChunk>, ParquetError>;
    let (task_tx, task_rx) = mpsc::sync_channel::<(usize, RecordBatch)>(threads);
    let task_rx = Mutex::new(task_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Encoded)>();
    // Written row groups are sent to disk while later ones encode (`sync_data` on a thread
    // of its own, every few row groups), so that the fsync of `commit` finds little left to
    // write instead of waiting for the whole file: 60 ms of 1.3 s at 25M ratings.
    let early = atomic.file().try_clone().ok();
    let produced: std::result::Result<(), E> = std::thread::scope(|s| {
        // Made here so that every way out of this closure drops the sender, and the syncer
        // stops before the scope waits for it.
        let (sync_tx, sync_rx) = mpsc::sync_channel::<()>(1);
        if let Some(file) = early {
            s.spawn(move || {
                while sync_rx.recv().is_ok() {
                    let _ = file.sync_data();
                }
            });
        }
        for _ in 0..threads {
            let (task_rx, done_tx, factory, schema) =
                (&task_rx, done_tx.clone(), &factory, &schema);
            s.spawn(move || {
                loop {
                    let task = task_rx
                        .lock()
                        .map_err(|_| ())
                        .and_then(|rx| rx.recv().map_err(|_| ()));
                    let Ok((g, batch)) = task else { break };
                    let encoded = encode_group(factory, schema, g, &batch);
                    if done_tx.send((g, encoded)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut pending: BTreeMap<usize, Encoded> = BTreeMap::new();
        let mut next_out = 0usize;
        let mut append = |pending: &mut BTreeMap<usize, Encoded>,
                          next_out: &mut usize|
         -> std::result::Result<(), CoreError> {
            while let Some(chunks) = pending.remove(next_out) {
                let mut rg = file_writer.next_row_group().map_err(pq)?;
                for c in chunks.map_err(pq)? {
                    c.append_to_row_group(&mut rg).map_err(pq)?;
                }
                rg.close().map_err(pq)?;
                *next_out += 1;
                if next_out.is_multiple_of(SYNC_EVERY) {
                    // A sync still running takes this one along; none is queued behind it.
                    let _ = sync_tx.try_send(());
                }
            }
            Ok(())
        };
        let mut next_in = 0usize;
        let mut failed: Option<CoreError> = None;
        let result = produce(&mut |batch: RecordBatch| {
            if let Some(e) = failed.take() {
                return Err(E::from(e));
            }
            task_tx
                .send((next_in, batch))
                .map_err(|_| CoreError::schema(path, "a row group encoder stopped"))?;
            next_in += 1;
            while let Ok((g, enc)) = done_rx.try_recv() {
                pending.insert(g, enc);
            }
            if let Err(e) = append(&mut pending, &mut next_out) {
                failed = Some(e);
            }
            Ok(())
        });
        drop(task_tx);
        result?;
        if let Some(e) = failed {
            return Err(E::from(e));
        }
        for (g, enc) in done_rx.iter() {
            pending.insert(g, enc);
            append(&mut pending, &mut next_out)?;
        }
        if next_out != next_in {
            return Err(E::from(CoreError::schema(
                path,
                "a row group encoder panicked",
            )));
        }
        Ok(())
    });
    produced?;
    file_writer.close().map_err(pq)?;
    Ok(atomic.commit()?)
}

/// Row groups appended between early syncs of the file being written (about 40 MB of
/// ratings).
const SYNC_EVERY: usize = 8;

/// Opens `path` for row groups encoded apart and appended in order, with the project's
/// writer settings ([`props`]): the temporary file (named on `commit`), the writer the
/// chunks are appended to, the factory each encoding thread takes its column writers from,
/// and how many threads to encode on (one a core). Both writers above open their files here.
fn open(
    path: &Path,
    schema: &SchemaRef,
) -> Result<(
    AtomicFile,
    SerializedFileWriter<File>,
    ArrowRowGroupWriterFactory,
    usize,
)> {
    let pq = parquet_error(path);
    let mut atomic = AtomicFile::create(path)?;
    let file = atomic
        .file()
        .try_clone()
        .map_err(|e| CoreError::io(path, e))?;
    let writer = ArrowWriter::try_new(file, schema.clone(), Some(props(schema))).map_err(pq)?;
    let (file_writer, factory) = writer.into_serialized_writer().map_err(pq)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok((atomic, file_writer, factory, threads))
}

/// A Parquet error as the [`CoreError`] naming the file being written.
fn parquet_error(path: &Path) -> impl Fn(ParquetError) -> CoreError + Copy + '_ {
    move |e| CoreError::Parquet {
        path: path.to_path_buf(),
        source: e,
    }
}

/// One row group's column chunks, encoded and compressed.
fn encode_group(
    factory: &ArrowRowGroupWriterFactory,
    schema: &SchemaRef,
    g: usize,
    batch: &RecordBatch,
) -> std::result::Result<Vec<ArrowColumnChunk>, ParquetError> {
    let mut writers = factory.create_column_writers(g)?;
    let mut w = writers.iter_mut();
    for (field, col) in schema.fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, col)? {
            w.next()
                .ok_or_else(|| ParquetError::General("more leaf columns than writers".into()))?
                .write(&leaf)?;
        }
    }
    writers.into_iter().map(|w| w.close()).collect()
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

    /// Row groups handed over one at a time come out in order, as the random-access writer
    /// writes them.
    #[test]
    fn streamed_row_groups_read_back_like_the_random_access_ones() {
        let dir = tempfile::tempdir().unwrap();
        let n = 10_000;
        let r = Ratings {
            user: (0..n as u32).map(|i| i % 100).collect(),
            item: (0..n as u32).map(|i| i % 77).collect(),
            rating: (0..n).map(|i| (i % 10) as f32 / 2.0 + 0.5).collect(),
            timestamp: None,
            n_users: 100,
            n_items: 77,
        };
        let schema = schema::with_metadata(
            schema::ratings(),
            &[
                (schema::META_N_USERS, "100".to_string()),
                (schema::META_N_ITEMS, "77".to_string()),
            ],
        );
        let p = dir.path().join("s.parquet");
        let sizes = [3000, 1, 4000, 2999];
        write_row_group_stream::<CoreError, _>(&p, schema.clone(), |emit| {
            let mut start = 0;
            for len in sizes {
                let idx: Vec<usize> = (start..start + len).collect();
                let part = r.select(&idx);
                emit(
                    RecordBatch::try_new(
                        schema.clone(),
                        vec![
                            Arc::new(UInt32Array::from(part.user)),
                            Arc::new(UInt32Array::from(part.item)),
                            Arc::new(Float32Array::from(part.rating)),
                            Arc::new(Int64Array::new_null(len)),
                        ],
                    )
                    .unwrap(),
                )?;
                start += len;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(Ratings::read(&p).unwrap(), r);
        let file = std::fs::File::open(&p).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(
            &parquet::file::reader::SerializedFileReader::new(file).unwrap(),
        )
        .clone();
        let rows: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(rows, sizes.map(|s| s as i64));
    }
}
