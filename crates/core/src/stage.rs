//! The stage contract (docs/ARCHITECTURE.md): every stage crate implements [`Stage`] so the
//! runner can treat stages as rows of a table.

use crate::error::{CoreError, Result};
use crate::progress::Progress;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// An upstream artifact: a finished stage's output directory.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Stage name in the pipeline (e.g. `split`).
    pub stage: String,
    /// Stage kind (`ingest`, `split`, `train`, ...).
    pub kind: String,
    /// Directory holding the artifact's files.
    pub dir: PathBuf,
}

impl Artifact {
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Upstream artifacts of a stage: the stages named in its `inputs` first (in that order),
/// then their ancestors, nearest first. A train stage fed by `split` can thus still find
/// the `ingest` artifact (items table, id maps) without naming it.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub artifacts: Vec<Artifact>,
}

impl Inputs {
    pub fn new(artifacts: Vec<Artifact>) -> Self {
        Inputs { artifacts }
    }

    /// A single directory as the input of the given kind (one-off CLI runs).
    pub fn single(kind: &str, dir: impl Into<PathBuf>) -> Self {
        Inputs {
            artifacts: vec![Artifact {
                stage: kind.to_string(),
                kind: kind.to_string(),
                dir: dir.into(),
            }],
        }
    }

    /// The nearest artifact of `kind`, or an error naming what is missing.
    pub fn nearest(&self, kind: &str) -> Result<&Artifact> {
        self.artifacts
            .iter()
            .find(|a| a.kind == kind)
            .ok_or_else(|| {
                CoreError::MissingInput(format!(
                    "this stage needs an upstream `{kind}` stage; add it to `inputs`"
                ))
            })
    }

    /// Every artifact of `kind` (e.g. several train stages feeding one evaluate).
    pub fn all(&self, kind: &str) -> Vec<&Artifact> {
        self.artifacts.iter().filter(|a| a.kind == kind).collect()
    }
}

/// The fresh directory a stage writes into. The runner renames it into the cache after
/// `run` returned Ok, so a stage never has to clean up after a failure.
#[derive(Debug, Clone)]
pub struct OutDir {
    dir: PathBuf,
}

impl OutDir {
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| CoreError::io(&dir, e))?;
        Ok(OutDir { dir })
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// What a stage reports back: a JSON summary (counts, metrics, device) that the runner
/// prints and records in the manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outputs {
    pub summary: serde_json::Value,
    /// Human-readable lines for the terminal.
    pub lines: Vec<String>,
}

/// Which way a [`Headline`] number is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Minimize,
    Maximize,
}

/// A number in a stage's summary that compares runs of the stage (`recpipe sweep` ranks its
/// trials by one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headline {
    /// Dotted path into [`Outputs::summary`]. A segment `*` stands for any key, and a segment
    /// ending in `*` for any key that starts with the rest (`parts.*.*.p@*`: P@k of every
    /// model on every part); a path without `*` names one number.
    pub path: &'static str,
    pub goal: Goal,
    /// What the number is, for people (`validation RMSE`).
    pub label: &'static str,
}

impl Headline {
    /// Whether the summary path `path` (its segments) is one this headline describes.
    pub fn matches(&self, path: &[&str]) -> bool {
        let pattern: Vec<&str> = self.path.split('.').collect();
        pattern.len() == path.len()
            && pattern
                .iter()
                .zip(path)
                .all(|(p, s)| match p.strip_suffix('*') {
                    Some(prefix) => s.starts_with(prefix),
                    None => p == s,
                })
    }

    /// True when the path names one number (no `*`).
    pub fn is_exact(&self) -> bool {
        !self.path.contains('*')
    }
}

/// A stage kind. Implemented by a unit struct in each stage crate. Besides running, it tells
/// the runner how to present the stage ([`Stage::HEADLINES`], [`Stage::REPORT`]) and how to
/// recognise its artifacts ([`Stage::SIGNATURES`]), so the runner never names a kind itself.
pub trait Stage {
    /// The `kind` key in pipeline TOML.
    const KIND: &'static str;
    /// Bumped whenever the stage's output format or semantics change; part of the cache key.
    const FORMAT_VERSION: u32;
    /// Every knob of the stage, with defaults, parsed with `deny_unknown_fields`.
    type Config: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static;
    type Error: std::error::Error + Send + Sync + 'static;

    /// The numbers of the summary that compare runs of this kind, best known first; the first
    /// exact one is what a sweep ranks by when no metric is named.
    const HEADLINES: &'static [Headline] = &[];
    /// The file of the artifact folder a person opens to read the result (a report), if any.
    const REPORT: Option<&'static str> = None;
    /// How to recognise this kind's artifact folder when it has no manifest.json: the folder
    /// holds every file of at least one of these sets.
    const SIGNATURES: &'static [&'static [&'static str]] = &[];

    /// Files outside the cache that the stage reads (data files); the runner hashes them
    /// into the cache key.
    fn external_inputs(_cfg: &Self::Config) -> Vec<PathBuf> {
        Vec::new()
    }

    /// What on this machine, beyond the config, the upstream entries and the external
    /// inputs, decides the outputs (train: the CUDA device `device = "auto"` resolves to);
    /// part of the cache key when not null, so runs on different devices never share an
    /// entry.
    fn environment(_cfg: &Self::Config) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Checks of the config's values that need no data. The runner uses them to say what a
    /// value the config's types cannot hold should be (`epochs = -1`: "must be at least 1").
    fn validate(_cfg: &Self::Config) -> std::result::Result<(), Self::Error> {
        Ok(())
    }

    fn run(
        cfg: &Self::Config,
        inputs: &Inputs,
        out: &OutDir,
        progress: &Progress,
    ) -> std::result::Result<Outputs, Self::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_patterns_match_whole_segments_or_prefixes() {
        let exact = Headline {
            path: "valid_rmse",
            goal: Goal::Minimize,
            label: "validation RMSE",
        };
        assert!(exact.is_exact());
        assert!(exact.matches(&["valid_rmse"]));
        assert!(!exact.matches(&["valid_rmse", "x"]));
        assert!(!exact.matches(&["valid_mae"]));
        let p = Headline {
            path: "parts.*.*.p@*",
            goal: Goal::Maximize,
            label: "P@k",
        };
        assert!(!p.is_exact());
        assert!(p.matches(&["parts", "test", "blend", "p@10"]));
        assert!(!p.matches(&["parts", "test", "blend", "ndcg@10"]));
        assert!(!p.matches(&["parts", "test", "p@10"]));
    }
}
