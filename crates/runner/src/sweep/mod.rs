//! `recpipe sweep`: one cached pipeline run per combination of a grid of `--set` values, each
//! trial scored by a number from a stage's summary, the results written to a Parquet table.
//!
//! Trials run one after another through [`exec::run`] in this process, so stages whose config
//! a trial does not change (ingest, split) are cache hits after the first trial, and a rerun
//! of the same sweep builds nothing. The grid is [`grid`], the metric [`metric`], the printed
//! ranking [`table`] and the Parquet table [`record`].

mod grid;
mod metric;
mod record;
mod table;

use crate::cache::Store;
use crate::cli::SweepArgs;
use crate::exec::{self, Outcome, RunOptions};
use crate::out::outln;
use crate::pipeline::{Override, Pipeline};
use crate::stages;
use anyhow::{Context, Result, anyhow, bail};
use grid::{Axis, grid_size, parse_grid, trials};
use metric::{Metric, Read};
use recpipe_core::Goal;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use table::{Ranked, Stats, fmt_metric};

/// One finished (or failed) trial.
pub struct Trial {
    id: u32,
    values: Vec<usize>,
    metric: Option<f64>,
    error: Option<String>,
    seconds: f64,
    train_key: Option<String>,
    metric_key: Option<String>,
}

/// What every trial shares: the pipeline file, the base `--set` flags, the grid, the metric.
struct Sweep<'a> {
    path: &'a Path,
    base_sets: &'a [String],
    axes: Vec<Axis>,
    metric: Metric,
    store: &'a Store,
    opts: RunOptions,
}

pub fn sweep(args: &SweepArgs, store: &Store) -> Result<()> {
    let path = &args.pipeline.pipeline;
    let base_sets = &args.pipeline.sets;
    let base = Pipeline::load(path, base_sets)?;
    let axes = parse_grid(&args.grid)?;
    check_args(args, &base, &axes)?;
    let metric = Metric::for_pipeline(args.metric.as_deref(), &base)?;
    let maximize = match (args.maximize, args.minimize) {
        (true, _) => true,
        (_, true) => false,
        _ => metric.goal == Some(Goal::Maximize),
    };
    let combos = trials(&axes, args.random, args.seed)?;
    let n = combos.len();
    let out_path = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(store, &base));
    let total = grid_size(&axes).unwrap_or(u64::MAX);
    let drawn = if (n as u64) < total {
        format!(" (of {total}, drawn with seed {})", args.seed)
    } else {
        String::new()
    };
    outln!(
        "sweep {}: {n} trial{}{drawn} over {}; metric {} ({})",
        base.name,
        if n == 1 { "" } else { "s" },
        axes.iter()
            .map(|a| format!("{} ({})", a.key, a.values.len()))
            .collect::<Vec<_>>()
            .join(" × "),
        metric.name(),
        if maximize { "maximize" } else { "minimize" }
    );
    let mut stages = vec![metric.stage.clone()];
    stages.extend(args.stage.iter().cloned());
    let opts = RunOptions {
        stages,
        quiet: true,
        ..RunOptions::default()
    };
    let s = Sweep {
        path,
        base_sets,
        axes,
        metric,
        store,
        opts,
    };
    let mut results = Vec::with_capacity(n);
    for (t, combo) in combos.iter().enumerate() {
        results.push(s.trial(t, n, combo)?);
    }
    rank(&mut results, maximize);
    let stats = Stats::of(&results);
    let ranked = Ranked {
        rows: &results,
        axes: &s.axes,
        metric: &s.metric.name(),
        out: &out_path,
        pipeline: path,
        base_sets,
    };
    record::write(&ranked, maximize, &base.name, stats)?;
    ranked.print(args.top);
    // Over folds (`--grid split.fold=...`) this is the cross-validated score.
    if let Some(st) = stats {
        outln!("{}", st.line());
    }
    if results.iter().all(|r| r.metric.is_none()) {
        let first = results.iter().min_by_key(|r| r.id);
        let first = first.and_then(|r| r.error.clone()).unwrap_or_default();
        bail!("every trial failed; the first: {first}");
    }
    Ok(())
}

/// Mistakes to fix before any trial runs: a swept stage or `--stage` not in the pipeline, a
/// grid value the stage cannot parse; a `--set` the grid overrides is worth a warning.
fn check_args(args: &SweepArgs, base: &Pipeline, axes: &[Axis]) -> Result<()> {
    let path = &args.pipeline.pipeline;
    let base_sets = &args.pipeline.sets;
    let stages = || base.stage_names().join(", ");
    for a in axes {
        let stage = a.key.split('.').next().unwrap_or_default();
        if base.index_of(stage).is_none() {
            bail!(
                "`--grid {}=...`: no stage named `{stage}` in {}; stages: {}",
                a.key,
                path.display(),
                stages()
            );
        }
        // A value the stage cannot even parse is a mistake to fix now, not a failed trial.
        for v in &a.values {
            let mut sets = base_sets.clone();
            sets.push(format!("{}={v}", a.key));
            Pipeline::load(path, &sets)
                .with_context(|| format!("`--grid {}`: value `{v}` is not valid", a.key))?;
        }
    }
    for s in base_sets {
        if let Ok(o) = Override::parse(s)
            && axes.iter().any(|a| a.key == o.path.join("."))
        {
            tracing::warn!("`--set {s}` is overridden by the --grid values of the same key");
        }
    }
    for s in &args.stage {
        if base.index_of(s).is_none() {
            bail!(
                "--stage {s}: no stage named `{s}` in {}; stages: {}",
                path.display(),
                stages()
            );
        }
    }
    Ok(())
}

