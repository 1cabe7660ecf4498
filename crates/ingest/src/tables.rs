//! The users, items and rejects outputs.

use crate::catalog::{ItemMeta, UserMeta};
use crate::error::IngestError;
use crate::keyed::Keyed;
use crate::parse::Reject;
use arrow_array::{
    ArrayRef, Float32Array, Int16Array, Int32Array, RecordBatch, StringArray, UInt32Array,
    builder::ListBuilder, builder::StringBuilder,
};
use recpipe_core::fsutil::AtomicFile;
use recpipe_core::parquet_io::write_batches;
use recpipe_core::ratings::Ids;
use recpipe_core::{CoreError, schema};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Per-entity rating count and mean (counted by the write pass, `stream::Read::write`).
pub(crate) struct Stats {
    pub n: Vec<u32>,
    pub mean: Vec<f32>,
}

fn batch(
    path: &Path,
    schema: arrow_schema::SchemaRef,
    cols: Vec<ArrayRef>,
) -> Result<RecordBatch, IngestError> {
    RecordBatch::try_new(schema, cols).map_err(|e| {
        IngestError::Core(CoreError::Arrow {
            path: path.to_path_buf(),
            source: e,
        })
    })
}

pub(crate) fn write_users(
    path: &Path,
    ids: &Ids,
    stats: &Stats,
    meta: Option<&Keyed<UserMeta>>,
) -> Result<u64, IngestError> {
    let n = ids.len();
    let schema = schema::with_metadata(schema::users(ids.is_numeric(), meta.is_some()), &[]);
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(0..n as u32)),
        ids.to_array(),
        Arc::new(UInt32Array::from(stats.n.clone())),
        Arc::new(Float32Array::from(stats.mean.clone())),
    ];
    let mut missing = 0;
    if let Some(meta) = meta {
        let rows: Vec<Option<&UserMeta>> = (0..n).map(|i| meta.get(ids, i)).collect();
        missing = rows.iter().filter(|r| r.is_none()).count() as u64;
        let text = |f: fn(&UserMeta) -> Option<&str>| -> ArrayRef {
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.and_then(f))))
        };
        cols.push(text(|m| m.gender.as_deref()));
        cols.push(Arc::new(Int32Array::from_iter(
            rows.iter().map(|r| r.and_then(|m| m.age)),
        )));
        cols.push(text(|m| m.occupation.as_deref()));
        cols.push(text(|m| m.zip.as_deref()));
    }
    write_batches(path, &[batch(path, schema, cols)?])?;
    Ok(missing)
}

pub(crate) fn write_items(
    path: &Path,
    ids: &Ids,
    stats: &Stats,
    meta: &Keyed<ItemMeta>,
) -> Result<u64, IngestError> {
    let n = ids.len();
    let schema = schema::with_metadata(schema::items(ids.is_numeric()), &[]);
    let rows: Vec<Option<&ItemMeta>> = (0..n).map(|i| meta.get(ids, i)).collect();
    let missing = rows.iter().filter(|r| r.is_none()).count() as u64;
    let mut genres = ListBuilder::new(StringBuilder::new());
    for r in &rows {
        for g in r.map(|m| m.genres.as_slice()).unwrap_or_default() {
            genres.values().append_value(g);
        }
        genres.append(true);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(0..n as u32)),
        ids.to_array(),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.and_then(|m| m.title.as_deref())),
        )),
        Arc::new(Int16Array::from_iter(
            rows.iter().map(|r| r.and_then(|m| m.year)),
        )),
        Arc::new(genres.finish()),
        Arc::new(UInt32Array::from(stats.n.clone())),
        Arc::new(Float32Array::from(stats.mean.clone())),
    ];
    write_batches(path, &[batch(path, schema, cols)?])?;
    Ok(missing)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// rejects.csv: file,line,column,reason,text — one row per rejected input row.
pub(crate) fn write_rejects(
    path: &Path,
    rejects: &[(PathBuf, &Reject)],
) -> Result<(), IngestError> {
    let mut f = AtomicFile::create(path)?;
    let mut w = std::io::BufWriter::new(f.file());
    let io = |e| IngestError::io(path, e);
    writeln!(w, "file,line,column,reason,text").map_err(io)?;
    for (file, r) in rejects {
        writeln!(
            w,
            "{},{},{},{},{}",
            csv_field(&file.display().to_string()),
            r.line,
            r.column,
            csv_field(&r.reason),
            csv_field(&r.text)
        )
        .map_err(io)?;
    }
    w.flush().map_err(io)?;
    drop(w);
    f.commit()?;
    Ok(())
}
