//! `recpipe run`: deciding which stages are fresh ([`plan`], [`assess`]), and running the
//! stale ones ([`schedule`], [`stage`]): in parallel where the DAG allows, each under its
//! entry's lock, each written to a pending folder and committed to the cache. Then the run
//! becomes the pipeline's view ([`publish`]) and is summed up ([`print`]).

pub mod assess;
pub mod plan;
mod print;
mod publish;
mod schedule;
pub mod stage;
pub mod status;

pub use assess::{State, assess};
pub use plan::{Planned, plan, select};
pub use stage::{Job, run_stage};
pub use status::status;

use crate::cache::{Manifest, Store};
use crate::pipeline::Pipeline;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub stages: Vec<String>,
    pub force: bool,
    pub downstream: bool,
    pub dry_run: bool,
    /// Print nothing to stdout (callers such as `sweep` report from [`RunReport::outcomes`]).
    pub quiet: bool,
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

#[derive(Default)]
pub struct RunReport {
    pub ran: usize,
    pub fresh: usize,
    /// Every stage that finished, as (index into `Pipeline::stages`, outcome); empty on dry runs.
    pub outcomes: Vec<(usize, Outcome)>,
}

/// The pipeline's folder name under `runs/` and `views/` (checked safe when it was parsed).
pub fn run_name(p: &Pipeline) -> String {
    p.name.clone()
}

pub fn artifact_path(p: &Pipeline, store: &Store, i: usize, plan: &[Planned]) -> PathBuf {
    store.artifact_dir(p.stages[i].kind(), &plan[i].key)
}

/// Run (or with `dry_run`, describe) the selected stages. Prints one block per stage to stdout.
pub fn run(p: &Pipeline, store: &Store, opts: &RunOptions) -> Result<RunReport> {
    let (needed, forced) = select(p, opts)?;
    let plan = plan(p, store)?;
    let printer = print::Printer::new(p, opts.quiet);
    if opts.dry_run {
        return Ok(printer.dry_run(p, store, &plan, &needed, &forced));
    }
    let _guard = crate::gc::run_guard(store)?;
    let ctx = stage::Ctx {
        p,
        plan: &plan,
        store,
        forced: &forced,
    };
    let mut errors: Vec<anyhow::Error> = Vec::new();
    let mut report = RunReport::default();
    let started = Instant::now();
    let skipped = schedule::run_needed(&ctx, &needed, |i, result, took| {
        let name = &p.stages[i].name;
        match result {
            Ok(outcome) => {
                printer.finished(name, &outcome, took);
                match outcome {
                    Outcome::Fresh { .. } => report.fresh += 1,
                    Outcome::Ran { .. } => report.ran += 1,
                }
                report.outcomes.push((i, outcome));
            }
            Err(e) => {
                printer.failed(name, &e, took);
                errors.push(e);
            }
        }
    });
    let published = publish::publish_view(p, store, &plan, &report.outcomes);
    if let Some(first) = errors.into_iter().next() {
        let names: Vec<&str> = skipped.iter().map(|&i| p.stages[i].name.as_str()).collect();
        printer.not_run(&names);
        return Err(first);
    }
    published.context("the stages finished but their view could not be written")?;
    printer.summary(p, store, &report, started.elapsed());
    Ok(report)
}
