//! Columns of the export's Parquet tables, read whole (they hold a few rows per user or item).

use anyhow::{Context, Result, anyhow, bail};
use arrow_array::{Array, Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use recpipe_core::layout;
use recpipe_core::parquet_io::read_batches;
use std::path::{Path, PathBuf};

/// One table of an artifact, with the file it came from for error messages.
pub struct Table {
    pub path: PathBuf,
    batches: Vec<RecordBatch>,
}

impl Table {
    /// `dir/name.parquet`; `missing` says why a run might not have written it.
    pub fn open(dir: &Path, name: &str, missing: &str) -> Result<Table> {
        let path = dir.join(layout::export::file(name, layout::export::PARQUET));
        if !path.exists() {
            bail!("{} does not exist: {missing}", path.display());
        }
        let (_, batches) =
            read_batches(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Table { path, batches })
    }

    fn columns(&self, name: &str) -> Result<Vec<&dyn Array>> {
        self.batches
            .iter()
            .map(|b| {
                b.column_by_name(name)
                    .map(|c| c.as_ref())
                    .ok_or_else(|| anyhow!("{}: no column `{name}`", self.path.display()))
            })
            .collect()
    }

    fn typed<T: 'static>(&self, name: &str, what: &str) -> Result<Vec<&T>> {
        self.columns(name)?
            .into_iter()
            .map(|c| {
                c.as_any().downcast_ref::<T>().ok_or_else(|| {
                    anyhow!("{}: column `{name}` is not {what}", self.path.display())
                })
            })
            .collect()
    }

    /// An id column (Int64 or Utf8) as the text a user types.
    pub fn ids(&self, name: &str) -> Result<Vec<String>> {
        let cols = self.columns(name)?;
        let mut out = Vec::new();
        for c in cols {
            if let Some(a) = c.as_any().downcast_ref::<Int64Array>() {
                out.extend(a.values().iter().map(i64::to_string));
            } else if let Some(a) = c.as_any().downcast_ref::<StringArray>() {
                out.extend(a.iter().map(|s| s.unwrap_or_default().to_string()));
            } else {
                bail!(
                    "{}: column `{name}` is not an id (int64 or utf8)",
                    self.path.display()
                );
            }
        }
        Ok(out)
    }

    /// A nullable text column.
    pub fn texts(&self, name: &str) -> Result<Vec<Option<String>>> {
        Ok(self
            .typed::<StringArray>(name, "utf8")?
            .into_iter()
            .flat_map(|a| a.iter().map(|s| s.map(str::to_string)))
            .collect())
    }

    pub fn u32s(&self, name: &str) -> Result<Vec<u32>> {
        Ok(self
            .typed::<UInt32Array>(name, "uint32")?
            .into_iter()
            .flat_map(|a| a.values().iter().copied())
            .collect())
    }

    pub fn f32s(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self
            .typed::<Float32Array>(name, "float32")?
            .into_iter()
            .flat_map(|a| a.values().iter().copied())
            .collect())
    }
}
