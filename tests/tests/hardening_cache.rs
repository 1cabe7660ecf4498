//! Names that become paths, the runs/ views, gc and status as a user meets them: each case
//! drives the real binary on the `_test` stage kind or the bundled ml-latest-small.

use recpipe_tests::{Test, bin, test_pipeline, test_stage, wait_output};
use std::path::Path;
use std::time::Duration;

/// `c.toml`: the `_test` chain a → b → c.
fn chain() -> Test {
    let stages = [
        test_stage("a", &[]),
        test_stage("b", &["a"]),
        test_stage("c", &["b"]),
    ];
    Test::new().file("c.toml", &test_pipeline("c", &stages))
}

/// The kind/key the view's link for a stage points at (`cache/<kind>/<key>`).
fn view_key(t: &Test, pipeline: &str, stage: &str) -> String {
    let dir = t.path(&format!(".recpipe/runs/{pipeline}/{stage}"));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m["key"].as_str().unwrap().to_string()
}

/// The `value` every stage of the view was built with, read from its out.txt (the test stage
/// appends its own value after its inputs'), so a mixed view shows up as a mismatch.
fn view_values(t: &Test, pipeline: &str, stages: &[&str]) -> Vec<String> {
    stages
        .iter()
        .map(|s| {
            let out = t.path(&format!(".recpipe/runs/{pipeline}/{s}/out.txt"));
            std::fs::read_to_string(&out)
                .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
                .lines()
                .last()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn nothing_written(t: &Test) {
    assert!(!t.path(".recpipe/runs").exists() || ls(&t.path(".recpipe/runs")).is_empty());
    assert!(t.artifacts("_test").is_empty());
}

fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_traversing_stage_name_is_refused_with_its_span_and_nothing_is_written() {
    let t = Test::new().file("victim.txt", "precious\n").file(
        "sub/dir/p.toml",
        "name = \"p\"\n\n[stages.\"../../../victim.txt\"]\nkind = \"_test\"\n",
    );
    let r = t.run(&["run", "sub/dir/p.toml"]).fails();
    assert!(
        r.stderr.contains("sub/dir/p.toml:3:9")
            && r.stderr
                .contains("stage name \"../../../victim.txt\" contains '/'"),
        "{r}"
    );
    assert!(r.stderr.contains("^"), "an excerpt marks the name\n{r}");
    let victim = t.path("victim.txt");
    assert!(!victim.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(victim).unwrap(), "precious\n");
    nothing_written(&t);
    // status and dag refuse it the same way.
    for cmd in ["status", "dag"] {
        let r = t.run(&[cmd, "sub/dir/p.toml"]).fails();
        assert!(r.stderr.contains("sub/dir/p.toml:3:9"), "{r}");
    }
}

#[test]
fn nested_empty_dotted_and_long_names_are_refused() {
    let long = "x".repeat(101);
    for (name, why) in [
        ("a/b", "contains '/'"),
        ("", "is empty"),
        ("..", "starts with `.`"),
        (".hidden", "starts with `.`"),
        ("a b", "contains ' '"),
        (long.as_str(), "is 101 bytes long"),
    ] {
        let t = Test::new().file(
            "p.toml",
            &format!("[stages.\"{name}\"]\nkind = \"_test\"\n"),
        );
        let r = t.run(&["run", "p.toml"]).fails();
        assert!(
            r.stderr.contains("p.toml:1:9") && r.stderr.contains(why),
            "{name:?}\n{r}"
        );
        nothing_written(&t);
        assert!(t.tmp_entries().is_empty(), "{name:?}: no temp link left");
    }
}

#[test]
fn a_traversing_pipeline_name_is_refused_and_a_file_stem_is_made_safe() {
    let t = Test::new().file(
        "p.toml",
        "name = \"../../escape\"\n[stages.a]\nkind = \"_test\"\n",
    );
    let r = t.run(&["run", "p.toml"]).fails();
    assert!(
        r.stderr.contains("p.toml:1:8") && r.stderr.contains("pipeline `name`"),
        "{r}"
    );
    nothing_written(&t);
    assert!(!t.path("escape").exists() && !t.root().parent().unwrap().join("escape").exists());

    // Without `name`, the file's stem names the view, with unsafe characters replaced.
    let t = Test::new().file("my pipeline.toml", "[stages.a]\nkind = \"_test\"\n");
    t.run(&["run", "my pipeline.toml"]).ok();
    assert!(t.path(".recpipe/runs/my_pipeline/a/out.txt").is_file());
}

#[test]
fn the_view_is_one_runs_set_after_set_runs() {
    let t = chain();
    t.run(&["run", "c.toml"]).ok();
    assert_eq!(view_values(&t, "c", &["a", "b", "c"]), ["a", "b", "c"]);
    // A --set run of b and c: the whole view now shows that run.
    t.run(&["run", "c.toml", "--set", "b.value=B"]).ok();
    assert_eq!(view_values(&t, "c", &["a", "b", "c"]), ["a", "B", "c"]);
    let c_set = view_key(&t, "c", "c");
    // Back to the file's config, but only up to b: c's link must not stay at the --set run's
    // artifact (its upstream b differs), so c leaves the view until it is rebuilt.
    let r = t.run(&["run", "c.toml", "--stage", "b"]).ok();
    assert_eq!(r.status_of("b"), "fresh", "{r}");
    assert_eq!(view_values(&t, "c", &["a", "b"]), ["a", "b"]);
    assert!(
        !t.path(".recpipe/runs/c/c").exists(),
        "no stale c in the view"
    );
    let s = t.run(&["show", "c.toml", "c"]).ok();
    assert!(s.stdout.contains("not in the view"), "{s}");
    // A partial run whose untouched stages still match keeps them.
    t.run(&["run", "c.toml"]).ok();
    t.run(&["run", "c.toml", "--stage", "a"]).ok();
    assert_eq!(view_values(&t, "c", &["a", "b", "c"]), ["a", "b", "c"]);
    assert_ne!(view_key(&t, "c", "c"), c_set);
    // show reports what the view points at when it is another configuration's run.
    t.run(&["run", "c.toml", "--set", "c.value=C"]).ok();
    let s = t.run(&["show", "c.toml", "c"]).ok();
    assert!(s.stdout.contains("status    fresh"), "{s}");
    assert!(s.stdout.contains("another configuration's run"), "{s}");
    let s = t.run(&["show", "c.toml", "c", "--set", "c.value=C"]).ok();
    assert!(s.stdout.contains("(this artifact)"), "{s}");
    // No temp links anywhere in the views.
    let gens = ls(&t.path(".recpipe/views/c"));
    assert!(gens.iter().all(|g| !g.starts_with('.')), "{gens:?}");
    assert!(
        ls(&t.path(".recpipe/runs")) == ["c"],
        "only the view link in runs/"
    );
}

#[test]
fn concurrent_runs_with_different_settings_leave_one_consistent_view() {
    let t = Test::new().file(
        "p.toml",
        "name = \"p\"\n[stages.a]\nkind = \"_test\"\nvalue = \"a\"\nsleep_ms = 100\n\
         [stages.b]\nkind = \"_test\"\ninputs = [\"a\"]\nvalue = \"b\"\nsleep_ms = 300\n\
         [stages.c]\nkind = \"_test\"\ninputs = [\"b\"]\nvalue = \"c\"\nsleep_ms = 100\n",
    );
    for round in 0..3 {
        let x = t.spawn(&[
            "run",
            "p.toml",
            "--set",
            &format!("a.value=x{round}"),
            "--set",
            &format!("c.value=x{round}"),
        ]);
        let y = t.spawn(&[
            "run",
            "p.toml",
            "--set",
            &format!("a.value=y{round}"),
            "--set",
            &format!("c.value=y{round}"),
        ]);
        let x = wait_output(x, Duration::from_secs(60));
        let y = wait_output(y, Duration::from_secs(60));
        assert_eq!((x.code, y.code), (Some(0), Some(0)), "{x}\n{y}");
        let v = view_values(&t, "p", &["a", "b", "c"]);
        assert_eq!(v[1], "b");
        assert_eq!(v[0], v[2], "a and c come from the same run: {v:?}");
        // b's output carries a's value: the same run too.
        let b = std::fs::read_to_string(t.path(".recpipe/runs/p/b/out.txt")).unwrap();
        assert!(b.starts_with(&v[0]), "{b}");
    }
}

#[test]
fn a_folder_in_place_of_the_view_is_repaired_without_leftovers() {
    let t = chain();
    t.run(&["run", "c.toml"]).ok();
    // Replace the view link with a folder holding a stray stage folder (layout 1 style).
    let view = t.path(".recpipe/runs/c");
    std::fs::remove_file(&view).unwrap();
    std::fs::create_dir_all(view.join("b")).unwrap();
    std::fs::write(view.join("b/out.txt"), "not recpipe's\n").unwrap();
    let r = t.run(&["run", "c.toml"]).ok();
    assert!(r.stdout.contains("0 ran, 3 fresh"), "{r}");
    assert!(r.stderr.contains("moving it aside"), "said once\n{r}");
    assert!(view.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(view_values(&t, "c", &["a", "b", "c"]), ["a", "b", "c"]);
    let r = t.run(&["run", "c.toml"]).ok();
    assert!(
        !r.stderr.contains("WARN") && !r.stderr.contains("aside"),
        "{r}"
    );
    // A folder put in place of a stage's link inside the view is replaced by the next run.
    let b = t.path(".recpipe/runs/c/b");
    std::fs::remove_file(&b).unwrap();
    std::fs::create_dir(&b).unwrap();
    let r = t.run(&["run", "c.toml"]).ok();
    assert!(!r.stderr.contains("WARN"), "{r}");
    assert!(b.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(view_values(&t, "c", &["b"]), ["b"]);
    assert_eq!(ls(&t.path(".recpipe/runs")), ["c"], "no temp links");
    assert!(t.tmp_entries().is_empty(), "{:?}", t.tmp_entries());
}

#[test]
fn one_off_out_into_the_cache_is_refused() {
    let t = Test::new()
        .with_bundled_data()
        .with_shipped_pipeline_before("quickstart.toml", "split");
    t.run(&["run", "pipelines/quickstart.toml"]).ok();
    let key = view_key(&t, "quickstart", "ingest");
    let before = std::fs::read(t.path(".recpipe/runs/quickstart/ingest/manifest.json")).unwrap();
    std::fs::create_dir_all(t.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink(t.path(".recpipe/cache"), t.path("sneaky")).unwrap();
    for out in [
        ".recpipe/runs/quickstart/ingest",
        "elsewhere/../.recpipe/cache/new",
        "missing/../.recpipe/runs/quickstart/x",
        "sneaky/ingest",
    ] {
        let r = t
            .run(&["ingest", "data/ml-latest-small", "--out", out])
            .fails();
        assert!(r.stderr.contains("inside the recpipe cache"), "{out}\n{r}");
    }
    // Also with the cache moved by --cache-dir.
    t.run(&["run", "pipelines/quickstart.toml", "--cache-dir", "alt"])
        .ok();
    let r = t
        .run(&[
            "ingest",
            "data/ml-latest-small",
            "--out",
            "alt/.recpipe/runs/quickstart/ingest",
        ])
        .fails();
    assert!(r.stderr.contains("inside the recpipe cache"), "{r}");
    let after = std::fs::read(t.path(".recpipe/runs/quickstart/ingest/manifest.json")).unwrap();
    assert_eq!(before, after);
    let st = t.run(&["status", "pipelines/quickstart.toml"]).ok();
    assert!(st.stage("ingest").contains("fresh"), "{st}");
    assert_eq!(view_key(&t, "quickstart", "ingest"), key);
    assert!(!t.path(".recpipe/cache/new").exists());
}

#[test]
fn gc_keeps_the_current_configuration_after_set_runs_and_a_sweep() {
    let t = chain();
    t.run(&["run", "c.toml"]).ok();
    let own = view_key(&t, "c", "c");
    t.run(&["run", "c.toml", "--set", "b.value=B"]).ok();
    t.run(&[
        "sweep",
        "c.toml",
        "--grid",
        "c.value=v1,v2,v3,v4,v5,v6",
        "--metric",
        "c.lines",
    ])
    .ok();
    // 1 own run + 1 --set run + 6 trials; keep the last 2 runs and the own configuration.
    let dry = t.run(&["gc", "--dry-run", "--keep-runs", "2"]).ok();
    assert!(
        dry.stdout.contains("would remove artifact") && dry.stdout.contains("no kept run uses it"),
        "{dry}"
    );
    assert!(
        dry.stdout.contains("would remove run record")
            && dry.stdout.contains("with --set b.value=B"),
        "{dry}"
    );
    assert!(
        !dry.stdout.contains(&own),
        "the own config's artifact stays\n{dry}"
    );
    let n = t.artifacts("_test").len();
    t.run(&["gc", "--keep-runs", "2"]).ok();
    let left: Vec<String> = t
        .artifacts("_test")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(left.contains(&own), "{left:?}");
    assert!(left.len() < n, "{left:?}");
    // Everything the file's own configuration needs is still cached.
    let r = t.run(&["run", "c.toml"]).ok();
    assert!(r.stdout.contains("0 ran, 3 fresh"), "{r}");
    // The default keeps the last 5 runs.
    let dry = t.run(&["gc", "--dry-run"]).ok();
    assert!(dry.stdout.contains("last 5 runs"), "{dry}");
}

#[test]
fn status_says_collected_by_gc() {
    let t = chain();
    t.run(&["run", "c.toml", "--set", "c.value=old"]).ok();
    t.run(&["run", "c.toml"]).ok();
    t.run(&["gc", "--keep-runs", "1"]).ok();
    let st = t.run(&["status", "c.toml", "--set", "c.value=old"]).ok();
    assert!(st.stage("c").contains("collected by gc"), "{st}");
    assert!(!st.stage("c").contains("never run"), "{st}");
    assert_eq!(st.status_of("b"), "fresh");
    // Built again, it is an ordinary cached artifact.
    t.run(&["run", "c.toml", "--set", "c.value=old"]).ok();
    t.run(&["run", "c.toml"]).ok();
    let st = t.run(&["status", "c.toml", "--set", "c.value=old"]).ok();
    assert_eq!(st.status_of("c"), "fresh", "{st}");
}

#[test]
fn dag_and_status_work_without_the_data() {
    let t = Test::new().with_shipped_pipeline("quickstart.toml");
    let dag = t.run(&["dag", "pipelines/quickstart.toml"]).ok();
    assert!(dag.stdout.contains("ingest [ingest]"), "{dag}");
    let st = t.run(&["status", "pipelines/quickstart.toml"]).ok();
    assert_eq!(st.status_of("ingest"), "missing", "{st}");
    assert!(st.stage("ingest").contains("data/ml-latest-small"), "{st}");
    assert_eq!(st.status_of("split"), "unknown", "{st}");
    assert!(st.stage("train").contains("until `ingest` can run"), "{st}");
    let r = t.run(&["run", "pipelines/quickstart.toml"]).fails();
    assert!(
        r.stderr.contains("not found"),
        "run still needs the data\n{r}"
    );
}

/// How removal is made to fail for the gc failure test.
enum Block {
    /// Not root: the kind folder made read-only (nothing can be renamed out of it).
    ReadOnlyParent,
    /// Root (which ignores permissions): the artifact made immutable with chattr.
    Immutable,
    /// Root without chattr support: gc run as nobody on a cache owned by root.
    Nobody,
}

fn chattr(flag: &str, path: &Path) -> bool {
    std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn gc_reports_each_failure_and_exits_non_zero() {
    use std::os::unix::fs::PermissionsExt;
    let t = chain();
    t.run(&["run", "c.toml", "--set", "c.value=old"]).ok();
    t.run(&["run", "c.toml"]).ok();
    let old = t
        .artifacts("_test")
        .into_iter()
        .find(|a| {
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(a.join("manifest.json")).unwrap()).unwrap();
            m["config"]["value"] == "old"
        })
        .unwrap();
    let kind_dir = t.path(".recpipe/cache/_test");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let block = if !root {
        std::fs::set_permissions(&kind_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        Block::ReadOnlyParent
    } else if chattr("+i", &old) {
        Block::Immutable
    } else if Path::new("/usr/bin/setpriv").exists() {
        std::fs::set_permissions(t.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Block::Nobody
    } else {
        eprintln!("skipped: root without chattr or setpriv; removal cannot be made to fail");
        return;
    };
    let mut cmd = match block {
        Block::Nobody => {
            let mut c = std::process::Command::new("/usr/bin/setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin());
            c
        }
        _ => std::process::Command::new(bin()),
    };
    let out = cmd
        .args(["gc", "--keep-runs", "1"])
        .current_dir(t.root())
        .env("RECPIPE_NO_PROGRESS", "1")
        .env_remove("RECPIPE_CACHE_DIR")
        .output()
        .unwrap();
    match block {
        Block::ReadOnlyParent => {
            std::fs::set_permissions(&kind_dir, std::fs::Permissions::from_mode(0o755)).unwrap()
        }
        Block::Immutable => assert!(chattr("-i", &old)),
        Block::Nobody => {}
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("could not be removed (listed above)"),
        "{stdout}\n{stderr}"
    );
    if matches!(block, Block::Nobody) {
        assert!(stderr.contains("gc: cannot remove"), "{stderr}");
    } else {
        let line = format!("gc: cannot remove {}: ", old.display());
        assert!(stderr.contains(&line), "{line}\n{stdout}\n{stderr}");
        // The rest of the sweep went on: the old run record went.
        assert!(stdout.contains("removed run record"), "{stdout}");
    }
    assert!(!stdout.contains("removed artifact"), "{stdout}");
    assert!(old.join("manifest.json").is_file(), "the artifact is whole");
    assert_eq!(t.artifacts("_test").len(), 4, "a, b, c and c.value=old");
}
