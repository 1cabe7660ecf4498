//! Ratings tables read and written a batch at a time, for stages whose data is larger than
//! memory would allow as plain arrays (issue #18): [`RatingsFile`] reads only the columns a
//! pass needs, row group by row group, with the checks [`Ratings::read`] makes;
//! [`RatingsSink`] writes the same file [`Ratings::write`] would, from rows pushed one by one.

use crate::error::{CoreError, Result};
use crate::parquet_io::{ParquetSink, ROW_GROUP_ROWS, column};
use crate::ratings::Ratings;
use crate::schema;
use arrow_array::{Array, Float32Array, Int64Array, UInt32Array};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The columns one pass reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Columns {
    pub user: bool,
    pub item: bool,
    pub rating: bool,
    pub timestamp: bool,
}

impl Columns {
    pub const ALL: Columns = Columns {
        user: true,
        item: true,
        rating: true,
        timestamp: true,
    };
}

/// One batch of a pass: rows `start..start + len` of the file; a column not asked for is
/// empty, and `timestamp` is empty too when the table has none.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    pub start: usize,
    pub user: &'a [u32],
    pub item: &'a [u32],
    pub rating: &'a [f32],
    pub timestamp: &'a [i64],
}

/// A ratings-shaped Parquet table (ratings, train, valid, test) opened for streaming passes.
#[derive(Debug, Clone)]
pub struct RatingsFile {
    pub path: PathBuf,
    pub rows: usize,
    pub n_users: u32,
    pub n_items: u32,
    /// Whether every row has a timestamp ([`Ratings::read`]'s `timestamp.is_some()`).
    pub timestamps: bool,
}

