//! What a person reads from recpipe: stdout that survives a reader going away, short logs,
//! human rates, exact wording, and command-line errors that name the right thing.

use recpipe_tests::{Run, Test, wait_output};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

const QS: &str = "pipelines/quickstart.toml";

fn quickstart() -> Test {
    Test::new()
        .with_bundled_data()
        .with_shipped_pipeline("quickstart.toml")
}

/// `recpipe ARGS` with stdout a pipe whose reading end is already closed: every write to
/// stdout fails with EPIPE.
fn with_closed_stdout(t: &Test, args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = t
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start recpipe");
    wait_output(child, Duration::from_secs(300))
}

fn assert_quiet_success(r: &Run, what: &str) {
    assert_eq!(r.code, Some(0), "{what} with a closed stdout\n{r}");
    assert!(!r.stderr.contains("panicked"), "{what}\n{r}");
    assert!(!r.stderr.contains("Broken pipe"), "{what}\n{r}");
}

fn assert_all_fresh(t: &Test) {
    let st = t.run(&["status", QS]).ok();
    for s in ["ingest", "split", "train", "evaluate", "export"] {
        assert_eq!(st.status_of(s), "fresh", "{st}");
    }
}

#[test]
fn a_run_whose_reader_went_away_completes_and_leaves_a_consistent_cache() {
    let t = quickstart();
    let r = with_closed_stdout(&t, &["run", QS]);
    assert_quiet_success(&r, "run");
    assert_all_fresh(&t);
    assert!(
        t.path(".recpipe/runs/quickstart/evaluate/report.md")
            .exists()
    );
    assert!(t.tmp_entries().is_empty(), "{:?}", t.tmp_entries());

    // `| head -1`: the reader takes one line and leaves while the run goes on.
    let mut child = t
        .cmd(&["run", QS, "--force"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start recpipe");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("ingest"), "{first}");
    let r = wait_output(child, Duration::from_secs(300));
    assert_quiet_success(&r, "run | head -1");
    assert_all_fresh(&t);

    for args in [
        &["status", QS][..],
        &["dag", QS],
        &["show", QS, "export"],
        &["show", QS, "export", "-v"],
        &["gc", "--dry-run"],
        &["run", QS],
    ] {
        let r = with_closed_stdout(&t, args);
        assert_quiet_success(&r, &args.join(" "));
    }
    let r = with_closed_stdout(
        &t,
        &[
            "sweep",
            QS,
            "--grid",
            "split.seed=1,2",
            "--metric",
            "split.train.rows",
        ],
    );
    assert_quiet_success(&r, "sweep");
    assert_all_fresh(&t);
}

/// The number before ` ratings/s` in `line`.
fn rate_in(line: &str) -> &str {
    let end = line.find(" ratings/s").expect("a rate");
    line[..end].rsplit(' ').next().unwrap()
}

#[test]
fn the_default_output_is_short_and_exact() {
    let t = quickstart();
    let r = t.run(&["run", QS]).ok();
    // Logs do not repeat what stdout says.
    for noise in ["running stage", "split done", "export done", "ranked"] {
        assert!(!r.stderr.contains(noise), "{noise}\n{r}");
    }
    // `device = "auto"` says once, in one short line, which device it chose and why.
    let device: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("device = "))
        .collect();
    assert!(
        device.len() <= 1 && device.iter().all(|l| l.len() < 160),
        "{r}"
    );
    // The bundled data's valid part has 343 items train never saw and no such users.
    assert!(
        r.stdout
            .contains("valid: 362 ratings of 343 items not in train (no unseen users)"),
        "{r}"
    );
    // Rates in a short human form (`530k`, `1.08M`), never raw floats.
    let train = r
        .stdout
        .lines()
        .find(|l| l.contains("dot_bias k=50 on cpu"))
        .unwrap_or_else(|| panic!("{r}"));
    let rate = rate_in(train);
    assert!(
        rate.len() <= 5 && rate.ends_with(['k', 'M', 'G']),
        "{rate} in {train}"
    );
    for l in r.stderr.lines().filter(|l| l.contains("ratings/s")) {
        assert!(rate_in(l).len() <= 5, "{l}");
    }
    // The metrics table and the report name each model by stage and what it is.
    assert!(r.stdout.contains("  train (dot_bias k=50)   "), "{r}");
    // global_mean's R² is a hair below zero: it prints as 0.000, not -0.000.
    assert!(!r.stdout.contains("-0.000"), "{r}");
    assert!(r.stdout.contains("global_mean "), "{r}");
    let report =
        std::fs::read_to_string(t.path(".recpipe/runs/quickstart/evaluate/report.md")).unwrap();
    assert!(report.contains("| **train (dot_bias k=50)** |"), "{report}");

    // No bars when stderr is not a terminal, even without RECPIPE_NO_PROGRESS; RUST_LOG, when
    // set, decides the log level.
    let out = t
        .cmd(&["run", QS, "--stage", "train", "--force"])
        .env_remove("RECPIPE_NO_PROGRESS")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("eta") && !stderr.contains("epoch 1/5"),
        "{stderr}"
    );

    // -v brings the details back.
    let v = t
        .run(&["run", QS, "--stage", "split", "--force", "-v"])
        .ok();
    assert!(v.stderr.contains("running stage `split`"), "{v}");

    // Recorded f32 settings read as written.
    let st = t.run(&["status", QS, "--set", "train.lr=0.003"]).ok();
    assert!(
        st.stage("train")
            .contains("config key `lr` changed from 0.001 to 0.003"),
        "{st}"
    );

    // `show` fits a screenful; the schemas and the whole summary come with -v.
    let short = t.run(&["show", QS, "export"]).ok();
    let long = t.run(&["show", QS, "export", "-v"]).ok();
    assert!(short.stdout.lines().count() <= 30, "{short}");
    assert!(short.stdout.contains("similar_items.parquet"), "{short}");
    assert!(!short.stdout.contains("summary.json"), "{short}");
    assert!(!short.stdout.contains("0.0010000000474974513"), "{short}");
    assert!(long.stdout.contains("summary.json"), "{long}");
    assert!(long.stdout.contains("item_id: "), "{long}");
    assert!(long.stdout.lines().count() > short.stdout.lines().count() + 20);
}

