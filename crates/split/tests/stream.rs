//! The streaming split (a budget too small for the in-memory path) against the in-memory
//! split on the bundled MovieLens ratings: the same train/valid/test tables, files and
//! split.json for every strategy that streams.

mod common;

use common::{fixture, movielens, movielens_fixture};
use recpipe_core::{Progress, Ratings};
use recpipe_split::{Config, SplitError, Summary, split_within};
use std::path::Path;

const FILES: [&str; 3] = ["train.parquet", "valid.parquet", "test.parquet"];

fn cfg(toml_text: &str) -> Config {
    toml::from_str(toml_text).unwrap()
}

/// Splits `ingest` into `out`: in memory (budget None on this small table) or streamed
/// (a budget of one byte).
fn run(cfg: &Config, ingest: &Path, out: &Path, stream: bool) -> Result<Summary, SplitError> {
    std::fs::create_dir_all(out).unwrap();
    let budget = stream.then_some(1);
    split_within(cfg, ingest, out, &Progress::hidden(), budget)
}

fn assert_same(cfg_text: &str, ingest: &Path, tmp: &Path) {
    let c = cfg(cfg_text);
    let (a, b) = (tmp.join("memory"), tmp.join("stream"));
    let in_memory = run(&c, ingest, &a, false).unwrap();
    let streamed = run(&c, ingest, &b, true).unwrap();
    assert_eq!(streamed, in_memory, "{cfg_text}: split.json differs");
    assert!(
        in_memory.valid.rows + in_memory.test.rows > 0,
        "{cfg_text}: nothing held out"
    );
    for name in FILES {
        let (x, y) = (a.join(name), b.join(name));
        assert_eq!(
            Ratings::read(&y).unwrap(),
            Ratings::read(&x).unwrap(),
            "{cfg_text}: {name} differs"
        );
        assert!(
            std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
            "{cfg_text}: {name} has other bytes"
        );
    }
}

#[test]
fn every_streaming_strategy_matches_the_in_memory_split() {
    let fx = movielens_fixture();
    for text in [
        "",
        "valid_fraction = 0.1\ntest_fraction = 0.2\nseed = 7",
        "compat = \"sklearn\"\nvalid_fraction = 0.2",
        "compat = \"pandas\"\nvalid_fraction = 0.2",
        "strategy = \"chronological\"\ntest_fraction = 0.1",
        "strategy = \"user_random\"\ntest_fraction = 0.2\nmin_ratings = 30",
        "strategy = \"user_chronological\"\ntest_fraction = 0.1",
        "strategy = \"leave_last_k\"\nk = 2\ndrop_cold_start = true",
        "strategy = \"user_random\"\nvalid_fraction = 0.3\ndrop_cold_start = true",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        assert_same(text, &fx.ingest(), tmp.path());
    }
}

#[test]
fn a_table_without_timestamps_streams_like_it_splits_in_memory() {
    let ml = movielens();
    let r = Ratings {
        timestamp: None,
        ..ml.ratings.clone()
    };
    let fx = fixture(&r, &ml.user_ids, &ml.item_ids);
    let tmp = tempfile::tempdir().unwrap();
    assert_same("strategy = \"user_random\"", &fx.ingest(), tmp.path());
    let err = run(
        &cfg("strategy = \"leave_last_k\""),
        &fx.ingest(),
        &tmp.path().join("x"),
        true,
    )
    .unwrap_err();
    assert!(matches!(err, SplitError::NoTimestamps { .. }), "{err}");
}

#[test]
fn min_ratings_removing_everyone_is_refused_on_the_streaming_path_too() {
    let fx = movielens_fixture();
    let tmp = tempfile::tempdir().unwrap();
    let err = run(&cfg("min_ratings = 100000"), &fx.ingest(), tmp.path(), true).unwrap_err();
    assert!(err.to_string().contains("min_ratings"), "{err}");
}
