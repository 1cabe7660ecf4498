//! Deciding which stages are fresh, and running the stale ones: in parallel where the DAG
//! allows, each under its artifact's lock, each written to a temporary directory first.

use crate::cache::{self, ExternalRef, Invalid, Manifest, Store, UpstreamRef};
use crate::handler::Handler;
use crate::numbers;
use crate::out::outln;
use crate::pipeline::{Pipeline, missing_input};
use crate::view;
use anyhow::{Context, Result, anyhow, bail};
use recpipe_core::{Artifact, Inputs, OutDir, Progress};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// The cache identity of one stage of a pipeline.
#[derive(Debug, Clone)]
pub struct Planned {
    pub key: String,
    pub upstream: Vec<UpstreamRef>,
    pub external: Vec<ExternalRef>,
}

/// Cache keys of every stage, in pipeline (topological) order.
pub fn plan(p: &Pipeline, store: &Store) -> Result<Vec<Planned>> {
    let mut out: Vec<Planned> = Vec::with_capacity(p.stages.len());
    for i in 0..p.stages.len() {
        let planned = plan_one(p, store, i, |j| out[j].key.clone())?;
        out.push(planned);
    }
    store.save_stat_cache();
    Ok(out)
}

/// Why a stage cannot be planned without running something first (`status` without data).
#[derive(Debug, Clone)]
pub enum Blocked {
    /// A data file or folder it reads does not exist.
    Missing(PathBuf),
    /// It reads (maybe indirectly) the stage named, whose data is missing.
    Upstream(String),
}

/// Like [`plan`], with the stages whose data is missing (and what reads them) left out.
pub fn plan_available(p: &Pipeline, store: &Store) -> Result<Vec<Result<Planned, Blocked>>> {
    let mut out: Vec<Result<Planned, Blocked>> = Vec::with_capacity(p.stages.len());
    for (i, s) in p.stages.iter().enumerate() {
        let blocked = s.inputs.iter().find_map(|&j| match &out[j] {
            Err(Blocked::Missing(_)) => Some(Blocked::Upstream(p.stages[j].name.clone())),
            Err(b) => Some(b.clone()),
            Ok(_) => None,
        });
        let entry =
            match blocked.or_else(|| missing_input(s.handler, &s.config).map(Blocked::Missing)) {
                Some(b) => Err(b),
                None => Ok(plan_one(p, store, i, |j| {
                    out[j].as_ref().expect("inputs are planned").key.clone()
                })?),
            };
        out.push(entry);
    }
    store.save_stat_cache();
    Ok(out)
}

fn plan_one(
    p: &Pipeline,
    store: &Store,
    i: usize,
    key_of: impl Fn(usize) -> String,
) -> Result<Planned> {
    let s = &p.stages[i];
    let upstream = s
        .inputs
        .iter()
        .map(|&j| UpstreamRef {
            stage: p.stages[j].name.clone(),
            kind: p.stages[j].kind().to_string(),
            key: key_of(j),
            dir: None,
        })
        .collect::<Vec<_>>();
    let external = s
        .handler
        .external_inputs(&s.config)
        .iter()
        .map(|f| store.hash_external(f))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("stage `{}`: cannot hash its input files", s.name))?;
    let key = cache::stage_key(
        s.kind(),
        s.handler.format_version(),
        &s.config.json,
        &upstream,
        &external,
    );
    Ok(Planned {
        key,
        upstream,
        external,
    })
}

#[derive(Debug)]
pub enum State {
    Fresh(Box<Manifest>),
    Stale {
        reasons: Vec<String>,
        /// Set when an artifact with this key exists but failed verification.
        corrupt: Option<Invalid>,
    },
}

/// The pipeline's folder name under `runs/` and `views/` (checked safe when it was parsed).
pub fn run_name(p: &Pipeline) -> String {
    p.name.clone()
}

