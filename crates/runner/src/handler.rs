//! Type erasure over [`recpipe_core::Stage`], so the runner holds one table of kinds instead of
//! a match per stage crate.

use recpipe_core::{Inputs, OutDir, Outputs, Progress, Stage};
use serde::Deserialize;
use std::any::Any;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

/// A stage config after strict parsing: the typed value (for `run`) and its canonical JSON
/// (for the cache key and the manifest).
#[derive(Clone)]
pub struct Parsed {
    pub json: serde_json::Value,
    typed: Arc<dyn Any + Send + Sync>,
}

pub trait Handler: Send + Sync {
    fn kind(&self) -> &'static str;
    fn format_version(&self) -> u32;
    /// Strict parse (`deny_unknown_fields`); errors keep toml's span.
    fn parse(&self, table: Spanned<DeValue<'static>>) -> Result<Parsed, SpanError>;
    fn external_inputs(&self, cfg: &Parsed) -> Vec<PathBuf>;
    fn run(
        &self,
        cfg: &Parsed,
        inputs: &Inputs,
        out: &OutDir,
        progress: &Progress,
    ) -> anyhow::Result<Outputs>;
}

struct StageHandler<S>(PhantomData<fn() -> S>);

/// The handler of stage type `S`; one line per kind in `stages.rs`.
pub fn handler<S: Stage + 'static>() -> Box<dyn Handler> {
    Box::new(StageHandler::<S>(PhantomData))
}

impl<S: Stage + 'static> StageHandler<S> {
    fn wrap(cfg: S::Config) -> Result<Parsed, serde_json::Error> {
        let json = serde_json::to_value(&cfg)?;
        Ok(Parsed {
            json,
            typed: Arc::new(cfg),
        })
    }

    fn typed(cfg: &Parsed) -> &S::Config {
        cfg.typed
            .downcast_ref::<S::Config>()
            .expect("a Parsed is only handed back to the handler that made it")
    }
}

impl<S: Stage + 'static> Handler for StageHandler<S> {
    fn kind(&self) -> &'static str {
        S::KIND
    }

    fn format_version(&self) -> u32 {
        S::FORMAT_VERSION
    }

    fn parse(&self, table: Spanned<DeValue<'static>>) -> Result<Parsed, SpanError> {
        let span = table.span();
        let cfg =
            S::Config::deserialize(ValueDeserializer::from(table)).map_err(|e| SpanError {
                message: e.message().to_string(),
                span: e.span().unwrap_or(span.clone()),
            })?;
        Self::wrap(cfg).map_err(|e| SpanError {
            message: format!("config cannot be recorded as JSON: {e}"),
            span,
        })
    }

    fn external_inputs(&self, cfg: &Parsed) -> Vec<PathBuf> {
        S::external_inputs(Self::typed(cfg))
    }

    fn run(
        &self,
        cfg: &Parsed,
        inputs: &Inputs,
        out: &OutDir,
        progress: &Progress,
    ) -> anyhow::Result<Outputs> {
        Ok(S::run(Self::typed(cfg), inputs, out, progress)?)
    }
}

/// A config error at a byte range of the (virtual) pipeline source.
#[derive(Debug, Clone)]
pub struct SpanError {
    pub message: String,
    pub span: std::ops::Range<usize>,
}
