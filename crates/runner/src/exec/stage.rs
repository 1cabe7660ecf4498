//! Running one stage: looked up in the cache, else built under its entry's lock into a
//! pending folder and committed. [`run_stage`] (the handler call and its manifest) is shared
//! with the one-off stage commands.

use super::Outcome;
use super::assess::{State, assess};
use super::plan::Planned;
use crate::cache::{ExternalRef, Manifest, ManifestInputs, Store, UpstreamRef};
use crate::handler::{Handler, Parsed};
use crate::pipeline::Pipeline;
use anyhow::{Context, Result, bail};
use recpipe_core::{Artifact, Inputs, OutDir, Progress};
use std::path::Path;
use std::time::{Instant, SystemTime};

/// What every stage of one run shares.
pub(super) struct Ctx<'a> {
    pub p: &'a Pipeline,
    pub plan: &'a [Planned],
    pub store: &'a Store,
    pub forced: &'a [bool],
}

impl Ctx<'_> {
    fn artifact(&self, j: usize) -> Artifact {
        let s = &self.p.stages[j];
        Artifact {
            stage: s.name.clone(),
            kind: s.kind().to_string(),
            dir: self.store.artifact_dir(s.kind(), &self.plan[j].key),
        }
    }

    /// The stage's direct inputs, then its other ancestors, nearest first.
    fn inputs(&self, i: usize) -> Inputs {
        let s = &self.p.stages[i];
        let mut artifacts: Vec<Artifact> = s.inputs.iter().map(|&j| self.artifact(j)).collect();
        artifacts.extend(
            self.p
                .upstream(i)
                .into_iter()
                .filter(|j| !s.inputs.contains(j))
                .map(|j| self.artifact(j)),
        );
        Inputs::new(artifacts)
    }
}

/// The cached entry of stage `i`, or the entry it builds.
pub(super) fn exec_stage(ctx: &Ctx, i: usize) -> Result<Outcome> {
    let s = &ctx.p.stages[i];
    let planned = &ctx.plan[i];
    let kind = s.kind();
    let reasons = match assess(ctx.p, i, planned, ctx.store, ctx.forced[i]) {
        State::Fresh(m) => {
            return Ok(Outcome::Fresh {
                manifest: m,
                concurrent: false,
            });
        }
        State::Stale { reasons, corrupt } => {
            if let Some(c) = corrupt {
                tracing::warn!(
                    "stage `{}`: cached artifact {} is damaged ({c}); rebuilding it",
                    s.name,
                    ctx.store.artifact_dir(kind, &planned.key).display()
                );
            }
            reasons
        }
    };
    let _lock = ctx.store.lock(kind, &planned.key)?;
    if !ctx.forced[i]
        && let Ok(entry) = ctx.store.lookup(kind, &planned.key)
    {
        return Ok(Outcome::Fresh {
            manifest: Box::new(entry.manifest),
            concurrent: true,
        });
    }
    let pending = ctx.store.pending(kind, &planned.key)?;
    tracing::debug!(
        "running stage `{}` ({kind}): {}",
        s.name,
        reasons.join("; ")
    );
    let upstream = planned
        .upstream
        .iter()
        .map(|u| UpstreamRef {
            dir: Some(ctx.store.artifact_dir(&u.kind, &u.key)),
            ..u.clone()
        })
        .collect();
    let job = Job {
        handler: s.handler,
        config: &s.config,
        stage: &s.name,
        pipeline: Some(ctx.p.name.clone()),
        key: &planned.key,
        upstream,
        external: planned.external.clone(),
    };
    let manifest = run_stage(job, ctx.inputs(i), pending.dir())
        .with_context(|| format!("stage `{}` ({kind}) failed", s.name))?;
    let entry = pending.commit(manifest)?;
    Ok(Outcome::Ran {
        manifest: Box::new(entry.manifest),
        reasons,
    })
}

/// One stage to run, and what its manifest records about it.
pub struct Job<'a> {
    pub handler: &'a dyn Handler,
    pub config: &'a Parsed,
    pub stage: &'a str,
    /// None for a one-off command.
    pub pipeline: Option<String>,
    pub key: &'a str,
    pub upstream: Vec<UpstreamRef>,
    pub external: Vec<ExternalRef>,
}

/// Run the stage into `dir`; its manifest (outputs left for [`crate::cache::Pending::commit`]
/// to fill in). A panic in the stage is returned as an error.
pub fn run_stage(job: Job, inputs: Inputs, dir: &Path) -> Result<Manifest> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let out = OutDir::new(dir)?;
    let progress = Progress::from_env();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        job.handler.run(job.config, &inputs, &out, &progress)
    }));
    let outputs = match result {
        Ok(r) => r?,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            bail!("the stage panicked: {msg} (this is a bug in recpipe; please report it)");
        }
    };
    Ok(Manifest {
        stage: job.stage.to_string(),
        kind: job.handler.kind().to_string(),
        key: job.key.to_string(),
        format_version: job.handler.format_version(),
        pipeline: job.pipeline,
        config: job.config.json.clone(),
        inputs: ManifestInputs {
            upstream: job.upstream,
            external: job.external,
        },
        outputs: Vec::new(),
        start: crate::numbers::rfc3339(started),
        duration_s: clock.elapsed().as_secs_f64(),
        version: recpipe_core::VERSION.to_string(),
        summary: outputs.summary,
        lines: outputs.lines,
    })
}
