//! `recpipe sweep`: one cached pipeline run per combination of a grid of `--set` values, each
//! trial scored by a number from a stage's summary, the results written to a Parquet table.
//!
//! Trials run one after another through [`exec::run`] in this process, so stages whose config
//! a trial does not change (ingest, split) are cache hits after the first trial, and a rerun
//! of the same sweep builds nothing.

use crate::cache::Store;
use crate::cli::SweepArgs;
use crate::exec::{self, Outcome, RunOptions};
use crate::out::outln;
use crate::pipeline::{Override, Pipeline};
use anyhow::{Context, Result, anyhow, bail};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use recpipe_core::rng::SplitMix64;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Full grids larger than this must be sampled with `--random`.
const MAX_TRIALS: u64 = 100_000;

/// Summary keys tried, in order, when no `--metric` is given (on the pipeline's train stage).
pub const DEFAULT_METRIC_KEYS: [&str; 2] = ["best_valid_rmse", "valid_rmse"];

/// One swept key (`STAGE.KEY`) and its values, as written (TOML text, or a plain string).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// Parses `--grid STAGE.KEY=V1,V2,...` arguments. Commas inside `[...]`, `{...}` or quotes do
/// not separate values; repeating a key adds values to its axis; duplicates are dropped.
pub fn parse_grid(args: &[String]) -> Result<Vec<Axis>> {
    let mut axes: Vec<Axis> = Vec::new();
    for raw in args {
        let bad = |why: &str| {
            anyhow!(
                "`--grid {raw}`: {why}; expected STAGE.KEY=V1,V2,..., e.g. `--grid train.k=32,64` \
                 (a list value in brackets may hold commas: `--grid 'train.hidden=[10],[32,16]'`)"
            )
        };
        let Some((_, values)) = raw.split_once('=') else {
            return Err(bad("no `=`"));
        };
        let o = Override::parse(raw).map_err(|_| bad("the key must be STAGE.KEY"))?;
        if o.path.len() < 2 {
            return Err(bad("the key must be STAGE.KEY"));
        }
        let key = o.path.join(".");
        let values = split_values(values).map_err(|why| bad(&why))?;
        match axes.iter_mut().find(|a| a.key == key) {
            Some(a) => a.values.extend(values),
            None => axes.push(Axis { key, values }),
        }
    }
    for a in &mut axes {
        let mut seen = HashSet::new();
        a.values.retain(|v| seen.insert(v.clone()));
    }
    Ok(axes)
}

/// Splits `V1,V2,...` at the commas outside brackets, braces and TOML strings.
fn split_values(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut cur = String::new();
    let push = |cur: &mut String, out: &mut Vec<String>| -> Result<(), String> {
        let v = cur.trim();
        if v.is_empty() {
            return Err(format!("empty value (value {} of the list)", out.len() + 1));
        }
        out.push(v.to_string());
        cur.clear();
        Ok(())
    };
    for c in s.chars() {
        if let Some(q) = quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' => depth.push(c),
            ']' | '}' => {
                let open = if c == ']' { '[' } else { '{' };
                if depth.pop() != Some(open) {
                    return Err(format!("unbalanced `{c}`"));
                }
            }
            ',' if depth.is_empty() => {
                push(&mut cur, &mut out)?;
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if let Some(open) = depth.last() {
        return Err(format!("unclosed `{open}`"));
    }
    push(&mut cur, &mut out)?;
    Ok(out)
}

/// How many combinations the grid has, if it can be counted in a u64.
fn grid_size(axes: &[Axis]) -> Option<u64> {
    axes.iter()
        .try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64))
}

/// Combination number `index` of the grid (the last axis varies fastest): a value index per axis.
fn combination(axes: &[Axis], mut index: u64) -> Vec<usize> {
    let mut out = vec![0; axes.len()];
    for (slot, a) in out.iter_mut().zip(axes).rev() {
        let n = a.values.len() as u64;
        *slot = (index % n) as usize;
        index /= n;
    }
    out
}