/// `.recpipe/sweeps/<pipeline>-<unix time>.parquet`.
fn default_out(store: &Store, base: &Pipeline) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    store
        .root
        .join("sweeps")
        .join(format!("{}-{secs}.parquet", exec::run_name(base)))
}

/// Best first; failed trials last; ties in trial order.
fn rank(results: &mut [Trial], maximize: bool) {
    results.sort_by(|a, b| match (a.metric, b.metric) {
        (Some(x), Some(y)) => {
            let o = x.total_cmp(&y);
            (if maximize { o.reverse() } else { o }).then(a.id.cmp(&b.id))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(&b.id),
    });
}

impl Sweep<'_> {
    /// Trial `t` (of `n`): runs it and prints its line. A metric path missing from the
    /// summary is the same in every trial, so it stops the sweep.
    fn trial(&self, t: usize, n: usize, combo: &[usize]) -> Result<Trial> {
        let overrides: Vec<String> = self
            .axes
            .iter()
            .zip(combo)
            .map(|(a, &v)| format!("{}={}", a.key, a.values[v]))
            .collect();
        let mut sets = self.base_sets.to_vec();
        sets.extend(overrides.iter().cloned());
        let clock = Instant::now();
        let result = self.run(&sets);
        let seconds = clock.elapsed().as_secs_f64();
        let mut trial = Trial {
            id: t as u32 + 1,
            values: combo.to_vec(),
            metric: None,
            error: None,
            seconds,
            train_key: None,
            metric_key: None,
        };
        let width = n.to_string().len();
        let head = format!("trial {:>width$}/{n}  {}", t + 1, overrides.join(" "));
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                let e = format!("{e:#}");
                outln!("{head}  FAILED  {seconds:.2}s  {e}");
                trial.error = Some(e);
                return Ok(trial);
            }
        };
        let mut work = Vec::new();
        if !done.ran.is_empty() {
            work.push(format!("ran {}", done.ran.join(", ")));
        }
        if !done.cached.is_empty() {
            work.push(format!("cached {}", done.cached.join(", ")));
        }
        trial.train_key = done.train_key;
        trial.metric_key = Some(done.metric_key);
        let m = &self.metric;
        let shown = match done.read {
            Read::Value(x) => {
                trial.metric = Some(x);
                format!("{} = {}", m.name(), fmt_metric(x))
            }
            Read::Null => {
                let e = format!(
                    "{} is null in the stage's summary (the run produced no value; did it \
                     diverge?)",
                    m.name()
                );
                trial.error = Some(e.clone());
                format!("FAILED: {e}")
            }
            Read::Missing(why) => bail!(
                "--metric {}: not in the summary of stage `{}`: {why}; `recpipe show {} {} -v` \
                 prints the whole summary",
                m.name(),
                m.stage,
                self.path.display(),
                m.stage
            ),
        };
        outln!("{head}  {shown}  {seconds:.2}s  {}", work.join("; "));
        Ok(trial)
    }

    /// One cached run of the pipeline with `sets`; what ran, what was cached, the metric.
    fn run(&self, sets: &[String]) -> Result<Done> {
        let p = Pipeline::load(self.path, sets)?;
        let report = exec::run(&p, self.store, &self.opts)?;
        let mut ran = Vec::new();
        let mut cached = Vec::new();
        let mut by_stage: HashMap<usize, &Outcome> = HashMap::new();
        // Pipeline order reads better than completion order.
        let mut outcomes: Vec<&(usize, Outcome)> = report.outcomes.iter().collect();
        outcomes.sort_by_key(|(i, _)| *i);
        for (i, o) in outcomes {
            let name = p.stages[*i].name.clone();
            match o {
                Outcome::Ran { .. } => ran.push(name),
                Outcome::Fresh { .. } => cached.push(name),
            }
            by_stage.insert(*i, o);
        }
        let stage = &self.metric.stage;
        let mi = p
            .index_of(stage)
            .ok_or_else(|| anyhow!("no stage named `{stage}`"))?;
        let m = by_stage
            .get(&mi)
            .map(|o| o.manifest())
            .ok_or_else(|| anyhow!("stage `{stage}` did not run"))?;
        // The model the metric is about: the metric's stage if it trains, else its nearest
        // upstream train stage.
        let train_key = std::iter::once(mi)
            .chain(p.upstream(mi))
            .find(|&j| p.stages[j].kind() == stages::TRAIN)
            .and_then(|j| by_stage.get(&j))
            .map(|o| o.manifest().key.clone());
        Ok(Done {
            ran,
            cached,
            read: self.metric.read(&m.summary),
            metric_key: m.key.clone(),
            train_key,
        })
    }
}

struct Done {
    ran: Vec<String>,
    cached: Vec<String>,
    read: Read,
    metric_key: String,
    train_key: Option<String>,
}
