//! The top-N protocol end to end on the bundled data: the shipped
//! `ml-latest-small-topn.toml` (stratified 75/25, EASE, evaluate with `relevance = "any"`,
//! export), with the exported recommendations scored here from the split's own files and
//! compared with what evaluate reported, and the quick start's two models (a rating model for
//! RMSE, a ranking model for the recommendations).

use arrow_array::{Array, RecordBatch, UInt32Array};
use recpipe_core::Ratings;
use recpipe_core::parquet_io::read_batches;
use recpipe_tests::Test;
use std::collections::{BTreeMap, HashSet};

fn u32s(b: &RecordBatch, name: &str) -> Vec<u32> {
    let c = b.column_by_name(name).unwrap();
    let a = c.as_any().downcast_ref::<UInt32Array>().unwrap();
    (0..a.len()).map(|i| a.value(i)).collect()
}

/// Each user's exported list, best first.
fn exported(t: &Test, pipeline: &str) -> BTreeMap<u32, Vec<u32>> {
    let path = t.path(&format!(
        ".recpipe/runs/{pipeline}/export/recommendations.parquet"
    ));
    let mut lists: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
    for b in read_batches(&path).unwrap().1 {
        let (u, r, i) = (u32s(&b, "user_idx"), u32s(&b, "rank"), u32s(&b, "item_idx"));
        for row in 0..u.len() {
            lists.entry(u[row]).or_default().push((r[row], i[row]));
        }
    }
    lists
        .into_iter()
        .map(|(u, mut l)| {
            l.sort_unstable();
            (u, l.into_iter().map(|(_, i)| i).collect())
        })
        .collect()
}

/// A ranker's row (its metrics flattened in) in evaluate's metrics.json for `part`.
fn reported(t: &Test, pipeline: &str, part: &str, name: &str) -> serde_json::Value {
    let path = t.path(&format!(".recpipe/runs/{pipeline}/evaluate/metrics.json"));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let p = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part"] == part)
        .unwrap();
    p["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no ranking row `{name}` in {part}"))
        .clone()
}

#[test]
fn exported_top10_of_ease_is_what_evaluate_scored_and_beats_most_popular() {
    let p = "ml-latest-small-topn";
    let t = Test::new()
        .with_bundled_data()
        .with_shipped_pipeline(&format!("{p}.toml"));
    let run = t.run(&["run", &format!("pipelines/{p}.toml")]).ok();
    let split = t.path(&format!(".recpipe/runs/{p}/split"));
    let train = Ratings::read(split.join("train.parquet")).unwrap();
    let test = Ratings::read(split.join("test.parquet")).unwrap();
    // The protocol's 75/25 per user.
    let share = test.len() as f64 / (train.len() + test.len()) as f64;
    assert!((share - 0.25).abs() < 0.01, "test share {share}");

    let seen: HashSet<(u32, u32)> = train
        .user
        .iter()
        .copied()
        .zip(train.item.iter().copied())
        .collect();
    let mut relevant: BTreeMap<u32, HashSet<u32>> = BTreeMap::new();
    for (&u, &i) in test.user.iter().zip(&test.item) {
        if !seen.contains(&(u, i)) {
            relevant.entry(u).or_default().insert(i);
        }
    }
    let lists = exported(&t, p);
    let (mut precision, mut ndcg) = (0.0f64, 0.0f64);
    for (u, rel) in &relevant {
        let list = &lists[u];
        assert_eq!(list.len(), 10, "user {u}");
        assert!(
            list.iter().all(|&i| !seen.contains(&(*u, i))),
            "user {u} got a train item"
        );
        let dcg: f64 = list
            .iter()
            .enumerate()
            .filter(|(_, i)| rel.contains(i))
            .map(|(r, _)| 1.0 / (r as f64 + 2.0).log2())
            .sum();
        let idcg: f64 = (0..rel.len().min(10))
            .map(|r| 1.0 / (r as f64 + 2.0).log2())
            .sum();
        precision += list.iter().filter(|i| rel.contains(i)).count() as f64 / 10.0;
        ndcg += dcg / idcg;
    }
    let n = relevant.len() as f64;
    let (precision, ndcg) = (precision / n, ndcg / n);
    let ease = reported(&t, p, "test", "ease");
    let popular = reported(&t, p, "test", "most_popular");
    assert!(
        (ease["precision"].as_f64().unwrap() - precision).abs() < 1e-9,
        "evaluate {ease} vs exported lists' precision {precision}"
    );
    assert!(
        (ease["ndcg"].as_f64().unwrap() - ndcg).abs() < 1e-9,
        "{ease} vs {ndcg}"
    );
    assert_eq!(
        ease["n_users_with_relevant"].as_u64().unwrap() as usize,
        relevant.len()
    );
    // EASE on this data clears most-popular by a wide margin, and the run says so.
    let pop = popular["precision"].as_f64().unwrap();
    assert!(
        precision > 1.3 * pop,
        "ease P@10 {precision} vs most_popular {pop}"
    );
    assert!(run.stdout.contains("most_popular's"), "{}", run.stdout);
    // A ranking model has no rating metrics.
    assert!(run.stdout.contains("—"), "{}", run.stdout);
}