/// The grid's combinations to run: all of them, or `random` distinct ones drawn with `seed`
/// (in grid order, so related trials sit together in the output).
pub fn trials(axes: &[Axis], random: Option<u64>, seed: u64) -> Result<Vec<Vec<usize>>> {
    let total = grid_size(axes)
        .ok_or_else(|| anyhow!("the grid has more combinations than can be counted"))?;
    let indices: Vec<u64> = match random {
        Some(n) if n < total => {
            if n > MAX_TRIALS {
                bail!("--random {n}: at most {MAX_TRIALS} trials per sweep");
            }
            let mut rng = SplitMix64::stream(seed, 0x5EED_5EEB);
            let mut picked: Vec<u64> = if total <= 4 * MAX_TRIALS {
                let mut all: Vec<u64> = (0..total).collect();
                rng.partial_shuffle(&mut all, n as usize);
                all.truncate(n as usize);
                all
            } else {
                // n ≤ MAX_TRIALS is a small share of the grid: rejection rarely repeats.
                let mut seen = HashSet::new();
                while (seen.len() as u64) < n {
                    seen.insert(rng.below(total));
                }
                seen.into_iter().collect()
            };
            picked.sort_unstable();
            picked
        }
        _ => {
            if total > MAX_TRIALS {
                bail!(
                    "the grid has {total} combinations (more than {MAX_TRIALS}); sample some of \
                     them with --random N"
                );
            }
            if let Some(n) = random {
                tracing::info!("--random {n}: the grid has only {total} combinations; running all");
            }
            (0..total).collect()
        }
    };
    Ok(indices.into_iter().map(|i| combination(axes, i)).collect())
}

/// Where the metric lives: a stage name and a path into its summary.
#[derive(Debug, Clone)]
pub struct Metric {
    pub stage: String,
    /// Candidate paths, tried in order; the first one present in the summary is used.
    pub paths: Vec<Vec<String>>,
}

impl Metric {
    pub fn parse(spec: &str) -> Result<Metric> {
        let bad = || {
            anyhow!(
                "--metric {spec}: expected STAGE.PATH, a dotted path into the summary the stage \
                 recorded in its manifest.json (array indices as numbers), e.g. \
                 `--metric train.valid_rmse` or `--metric evaluate.models.0.valid.rmse`; \
                 `recpipe show PIPELINE STAGE` lists a summary"
            )
        };
        let (stage, path) = spec.split_once('.').ok_or_else(bad)?;
        let path: Vec<String> = path.split('.').map(|s| s.trim().to_string()).collect();
        if stage.trim().is_empty() || path.iter().any(|s| s.is_empty()) {
            return Err(bad());
        }
        Ok(Metric {
            stage: stage.trim().to_string(),
            paths: vec![path],
        })
    }

    /// The default: the first train stage's validation RMSE.
    fn default_for(p: &Pipeline) -> Result<Metric> {
        let train = p
            .stages
            .iter()
            .find(|s| s.kind() == "train")
            .ok_or_else(|| {
                anyhow!(
                    "no --metric given and {} has no train stage to read the default ({}) from; \
                 pass --metric STAGE.PATH, e.g. --metric split.train.rows",
                    p.path.display(),
                    DEFAULT_METRIC_KEYS
                        .map(|k| format!("train.{k}"))
                        .join(" or ")
                )
            })?;
        Ok(Metric {
            stage: train.name.clone(),
            paths: DEFAULT_METRIC_KEYS
                .iter()
                .map(|k| vec![k.to_string()])
                .collect(),
        })
    }

    /// The name shown in the output: the path found, else the candidates.
    fn name(&self, found: Option<usize>) -> String {
        let show = |p: &Vec<String>| format!("{}.{}", self.stage, p.join("."));
        match found {
            Some(i) => show(&self.paths[i]),
            None => self.paths.iter().map(show).collect::<Vec<_>>().join(" or "),
        }
    }
}

/// What reading the metric from a summary gave.
enum Read {
    Value(usize, f64),
    /// The path exists but holds no number (null: e.g. the run diverged).
    Null(usize),
    /// No candidate path exists in the summary: a mistake in `--metric`, the same for every trial.
    Missing(String),
}

