//! The cache on the real ingest and split stages over the bundled ml-latest-small (the
//! shipped pipelines cut before training, which tests/tests/pipeline.rs covers).

use recpipe_tests::{Test, wait_output, wait_until};
use std::time::Duration;

const QS: &str = "pipelines/quickstart.toml";

fn quickstart() -> Test {
    Test::new()
        .with_bundled_data()
        .with_shipped_pipeline_before("quickstart.toml", "train")
}

#[test]
fn second_run_is_all_cache_hits() {
    let t = quickstart();
    let r = t.run(&["run", QS]).ok();
    assert_eq!(r.status_of("ingest"), "ran");
    assert_eq!(r.status_of("split"), "ran");
    assert!(r.stage("ingest").contains("never run"), "{r}");
    let view = t.path(".recpipe/runs/quickstart/split");
    for f in [
        "train.parquet",
        "valid.parquet",
        "test.parquet",
        "manifest.json",
    ] {
        assert!(view.join(f).is_file(), "{f} in the runs/ view");
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(view.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["stage"], "split");
    assert_eq!(m["config"]["seed"], 42);
    let train = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "train.parquet")
        .unwrap();
    assert_eq!(
        train["rows"].as_u64().unwrap() as usize,
        recpipe_core::parquet_io::row_count(view.join("train.parquet")).unwrap()
    );

    let r = t.run(&["run", QS]).ok();
    assert_eq!(r.status_of("ingest"), "fresh");
    assert_eq!(r.status_of("split"), "fresh");
    assert!(r.stdout.contains("0 ran, 2 fresh"), "{r}");
    assert_eq!(t.artifacts("ingest").len(), 1);
    assert_eq!(t.artifacts("split").len(), 1);
    let s = t.run(&["status", QS]).ok();
    assert_eq!(s.status_of("split"), "fresh");
}

#[test]
fn changing_one_key_reruns_that_stage_only_and_says_why() {
    let t = quickstart();
    t.run(&["run", QS]).ok();
    let dry = t
        .run(&["run", QS, "--set", "split.seed=7", "--dry-run"])
        .ok();
    assert_eq!(dry.status_of("ingest"), "fresh");
    assert!(
        dry.stage("split")
            .contains("would run  config key `seed` changed from 42 to 7"),
        "{dry}"
    );
    assert_eq!(t.artifacts("split").len(), 1, "--dry-run runs nothing");
    let st = t.run(&["status", QS, "--set", "split.seed=7"]).ok();
    assert!(st.stage("split").contains("stale"), "{st}");
    assert!(st.stage("split").contains("changed from 42 to 7"), "{st}");

    let r = t.run(&["run", QS, "--set", "split.seed=7"]).ok();
    assert_eq!(r.status_of("ingest"), "fresh");
    assert_eq!(r.status_of("split"), "ran");
    assert_eq!(t.artifacts("split").len(), 2);
    // The old artifact is still cached: going back is a cache hit.
    let back = t.run(&["run", QS]).ok();
    assert_eq!(back.status_of("split"), "fresh");
    // ...and the runs/ view followed, so gc keeping only the last run removes the seed=7
    // artifact only (the default keeps the last 5 runs: nothing goes).
    let gc = t.run(&["gc", "--dry-run"]).ok();
    assert!(gc.stdout.contains("would remove 0 directories"), "{gc}");
    let gc = t.run(&["gc", "--dry-run", "--keep-runs", "1"]).ok();
    assert!(gc.stdout.contains("would remove 1 directory"), "{gc}");
    assert_eq!(t.artifacts("split").len(), 2);
    t.run(&["gc", "--keep-runs", "1"]).ok();
    assert_eq!(t.artifacts("split").len(), 1);
    assert_eq!(t.run(&["run", QS]).ok().status_of("split"), "fresh");
}

#[test]
fn stage_force_and_downstream_select_what_runs() {
    let t = quickstart();
    let r = t.run(&["run", QS, "--stage", "ingest"]).ok();
    assert_eq!(r.status_of("ingest"), "ran");
    assert!(!r.has_stage("split"), "{r}");
    let r = t.run(&["run", QS, "--stage", "split"]).ok();
    assert_eq!(r.status_of("ingest"), "fresh");
    assert_eq!(r.status_of("split"), "ran");
    let r = t.run(&["run", QS, "--stage", "split", "--force"]).ok();
    assert_eq!(r.status_of("ingest"), "fresh");
    assert_eq!(r.status_of("split"), "ran");
    assert!(r.stage("split").contains("forced"), "{r}");
    let r = t
        .run(&["run", QS, "--stage", "ingest", "--force", "--dry-run"])
        .ok();
    assert!(r.stage("ingest").contains("would run  forced"), "{r}");
    assert!(!r.has_stage("split"), "{r}");
    let r = t
        .run(&["run", QS, "--stage", "ingest", "--force", "--downstream"])
        .ok();
    assert_eq!(r.status_of("ingest"), "ran");
    assert_eq!(r.status_of("split"), "ran");
    let r = t.run(&["run", QS, "--stage", "nope"]).fails();
    assert!(r.stderr.contains("no stage named `nope`"), "{r}");
}

