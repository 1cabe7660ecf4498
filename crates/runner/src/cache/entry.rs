//! What a cache entry holds: the files a stage wrote plus its [`Manifest`] (written last, so
//! a folder without a readable manifest whose recorded hashes all match is not an entry).

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = recpipe_core::layout::MANIFEST;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpstreamRef {
    pub stage: String,
    pub kind: String,
    pub key: String,
    /// Where the artifact was read from (lets one-off commands find ancestors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExternalRef {
    pub path: PathBuf,
    pub blake3: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ManifestInputs {
    pub upstream: Vec<UpstreamRef>,
    pub external: Vec<ExternalRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFile {
    pub path: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub stage: String,
    pub kind: String,
    pub key: String,
    pub format_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    pub config: serde_json::Value,
    pub inputs: ManifestInputs,
    /// Filled in by [`super::Pending::commit`] from the files the stage wrote.
    pub outputs: Vec<OutputFile>,
    /// UTC, RFC 3339.
    pub start: String,
    pub duration_s: f64,
    /// recpipe version that wrote the artifact.
    pub version: String,
    pub summary: serde_json::Value,
    #[serde(default)]
    pub lines: Vec<String>,
}

/// A complete, verified entry: its folder and what its manifest says.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Why an artifact directory cannot be trusted.
#[derive(Debug, Clone, PartialEq)]
pub enum Invalid {
    Missing,
    BadManifest(String),
    Mismatch(String),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Missing => write!(f, "not in the cache"),
            Invalid::BadManifest(m) => write!(f, "manifest unreadable ({m})"),
            Invalid::Mismatch(m) => write!(f, "{m}"),
        }
    }
}

pub fn read_manifest(dir: &Path) -> std::result::Result<Manifest, Invalid> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(if dir.exists() {
                Invalid::BadManifest(format!("no {MANIFEST}"))
            } else {
                Invalid::Missing
            });
        }
        Err(e) => return Err(Invalid::BadManifest(e.to_string())),
    };
    serde_json::from_slice(&bytes).map_err(|e| Invalid::BadManifest(e.to_string()))
}

/// The manifest, if the directory holds a complete artifact whose files all match it.
pub fn verify(dir: &Path, key: Option<&str>) -> std::result::Result<Manifest, Invalid> {
    let m = read_manifest(dir)?;
    if let Some(key) = key
        && m.key != key
    {
        return Err(Invalid::BadManifest(format!(
            "manifest is for key {}, expected {key}",
            m.key
        )));
    }
    m.outputs
        .par_iter()
        .map(|o| verify_output(dir, o))
        .collect::<std::result::Result<Vec<()>, Invalid>>()?;
    Ok(m)
}

fn verify_output(dir: &Path, o: &OutputFile) -> std::result::Result<(), Invalid> {
    let p = dir.join(&o.path);
    let meta = std::fs::metadata(&p)
        .map_err(|_| Invalid::Mismatch(format!("output {} is missing", o.path)))?;
    if meta.len() != o.bytes {
        return Err(Invalid::Mismatch(format!(
            "output {} has {} bytes, the manifest says {}",
            o.path,
            meta.len(),
            o.bytes
        )));
    }
    let h = recpipe_core::fsutil::hash_file(&p).map_err(|e| Invalid::Mismatch(e.to_string()))?;
    if h.to_hex().as_str() != o.blake3 {
        return Err(Invalid::Mismatch(format!(
            "output {} does not match its recorded hash (modified after it was written)",
            o.path
        )));
    }
    Ok(())
}

/// Describe (and fsync) every file a stage wrote.
pub fn describe_outputs(dir: &Path) -> Result<Vec<OutputFile>> {
    let mut files = Vec::new();
    super::walk_files(dir, &mut files).with_context(|| format!("cannot list {}", dir.display()))?;
    files.sort();
    files
        .par_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != MANIFEST))
        .map(|p| {
            let rel = p
                .strip_prefix(dir)
                .unwrap_or(p)
                .to_string_lossy()
                .replace('\\', "/");
            File::open(p)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot sync {}", p.display()))?;
            let bytes = std::fs::metadata(p)?.len();
            let rows = if rel.ends_with(".parquet") {
                Some(recpipe_core::parquet_io::row_count(p)? as u64)
            } else {
                None
            };
            let blake3 = recpipe_core::fsutil::hash_file(p)?.to_hex().to_string();
            Ok(OutputFile {
                path: rel,
                bytes,
                rows,
                blake3,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let art = dir.path().join("a");
        std::fs::create_dir_all(&art).unwrap();
        std::fs::write(art.join("x.txt"), "hello").unwrap();
        let outputs = describe_outputs(&art).unwrap();
        let m = Manifest {
            stage: "s".into(),
            kind: "k".into(),
            key: "key".into(),
            format_version: 1,
            pipeline: None,
            config: serde_json::json!({}),
            inputs: Default::default(),
            outputs,
            start: crate::numbers::rfc3339(std::time::SystemTime::now()),
            duration_s: 0.0,
            version: "0".into(),
            summary: serde_json::Value::Null,
            lines: vec![],
        };
        recpipe_core::fsutil::write_json(art.join(MANIFEST), &m).unwrap();
        assert!(verify(&art, Some("key")).is_ok());
        assert!(matches!(
            verify(&art, Some("other")),
            Err(Invalid::BadManifest(_))
        ));
        std::fs::write(art.join("x.txt"), "hellO").unwrap();
        assert!(matches!(verify(&art, None), Err(Invalid::Mismatch(_))));
        std::fs::write(art.join("x.txt"), "hell").unwrap();
        assert!(matches!(verify(&art, None), Err(Invalid::Mismatch(_))));
        assert_eq!(
            verify(&dir.path().join("nope"), None).unwrap_err(),
            Invalid::Missing
        );
    }
}
