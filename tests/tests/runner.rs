//! Runner behaviour on the test-only `_test` stage kind (built into the `recpipe-e2e` binary by
//! the `test-stages` feature): parallelism, locks, kills, failures, overrides, and the show /
//! dag / gc commands.

use recpipe_tests::{Test, test_pipeline, test_stage, wait_output, wait_until};
use std::time::Duration;

/// `d.toml`: the `_test` diamond a → (b, c) → d, where a reads `input.txt`.
fn diamond() -> Test {
    let stages = [
        test_stage("a", &[]) + "file = \"input.txt\"\n",
        test_stage("b", &["a"]),
        test_stage("c", &["a"]),
        test_stage("d", &["b", "c"]),
    ];
    Test::new()
        .file("d.toml", &test_pipeline("d", &stages))
        .file("input.txt", "data\n")
}

#[test]
fn downstream_stages_see_their_inputs_and_reasons_are_precise() {
    let t = diamond();
    let r = t.run(&["run", "d.toml"]).ok();
    for s in ["a", "b", "c", "d"] {
        assert_eq!(r.status_of(s), "ran", "{r}");
    }
    let out = std::fs::read_to_string(t.path(".recpipe/runs/d/d/out.txt")).unwrap();
    // Direct inputs b and c in order, then the ancestor a.
    assert_eq!(out, "data\na\nb\ndata\na\nc\ndata\na\nd\n");

    // An external input edit reruns everything downstream of it, naming the file.
    t.write("input.txt", "other\n");
    let st = t.run(&["status", "d.toml"]).ok();
    assert!(st.stage("a").contains("input input.txt changed"), "{st}");
    assert!(st.stage("d").contains("upstream `b` changed"), "{st}");
    let r = t.run(&["run", "d.toml"]).ok();
    assert!(r.stdout.contains("4 ran, 0 fresh"), "{r}");

    // A nested key through a dotted --set: only c and its dependent d rerun.
    let r = t.run(&["run", "d.toml", "--set", "c.nested.depth=3"]).ok();
    assert_eq!(r.status_of("a"), "fresh");
    assert_eq!(r.status_of("b"), "fresh");
    assert!(
        r.stage("c")
            .contains("config key `nested.depth` changed from 0 to 3"),
        "{r}"
    );
    assert_eq!(r.status_of("d"), "ran");
}

#[test]
fn independent_stages_run_in_parallel() {
    // b waits for c to start and c for b: only a parallel runner finishes.
    let t = Test::new().file(
        "p.toml",
        r#"
[stages.a]
kind = "_test"
[stages.b]
kind = "_test"
inputs = ["a"]
value = "b"
touch = "b.started"
wait_for = "c.started"
[stages.c]
kind = "_test"
inputs = ["a"]
value = "c"
touch = "c.started"
wait_for = "b.started"
"#,
    );
    let r = wait_output(t.spawn(&["run", "p.toml"]), Duration::from_secs(60));
    assert_eq!(r.code, Some(0), "{r}");
}