/// Fresh (with its verified manifest) or stale with the reasons, comparing against the manifest
/// the pipeline's last run of this stage recorded.
pub fn assess(p: &Pipeline, i: usize, planned: &Planned, store: &Store, forced: bool) -> State {
    let s = &p.stages[i];
    let dir = store.artifact_dir(s.kind(), &planned.key);
    let mut corrupt = None;
    if !forced {
        match cache::verify(&dir, Some(&planned.key)) {
            Ok(m) => return State::Fresh(Box::new(m)),
            Err(Invalid::Missing) => {}
            Err(e) => corrupt = Some(e),
        }
    }
    let mut reasons = Vec::new();
    if forced {
        reasons.push("forced (--force)".to_string());
    }
    if let Some(c) = &corrupt {
        reasons.push(format!("cached artifact is damaged: {c}"));
    }
    let previous = view::stage_target(store, &run_name(p), &s.name)
        .and_then(|d| cache::read_manifest(&d).ok());
    let collected = store.collected(s.kind(), &planned.key);
    // Forced or damaged already says why; otherwise explain against the last recorded run.
    if reasons.is_empty() {
        match previous {
            _ if collected.is_some() => reasons.push(format!(
                "its artifact was collected by gc ({})",
                collected.as_deref().unwrap_or_default().trim()
            )),
            None => reasons.push("never run".to_string()),
            Some(prev) if prev.key == planned.key => {
                reasons.push("its artifact was removed from the cache".to_string())
            }
            Some(prev) => {
                reasons.extend(differences(s.handler, &s.config.json, planned, &prev));
                if reasons.is_empty() {
                    reasons.push("cache key changed".to_string());
                }
            }
        }
    }
    State::Stale { reasons, corrupt }
}

fn differences(
    handler: &dyn Handler,
    config: &serde_json::Value,
    planned: &Planned,
    prev: &Manifest,
) -> Vec<String> {
    let mut out = Vec::new();
    if prev.kind != handler.kind() {
        out.push(format!(
            "kind changed from {} to {}",
            prev.kind,
            handler.kind()
        ));
        return out;
    }
    if prev.format_version != handler.format_version() {
        out.push(format!(
            "{} stage format version changed from {} to {}",
            handler.kind(),
            prev.format_version,
            handler.format_version()
        ));
    }
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &prev.config, &mut a);
    flatten("", config, &mut b);
    for (k, new) in &b {
        match a.get(k) {
            Some(old) if old != new => {
                out.push(format!("config key `{k}` changed from {old} to {new}"))
            }
            None => out.push(format!("config key `{k}` added ({new})")),
            _ => {}
        }
    }
    for k in a.keys().filter(|k| !b.contains_key(*k)) {
        out.push(format!("config key `{k}` removed"));
    }
    for e in &planned.external {
        match prev.inputs.external.iter().find(|x| x.path == e.path) {
            Some(x) if x.blake3 == e.blake3 => {}
            Some(_) => out.push(format!("input {} changed", e.path.display())),
            None => out.push(format!("new input {}", e.path.display())),
        }
    }
    for u in &planned.upstream {
        match prev.inputs.upstream.iter().find(|x| x.stage == u.stage) {
            Some(x) if x.key == u.key => {}
            Some(_) => out.push(format!("upstream `{}` changed", u.stage)),
            None => out.push(format!("new upstream `{}`", u.stage)),
        }
    }
    out
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), numbers::tidy(other).to_string());
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub stages: Vec<String>,
    pub force: bool,
    pub downstream: bool,
    pub dry_run: bool,
    /// Print nothing to stdout (callers such as `sweep` report from [`RunReport::outcomes`]).
    pub quiet: bool,
}

