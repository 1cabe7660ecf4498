//! Pipeline files: `name`, and `[stages.<name>]` tables holding `kind`, `inputs` and the stage's
//! own keys. Parsing ([`parse`]) keeps toml's spans so every mistake is reported at its line and
//! column; `--set` overrides ([`args`]) are checked exactly like the file's own keys, and the
//! data files stages read are checked to exist ([`data`]).

mod args;
mod data;
mod parse;
mod topo;

pub use args::{Override, arg_string, arg_value, set_path};
pub use data::{check_external_inputs, missing_input};

use crate::diag::SourceError;
use crate::handler::{Handler, Parsed};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot read pipeline file {path}: {source}; the shipped pipelines are in pipelines/")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    At(#[from] SourceError),
    #[error("`--set {0}`: expected STAGE.KEY=VALUE, e.g. `--set split.seed=7`")]
    BadSet(String),
}

impl PipelineError {
    pub fn excerpt(&self) -> Option<String> {
        match self {
            PipelineError::At(e) => e.excerpt(),
            _ => None,
        }
    }
}

pub struct StageDef {
    pub name: String,
    pub handler: &'static dyn Handler,
    /// Direct inputs, as indices into `Pipeline::stages`, in the order written.
    pub inputs: Vec<usize>,
    pub config: Parsed,
}

impl StageDef {
    pub fn kind(&self) -> &'static str {
        self.handler.kind()
    }
}

pub struct Pipeline {
    pub name: String,
    pub path: PathBuf,
    /// In a topological order (inputs before the stages reading them), file order otherwise.
    pub stages: Vec<StageDef>,
    /// The `--set` flags it was loaded with (a sweep trial's grid values included), as typed.
    pub overrides: Vec<String>,
}

impl Pipeline {
    pub fn load(path: &Path, sets: &[String]) -> Result<Pipeline, PipelineError> {
        Self::load_checking(path, sets, true)
    }

    /// For `dag` and `status`, which describe the pipeline: data files need not exist yet.
    pub fn load_without_data(path: &Path, sets: &[String]) -> Result<Pipeline, PipelineError> {
        Self::load_checking(path, sets, false)
    }

    fn load_checking(
        path: &Path,
        sets: &[String],
        check_data: bool,
    ) -> Result<Pipeline, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        let overrides = sets
            .iter()
            .map(|s| Override::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        parse::parse(path, text, &overrides, check_data)
    }

    pub fn index_of(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == stage)
    }

    /// [`Self::index_of`], or an error listing the stages there are.
    pub fn stage_index(&self, stage: &str) -> anyhow::Result<usize> {
        self.index_of(stage).ok_or_else(|| {
            anyhow::anyhow!(
                "no stage named `{stage}` in {}; stages: {}",
                self.path.display(),
                self.stage_names().join(", ")
            )
        })
    }

    /// Ancestors of `i` after its direct inputs, nearest first (breadth-first).
    pub fn upstream(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.stages.len()];
        let mut out = Vec::new();
        let mut frontier: Vec<usize> = self.stages[i].inputs.clone();
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for j in frontier {
                if !seen[j] {
                    seen[j] = true;
                    out.push(j);
                    next.extend(self.stages[j].inputs.iter().copied());
                }
            }
            frontier = next;
        }
        out
    }

    pub fn downstream(&self, i: usize) -> Vec<usize> {
        let mut marked = vec![false; self.stages.len()];
        marked[i] = true;
        // Topological order: one forward pass reaches every descendant.
        for j in 0..self.stages.len() {
            if self.stages[j].inputs.iter().any(|&k| marked[k]) {
                marked[j] = true;
            }
        }
        (0..self.stages.len())
            .filter(|&j| marked[j] && j != i)
            .collect()
    }

    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }
}