impl RatingsFile {
    /// Reads the footer; the id space comes from the schema metadata (a scan of the ids
    /// when it is missing) and whether there are timestamps from the null counts (a scan
    /// of the column when a row group has no statistics).
    pub fn open(path: impl AsRef<Path>) -> Result<RatingsFile> {
        let path = path.as_ref().to_path_buf();
        let builder = builder(&path)?;
        let meta = builder.metadata().clone();
        let arrow_meta = builder.schema().metadata().clone();
        let get = |k: &str| arrow_meta.get(k).and_then(|v| v.parse::<u32>().ok());
        let (n_users, n_items) = (get(schema::META_N_USERS), get(schema::META_N_ITEMS));
        let ts_leaf = meta
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == "timestamp")
            .ok_or_else(|| CoreError::schema(&path, "missing column `timestamp`"))?;
        let nulls: Option<u64> = meta.row_groups().iter().try_fold(0u64, |acc, rg| {
            let n = rg.column(ts_leaf).statistics()?.null_count_opt()?;
            Some(acc + n)
        });
        let mut file = RatingsFile {
            path,
            rows: meta.file_metadata().num_rows() as usize,
            n_users: n_users.unwrap_or(u32::MAX),
            n_items: n_items.unwrap_or(u32::MAX),
            timestamps: true,
        };
        file.timestamps = match nulls {
            Some(n) => n == 0,
            None => {
                let mut any = false;
                file.scan_nulls(&mut any)?;
                !any
            }
        };
        if n_users.is_none() || n_items.is_none() {
            let (mut mu, mut mi) = (0u32, 0u32);
            let cols = Columns {
                user: true,
                item: true,
                ..Columns::default()
            };
            file.for_each(cols, |c| {
                mu = c.user.iter().fold(mu, |m, &u| m.max(u + 1));
                mi = c.item.iter().fold(mi, |m, &i| m.max(i + 1));
                Ok::<(), CoreError>(())
            })?;
            file.n_users = n_users.unwrap_or(mu);
            file.n_items = n_items.unwrap_or(mi);
        }
        Ok(file)
    }

    fn scan_nulls(&self, any: &mut bool) -> Result<()> {
        let builder = builder(&self.path)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), ["timestamp"]);
        for batch in self.reader(builder, mask)? {
            let batch = batch.map_err(|e| self.arrow(e))?;
            *any |= column::<Int64Array>(&batch, "timestamp", &self.path)?.null_count() > 0;
        }
        Ok(())
    }

    fn reader(
        &self,
        builder: ParquetRecordBatchReaderBuilder<File>,
        mask: ProjectionMask,
    ) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
        builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| CoreError::Parquet {
                path: self.path.clone(),
                source: e,
            })
    }

    fn arrow(&self, e: arrow_schema::ArrowError) -> CoreError {
        CoreError::Arrow {
            path: self.path.clone(),
            source: e,
        }
    }

    /// One pass over the rows in file order, reading only `cols`; ids outside the id space
    /// are refused with the row that holds them. Memory: one batch of the asked columns.
    pub fn for_each<E: From<CoreError>>(
        &self,
        cols: Columns,
        mut f: impl FnMut(Chunk<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let builder = builder(&self.path)?;
        let names = [
            (cols.user, "user_idx"),
            (cols.item, "item_idx"),
            (cols.rating, "rating"),
            (cols.timestamp && self.timestamps, "timestamp"),
        ];
        let wanted = names.iter().filter(|(on, _)| *on).map(|(_, n)| *n);
        let mask = ProjectionMask::columns(builder.parquet_schema(), wanted);
        let mut start = 0usize;
        for batch in self.reader(builder, mask)? {
            let batch = batch.map_err(|e| self.arrow(e))?;
            let p = &self.path;
            let user = match cols.user {
                true => &column::<UInt32Array>(&batch, "user_idx", p)?.values()[..],
                false => &[][..],
            };
            let item = match cols.item {
                true => &column::<UInt32Array>(&batch, "item_idx", p)?.values()[..],
                false => &[][..],
            };
            let rating = match cols.rating {
                true => &column::<Float32Array>(&batch, "rating", p)?.values()[..],
                false => &[][..],
            };
            let timestamp = match cols.timestamp && self.timestamps {
                true => &column::<Int64Array>(&batch, "timestamp", p)?.values()[..],
                false => &[][..],
            };
            let bad = user
                .iter()
                .position(|&u| u >= self.n_users)
                .or_else(|| item.iter().position(|&i| i >= self.n_items));
            if let Some(r) = bad {
                return Err(CoreError::schema(
                    p,
                    format!(
                        "row {}: a user_idx or item_idx is outside the id space recorded in \
                         the metadata",
                        start + r
                    ),
                )
                .into());
            }
            f(Chunk {
                start,
                user,
                item,
                rating,
                timestamp,
            })?;
            start += batch.num_rows();
        }
        Ok(())
    }
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| CoreError::Parquet {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Writes a ratings table row by row, one row group in memory at a time; the file is the
/// one [`Ratings::write`] gives for the same rows (schema, metadata, row groups).
pub struct RatingsSink {
    buf: Ratings,
    sink: ParquetSink,
    schema: arrow_schema::SchemaRef,
    rows: usize,
}

impl RatingsSink {
    /// `timestamps`: false writes a null timestamp column, as for a source without them.
    pub fn create(
        path: impl AsRef<Path>,
        n_users: u32,
        n_items: u32,
        timestamps: bool,
    ) -> Result<RatingsSink> {
        let schema = schema::with_metadata(
            schema::ratings(),
            &[
                (schema::META_N_USERS, n_users.to_string()),
                (schema::META_N_ITEMS, n_items.to_string()),
            ],
        );
        Ok(RatingsSink {
            buf: Ratings {
                timestamp: timestamps.then(Vec::new),
                n_users,
                n_items,
                ..Ratings::default()
            },
            sink: ParquetSink::create(path, schema.clone())?,
            schema,
            rows: 0,
        })
    }

    /// Appends one row (`timestamp` is ignored when the sink writes none).
    #[inline]
    pub fn push(&mut self, user: u32, item: u32, rating: f32, timestamp: i64) -> Result<()> {
        self.buf.user.push(user);
        self.buf.item.push(item);
        self.buf.rating.push(rating);
        if let Some(t) = &mut self.buf.timestamp {
            t.push(timestamp);
        }
        if self.buf.len() == ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let n = self.buf.len();
        self.sink.write(&self.buf.batch(0..n, &self.schema))?;
        self.rows += n;
        self.buf.user.clear();
        self.buf.item.clear();
        self.buf.rating.clear();
        if let Some(t) = &mut self.buf.timestamp {
            t.clear();
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows + self.buf.len()
    }

    pub fn finish(mut self) -> Result<PathBuf> {
        // Ratings::write writes one (empty) batch for an empty table: so does this.
        if !self.buf.is_empty() || self.rows == 0 {
            self.flush()?;
        }
        self.sink.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_and_sink_round_trip_like_read_and_write() {
        let dir = tempfile::tempdir().unwrap();
        let n = ROW_GROUP_ROWS + 1000;
        let r = Ratings {
            user: (0..n as u32).map(|i| i % 1000).collect(),
            item: (0..n as u32).map(|i| (i * 7) % 77).collect(),
            rating: (0..n).map(|i| (i % 10) as f32 / 2.0 + 0.5).collect(),
            timestamp: Some((0..n as i64).map(|i| i * 3).collect()),
            n_users: 1000,
            n_items: 80,
        };
        let a = dir.path().join("a.parquet");
        r.write(&a).unwrap();
        let f = RatingsFile::open(&a).unwrap();
        assert_eq!(
            (f.rows, f.n_users, f.n_items, f.timestamps),
            (n, 1000, 80, true)
        );
        let b = dir.path().join("b.parquet");
        let mut sink = RatingsSink::create(&b, f.n_users, f.n_items, f.timestamps).unwrap();
        let mut next = 0;
        f.for_each(Columns::ALL, |c| {
            assert_eq!(c.start, next);
            next += c.user.len();
            for j in 0..c.user.len() {
                sink.push(c.user[j], c.item[j], c.rating[j], c.timestamp[j])?;
            }
            Ok::<(), CoreError>(())
        })
        .unwrap();
        sink.finish().unwrap();
        assert_eq!(Ratings::read(&b).unwrap(), r);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        // Only the asked columns come back; an id outside the space names its row.
        let bad = Ratings {
            n_users: 500,
            timestamp: None,
            ..r
        };
        crate::parquet_par::write_ratings(&bad, &a).unwrap();
        let f = RatingsFile::open(&a).unwrap();
        assert!(!f.timestamps);
        let cols = Columns {
            item: true,
            ..Columns::default()
        };
        f.for_each(cols, |c| {
            assert!(c.user.is_empty() && c.timestamp.is_empty() && !c.item.is_empty());
            Ok::<(), CoreError>(())
        })
        .unwrap();
        let cols = Columns {
            user: true,
            ..Columns::default()
        };
        let err = f.for_each(cols, |_| Ok::<(), CoreError>(())).unwrap_err();
        assert!(err.to_string().contains("row 500"), "{err}");
    }
}
