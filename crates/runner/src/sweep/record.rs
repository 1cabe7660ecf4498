//! The sweep's results table: one Parquet row per trial, best first (trial, one column per
//! swept key, metric, error, seconds, train_key, metric_key), with the metric, the goal and
//! the mean ± sd in the schema's metadata.

use super::table::{Ranked, Stats};
use anyhow::{Context, Result};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use std::collections::HashMap;
use std::sync::Arc;

/// Writes the table of `r` to `r.out`, creating its folder.
pub fn write(r: &Ranked, maximize: bool, pipeline: &str, stats: Option<Stats>) -> Result<()> {
    let rows = r.rows;
    let mut fields = vec![Field::new("trial", DataType::UInt32, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from_iter_values(
        rows.iter().map(|r| r.id),
    ))];
    for (k, a) in r.axes.iter().enumerate() {
        fields.push(Field::new(a.key.as_str(), DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| toml_text(&a.values[r.values[k]])),
        )));
    }
    fields.extend([
        Field::new("metric", DataType::Float64, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("seconds", DataType::Float64, false),
        Field::new("train_key", DataType::Utf8, true),
        Field::new("metric_key", DataType::Utf8, true),
    ]);
    columns.extend([
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.metric))) as ArrayRef,
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.error.clone()))),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.seconds),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.train_key.clone()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.metric_key.clone()),
        )),
    ]);
    let metadata = metadata(r.metric, maximize, pipeline, stats);
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
    let batch = RecordBatch::try_new(schema, columns).context("cannot build the sweep table")?;
    let out = r.out;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    recpipe_core::parquet_io::write_batches(out, &[batch])
        .with_context(|| format!("cannot write the sweep table {}", out.display()))?;
    Ok(())
}

/// The schema metadata: version, pipeline, metric, goal, and the mean ± sd line at full
/// precision (`{}` of an f64 reads back to the same number).
fn metadata(
    metric: &str,
    maximize: bool,
    pipeline: &str,
    stats: Option<Stats>,
) -> HashMap<String, String> {
    let mut metadata = HashMap::from([
        (
            recpipe_core::schema::META_VERSION.to_string(),
            recpipe_core::VERSION.to_string(),
        ),
        ("recpipe.sweep.pipeline".to_string(), pipeline.to_string()),
        ("recpipe.sweep.metric".to_string(), metric.to_string()),
        (
            "recpipe.sweep.goal".to_string(),
            if maximize { "maximize" } else { "minimize" }.to_string(),
        ),
    ]);
    if let Some(st) = stats {
        metadata.insert("recpipe.sweep.metric_n".into(), st.n.to_string());
        metadata.insert("recpipe.sweep.metric_mean".into(), st.mean.to_string());
        if let Some(sd) = st.sd {
            metadata.insert("recpipe.sweep.metric_sd".into(), sd.to_string());
        }
    }
    metadata
}

/// A value as TOML text: as written when it parses as TOML, else as a TOML string (the way
/// `--set` reads it).
fn toml_text(v: &str) -> String {
    if toml::de::DeValue::parse(v).is_ok() {
        v.to_string()
    } else {
        let escaped: String = v
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_toml_text() {
        assert_eq!(toml_text("16"), "16");
        assert_eq!(toml_text("[32, 16]"), "[32, 16]");
        assert_eq!(toml_text("random"), "\"random\"");
    }
}
