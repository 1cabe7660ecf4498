//! A memory budget too small for the rows forces the spilling paths (the row store in a
//! spill file, duplicate keys sorted in runs on disk and merged); they must give the very
//! tables the in-memory path gives, on the bundled MovieLens data and on a shuffled copy
//! with planted duplicates, for every `duplicates` policy.

use arrow_array::RecordBatch;
use recpipe_core::parquet_io::read_batches;
use recpipe_core::rng::SplitMix64;
use recpipe_core::{Progress, Ratings};
use recpipe_ingest::{Config, Duplicates, Summary, ingest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Small enough that ml-latest-small's rows and duplicate keys do not fit.
const TINY: &str = "3900KiB";

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ml-latest-small")
}

/// Everything an ingest run wrote, timings left out.
#[derive(Debug, PartialEq)]
struct Tables {
    ratings: Ratings,
    users: Vec<RecordBatch>,
    items: Vec<RecordBatch>,
    summary: Summary,
}

fn run(cfg: &Config) -> Result<Tables, String> {
    let dir = tempfile::tempdir().unwrap();
    let s = ingest(cfg, dir.path(), &Progress::hidden()).map_err(|e| e.to_string())?;
    assert!(
        !dir.path().join(".spill").exists(),
        "spill files are removed"
    );
    let summary = Summary {
        seconds: 0.0,
        seconds_read: 0.0,
        seconds_prepare: 0.0,
        seconds_write: 0.0,
        spilled_bytes: 0,
        ..s.clone()
    };
    if cfg.memory_budget == TINY {
        assert!(s.spilled_bytes > 0, "the tiny budget must spill");
    } else {
        assert_eq!(
            s.spilled_bytes, 0,
            "the default budget holds this in memory"
        );
    }
    Ok(Tables {
        ratings: Ratings::read(dir.path().join("ratings.parquet")).unwrap(),
        users: read_batches(dir.path().join("users.parquet")).unwrap().1,
        items: read_batches(dir.path().join("items.parquet")).unwrap().1,
        summary,
    })
}

fn with_budget(cfg: &Config, budget: &str) -> Config {
    Config {
        memory_budget: budget.to_string(),
        ..cfg.clone()
    }
}

#[test]
fn bundled_spilled_equals_in_memory() {
    let cfg = Config::for_path(bundled());
    let mem = run(&cfg).unwrap();
    assert_eq!(mem.ratings.len(), 100_836);
    assert_eq!(run(&with_budget(&cfg, TINY)).unwrap(), mem);
}

/// ml-latest-small's rows shuffled, plus `planted` repeats of random (user, item) pairs
/// with other ratings and timestamps.
fn shuffled_with_duplicates(dir: &Path, planted: usize) -> PathBuf {
    let src = bundled();
    let text = std::fs::read_to_string(src.join("ratings.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut rows: Vec<String> = lines.map(str::to_string).collect();
    let mut rng = SplitMix64::new(18);
    for k in 0..planted {
        let pick = rows[rng.below(rows.len() as u64) as usize].clone();
        let f: Vec<&str> = pick.split(',').collect();
        let rating = 0.5 * (1 + rng.below(10)) as f32;
        rows.push(format!("{},{},{rating:.1},{}", f[0], f[1], 1_000_000 + k));
    }
    rng.shuffle(&mut rows);
    let out = dir.join("ml-shuffled");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("ratings.csv"),
        format!("{header}\n{}\n", rows.join("\n")),
    )
    .unwrap();
    std::fs::copy(src.join("movies.csv"), out.join("movies.csv")).unwrap();
    out
}

/// The kept (user id, item id) → rating of `policy`, computed here from the text.
fn expected(path: &Path, policy: Duplicates) -> HashMap<(i64, i64), f32> {
    let text = std::fs::read_to_string(path.join("ratings.csv")).unwrap();
    let mut all: HashMap<(i64, i64), Vec<f32>> = HashMap::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let key = (f[0].parse().unwrap(), f[1].parse().unwrap());
        all.entry(key).or_default().push(f[2].parse().unwrap());
    }
    all.into_iter()
        .map(|(k, v)| {
            let r = match policy {
                Duplicates::KeepFirst => v[0],
                Duplicates::KeepLast => v[v.len() - 1],
                _ => (v.iter().map(|&r| r as f64).sum::<f64>() / v.len() as f64) as f32,
            };
            (k, r)
        })
        .collect()
}

#[test]
fn planted_duplicates_resolve_the_same_spilled_for_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = shuffled_with_duplicates(dir.path(), 500);
    for policy in [
        Duplicates::KeepLast,
        Duplicates::KeepFirst,
        Duplicates::Mean,
    ] {
        let cfg = Config {
            duplicates: policy,
            ..Config::for_path(&path)
        };
        let mem = run(&cfg).unwrap();
        assert_eq!(run(&with_budget(&cfg, TINY)).unwrap(), mem, "{policy:?}");
        // The policy itself, checked against the text.
        let want = expected(&path, policy);
        assert_eq!(mem.summary.duplicates, 100_836 + 500 - want.len() as u64);
        let catalog = |b: &[RecordBatch], col: &str| -> Vec<i64> {
            b.iter()
                .flat_map(|b| {
                    b.column_by_name(col)
                        .unwrap()
                        .as_any()
                        .downcast_ref::<arrow_array::Int64Array>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect()
        };
        let (users, items) = (
            catalog(&mem.users, "user_id"),
            catalog(&mem.items, "item_id"),
        );
        let r = &mem.ratings;
        assert_eq!(r.len(), want.len());
        for k in 0..r.len() {
            let key = (users[r.user[k] as usize], items[r.item[k] as usize]);
            assert_eq!(r.rating[k], want[&key], "{policy:?} {key:?}");
        }
    }
    let cfg = Config {
        duplicates: Duplicates::Error,
        ..Config::for_path(&path)
    };
    let e = run(&cfg).unwrap_err();
    assert!(
        e.contains("rated item") && e.contains("first at line"),
        "{e}"
    );
    assert_eq!(run(&with_budget(&cfg, TINY)).unwrap_err(), e);
}

#[test]
fn budget_too_small_or_unreadable_names_the_setting() {
    let cfg = Config::for_path(bundled());
    let e = run(&with_budget(&cfg, "1MiB")).unwrap_err();
    assert!(
        e.contains("ingest.memory_budget") && e.contains("too small") && e.contains("at least"),
        "{e}"
    );
    let e = run(&with_budget(&cfg, "lots")).unwrap_err();
    assert!(
        e.contains("ingest.memory_budget") && e.contains("not a size"),
        "{e}"
    );
}