#[test]
fn killed_stage_leaves_no_artifact_and_the_next_run_succeeds() {
    let t = Test::new().file(
        "p.toml",
        "[stages.slow]\nkind = \"_test\"\nvalue = \"x\"\nwait_for = \"go\"\n",
    );
    let mut child = t.spawn(&["run", "p.toml"]);
    wait_until("the stage to start writing", || {
        t.tmp_entries()
            .iter()
            .any(|d| d.join("partial.txt").exists())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        t.artifacts("_test").is_empty(),
        "no artifact from a killed run"
    );
    assert_eq!(t.tmp_entries().len(), 1, "its temp dir stays until cleaned");
    let st = t.run(&["status", "p.toml"]).ok();
    assert!(st.stage("slow").contains("never run"), "{st}");

    t.write("go", "");
    let r = t.run(&["run", "p.toml"]).ok();
    assert_eq!(r.status_of("slow"), "ran");
    assert!(t.tmp_entries().is_empty(), "the rerun removed the leftover");
    assert!(t.path(".recpipe/runs/p/slow/out.txt").is_file());
}

#[test]
fn gc_removes_leftovers_of_killed_runs() {
    let t = Test::new().file(
        "p.toml",
        "[stages.slow]\nkind = \"_test\"\nwait_for = \"go\"\n",
    );
    let mut child = t.spawn(&["run", "p.toml"]);
    wait_until("the stage to start", || !t.tmp_entries().is_empty());
    // While the run holds its lock, gc leaves its temp dir alone.
    let gc = t.run(&["gc"]).ok();
    assert!(gc.stdout.contains("removed 0 directories"), "{gc}");
    child.kill().unwrap();
    child.wait().unwrap();
    let gc = t.run(&["gc", "--dry-run"]).ok();
    assert!(gc.stdout.contains("would remove leftover"), "{gc}");
    assert_eq!(t.tmp_entries().len(), 1);
    t.run(&["gc"]).ok();
    assert!(t.tmp_entries().is_empty());
}

#[test]
fn concurrent_runs_share_one_execution() {
    let t = Test::new().file(
        "p.toml",
        "[stages.s]\nkind = \"_test\"\nsleep_ms = 400\nlog = \"runs.log\"\n",
    );
    let a = t.spawn(&["run", "p.toml"]);
    let b = t.spawn(&["run", "p.toml"]);
    let a = wait_output(a, Duration::from_secs(60));
    let b = wait_output(b, Duration::from_secs(60));
    assert_eq!(a.code, Some(0), "{a}");
    assert_eq!(b.code, Some(0), "{b}");
    let log = std::fs::read_to_string(t.path("runs.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "the stage ran once\n{a}\n{b}");
    assert_eq!(t.artifacts("_test").len(), 1);
    let statuses = [a.status_of("s").to_string(), b.status_of("s").to_string()];
    assert!(statuses.contains(&"ran".to_string()), "{a}\n{b}");
    assert!(statuses.contains(&"fresh".to_string()), "{a}\n{b}");
}

#[test]
fn a_failing_stage_stops_its_dependents_and_caches_nothing() {
    let t = Test::new().file(
        "p.toml",
        "[stages.a]\nkind = \"_test\"\nfail = true\n[stages.b]\nkind = \"_test\"\ninputs = [\"a\"]\n",
    );
    let r = t.run(&["run", "p.toml"]).fails();
    assert_eq!(r.status_of("a"), "FAILED");
    assert!(
        r.stdout.contains("not run (an upstream stage failed): b"),
        "{r}"
    );
    assert!(r.stderr.contains("error: stage `a` (_test) failed"), "{r}");
    assert!(r.stderr.contains("asked to fail"), "{r}");
    assert!(t.artifacts("_test").is_empty());
    assert!(t.tmp_entries().is_empty());
}

#[test]
fn show_and_dag_describe_the_pipeline() {
    let t = diamond();
    let r = t.run(&["show", "d.toml", "b"]).fails();
    assert!(r.stderr.contains("has not been run yet"), "{r}");
    t.run(&["run", "d.toml"]).ok();
    let s = t.run(&["show", "d.toml", "b"]).ok();
    assert!(s.stdout.contains("status    fresh"), "{s}");
    assert!(
        s.stdout.contains("lines.parquet") && s.stdout.contains("3 rows"),
        "{s}"
    );
    assert!(s.stdout.contains("inputs    a ("), "{s}");
    // Schemas only with -v: the default is a screenful.
    assert!(!s.stdout.contains("line: Utf8 not null"), "{s}");
    let v = t.run(&["show", "d.toml", "b", "-v"]).ok();
    assert!(v.stdout.contains("line: Utf8 not null"), "{v}");
    let s = t.run(&["show", "d.toml", "b", "--set", "b.value=z"]).ok();
    assert!(s.stdout.contains("showing its last run"), "{s}");

    let dag = t.run(&["dag", "d.toml"]).ok().stdout;
    assert!(dag.contains("└── a [_test]"), "{dag}");
    assert!(dag.contains("├── b [_test]"), "{dag}");
    assert!(dag.contains("(see above)"), "d has two parents\n{dag}");
    let dot = t.run(&["dag", "d.toml", "--format", "dot"]).ok().stdout;
    assert!(
        dot.contains("\"b\" -> \"d\";") && dot.contains("\"c\" -> \"d\";"),
        "{dot}"
    );
    let mermaid = t.run(&["dag", "d.toml", "--format", "mermaid"]).ok().stdout;
    assert!(
        mermaid.starts_with("graph TD") && mermaid.contains("a --> b"),
        "{mermaid}"
    );
}

#[test]
fn cache_dir_option_and_env_move_the_cache() {
    let t = diamond();
    t.run(&["run", "d.toml", "--cache-dir", "elsewhere"]).ok();
    assert!(t.path("elsewhere/.recpipe/runs/d/d/out.txt").is_file());
    assert!(!t.path(".recpipe").exists());
    let r = t
        .cmd(&["run", "d.toml"])
        .env("RECPIPE_CACHE_DIR", t.path("elsewhere"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&r.stdout).contains("0 ran, 4 fresh"));
}