/// Which stages a command touches and which of them are forced.
pub fn select(p: &Pipeline, opts: &RunOptions) -> Result<(Vec<bool>, Vec<bool>)> {
    let n = p.stages.len();
    let mut targets = vec![opts.stages.is_empty(); n];
    for name in &opts.stages {
        let i = p.index_of(name).ok_or_else(|| {
            anyhow!(
                "no stage named `{name}` in {}; stages: {}",
                p.path.display(),
                p.stage_names().join(", ")
            )
        })?;
        targets[i] = true;
        if opts.downstream {
            for j in p.downstream(i) {
                targets[j] = true;
            }
        }
    }
    let mut needed = targets.clone();
    for i in (0..n).filter(|&i| targets[i]) {
        for j in p.upstream(i) {
            needed[j] = true;
        }
    }
    let forced = if opts.force { targets } else { vec![false; n] };
    Ok((needed, forced))
}

pub enum Outcome {
    Fresh {
        manifest: Box<Manifest>,
        /// Another process built it while this one waited for the lock.
        concurrent: bool,
    },
    Ran {
        manifest: Box<Manifest>,
        reasons: Vec<String>,
    },
}

impl Outcome {
    pub fn manifest(&self) -> &Manifest {
        match self {
            Outcome::Fresh { manifest, .. } | Outcome::Ran { manifest, .. } => manifest,
        }
    }
}

struct Ctx<'a> {
    p: &'a Pipeline,
    plan: &'a [Planned],
    store: &'a Store,
    forced: &'a [bool],
}

fn artifact_of(ctx: &Ctx, j: usize) -> Artifact {
    let s = &ctx.p.stages[j];
    Artifact {
        stage: s.name.clone(),
        kind: s.kind().to_string(),
        dir: ctx.store.artifact_dir(s.kind(), &ctx.plan[j].key),
    }
}

fn exec_stage(ctx: &Ctx, i: usize) -> Result<Outcome> {
    let s = &ctx.p.stages[i];
    let planned = &ctx.plan[i];
    let kind = s.kind();
    let dest = ctx.store.artifact_dir(kind, &planned.key);
    let reasons = match assess(ctx.p, i, &ctx.plan[i], ctx.store, ctx.forced[i]) {
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
                    dest.display()
                );
            }
            reasons
        }
    };
    let _lock = ctx.store.lock(kind, &planned.key)?;
    if !ctx.forced[i]
        && let Ok(m) = cache::verify(&dest, Some(&planned.key))
    {
        return Ok(Outcome::Fresh {
            manifest: Box::new(m),
            concurrent: true,
        });
    }
    ctx.store.clean_stale_tmp(kind, &planned.key);
    let tmp = ctx.store.new_tmp(kind, &planned.key)?;
    let mut artifacts: Vec<Artifact> = s.inputs.iter().map(|&j| artifact_of(ctx, j)).collect();
    artifacts.extend(
        ctx.p
            .upstream(i)
            .into_iter()
            .filter(|j| !s.inputs.contains(j))
            .map(|j| artifact_of(ctx, j)),
    );
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
    let manifest = build(
        s.handler,
        &s.config,
        &s.name,
        Some(ctx.p.name.clone()),
        &planned.key,
        Inputs::new(artifacts),
        upstream,
        planned.external.clone(),
        &tmp,
    )
    .inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })
    .with_context(|| format!("stage `{}` ({kind}) failed", s.name))?;
    cache::install(ctx.store, &tmp, &dest)?;
    Ok(Outcome::Ran {
        manifest: Box::new(manifest),
        reasons,
    })
}

/// Run a stage into `tmp` and write its manifest there (last).
#[allow(clippy::too_many_arguments)]
pub fn build(
    handler: &dyn Handler,
    config: &crate::handler::Parsed,
    stage: &str,
    pipeline: Option<String>,
    key: &str,
    inputs: Inputs,
    upstream: Vec<UpstreamRef>,
    external: Vec<ExternalRef>,
    tmp: &std::path::Path,
) -> Result<Manifest> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let out = OutDir::new(tmp)?;
    let progress = Progress::from_env();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handler.run(config, &inputs, &out, &progress)
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
    let files = cache::describe_outputs(tmp)?;
    let manifest = Manifest {
        stage: stage.to_string(),
        kind: handler.kind().to_string(),
        key: key.to_string(),
        format_version: handler.format_version(),
        pipeline,
        config: config.json.clone(),
        inputs: cache::ManifestInputs { upstream, external },
        outputs: files,
        start: cache::rfc3339(started),
        duration_s: clock.elapsed().as_secs_f64(),
        version: recpipe_core::VERSION.to_string(),
        summary: outputs.summary,
        lines: outputs.lines,
    };
    recpipe_core::fsutil::write_json(tmp.join(cache::MANIFEST), &manifest)?;
    Ok(manifest)
}

