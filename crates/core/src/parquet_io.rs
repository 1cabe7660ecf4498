//! Parquet read/write with the project's settings (zstd, statistics, ~1M-row groups),
//! written atomically through [`crate::fsutil::AtomicFile`].

use crate::error::{CoreError, Result};
use crate::fsutil::AtomicFile;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::fs::File;
use std::path::{Path, PathBuf};

pub const ROW_GROUP_ROWS: usize = 1 << 20;

pub(crate) fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("recpipe {}", crate::VERSION))
        .build()
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
            ArrowWriter::try_new(file, schema, Some(props())).map_err(|e| CoreError::Parquet {
                path: path.to_path_buf(),
                source: e,
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

/// Read a whole Parquet file into record batches.
pub fn read_batches(path: impl AsRef<Path>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    let pq = |e| CoreError::Parquet {
        path: path.to_path_buf(),
        source: e,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
    let schema = builder.schema().clone();
    let reader = builder.with_batch_size(64 * 1024).build().map_err(pq)?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| CoreError::Arrow {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok((schema, batches))
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