#[test]
fn tampered_artifact_is_rebuilt_with_a_warning() {
    let t = quickstart();
    t.run(&["run", QS]).ok();
    let train = t.path(".recpipe/runs/quickstart/split/train.parquet");
    let mut bytes = std::fs::read(&train).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&train, &bytes).unwrap();
    let st = t.run(&["status", QS]).ok();
    assert!(st.stage("split").contains("damaged"), "{st}");
    let r = t.run(&["run", QS]).ok();
    assert_eq!(r.status_of("ingest"), "fresh");
    assert_eq!(r.status_of("split"), "ran");
    assert!(
        r.stderr.contains("WARN") && r.stderr.contains("damaged"),
        "{r}"
    );
    // Truncation is caught too.
    let ratings = t.path(".recpipe/runs/quickstart/ingest/ratings.parquet");
    let len = std::fs::metadata(&ratings).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ratings)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let r = t.run(&["run", QS]).ok();
    assert_eq!(r.status_of("ingest"), "ran");
    // Same inputs, same key: split's artifact is still valid and reused.
    assert_eq!(r.status_of("split"), "fresh");
    assert_eq!(t.run(&["run", QS]).ok().stdout.matches("fresh").count(), 3);
}

#[test]
fn kill_during_ingest_leaves_nothing_half_done() {
    let t = quickstart();
    // A kill at several moments of the run: whatever it interrupts, every artifact left in the
    // cache must be complete, and the next run must just work.
    for delay_ms in [0u64, 30, 80, 150] {
        let mut child = t.spawn(&["run", QS, "--stage", "ingest", "--force"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on unix
        let _ = child.wait();
        for dir in t.artifacts("ingest") {
            let m = dir.join("manifest.json");
            assert!(m.is_file(), "{} has no manifest", dir.display());
        }
        let r = t.run(&["status", QS]).ok();
        assert!(!r.stdout.contains("damaged"), "{r}");
    }
    let r = t.run(&["run", QS]).ok();
    assert!(matches!(r.status_of("ingest"), "ran" | "fresh"), "{r}");
    assert_eq!(t.run(&["run", QS]).ok().stdout.matches("fresh").count(), 3);
    assert!(
        t.tmp_entries().is_empty(),
        "leftovers: {:?}",
        t.tmp_entries()
    );
}

#[test]
fn concurrent_runs_both_succeed_with_one_artifact() {
    let t = quickstart();
    let a = t.spawn(&["run", QS]);
    let b = t.spawn(&["run", QS]);
    let (a, b) = (
        wait_output(a, Duration::from_secs(120)),
        wait_output(b, Duration::from_secs(120)),
    );
    assert_eq!(a.code, Some(0), "{a}");
    assert_eq!(b.code, Some(0), "{b}");
    assert_eq!(t.artifacts("ingest").len(), 1);
    assert_eq!(t.artifacts("split").len(), 1);
    let r = t.run(&["run", QS]).ok();
    assert!(r.stdout.contains("0 ran, 2 fresh"), "{r}");
    wait_until("tmp cleanup", || t.tmp_entries().is_empty());
}

#[test]
fn kill_mid_synthetic_ingest_then_rerun() {
    let t = Test::new().with_shipped_pipeline_before("synthetic.toml", "train");
    let p = "pipelines/synthetic.toml";
    let size = "ingest.synthetic.n_ratings=400000";
    let mut child = t.spawn(&["run", p, "--set", size]);
    // The temp dir appears just before the stage starts writing: kill it there.
    wait_until("ingest to start", || {
        t.tmp_entries().iter().any(|d| {
            d.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ingest-"))
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();
    for dir in t.artifacts("ingest") {
        assert!(dir.join("manifest.json").is_file(), "{}", dir.display());
    }
    let r = t.run(&["run", p, "--set", size]).ok();
    assert_eq!(r.status_of("split"), "ran", "{r}");
    assert!(t.tmp_entries().is_empty(), "{:?}", t.tmp_entries());
    let r = t.run(&["run", p, "--set", size]).ok();
    assert!(r.stdout.contains("0 ran, 2 fresh"), "{r}");
}
