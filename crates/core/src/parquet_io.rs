//! Parquet read/write with the project's settings (zstd level 1, statistics, ~1M-row groups,
//! delta-encoded timestamps and ids, user ids of a ratings table plain as they come in runs),
//! written atomically through [`crate::fsutil::AtomicFile`].

use crate::error::{CoreError, Result};
use crate::fsutil::AtomicFile;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::fs::File;
use std::path::{Path, PathBuf};

pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// Integer columns written with DELTA_BINARY_PACKED instead of a dictionary (by name, in any
/// table that has them), except [`RUN_COLUMN`] in a table of ratings.
const DELTA_COLUMNS: &[&str] = &["timestamp", "item_idx", "user_idx"];

/// In a table of ratings (one that has item ids too), the user column comes in runs: a
/// user's ratings are together in MovieLens files and in what recpipe writes from them.
/// Plain values and zstd turn a run into a few bytes, as small as delta packing but a
/// tenth of the work to write; in a table with one row per user, delta packing stays.
const RUN_COLUMN: &str = "user_idx";

/// Writer settings. The schema's metadata (recpipe version, n_users, embedding dim, ...) is
/// also copied into the file's key-value metadata: Arrow readers find it in the embedded
/// schema, but DuckDB's `parquet_kv_metadata` and parquet-tools only look there.
pub(crate) fn props(schema: &arrow_schema::Schema) -> WriterProperties {
    let mut kv: Vec<KeyValue> = schema
        .metadata()
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    kv.sort_by(|a, b| a.key.cmp(&b.key));
    let mut b = WriterProperties::builder()
        .set_key_value_metadata((!kv.is_empty()).then_some(kv))
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_write_batch_size(8192)
        .set_created_by(format!("recpipe {}", crate::VERSION));
    // Near-unique or slowly varying integer columns: a dictionary there is hashing work that
    // ends in the plain fallback. Delta encoding packs timestamps (increasing within a user)
    // and item ids (ascending within a user in MovieLens order) into a few bits per value,
    // smaller than dictionary + zstd and several times cheaper to write.
    let ratings_table = schema.field_with_name("item_idx").is_ok();
    for name in DELTA_COLUMNS {
        let col = ColumnPath::from(*name);
        let encoding = if ratings_table && *name == RUN_COLUMN {
            Encoding::PLAIN
        } else {
            Encoding::DELTA_BINARY_PACKED
        };
        b = b
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_encoding(col, encoding);
    }
    b.build()
}

/// Streams record batches into a Parquet file that appears under its name only on `finish`.
pub struct ParquetSink {
    writer: ArrowWriter<File>,
    atomic: AtomicFile,
    rows: usize,
}

impl ParquetSink {
    pub fn create(path: impl AsRef<Path>, schema: SchemaRef) -> Result<Self> {
        let path = path.as_ref();
        let mut atomic = AtomicFile::create(path)?;
        let file = atomic
            .file()
            .try_clone()
            .map_err(|e| CoreError::io(path, e))?;
        let writer =
            ArrowWriter::try_new(file, schema.clone(), Some(props(&schema))).map_err(|e| {
                CoreError::Parquet {
                    path: path.to_path_buf(),
                    source: e,
                }
            })?;
        Ok(ParquetSink {
            writer,
            atomic,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        self.writer.write(batch).map_err(|e| CoreError::Parquet {
            path: self.atomic.path().to_path_buf(),
            source: e,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(mut self) -> Result<PathBuf> {
        let path = self.atomic.path().to_path_buf();
        self.writer.finish().map_err(|e| CoreError::Parquet {
            path: path.clone(),
            source: e,
        })?;
        drop(self.writer);
        self.atomic.commit()
    }
}

/// Write one batch (or several) to a Parquet file atomically.
pub fn write_batches(path: impl AsRef<Path>, batches: &[RecordBatch]) -> Result<PathBuf> {
    let path = path.as_ref();
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| CoreError::schema(path, "no record batch to write"))?;
    let mut sink = ParquetSink::create(path, schema)?;
    for b in batches {
        sink.write(b)?;
    }
    sink.finish()
}

/// Read a whole Parquet file into record batches ([`stream_batches`], collected).
pub fn read_batches(path: impl AsRef<Path>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let path = path.as_ref();
    let (schema, reader) = stream_batches(path)?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| CoreError::Arrow {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok((schema, batches))
}

/// A Parquet file's schema and a reader of its record batches, one at a time.
pub fn stream_batches(
    path: impl AsRef<Path>,
) -> Result<(
    SchemaRef,
    parquet::arrow::arrow_reader::ParquetRecordBatchReader,
)> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    let pq = |e| CoreError::Parquet {
        path: path.to_path_buf(),
        source: e,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let schema = builder.schema().clone();
    let reader = builder.with_batch_size(64 * 1024).build().map_err(pq)?;
    Ok((schema, reader))
}

/// Row count from the footer, without reading data.
pub fn row_count(path: impl AsRef<Path>) -> Result<usize> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| CoreError::Parquet {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok(builder.metadata().file_metadata().num_rows() as usize)
}

/// Typed column access with an error naming the file and column.
pub fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .ok_or_else(|| CoreError::schema(path, format!("missing column `{name}`")))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| CoreError::schema(path, format!("column `{name}` has an unexpected type")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::UInt32Array;
    use std::sync::Arc;

    #[test]
    fn schema_metadata_is_also_file_key_value_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let schema = crate::schema::with_metadata(
            arrow_schema::Schema::new(vec![arrow_schema::Field::new(
                "x",
                arrow_schema::DataType::UInt32,
                false,
            )]),
            &[(crate::schema::META_N_USERS, "7".to_string())],
        );
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(UInt32Array::from(vec![1, 2]))]).unwrap();
        write_batches(&path, &[batch]).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let kv = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap();
        let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
        assert_eq!(get(crate::schema::META_N_USERS).as_deref(), Some("7"));
        assert_eq!(
            get(crate::schema::META_VERSION).as_deref(),
            Some(crate::VERSION)
        );
        assert_eq!(row_count(&path).unwrap(), 2);
    }
}
