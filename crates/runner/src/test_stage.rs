//! `kind = "_test"`: a stage for testing the runner, built only with the `test-stages` feature
//! (the `recpipe-e2e` binary that tests/ drives).
//! It concatenates its upstream `out.txt` files and its `value`, can read an external file,
//! sleep, block until a file appears (so a test can kill it mid-stage), or fail.

use recpipe_core::parquet_io::write_batches;
use recpipe_core::{Inputs, OutDir, Outputs, Progress, Stage};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

pub struct TestStage;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub value: String,
    pub file: Option<PathBuf>,
    pub sleep_ms: u64,
    /// Create this file when the stage starts (lets tests see it running).
    pub touch: Option<PathBuf>,
    /// Write a partial output, then wait until this file exists.
    pub wait_for: Option<PathBuf>,
    /// Append a line per execution here (not part of the artifact): counts real runs.
    pub log: Option<PathBuf>,
    pub fail: bool,
    pub nested: Nested,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nested {
    pub depth: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("test stage asked to fail (fail = true)")]
    Asked,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Core(#[from] recpipe_core::CoreError),
}

impl Stage for TestStage {
    const KIND: &'static str = "_test";
    const FORMAT_VERSION: u32 = 1;
    type Config = Config;
    type Error = TestError;

    fn external_inputs(cfg: &Config) -> Vec<PathBuf> {
        cfg.file.iter().cloned().collect()
    }

    fn run(
        cfg: &Config,
        inputs: &Inputs,
        out: &OutDir,
        _progress: &Progress,
    ) -> Result<Outputs, TestError> {
        if let Some(t) = &cfg.touch {
            std::fs::write(t, "")?;
        }
        if let Some(log) = &cfg.log {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?;
            writeln!(f, "{}", cfg.value)?;
        }
        let mut text = String::new();
        for a in &inputs.artifacts {
            text.push_str(&std::fs::read_to_string(a.file("out.txt"))?);
        }
        if let Some(f) = &cfg.file {
            text.push_str(&std::fs::read_to_string(f)?);
        }
        text.push_str(&cfg.value);
        text.push('\n');
        if let Some(w) = &cfg.wait_for {
            std::fs::write(out.path("partial.txt"), &text)?;
            while !w.exists() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(cfg.sleep_ms));
        if cfg.fail {
            return Err(TestError::Asked);
        }
        std::fs::write(out.path("out.txt"), &text)?;
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "line",
            arrow_schema::DataType::Utf8,
            false,
        )]));
        let lines: Vec<&str> = text.lines().collect();
        let batch = arrow_array::RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow_array::StringArray::from(lines.clone()))],
        )
        .expect("one utf8 column");
        write_batches(out.path("lines.parquet"), &[batch])?;
        Ok(Outputs {
            summary: serde_json::json!({ "lines": lines.len() }),
            lines: vec![format!("{} lines", lines.len())],
        })
    }
}