fn read_metric(m: &Metric, summary: &serde_json::Value) -> Read {
    let mut why = String::new();
    for (i, path) in m.paths.iter().enumerate() {
        let mut v = summary;
        let mut walked = Vec::new();
        let mut ok = true;
        for seg in path {
            let next = match v {
                serde_json::Value::Object(map) => map.get(seg.as_str()),
                serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|k| a.get(k)),
                _ => None,
            };
            match next {
                Some(n) => {
                    walked.push(seg.as_str());
                    v = n;
                }
                None => {
                    let at = if walked.is_empty() {
                        "the summary".to_string()
                    } else {
                        format!("`{}`", walked.join("."))
                    };
                    let has = match v {
                        serde_json::Value::Object(map) => format!(
                            "keys: {}",
                            map.keys()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        serde_json::Value::Array(a) => format!("indices 0..{}", a.len()),
                        other => format!("a {} value, not a table", json_type(other)),
                    };
                    if why.is_empty() {
                        why = format!("{at} has no `{seg}` ({has})");
                    }
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        return match v {
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(x) => Read::Value(i, x),
                None => Read::Null(i),
            },
            serde_json::Value::Bool(b) => Read::Value(i, f64::from(u8::from(*b))),
            serde_json::Value::Null => Read::Null(i),
            other => {
                return Read::Missing(format!(
                    "`{}` is a {}, not a number",
                    path.join("."),
                    json_type(other)
                ));
            }
        };
    }
    Read::Missing(why)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "table",
    }
}

/// One finished (or failed) trial.
struct Trial {
    id: u32,
    values: Vec<usize>,
    metric: Option<f64>,
    error: Option<String>,
    seconds: f64,
    train_key: Option<String>,
    metric_key: Option<String>,
}

pub fn sweep(args: &SweepArgs, store: &Store) -> Result<()> {
    let path = &args.pipeline.pipeline;
    let base_sets = &args.pipeline.sets;
    let base = Pipeline::load(path, base_sets)?;
    let axes = parse_grid(&args.grid)?;
    for a in &axes {
        let stage = a.key.split('.').next().unwrap_or_default();
        if base.index_of(stage).is_none() {
            bail!(
                "`--grid {}=...`: no stage named `{stage}` in {}; stages: {}",
                a.key,
                path.display(),
                base.stage_names().join(", ")
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
    let metric = match &args.metric {
        Some(spec) => Metric::parse(spec)?,
        None => Metric::default_for(&base)?,
    };
    if base.index_of(&metric.stage).is_none() {
        bail!(
            "--metric {}: no stage named `{}` in {}; stages: {}",
            metric.name(None),
            metric.stage,
            path.display(),
            base.stage_names().join(", ")
        );
    }
    for s in &args.stage {
        if base.index_of(s).is_none() {
            bail!(
                "--stage {s}: no stage named `{s}` in {}; stages: {}",
                path.display(),
                base.stage_names().join(", ")
            );
        }
    }
    let maximize = args.maximize;
    let combos = trials(&axes, args.random, args.seed)?;
    let n = combos.len();
    let out_path = match &args.out {
        Some(p) => p.clone(),
        None => {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            store
                .root
                .join("sweeps")
                .join(format!("{}-{secs}.parquet", exec::run_name(&base)))
        }
    };
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
        metric.name(None),
        if maximize { "maximize" } else { "minimize" }
    );

    let mut stages = vec![metric.stage.clone()];
    stages.extend(args.stage.iter().cloned());
    let opts = RunOptions {
        stages,
        quiet: true,
        ..RunOptions::default()
    };
    let width = n.to_string().len();
    let mut found_path = None;
    let mut results: Vec<Trial> = Vec::with_capacity(n);
    for (t, combo) in combos.iter().enumerate() {
        let overrides: Vec<String> = axes
            .iter()
            .zip(combo)
            .map(|(a, &v)| format!("{}={}", a.key, a.values[v]))
            .collect();
        let mut sets = base_sets.clone();
        sets.extend(overrides.iter().cloned());
        let clock = Instant::now();
        let result = run_trial(path, &sets, store, &opts, &metric);
        let seconds = clock.elapsed().as_secs_f64();
        let mut trial = Trial {
            id: t as u32 + 1,
            values: combo.clone(),
            metric: None,
            error: None,
            seconds,
            train_key: None,
            metric_key: None,
        };
        let head = format!("trial {:>width$}/{n}  {}", t + 1, overrides.join(" "));
        match result {
            Ok(done) => {
                let mut work = Vec::new();
                if !done.ran.is_empty() {
                    work.push(format!("ran {}", done.ran.join(", ")));
                }
                if !done.cached.is_empty() {
                    work.push(format!("cached {}", done.cached.join(", ")));
                }
                trial.train_key = done.train_key;
                trial.metric_key = Some(done.metric_key);
                let shown = match done.read {
                    Read::Value(i, x) => {
                        found_path.get_or_insert(i);
                        trial.metric = Some(x);
                        format!("{} = {}", metric.name(Some(i)), fmt_metric(x))
                    }
                    Read::Null(i) => {
                        let e = format!(
                            "{} is null in the stage's summary (the run produced no value; did \
                             it diverge?)",
                            metric.name(Some(i))
                        );
                        trial.error = Some(e.clone());
                        format!("FAILED: {e}")
                    }
                    Read::Missing(why) => {
                        // The same in every trial: stop before running the rest.
                        bail!(
                            "--metric {}: not in the summary of stage `{}`: {why}; `recpipe show \
                             {} {}` prints the whole summary",
                            metric.name(None),
                            metric.stage,
                            path.display(),
                            metric.stage
                        );
                    }
                };
                outln!("{head}  {shown}  {seconds:.2}s  {}", work.join("; "));
            }
            Err(e) => {
                let e = format!("{e:#}");
                outln!("{head}  FAILED  {seconds:.2}s  {e}");
                trial.error = Some(e);
            }
        }
        results.push(trial);
    }

    results.sort_by(|a, b| match (a.metric, b.metric) {
        (Some(x), Some(y)) => {
            let o = x.total_cmp(&y);
            (if maximize { o.reverse() } else { o }).then(a.id.cmp(&b.id))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(&b.id),
    });
    let metric_name = metric.name(found_path);
    let stats = Stats::of(&results);
    write_table(
        &out_path,
        &axes,
        &results,
        &metric_name,
        maximize,
        &base.name,
        stats,
    )?;
    print_table(
        &results,
        &axes,
        &metric_name,
        args.top,
        &out_path,
        path,
        base_sets,
    );
    // Over folds (`--grid split.fold=...`) this is the cross-validated score.
    if let Some(st) = stats {
        outln!("{}", st.line());
    }
    let failed = results.iter().filter(|r| r.metric.is_none()).count();
    if failed == results.len() {
        let first = results
            .iter()
            .min_by_key(|r| r.id)
            .and_then(|r| r.error.clone())
            .unwrap_or_default();
        bail!("every trial failed; the first: {first}");
    }
    Ok(())
}

/// The metric over the successful trials: for a grid over folds (`--grid split.fold=1,2,3,4,5`)
/// the cross-validated score and its spread.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stats {
    /// Trials with a metric (failed ones are left out).
    n: usize,
    /// All trials.
    of: usize,
    mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); needs two trials.
    sd: Option<f64>,
}

impl Stats {
    fn of(rows: &[Trial]) -> Option<Stats> {
        // Trial order, so the sum does not depend on the ranking.
        let mut ok: Vec<(u32, f64)> = rows
            .iter()
            .filter_map(|r| r.metric.map(|m| (r.id, m)))
            .collect();
        ok.sort_by_key(|&(id, _)| id);
        let xs: Vec<f64> = ok.into_iter().map(|(_, m)| m).collect();
        Stats::from_values(&xs, rows.len())
    }

    fn from_values(xs: &[f64], of: usize) -> Option<Stats> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let sd = (n >= 2).then(|| {
            let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        Some(Stats { n, of, mean, sd })
    }

    /// `mean over 5 trials: 0.912345 ± 0.007123 (sd)`.
    fn line(&self) -> String {
        let over = if self.n == self.of {
            format!("{} trial{}", self.n, if self.n == 1 { "" } else { "s" })
        } else {
            format!("{} of {} trials (failed ones left out)", self.n, self.of)
        };
        match self.sd {
            Some(sd) => format!(
                "mean over {over}: {} ± {} (sd)",
                fmt_metric(self.mean),
                fmt_metric(sd)
            ),
            None => format!("mean over {over}: {}", fmt_metric(self.mean)),
        }
    }
}

struct Done {
    ran: Vec<String>,
    cached: Vec<String>,
    read: Read,
    metric_key: String,
    train_key: Option<String>,
}

fn run_trial(
    path: &Path,
    sets: &[String],
    store: &Store,
    opts: &RunOptions,
    metric: &Metric,
) -> Result<Done> {
    let p = Pipeline::load(path, sets)?;
    let report = exec::run(&p, store, opts)?;
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
    let mi = p
        .index_of(&metric.stage)
        .ok_or_else(|| anyhow!("no stage named `{}`", metric.stage))?;
    let m = by_stage
        .get(&mi)
        .map(|o| o.manifest())
        .ok_or_else(|| anyhow!("stage `{}` did not run", metric.stage))?;
    // The model the metric is about: the metric's stage if it trains, else its nearest
    // upstream train stage.
    let train_key = std::iter::once(mi)
        .chain(p.upstream(mi))
        .find(|&j| p.stages[j].kind() == "train")
        .and_then(|j| by_stage.get(&j))
        .map(|o| o.manifest().key.clone());
    Ok(Done {
        ran,
        cached,
        read: read_metric(metric, &m.summary),
        metric_key: m.key.clone(),
        train_key,
    })
}

fn fmt_metric(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.6}")
    }
}

fn write_table(
    out: &Path,
    axes: &[Axis],
    rows: &[Trial],
    metric: &str,
    maximize: bool,
    pipeline: &str,
    stats: Option<Stats>,
) -> Result<()> {
    let mut fields = vec![Field::new("trial", DataType::UInt32, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from_iter_values(
        rows.iter().map(|r| r.id),
    ))];
    for (k, a) in axes.iter().enumerate() {
        fields.push(Field::new(a.key.as_str(), DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| toml_text(&a.values[r.values[k]])),
        )));
    }
    fields.extend([
        Field::new("metric", DataType::Float64, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("seconds", DataType::Float64, false),
        Field::new("train_key", DataType::Utf8, true),
        Field::new("metric_key", DataType::Utf8, true),
    ]);
    columns.extend([
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.metric))) as ArrayRef,
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.error.clone()))),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.seconds),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.train_key.clone()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.metric_key.clone()),
        )),
    ]);
    let mut metadata = HashMap::from([
        (
            "recpipe.version".to_string(),
            recpipe_core::VERSION.to_string(),
        ),
        ("recpipe.sweep.pipeline".to_string(), pipeline.to_string()),
        ("recpipe.sweep.metric".to_string(), metric.to_string()),
        (
            "recpipe.sweep.goal".to_string(),
            if maximize { "maximize" } else { "minimize" }.to_string(),
        ),
    ]);
    // The mean ± sd line, at full precision (`{}` of an f64 reads back to the same number).
    if let Some(st) = stats {
        metadata.insert("recpipe.sweep.metric_n".into(), st.n.to_string());
        metadata.insert("recpipe.sweep.metric_mean".into(), st.mean.to_string());
        if let Some(sd) = st.sd {
            metadata.insert("recpipe.sweep.metric_sd".into(), sd.to_string());
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
    let batch = RecordBatch::try_new(schema, columns).context("cannot build the sweep table")?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    recpipe_core::parquet_io::write_batches(out, &[batch])
        .with_context(|| format!("cannot write the sweep table {}", out.display()))?;
    Ok(())
}

/// A value as TOML text: as written when it parses as TOML, else as a TOML string (the way
/// `--set` reads it).
fn toml_text(v: &str) -> String {
    if toml::de::DeValue::parse(v).is_ok() {
        v.to_string()
    } else {
        let escaped: String = v
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
}

/// Quoted for a POSIX shell when it holds anything beyond plain word characters.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.=/,:+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn print_table(
    rows: &[Trial],
    axes: &[Axis],
    metric: &str,
    top: usize,
    out: &Path,
    pipeline: &Path,
    base_sets: &[String],
) {
    let shown = rows.len().min(top.max(1));
    let mut header = vec![
        "rank".to_string(),
        "trial".to_string(),
        metric.to_string(),
        "seconds".to_string(),
    ];
    header.extend(axes.iter().map(|a| a.key.clone()));
    let mut table = vec![header];
    for (r, row) in rows.iter().take(shown).enumerate() {
        let mark = if r == 0 && row.metric.is_some() {
            "*1".to_string()
        } else {
            (r + 1).to_string()
        };
        let mut cells = vec![
            mark,
            row.id.to_string(),
            row.metric
                .map(fmt_metric)
                .unwrap_or_else(|| "FAILED".into()),
            format!("{:.2}", row.seconds),
        ];
        cells.extend(
            axes.iter()
                .zip(&row.values)
                .map(|(a, &v)| a.values[v].clone()),
        );
        table.push(cells);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    outln!();
    for r in &table {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c < 2 {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        outln!("{}", line.join("  ").trim_end());
    }
    if rows.len() > shown {
        outln!("... {} more", rows.len() - shown);
    }
    let failed: Vec<&Trial> = rows.iter().filter(|r| r.metric.is_none()).collect();
    for f in &failed {
        let e = f.error.as_deref().unwrap_or("failed");
        outln!("trial {} failed: {}", f.id, e.lines().next().unwrap_or(e));
    }
    outln!(
        "{} trial{}, {} failed; table: {}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        failed.len(),
        out.display()
    );
    if let Some(best) = rows.first().filter(|r| r.metric.is_some()) {
        let mut cmd = vec![
            "recpipe".to_string(),
            "run".to_string(),
            shell_word(&pipeline.display().to_string()),
        ];
        let grid = axes
            .iter()
            .zip(&best.values)
            .map(|(a, &v)| format!("{}={}", a.key, a.values[v]));
        let kept = base_sets.iter().filter(|s| {
            Override::parse(s).map_or(true, |o| !axes.iter().any(|a| a.key == o.path.join(".")))
        });
        for s in kept.cloned().chain(grid) {
            cmd.push("--set".into());
            cmd.push(shell_word(&s));
        }
        outln!(
            "best: trial {} with {} = {}; reproduce it with\n  {}",
            best.id,
            metric,
            fmt_metric(best.metric.unwrap_or_default()),
            cmd.join(" ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(args: &[&str]) -> Result<Vec<Axis>> {
        parse_grid(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn grid_values_split_outside_brackets_and_quotes() {
        let g = grid(&["train.hidden=[10],[32, 16]", r#"ingest.path="a,b",c"#]).unwrap();
        assert_eq!(g[0].key, "train.hidden");
        assert_eq!(g[0].values, ["[10]", "[32, 16]"]);
        assert_eq!(g[1].values, [r#""a,b""#, "c"]);
        let g = grid(&["train.k=32", "train.k=64,32", "train.lr=1e-3"]).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].values, ["32", "64"]);
        let g = grid(&["train.opt={ name = \"adam\", beta = [0.9, 0.99] },sgd"]).unwrap();
        assert_eq!(g[0].values.len(), 2);
    }

    #[test]
    fn bad_grids_say_why() {
        for (arg, why) in [
            ("train.k", "no `=`"),
            ("k=1,2", "STAGE.KEY"),
            ("train.k=1,,2", "empty value"),
            ("train.k=", "empty value"),
            ("train.hidden=[1,2", "unclosed `[`"),
            ("train.hidden=1]", "unbalanced `]`"),
            ("train.name=\"a,b", "unterminated"),
        ] {
            let e = grid(&[arg]).unwrap_err().to_string();
            assert!(e.contains(why), "{arg}: {e}");
            assert!(e.contains(arg), "{arg}: {e}");
        }
    }

    #[test]
    fn grid_order_and_random_sampling() {
        let axes = grid(&["a.x=1,2,3", "a.y=p,q"]).unwrap();
        let all = trials(&axes, None, 0).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], [0, 0]);
        assert_eq!(all[1], [0, 1]);
        assert_eq!(all[5], [2, 1]);
        let some = trials(&axes, Some(4), 7).unwrap();
        assert_eq!(some.len(), 4);
        let distinct: HashSet<_> = some.iter().collect();
        assert_eq!(distinct.len(), 4);
        assert_eq!(some, trials(&axes, Some(4), 7).unwrap());
        assert_eq!(trials(&axes, Some(60), 7).unwrap().len(), 6);
        let huge: Vec<Axis> = (0..8)
            .map(|i| Axis {
                key: format!("a.k{i}"),
                values: (0..20).map(|v| v.to_string()).collect(),
            })
            .collect();
        assert!(
            trials(&huge, None, 0)
                .unwrap_err()
                .to_string()
                .contains("--random")
        );
        assert_eq!(trials(&huge, Some(5), 1).unwrap().len(), 5);
    }

    #[test]
    fn metric_paths_walk_tables_and_lists() {
        let s =
            serde_json::json!({"valid_rmse": 0.9, "models": [{"valid": {"rmse": 0.8}}], "n": null});
        let m = Metric::parse("evaluate.models.0.valid.rmse").unwrap();
        assert!(matches!(read_metric(&m, &s), Read::Value(0, x) if x == 0.8));
        let m = Metric::parse("train.n").unwrap();
        assert!(matches!(read_metric(&m, &s), Read::Null(0)));
        let m = Metric::parse("train.models.3.valid").unwrap();
        assert!(matches!(read_metric(&m, &s), Read::Missing(w) if w.contains("indices 0..1")));
        let m = Metric {
            stage: "train".into(),
            paths: vec![vec!["best_valid_rmse".into()], vec!["valid_rmse".into()]],
        };
        assert!(matches!(read_metric(&m, &s), Read::Value(1, x) if x == 0.9));
        assert!(Metric::parse("train").is_err());
        assert!(Metric::parse("train.").is_err());
    }

    #[test]
    fn stats_are_the_mean_and_sample_sd_of_the_successful_trials() {
        let st = Stats::from_values(&[0.9, 0.94, 0.92], 3).unwrap();
        assert!((st.mean - 0.92).abs() < 1e-12);
        assert!((st.sd.unwrap() - 0.02).abs() < 1e-12);
        assert_eq!(st.line(), "mean over 3 trials: 0.920000 ± 0.020000 (sd)");
        let one = Stats::from_values(&[2.0], 4).unwrap();
        assert_eq!(one.sd, None);
        assert_eq!(
            one.line(),
            "mean over 1 of 4 trials (failed ones left out): 2"
        );
        assert_eq!(Stats::from_values(&[], 2), None);
        let trial = |id, metric| Trial {
            id,
            values: vec![],
            metric,
            error: None,
            seconds: 0.0,
            train_key: None,
            metric_key: None,
        };
        let st = Stats::of(&[trial(2, Some(3.0)), trial(1, None), trial(3, Some(1.0))]).unwrap();
        assert_eq!((st.n, st.of, st.mean), (2, 3, 2.0));
        assert_eq!(st.sd, Some(2f64.sqrt()));
    }

    #[test]
    fn values_become_toml_text_and_shell_words() {
        assert_eq!(toml_text("16"), "16");
        assert_eq!(toml_text("[32, 16]"), "[32, 16]");
        assert_eq!(toml_text("random"), "\"random\"");
        assert_eq!(shell_word("train.k=16"), "train.k=16");
        assert_eq!(
            shell_word("train.hidden=[32, 16]"),
            "'train.hidden=[32, 16]'"
        );
    }
}