#[test]
fn command_line_mistakes_name_the_flag_or_key() {
    let t = Test::new()
        .with_bundled_data()
        .with_shipped_pipeline("quickstart.toml");

    let r = t.run(&["synth", "--out", "s", "--users", "0"]).fails();
    assert!(r.stderr.contains("--users"), "{r}");
    assert!(!r.stderr.contains("synthetic."), "{r}");
    let r = t
        .run(&["synth", "--out", "s", "--users", "100", "--ratings", "5"])
        .fails();
    assert!(
        r.stderr.contains("raise --ratings or lower --users") && !r.stderr.contains("n_ratings"),
        "{r}"
    );
    let help = t.run(&["synth", "--help"]).ok().stdout;
    for flag in [
        "--out <DIR>",
        "--users <N>",
        "--items <N>",
        "--ratings <N>",
        "--seed <S>",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} missing\n{help}"));
        assert!(
            line[line.find(flag).unwrap() + flag.len()..].trim().len() > 10,
            "{flag} is not described\n{help}"
        );
    }

    // --cache-dir only where a cache is used.
    for cmd in ["train", "ingest", "synth", "dag"] {
        let h = t.run(&[cmd, "--help"]).ok().stdout;
        assert!(!h.contains("--cache-dir"), "{cmd}\n{h}");
    }
    for cmd in ["run", "status", "show", "gc", "sweep"] {
        let h = t.run(&[cmd, "--help"]).ok().stdout;
        assert!(h.contains("--cache-dir"), "{cmd}\n{h}");
    }

    for (set, says) in [
        ("train.epochs=-1", "key `epochs`: must be at least 1"),
        ("train.k=-3", "key `k`: must be at least 1"),
        ("split.seed=-3", "key `seed`: must be 0 or more"),
    ] {
        let r = t.run(&["status", QS, "--set", set]).fails();
        assert!(r.stderr.contains(says), "{set}\n{r}");
        assert!(!r.stderr.contains("expected u"), "{set}\n{r}");
    }

    let r = t.run(&["run", "pipelines/x.toml"]).fails();
    assert_eq!(
        r.stderr.trim_end(),
        "error: pipeline file pipelines/x.toml not found; the shipped pipelines are in pipelines/",
        "{r}"
    );
}
