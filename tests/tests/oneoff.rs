//! Stage commands without a pipeline file: ingest, synth, split.

use recpipe_tests::{Run, Test};

#[test]
fn ingest_then_split_by_hand() {
    let t = Test::new().with_bundled_data();
    let r = t
        .run(&["ingest", "data/ml-latest-small", "--out", "out/ingest"])
        .ok();
    assert!(r.stdout.contains("ingest: wrote out/ingest"), "{r}");
    for f in [
        "ratings.parquet",
        "users.parquet",
        "items.parquet",
        "manifest.json",
    ] {
        assert!(t.path("out/ingest").join(f).is_file(), "{f}");
    }
    assert!(!t.path(".recpipe").exists(), "one-off runs leave no cache");
    // The data folder, hashed while the stage ran, is in the manifest and its key.
    let manifest = |dir: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(t.path(dir).join("manifest.json")).unwrap()).unwrap()
    };
    let m = manifest("out/ingest");
    let ext = m["inputs"]["external"].as_array().unwrap();
    assert_eq!(ext.len(), 2, "ratings.csv and movies.csv: {m}");
    for e in ext {
        let data = std::fs::read(t.path(e["path"].as_str().unwrap())).unwrap();
        assert_eq!(e["bytes"], data.len(), "{m}");
        assert_eq!(e["blake3"], blake3::hash(&data).to_hex().as_str(), "{m}");
    }
    assert_eq!(m["key"].as_str().unwrap().len(), 32, "{m}");
    t.run(&["ingest", "data/ml-latest-small", "--out", "out/again"])
        .ok();
    assert_eq!(manifest("out/again")["key"], m["key"]);
    let r = t
        .run(&[
            "ingest",
            "data/ml-latest-small",
            "--out",
            "out/seeded",
            "--set",
            "on_error=\"skip\"",
        ])
        .ok();
    assert!(r.stdout.contains("ingest: wrote"), "{r}");
    assert_ne!(manifest("out/seeded")["key"], m["key"]);

    let r = t
        .run(&[
            "split",
            "--input",
            "out/ingest",
            "--out",
            "out/split",
            "--set",
            "seed=7",
        ])
        .ok();
    assert!(r.stdout.contains("split: wrote out/split"), "{r}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path("out/split/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["config"]["seed"], 7);
    assert_eq!(m["inputs"]["upstream"][0]["kind"], "ingest");
    let rows = recpipe_core::parquet_io::row_count(t.path("out/split/train.parquet")).unwrap()
        + recpipe_core::parquet_io::row_count(t.path("out/split/valid.parquet")).unwrap();
    assert_eq!(
        rows,
        recpipe_core::parquet_io::row_count(t.path("out/ingest/ratings.parquet")).unwrap()
    );
    // Rerunning into the same folder replaces the earlier artifact.
    t.run(&["split", "--input", "out/ingest", "--out", "out/split"])
        .ok();
}

/// `recpipe ingest` of the bundled data into `o` with `flags`, which must fail.
fn ingest_fails(t: &Test, flags: &[&str]) -> Run {
    let args = [&["ingest", "data/ml-latest-small", "--out", "o"], flags].concat();
    t.run(&args).fails()
}

#[test]
fn oneoff_errors_are_readable() {
    let t = Test::new().with_bundled_data();
    let r = ingest_fails(&t, &["--on-error", "ignore"]);
    assert!(r.stderr.contains("--on-error ignore"), "{r}");
    let r = t.run(&["ingest", "data/ml-10m", "--out", "o"]).fails();
    assert!(r.stderr.contains("grouplens.org"), "{r}");
    let r = ingest_fails(&t, &["--set", "colour=1"]);
    assert!(
        r.stderr.contains("unknown") && r.stderr.contains("colour"),
        "{r}"
    );
    t.write("mine/notes.txt", "precious");
    let r = t
        .run(&["ingest", "data/ml-latest-small", "--out", "mine"])
        .fails();
    assert!(r.stderr.contains("refusing to replace mine"), "{r}");
    assert!(t.path("mine/notes.txt").is_file());
    let r = t.run(&["split", "--input", "mine", "--out", "s"]).fails();
    assert!(
        r.stderr.contains("cannot tell which stage wrote mine"),
        "{r}"
    );
}

#[test]
fn synth_writes_a_data_set_ingest_reads() {
    let t = Test::new();
    t.run(&[
        "synth",
        "--out",
        "syn",
        "--users",
        "200",
        "--items",
        "100",
        "--ratings",
        "5000",
        "--seed",
        "3",
    ])
    .ok();
    assert!(t.path("syn/ratings.csv").is_file());
    let r = t.run(&["ingest", "syn", "--out", "ing"]).ok();
    assert!(r.stdout.contains("5000 ratings"), "{r}");
}
