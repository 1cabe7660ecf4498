//! `recpipe sweep`: grids of `--set` values, each trial a cached pipeline run, results in a
//! Parquet table sorted by the metric.

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt32Array};
use recpipe_tests::{Run, Test, bundled_pipeline};
use std::path::Path;

const QS: &str = "pipelines/quickstart.toml";

fn quickstart() -> Test {
    Test::new()
        .with_bundled_data()
        .with_shipped_pipeline_before("quickstart.toml", "train")
}

/// The one batch of a sweep table.
fn table(path: &Path) -> RecordBatch {
    let (_, batches) = recpipe_core::parquet_io::read_batches(path).expect("read the sweep table");
    assert_eq!(batches.len(), 1, "one batch");
    batches.into_iter().next().unwrap()
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", b.schema()))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has type {:?}", b.schema()))
}

fn names(b: &RecordBatch) -> Vec<String> {
    b.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// The progress line of trial `n`.
fn trial_line(r: &Run, n: usize, of: usize) -> &str {
    let head = format!("trial {n}/{of} ");
    r.stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&head))
        .unwrap_or_else(|| panic!("no line for trial {n}\n{r}"))
}

fn summary_of(t: &Test, kind: &str, key: &str) -> serde_json::Value {
    let m = t.path(&format!(".recpipe/cache/{kind}/{key}/manifest.json"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    m["summary"].clone()
}

const GRID: [&str; 10] = [
    "sweep",
    QS,
    "--grid",
    "split.seed=1,2",
    "--grid",
    "split.valid_fraction=0.1,0.2",
    "--metric",
    "split.valid.cold_rows",
    "--out",
    "sweep.parquet",
];

#[test]
fn grid_runs_every_combination_reuses_upstream_and_sorts_by_the_metric() {
    let t = quickstart();
    let r = t.run(&GRID).ok();
    for n in 1..=4 {
        trial_line(&r, n, 4);
    }
    // Ingest is shared by every trial: built by the first, a cache hit for the others.
    assert!(trial_line(&r, 1, 4).contains("ran ingest, split"), "{r}");
    for n in 2..=4 {
        let l = trial_line(&r, n, 4);
        assert!(
            l.contains("ran split") && l.contains("cached ingest"),
            "{l}"
        );
    }
    assert_eq!(t.artifacts("ingest").len(), 1);
    assert_eq!(t.artifacts("split").len(), 4);

    let b = table(&t.path("sweep.parquet"));
    assert_eq!(b.num_rows(), 4);
    assert_eq!(
        names(&b),
        [
            "trial",
            "split.seed",
            "split.valid_fraction",
            "metric",
            "error",
            "seconds",
            "train_key",
            "metric_key"
        ]
    );
    let trial = col::<UInt32Array>(&b, "trial");
    let seed = col::<StringArray>(&b, "split.seed");
    let frac = col::<StringArray>(&b, "split.valid_fraction");
    let metric = col::<Float64Array>(&b, "metric");
    let key = col::<StringArray>(&b, "metric_key");
    assert_eq!(col::<StringArray>(&b, "error").null_count(), 4);
    assert_eq!(col::<StringArray>(&b, "train_key").null_count(), 4);
    let mut trials: Vec<u32> = trial.values().to_vec();
    trials.sort();
    assert_eq!(trials, [1, 2, 3, 4]);
    let mut combos = Vec::new();
    for i in 0..4 {
        // Each row's metric is the number in the summary of the artifact it names.
        let s = summary_of(&t, "split", key.value(i));
        assert_eq!(metric.value(i), s["valid"]["cold_rows"].as_f64().unwrap());
        assert_eq!(seed.value(i), s["seed"].to_string());
        assert_eq!(
            frac.value(i).parse::<f64>().unwrap(),
            (s["valid"]["fraction"].as_f64().unwrap() * 10.0).round() / 10.0
        );
        combos.push((seed.value(i).to_string(), frac.value(i).to_string()));
        if i > 0 {
            assert!(
                metric.value(i - 1) <= metric.value(i),
                "minimized: best first"
            );
        }
    }
    combos.sort();
    assert_eq!(
        combos,
        [("1", "0.1"), ("1", "0.2"), ("2", "0.1"), ("2", "0.2")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // Trial numbers follow the grid, the last key fastest.
    let row_of = |n: u32| trial.values().iter().position(|&x| x == n).unwrap();
    assert_eq!((seed.value(row_of(2)), frac.value(row_of(2))), ("1", "0.2"));
    let best = format!(
        "--set split.seed={} --set split.valid_fraction={}",
        seed.value(0),
        frac.value(0)
    );
    let best_line = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("best: trial"))
        .nth(1)
        .unwrap_or_else(|| panic!("no reproduce line\n{r}"));
    assert!(best_line.contains(&best), "{best_line}\n{r}");
    let first = metric.values().to_vec();

    // The same sweep again builds nothing.
    let again = t.run(&GRID).ok();
    for n in 1..=4 {
        let l = trial_line(&again, n, 4);
        assert!(
            l.contains("cached ingest, split") && !l.contains("ran "),
            "{l}"
        );
    }
    assert_eq!(t.artifacts("ingest").len(), 1);
    assert_eq!(t.artifacts("split").len(), 4);
    let b = table(&t.path("sweep.parquet"));
    assert_eq!(col::<Float64Array>(&b, "metric").values().to_vec(), first);
}

#[test]
fn a_failing_trial_is_recorded_and_the_others_go_on() {
    let t = quickstart();
    let args = [
        "sweep",
        QS,
        "--grid",
        "split.valid_fraction=0.1,1.5,0.2",
        "--metric",
        "split.train.rows",
        "--maximize",
        "--out",
        "out/f.parquet",
    ];
    let r = t.run(&args).ok();
    assert!(trial_line(&r, 2, 3).contains("FAILED"), "{r}");
    assert!(!trial_line(&r, 3, 3).contains("FAILED"), "{r}");
    let b = table(&t.path("out/f.parquet"));
    assert_eq!(b.num_rows(), 3);
    let metric = col::<Float64Array>(&b, "metric");
    let error = col::<StringArray>(&b, "error");
    let frac = col::<StringArray>(&b, "split.valid_fraction");
    // Maximized: 0.1 leaves the most train rows; the failure sorts last.
    assert_eq!(
        (0..3).map(|i| frac.value(i)).collect::<Vec<_>>(),
        ["0.1", "0.2", "1.5"]
    );
    assert!(metric.value(0) > metric.value(1));
    assert!(metric.is_null(2) && error.is_null(0) && error.is_null(1));
    assert!(
        error.value(2).contains("valid_fraction"),
        "{}",
        error.value(2)
    );
    assert_eq!(col::<UInt32Array>(&b, "trial").value(2), 2);
    assert!(r.stdout.contains("trial 2 failed"), "{r}");

    // Only when every trial fails is the sweep a failure; the table is still written.
    let r = t
        .run(&[
            "sweep",
            QS,
            "--grid",
            "split.valid_fraction=1.5,2.5",
            "--metric",
            "split.train.rows",
            "--out",
            "out/all.parquet",
        ])
        .fails();
    assert!(r.stderr.contains("every trial failed"), "{r}");
    assert_eq!(table(&t.path("out/all.parquet")).num_rows(), 2);
}

#[test]
fn random_sampling_is_seeded_and_the_default_table_goes_under_recpipe() {
    let t = quickstart();
    let args = [
        "sweep",
        QS,
        "--grid",
        "split.seed=1,2,3",
        "--grid",
        "split.min_ratings=0,1",
        "--random",
        "2",
        "--seed",
        "5",
        "--metric",
        "split.valid.cold_rows",
    ];
    let r = t.run(&args).ok();
    assert!(r.stdout.contains("sweep quickstart: 2 trials"), "{r}");
    let lines = |r: &Run| -> Vec<String> {
        r.stdout
            .lines()
            .filter(|l| l.starts_with("trial "))
            .filter(|l| l.contains('/'))
            .map(|l| l.split("  ").nth(1).unwrap_or_default().to_string())
            .collect()
    };
    let first = lines(&r);
    assert_eq!(first.len(), 2, "{r}");
    assert_eq!(lines(&t.run(&args).ok()), first, "same seed, same trials");
    let tables: Vec<_> = std::fs::read_dir(t.path(".recpipe/sweeps"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!tables.is_empty(), "a table under .recpipe/sweeps");
    assert!(
        tables
            .iter()
            .all(|n| n.starts_with("quickstart-") && n.ends_with(".parquet")),
        "{tables:?}"
    );
}

#[test]
fn mistakes_in_grid_or_metric_are_clear_errors() {
    let t = quickstart();
    let sweep = |extra: &[&str]| {
        let mut a = vec!["sweep", QS, "--metric", "split.train.rows"];
        a.extend_from_slice(extra);
        t.run(&a)
    };
    for (grid, says) in [
        ("split.seed", "no `=`"),
        ("seed=1,2", "STAGE.KEY"),
        ("split.seed=1,,2", "empty value"),
        ("split.seed=[1,2", "unclosed `[`"),
        ("nosuch.seed=1", "no stage named `nosuch`"),
        ("split.sed=1", "unknown key `sed`"),
        ("split.seed=abc", "value `abc` is not valid"),
    ] {
        let r = sweep(&["--grid", grid]).fails();
        assert!(r.stderr.contains("error:"), "{r}");
        assert!(
            r.stderr.contains(says),
            "--grid {grid}: expected `{says}`\n{r}"
        );
    }
    // Argument mistakes are caught before anything is built.
    assert!(t.artifacts("ingest").is_empty());

    let r = t
        .run(&[
            "sweep",
            QS,
            "--grid",
            "split.seed=1",
            "--metric",
            "split.nope",
        ])
        .fails();
    assert!(
        r.stderr.contains("has no `nope`") && r.stderr.contains("input_rows"),
        "{r}"
    );
    let r = t.run(&["sweep", QS, "--grid", "split.seed=1"]).fails();
    assert!(
        r.stderr.contains("--metric"),
        "no train stage, no default\n{r}"
    );
    let r = t.run(&["sweep", QS]).fails();
    assert_eq!(r.code, Some(2), "--grid is required\n{r}");
}

/// The quickstart data through a one-epoch train stage: the split's keys and the train
/// stage, after the bundled ingest → split.
const TRAIN_AFTER_SPLIT: &str = r#"seed = 42

[stages.train]
kind = "train"
inputs = ["split"]
epochs = 1
"#;

#[test]
fn train_grid_ranks_by_validation_rmse() {
    let t = Test::new().with_bundled_data().file(
        "pipelines/tiny.toml",
        &bundled_pipeline("tiny", TRAIN_AFTER_SPLIT),
    );
    let r = t
        .run(&[
            "sweep",
            "pipelines/tiny.toml",
            "--grid",
            "train.k=8,16",
            "--grid",
            "train.lr=0.005,0.01",
            "--out",
            "t.parquet",
        ])
        .ok();
    assert!(
        r.stdout.contains("metric train.valid_rmse (minimize)"),
        "{r}"
    );
    for n in 2..=4 {
        let l = trial_line(&r, n, 4);
        assert!(
            l.contains("cached ingest, split") && l.contains("ran train"),
            "{l}"
        );
    }
    assert_eq!(t.artifacts("split").len(), 1);
    assert_eq!(t.artifacts("train").len(), 4);
    let b = table(&t.path("t.parquet"));
    assert_eq!(b.num_rows(), 4);
    let metric = col::<Float64Array>(&b, "metric");
    let train_key = col::<StringArray>(&b, "train_key");
    for i in 0..4 {
        let s = summary_of(&t, "train", train_key.value(i));
        assert_eq!(metric.value(i), s["valid_rmse"].as_f64().unwrap());
        assert!(metric.value(i) > 0.5 && metric.value(i) < 2.0);
        if i > 0 {
            assert!(metric.value(i - 1) <= metric.value(i));
        }
    }

    // A diverging learning rate fails its trial, not the sweep.
    let r = t
        .run(&[
            "sweep",
            "pipelines/tiny.toml",
            "--grid",
            "train.k=8",
            "--grid",
            "train.lr=0.005,1e30",
            "--out",
            "d.parquet",
        ])
        .ok();
    assert!(trial_line(&r, 2, 2).contains("FAILED"), "{r}");
    assert!(
        trial_line(&r, 1, 2).contains("cached ingest, split, train"),
        "{r}"
    );
    let b = table(&t.path("d.parquet"));
    assert!(col::<Float64Array>(&b, "metric").is_null(1));
    assert!(!col::<StringArray>(&b, "error").is_null(1));
}

/// A tiny folder shaped like ml-100k: u.data (tab-separated `user item rating timestamp`, 30
/// users × 50 items, a few hundred deterministic ratings), u.item, and the official folds'
/// files for folds 1 and 2 (`u{f}.test` every fifth rating from the (f-1)-th, `u{f}.base` the
/// rest). Returns (base rows, test rows) per fold.
fn tiny_ml100k(t: &Test) -> [(usize, usize); 2] {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut rows = Vec::new();
    for u in 1..=30u64 {
        for i in 1..=50u64 {
            let x = next();
            if x % 4 == 0 {
                let rating = (1 + u % 3 + i % 4 + (x >> 8) % 2).min(5);
                let ts = 874_965_758 + 37 * rows.len() as u64;
                rows.push(format!("{u}\t{i}\t{rating}\t{ts}\n"));
            }
        }
    }
    assert!(rows.len() > 300, "{} ratings", rows.len());
    t.write("data/ml-100k/u.data", &rows.concat());
    let flags = ["0"; 19].join("|");
    let items: String = (1..=50)
        .map(|i| format!("{i}|Movie {i} (1995)|01-Jan-1995||http://example.invalid/{i}|{flags}\n"))
        .collect();
    t.write("data/ml-100k/u.item", &items);
    [1usize, 2].map(|fold| {
        let (mut base, mut test) = (String::new(), String::new());
        let mut n = (0, 0);
        for (j, r) in rows.iter().enumerate() {
            if j % 5 == fold - 1 {
                test.push_str(r);
                n.1 += 1;
            } else {
                base.push_str(r);
                n.0 += 1;
            }
        }
        t.write(&format!("data/ml-100k/u{fold}.base"), &base);
        t.write(&format!("data/ml-100k/u{fold}.test"), &test);
        n
    })
}

/// The mean in `mean over N trials: MEAN ± SD (sd)`.
fn printed_mean(r: &Run, n: usize) -> (f64, f64) {
    let head = format!("mean over {n} trials: ");
    let line = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&head))
        .unwrap_or_else(|| panic!("no `{head}` line\n{r}"));
    let (mean, rest) = line.split_once(" ± ").expect("mean ± sd");
    let sd = rest.strip_suffix(" (sd)").expect("(sd)");
    (mean.parse().unwrap(), sd.parse().unwrap())
}

#[test]
fn cross_validation_over_the_predefined_folds_reports_mean_and_sd() {
    let t = Test::new().with_shipped_pipeline("ml-100k.toml");
    let folds = tiny_ml100k(&t);
    let args = [
        "sweep",
        "pipelines/ml-100k.toml",
        "--grid",
        "split.fold=1,2",
        "--metric",
        "evaluate.parts.test.blend.rmse",
        "--out",
        "cv.parquet",
    ];
    let r = t.run(&args).ok();
    assert!(
        trial_line(&r, 1, 2).contains("ran ingest, split, mf, autorec, blend, evaluate"),
        "{r}"
    );
    let second = trial_line(&r, 2, 2);
    assert!(
        second.contains("ran split, mf, autorec, blend, evaluate")
            && second.contains("cached ingest"),
        "each fold has its own split: {second}"
    );
    // Per fold: one split, three train stages (mf, autorec, their blend), one evaluate.
    for (kind, n) in [("split", 2), ("train", 6), ("evaluate", 2)] {
        assert_eq!(t.artifacts(kind).len(), n, "{kind}");
    }
    // Each split artifact read its fold's files.
    let mut seen: Vec<(u64, u64, u64)> = t
        .artifacts("split")
        .iter()
        .map(|dir| {
            let key = dir.file_name().unwrap().to_str().unwrap();
            let s = summary_of(&t, "split", key);
            let train = s["train"]["rows"].as_u64().unwrap() + s["valid"]["rows"].as_u64().unwrap();
            (
                s["fold"].as_u64().unwrap(),
                train,
                s["test"]["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let want: Vec<(u64, u64, u64)> = folds
        .iter()
        .enumerate()
        .map(|(f, &(base, test))| (f as u64 + 1, base as u64, test as u64))
        .collect();
    assert_eq!(seen, want);

    let b = table(&t.path("cv.parquet"));
    assert_eq!(b.num_rows(), 2);
    let fold = col::<StringArray>(&b, "split.fold");
    let metric = col::<Float64Array>(&b, "metric");
    let key = col::<StringArray>(&b, "metric_key");
    let mut fold_values = vec![fold.value(0), fold.value(1)];
    fold_values.sort();
    assert_eq!(fold_values, ["1", "2"]);
    assert_eq!(metric.null_count(), 0);
    let (a, c) = (metric.value(0), metric.value(1));
    assert_ne!(a, c, "two folds, two test sets, two RMSEs");
    assert_ne!(key.value(0), key.value(1));
    for i in 0..2 {
        let s = summary_of(&t, "evaluate", key.value(i));
        let rmse = s["parts"]["test"]["blend"]["rmse"].as_f64().unwrap();
        // serde_json's default float parsing may be one ulp off the number written.
        assert!(
            (metric.value(i) - rmse).abs() <= 1e-12,
            "{} vs {rmse}",
            metric.value(i)
        );
        assert!(metric.value(i) > 0.0 && metric.value(i) < 5.0);
    }

    // The mean line is the mean of the table's metrics (printed with 6 decimals) ...
    let mean = (a + c) / 2.0;
    let sd = (a - c).abs() / 2f64.sqrt();
    let (shown_mean, shown_sd) = printed_mean(&r, 2);
    assert!(
        (shown_mean - mean).abs() <= 5e-7,
        "{shown_mean} vs {mean}\n{r}"
    );
    assert!((shown_sd - sd).abs() <= 5e-7, "{shown_sd} vs {sd}\n{r}");
    // ... and the table's metadata holds it at full precision.
    let (schema, _) = recpipe_core::parquet_io::read_batches(t.path("cv.parquet")).unwrap();
    let meta = schema.metadata().clone();
    assert_eq!(
        meta["recpipe.sweep.metric"],
        "evaluate.parts.test.blend.rmse"
    );
    assert_eq!(meta["recpipe.sweep.metric_n"], "2");
    assert_eq!(
        meta["recpipe.sweep.metric_mean"].parse::<f64>().unwrap(),
        mean
    );
    let meta_sd: f64 = meta["recpipe.sweep.metric_sd"].parse().unwrap();
    assert!(
        (meta_sd - sd).abs() <= 1e-12 * sd.max(1.0),
        "{meta_sd} vs {sd}"
    );

    // Again: every fold is a cache hit, the same numbers come out.
    let again = t.run(&args).ok();
    for n in 1..=2 {
        let l = trial_line(&again, n, 2);
        assert!(
            l.contains("cached ingest, split, mf, autorec, blend, evaluate"),
            "{l}"
        );
    }
    assert_eq!(printed_mean(&again, 2), (shown_mean, shown_sd));

    // A fold whose files are missing is named before anything runs.
    let r = t
        .run(&[
            "sweep",
            "pipelines/ml-100k.toml",
            "--grid",
            "split.fold=1,3",
            "--metric",
            "evaluate.parts.test.blend.rmse",
        ])
        .fails();
    assert!(
        r.stderr.contains("value `3` is not valid") && r.stderr.contains("u3.base"),
        "{r}"
    );
}

#[test]
fn evaluate_precision_at_k_ranks_trials_highest_first() {
    let rest = format!(
        "{TRAIN_AFTER_SPLIT}\n[stages.evaluate]\nkind = \"evaluate\"\ninputs = [\"train\"]\nplots = false\n"
    );
    let t = Test::new()
        .with_bundled_data()
        .file("pipelines/tiny.toml", &bundled_pipeline("tiny", &rest));
    let r = t
        .run(&[
            "sweep",
            "pipelines/tiny.toml",
            "--grid",
            "train.k=4,16",
            "--metric",
            "evaluate.parts.valid.train.p@10",
            "--out",
            "p.parquet",
        ])
        .ok();
    // P@k is a headline evaluate maximizes: no --maximize needed.
    assert!(
        r.stdout
            .contains("metric evaluate.parts.valid.train.p@10 (maximize)"),
        "{r}"
    );
    let b = table(&t.path("p.parquet"));
    let metric = col::<Float64Array>(&b, "metric");
    let key = col::<StringArray>(&b, "metric_key");
    assert_eq!(metric.null_count(), 0);
    for i in 0..2 {
        let s = summary_of(&t, "evaluate", key.value(i));
        let p = s["parts"]["valid"]["train"]["p@10"].as_f64().unwrap();
        assert_eq!(metric.value(i), p);
        assert!((0.0..=1.0).contains(&p));
    }
    assert!(metric.value(0) >= metric.value(1), "best (highest) first");
    let (schema, _) = recpipe_core::parquet_io::read_batches(t.path("p.parquet")).unwrap();
    assert_eq!(schema.metadata()["recpipe.sweep.goal"], "maximize");
}