pub struct RunReport {
    pub ran: usize,
    pub fresh: usize,
    /// Every stage that finished, as (index into `Pipeline::stages`, outcome); empty on dry runs.
    pub outcomes: Vec<(usize, Outcome)>,
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.2}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// Run (or with `dry_run`, describe) the selected stages. Prints one block per stage to stdout.
pub fn run(p: &Pipeline, store: &Store, opts: &RunOptions) -> Result<RunReport> {
    let (needed, forced) = select(p, opts)?;
    let plan = plan(p, store)?;
    let width = p.stages.iter().map(|s| s.name.len()).max().unwrap_or(5);
    if opts.dry_run {
        let mut report = RunReport {
            ran: 0,
            fresh: 0,
            outcomes: Vec::new(),
        };
        for i in (0..p.stages.len()).filter(|&i| needed[i]) {
            let name = &p.stages[i].name;
            match assess(p, i, &plan[i], store, forced[i]) {
                State::Fresh(_) => {
                    report.fresh += 1;
                    outln!("{name:<width$}  fresh      would reuse {}", plan[i].key);
                }
                State::Stale { reasons, .. } => {
                    report.ran += 1;
                    outln!("{name:<width$}  would run  {}", reasons.join("; "));
                }
            }
        }
        return Ok(report);
    }

    let _guard = crate::gc::run_guard(store)?;
    let ctx = Ctx {
        p,
        plan: &plan,
        store,
        forced: &forced,
    };
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Skip,
        Pending,
        Running,
        Done,
        Failed,
    }
    let n = p.stages.len();
    let mut st: Vec<St> = needed
        .iter()
        .map(|&x| if x { St::Pending } else { St::Skip })
        .collect();
    let mut errors: Vec<anyhow::Error> = Vec::new();
    let mut report = RunReport {
        ran: 0,
        fresh: 0,
        outcomes: Vec::new(),
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut running = 0;
        loop {
            if errors.is_empty() {
                for i in 0..n {
                    if st[i] == St::Pending && p.stages[i].inputs.iter().all(|&j| st[j] == St::Done)
                    {
                        st[i] = St::Running;
                        running += 1;
                        let tx = tx.clone();
                        let ctx = &ctx;
                        scope.spawn(move || {
                            let t = Instant::now();
                            let r = exec_stage(ctx, i);
                            let _ = tx.send((i, r, t.elapsed()));
                        });
                    }
                }
            }
            if running == 0 {
                break;
            }
            let (i, result, took) = rx.recv().expect("workers send before exiting");
            running -= 1;
            let name = &p.stages[i].name;
            match result {
                Ok(outcome) => {
                    st[i] = St::Done;
                    match &outcome {
                        Outcome::Fresh { concurrent, .. } => {
                            report.fresh += 1;
                            let how = if *concurrent {
                                "built by a concurrent run"
                            } else {
                                "cached"
                            };
                            if !opts.quiet {
                                outln!("{name:<width$}  fresh  {:>8}  {how}", "");
                            }
                        }
                        Outcome::Ran { manifest, reasons } => {
                            report.ran += 1;
                            if !opts.quiet {
                                outln!(
                                    "{name:<width$}  ran    {:>8}  {}",
                                    fmt_duration(took),
                                    reasons.join("; ")
                                );
                                for l in &manifest.lines {
                                    outln!("{:width$}    {l}", "");
                                }
                            }
                        }
                    }
                    report.outcomes.push((i, outcome));
                }
                Err(e) => {
                    st[i] = St::Failed;
                    if !opts.quiet {
                        outln!("{name:<width$}  FAILED {:>8}  {e:#}", fmt_duration(took));
                    }
                    errors.push(e);
                }
            }
        }
    });
    let published = publish_view(p, store, &plan, &report.outcomes);
    let skipped: Vec<&str> = (0..n)
        .filter(|&i| st[i] == St::Pending)
        .map(|i| p.stages[i].name.as_str())
        .collect();
    if let Some(first) = errors.into_iter().next() {
        if !skipped.is_empty() && !opts.quiet {
            outln!("not run (an upstream stage failed): {}", skipped.join(", "));
        }
        return Err(first);
    }
    published.context("the stages finished but their view could not be written")?;
    if !opts.quiet {
        let runs = store.root.join("runs").join(run_name(p));
        // A warm run prints no stage output; the evaluation is what a person reruns the
        // pipeline to see, so its table and report path are repeated at the end either way.
        for (i, outcome) in &report.outcomes {
            let m = outcome.manifest();
            if m.kind != "evaluate" {
                continue;
            }
            let stage = &p.stages[*i].name;
            if matches!(outcome, Outcome::Fresh { .. }) {
                outln!("{stage} (cached):");
                for l in m.lines.iter().filter(|l| !l.starts_with("report:")) {
                    outln!("    {l}");
                }
            }
            outln!("report: {}", runs.join(stage).join("report.md").display());
        }
        outln!(
            "{} ran, {} fresh in {}; artifacts: {}",
            report.ran,
            report.fresh,
            fmt_duration(started.elapsed()),
            runs.display()
        );
    }
    Ok(report)
}

