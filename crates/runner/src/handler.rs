//! Type erasure over [`recpipe_core::Stage`], so the runner holds one table of kinds instead of
//! a match per stage crate.

use recpipe_core::{Headline, Inputs, OutDir, Outputs, Progress, Stage};
use serde::Deserialize;
use std::any::Any;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
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

/// What a stage's `run` gives the runner.
pub type Ran = anyhow::Result<Outputs>;

/// One stage kind, its config types erased: what the runner runs and how it presents it.
pub trait Handler: Send + Sync {
    fn kind(&self) -> &'static str;
    fn format_version(&self) -> u32;
    /// Strict parse (`deny_unknown_fields`); errors keep toml's span.
    fn parse(&self, table: Spanned<DeValue<'static>>) -> Result<Parsed, SpanError>;
    fn external_inputs(&self, cfg: &Parsed) -> Vec<PathBuf>;
    /// What on this machine decides the outputs ([`Stage::environment`]).
    fn environment(&self, cfg: &Parsed) -> serde_json::Value;
    fn run(&self, cfg: &Parsed, inputs: &Inputs, out: &OutDir, progress: &Progress) -> Ran;
    /// The summary's numbers that compare runs ([`Stage::HEADLINES`]).
    fn headlines(&self) -> &'static [Headline];
    /// The file of the artifact a person opens ([`Stage::REPORT`]).
    fn report(&self) -> Option<&'static str>;
    /// The file sets that mark this kind's artifact folder ([`Stage::SIGNATURES`]).
    fn signatures(&self) -> &'static [&'static [&'static str]];

    /// Whether `dir`, a folder without manifest.json, holds every file of one signature.
    fn recognizes(&self, dir: &Path) -> bool {
        self.signatures()
            .iter()
            .any(|set| set.iter().all(|f| dir.join(f).exists()))
    }
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
        let cfg = S::Config::deserialize(ValueDeserializer::from(table.clone())).map_err(|e| {
            let at = e.span().unwrap_or(span.clone());
            let message = negative_message::<S>(&table, &at, e.message())
                .unwrap_or_else(|| e.message().to_string());
            SpanError { message, span: at }
        })?;
        Self::wrap(cfg).map_err(|e| SpanError {
            message: format!("config cannot be recorded as JSON: {e}"),
            span,
        })
    }

    fn external_inputs(&self, cfg: &Parsed) -> Vec<PathBuf> {
        S::external_inputs(Self::typed(cfg))
    }

    fn environment(&self, cfg: &Parsed) -> serde_json::Value {
        S::environment(Self::typed(cfg))
    }

    fn run(&self, cfg: &Parsed, inputs: &Inputs, out: &OutDir, progress: &Progress) -> Ran {
        Ok(S::run(Self::typed(cfg), inputs, out, progress)?)
    }

    fn headlines(&self) -> &'static [Headline] {
        S::HEADLINES
    }

    fn report(&self) -> Option<&'static str> {
        S::REPORT
    }

    fn signatures(&self) -> &'static [&'static [&'static str]] {
        S::SIGNATURES
    }
}

/// A config error at a byte range of the (virtual) pipeline source.
#[derive(Debug, Clone)]
pub struct SpanError {
    pub message: String,
    pub span: std::ops::Range<usize>,
}

/// For a negative number where the config wants a count (`invalid value: integer `-1`,
/// expected usize`): what the key accepts, from the stage's own checks of the value 0
/// ("must be at least 1"), else that it cannot be negative.
fn negative_message<S: Stage>(
    table: &Spanned<DeValue<'static>>,
    at: &std::ops::Range<usize>,
    message: &str,
) -> Option<String> {
    let rest = message.strip_prefix("invalid value: integer `-")?;
    let (digits, expected) = rest.split_once('`')?;
    if !expected.starts_with(", expected u") {
        return None;
    }
    let fallback = Some(format!("must be 0 or more, got -{digits}"));
    let DeValue::Table(t) = table.get_ref() else {
        return fallback;
    };
    let Some((key, _)) = t.iter().find(|(_, v)| v.span() == *at) else {
        return fallback;
    };
    let mut zeroed = t.clone();
    let zero = Spanned::new(at.clone(), DeValue::Integer(toml::de::DeInteger::default()));
    zeroed.insert(key.clone(), zero);
    let as_zero = Spanned::new(table.span(), DeValue::Table(zeroed));
    let Ok(cfg) = S::Config::deserialize(ValueDeserializer::from(as_zero)) else {
        return fallback;
    };
    let quoted = format!("`{}` ", key.get_ref());
    match S::validate(&cfg) {
        Err(e) => match e.to_string().split_once(&quoted) {
            Some((_, why)) => Some(format!("{why}, got -{digits}")),
            None => fallback,
        },
        Ok(()) => fallback,
    }
}
