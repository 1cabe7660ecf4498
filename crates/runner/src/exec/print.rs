//! What `run` prints: one block per stage as it finishes, the reports repeated at the end, and
//! a summary line; or, for `--dry-run`, what each stage would do.

use super::assess::{State, assess};
use super::plan::Planned;
use super::{Outcome, RunReport, run_name};
use crate::cache::Store;
use crate::numbers;
use crate::out::outln;
use crate::pipeline::Pipeline;
use std::path::Path;
use std::time::Duration;

/// Stage lines of one run, names padded to the longest; silent when `quiet`.
pub(super) struct Printer {
    width: usize,
    quiet: bool,
}

impl Printer {
    pub fn new(p: &Pipeline, quiet: bool) -> Printer {
        let width = p.stages.iter().map(|s| s.name.len()).max().unwrap_or(5);
        Printer { width, quiet }
    }

    /// The line (and for a stage that ran, its output lines) of a finished stage.
    pub fn finished(&self, name: &str, outcome: &Outcome, took: Duration) {
        if self.quiet {
            return;
        }
        let width = self.width;
        match outcome {
            Outcome::Fresh { concurrent, .. } => {
                let how = if *concurrent {
                    "built by a concurrent run"
                } else {
                    "cached"
                };
                outln!("{name:<width$}  fresh  {:>8}  {how}", "");
            }
            Outcome::Ran { manifest, reasons } => {
                outln!(
                    "{name:<width$}  ran    {:>8}  {}",
                    numbers::duration(took),
                    reasons.join("; ")
                );
                for l in &manifest.lines {
                    outln!("{:width$}    {l}", "");
                }
            }
        }
    }

    pub fn failed(&self, name: &str, e: &anyhow::Error, took: Duration) {
        if !self.quiet {
            let width = self.width;
            outln!(
                "{name:<width$}  FAILED {:>8}  {e:#}",
                numbers::duration(took)
            );
        }
    }

    pub fn not_run(&self, skipped: &[&str]) {
        if !skipped.is_empty() && !self.quiet {
            outln!("not run (an upstream stage failed): {}", skipped.join(", "));
        }
    }

    /// After a successful run: the reports, then `N ran, M fresh in T; artifacts: …`.
    pub fn summary(&self, p: &Pipeline, store: &Store, report: &RunReport, took: Duration) {
        if self.quiet {
            return;
        }
        let runs = store.runs_dir().join(run_name(p));
        print_reports(p, &runs, &report.outcomes);
        outln!(
            "{} ran, {} fresh in {}; artifacts: {}",
            report.ran,
            report.fresh,
            numbers::duration(took),
            runs.display()
        );
    }

    /// `--dry-run`: what each needed stage would do, counted as if it had.
    pub fn dry_run(
        &self,
        p: &Pipeline,
        store: &Store,
        plan: &[Planned],
        needed: &[bool],
        forced: &[bool],
    ) -> RunReport {
        let width = self.width;
        let mut report = RunReport::default();
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
        report
    }
}

/// A warm run prints no stage output; a stage with a report (the evaluation) is what a
/// person reruns the pipeline to see, so its lines and report path are repeated at the
/// end either way.
fn print_reports(p: &Pipeline, runs: &Path, outcomes: &[(usize, Outcome)]) {
    for (i, outcome) in outcomes {
        let m = outcome.manifest();
        let Some(file) = crate::stages::get(&m.kind).and_then(|h| h.report()) else {
            continue;
        };
        let stage = &p.stages[*i].name;
        if matches!(outcome, Outcome::Fresh { .. }) {
            outln!("{stage} (cached):");
            for l in m.lines.iter().filter(|l| !l.starts_with("report:")) {
                outln!("    {l}");
            }
        }
        outln!("report: {}", runs.join(stage).join(file).display());
    }
}