/// Make this run's stages the pipeline's view, with the stages it did not touch kept from the
/// previous view only where they are what this configuration would build (same key).
fn publish_view(
    p: &Pipeline,
    store: &Store,
    plan: &[Planned],
    outcomes: &[(usize, Outcome)],
) -> Result<()> {
    let stages = outcomes
        .iter()
        .map(|(i, o)| {
            let m = o.manifest();
            let r = view::StageRef {
                kind: m.kind.clone(),
                key: m.key.clone(),
            };
            (p.stages[*i].name.clone(), r)
        })
        .collect();
    let record = view::RunRecord {
        pipeline: run_name(p),
        file: p.path.clone(),
        overrides: p.overrides.clone(),
        finished: cache::rfc3339(SystemTime::now()),
        stages,
    };
    view::publish(store, record, |stage, r| {
        p.index_of(stage)
            .is_some_and(|i| p.stages[i].kind() == r.kind && plan[i].key == r.key)
    })?;
    Ok(())
}

/// `recpipe status`: one line per stage.
pub fn status(p: &Pipeline, store: &Store) -> Result<()> {
    let plan = plan_available(p, store)?;
    let width = p.stages.iter().map(|s| s.name.len()).max().unwrap_or(5);
    for (i, planned) in plan.iter().enumerate() {
        let name = &p.stages[i].name;
        let planned = match planned {
            Ok(planned) => planned,
            Err(Blocked::Missing(path)) => {
                outln!(
                    "{name:<width$}  missing  input {} not found",
                    path.display()
                );
                continue;
            }
            Err(Blocked::Upstream(stage)) => {
                outln!("{name:<width$}  unknown  until `{stage}` can run (its input is missing)");
                continue;
            }
        };
        match assess(p, i, planned, store, false) {
            State::Fresh(m) => outln!(
                "{name:<width$}  fresh  {} (built {} in {:.2}s)",
                store.artifact_dir(&m.kind, &m.key).display(),
                m.start,
                m.duration_s
            ),
            State::Stale { reasons, .. } => {
                outln!("{name:<width$}  stale  {}", reasons.join("; "))
            }
        }
    }
    Ok(())
}

pub fn artifact_path(p: &Pipeline, store: &Store, i: usize, plan: &[Planned]) -> PathBuf {
    store.artifact_dir(p.stages[i].kind(), &plan[i].key)
}
