//! `recpipe recommend`, `similar` and `predict` on a quick-start-like pipeline over the
//! bundled data, checked against the export's tables and the train checkpoint read here.

use arrow_array::{Array, Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use recpipe_core::Ratings;
use recpipe_core::model::Checkpoint;
use recpipe_core::parquet_io::read_batches;
use recpipe_core::ratings::Catalog;
use recpipe_tests::{Test, bundled_pipeline};
use std::collections::HashSet;

const P: &str = "pipelines/q.toml";
/// The split's keys and the stages after it, over the bundled ingest → split.
const SPLIT_KEYS_TRAIN_EXPORT: &str = r#"valid_fraction = 0.1
seed = 42

[stages.train]
kind = "train"
inputs = ["split"]
model = "dot_bias"
k = 16
epochs = 2

[stages.export]
kind = "export"
inputs = ["train"]
"#;

fn pipeline() -> String {
    bundled_pipeline("q", SPLIT_KEYS_TRAIN_EXPORT)
}

fn project() -> Test {
    Test::new().with_bundled_data().file(P, &pipeline())
}

fn built() -> Test {
    let t = project();
    t.run(&["run", P]).ok();
    t
}

fn table(t: &Test, rel: &str) -> Vec<RecordBatch> {
    read_batches(t.path(&format!(".recpipe/runs/q/{rel}")))
        .unwrap()
        .1
}

/// The rows of a table tab-separated in `names` order, ids and numbers as text.
fn rows(batches: &[RecordBatch], names: &[&str]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                names
                    .iter()
                    .map(|n| cell(b.column_by_name(n).unwrap(), r))
                    .collect(),
            );
        }
    }
    out
}

fn cell(c: &dyn Array, r: usize) -> String {
    let any = c.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        a.value(r).to_string()
    } else if let Some(a) = any.downcast_ref::<UInt32Array>() {
        a.value(r).to_string()
    } else if let Some(a) = any.downcast_ref::<Float32Array>() {
        a.value(r).to_string()
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        a.value(r).to_string()
    } else {
        panic!("unexpected column type {:?}", c.data_type())
    }
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn recommend_lists_unseen_items_in_score_order_as_the_export_stored_them() {
    let t = built();
    let recs = rows(
        &table(&t, "export/recommendations.parquet"),
        &[
            "user_id", "rank", "item_id", "score", "user_idx", "item_idx",
        ],
    );
    let train = Ratings::read(t.path(".recpipe/runs/q/split/train.parquet")).unwrap();
    for user in ["1", "414", "610"] {
        let r = t
            .run(&["recommend", P, "--user", user, "-n", "7", "--json"])
            .ok();
        let got = json_lines(&r.stdout);
        assert_eq!(got.len(), 7, "{r}");
        let mut want: Vec<&Vec<String>> = recs.iter().filter(|row| row[0] == user).collect();
        want.sort_by_key(|row| row[1].parse::<u32>().unwrap());
        let uidx: u32 = want[0][4].parse().unwrap();
        let seen: HashSet<u32> = (0..train.len())
            .filter(|&i| train.user[i] == uidx)
            .map(|i| train.item[i])
            .collect();
        assert!(!seen.is_empty(), "user {user} has train rows");
        let mut items = HashSet::new();
        for (k, g) in got.iter().enumerate() {
            assert_eq!(g["rank"], k as u64 + 1, "{r}");
            assert_eq!(g["item_id"].to_string(), want[k][2], "{r}");
            assert_eq!(
                g["score"].as_f64().unwrap() as f32,
                want[k][3].parse::<f32>().unwrap()
            );
            let iidx: u32 = want[k][5].parse().unwrap();
            assert!(
                !seen.contains(&iidx),
                "user {user} rated item {iidx} in train"
            );
            assert!(items.insert(g["item_id"].to_string()), "{r}");
            if k > 0 {
                assert!(g["score"].as_f64() <= got[k - 1]["score"].as_f64(), "{r}");
            }
        }
    }
    // The table: a header, then rank, item id, score and title, aligned.
    let r = t.run(&["recommend", P, "--user", "1", "-n", "3"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{r}");
    assert!(lines[0].starts_with("rank  item_id  score  title"), "{r}");
    let titled = rows(
        &table(&t, "export/recommendations.parquet"),
        &["user_id", "rank", "item_id", "title"],
    );
    let first = titled
        .iter()
        .find(|row| row[0] == "1" && row[1] == "1")
        .unwrap();
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cells[..2], ["1", first[2].as_str()], "{r}");
    assert!(lines[1].ends_with(&format!("  {}", first[3])), "{r}");
    assert_eq!(lines[0].find("title"), lines[1].find(&first[3]), "{r}");
    // More than the export kept: the stored ones, and a warning saying how to get more.
    let r = t.run(&["recommend", P, "--user", "1", "-n", "50"]).ok();
    assert_eq!(r.stdout.lines().count(), 11, "{r}");
    assert!(r.stderr.contains("export.recommendations_n=50"), "{r}");
}

#[test]
fn similar_by_id_and_by_title_agree_with_similar_items() {
    let t = built();
    let by_id = t.run(&["similar", P, "--item", "1", "--json"]).ok();
    let by_title = t.run(&["similar", P, "--item", "toy story", "--json"]).ok();
    assert_eq!(by_id.stdout, by_title.stdout);
    let got = json_lines(&by_id.stdout);
    assert_eq!(got.len(), 10, "{by_id}");
    let mut want: Vec<Vec<String>> = rows(
        &table(&t, "export/similar_items.parquet"),
        &["item_id", "rank", "neighbor_id", "score", "neighbor_title"],
    )
    .into_iter()
    .filter(|row| row[0] == "1")
    .collect();
    want.sort_by_key(|row| row[1].parse::<u32>().unwrap());
    for (k, g) in got.iter().enumerate() {
        assert_eq!(g["neighbor_id"].to_string(), want[k][2]);
        assert_eq!(g["neighbor_title"], want[k][4].as_str());
        assert_eq!(
            g["score"].as_f64().unwrap() as f32,
            want[k][3].parse::<f32>().unwrap()
        );
    }
    // The table names the item it resolved the title to.
    let r = t
        .run(&["similar", P, "--item", "TOY STORY (1995)", "-n", "2"])
        .ok();
    assert!(r.stdout.starts_with("item 1: Toy Story (1995) ("), "{r}");
    assert_eq!(r.stdout.lines().count(), 4, "{r}");
    assert!(r.stdout.contains(&want[1][4]), "{r}");
}

#[test]
fn predict_is_the_checkpoints_score_and_bad_ids_are_named() {
    let t = built();
    let ckpt = Checkpoint::load(&t.path(".recpipe/runs/q/train")).unwrap();
    let catalog = Catalog::read(t.path(".recpipe/runs/q/ingest")).unwrap();
    let (users, items) = (catalog.user_ids.index(), catalog.item_ids.index());
    let tensor = |n: &str| &ckpt.get(n).unwrap_or_else(|| panic!("no {n}")).data;
    let k = ckpt.meta.k;
    let expected = |user: &str, item: &str| -> f32 {
        let (u, i) = (users[user] as usize, items[item] as usize);
        let (uf, itf) = (tensor("user_factors"), tensor("item_factors"));
        let dot: f32 = (0..k).map(|d| uf[u * k + d] * itf[i * k + d]).sum();
        let raw = dot + tensor("user_bias")[u] + tensor("item_bias")[i] + tensor("global_bias")[0];
        match ckpt.meta.y_range {
            Some([lo, hi]) => lo + (hi - lo) / (1.0 + (-raw).exp()),
            None => raw,
        }
    };
    let r = t
        .run(&[
            "predict",
            P,
            "--user",
            "15",
            "--item",
            "1",
            "--item",
            "Heat (1995)",
            "--json",
        ])
        .ok();
    let got = json_lines(&r.stdout);
    assert_eq!(got.len(), 2, "{r}");
    for (g, item) in got.iter().zip(["1", "6"]) {
        assert_eq!(g["item_id"].to_string(), item, "{r}");
        let p = g["predicted"].as_f64().unwrap() as f32;
        assert!(
            (p - expected("15", item)).abs() < 1e-4,
            "{p} vs {}",
            expected("15", item)
        );
    }
    let r = t.run(&["predict", P, "--user", "15", "--item", "1"]).ok();
    let want = format!("{:.4}", expected("15", "1"));
    assert!(
        r.stdout.lines().nth(1).unwrap().contains(&want),
        "{want}\n{r}"
    );

    let r = t
        .run(&["predict", P, "--user", "99999", "--item", "1"])
        .fails();
    assert!(
        r.stderr.contains("unknown user `99999`") && r.stderr.contains("ids 1..610"),
        "{r}"
    );
    let r = t
        .run(&["predict", P, "--user", "1", "--item", "424242"])
        .fails();
    assert!(
        r.stderr.contains("no item has the id or title `424242`"),
        "{r}"
    );
    let r = t.run(&["recommend", P, "--user", "0"]).fails();
    assert!(r.stderr.contains("unknown user `0`"), "{r}");
    // Two movies are called "Emma (1996)": both ids are listed, nothing is guessed.
    let r = t.run(&["similar", P, "--item", "emma (1996)"]).fails();
    assert!(r.stderr.contains("2 titles are `emma (1996)`"), "{r}");
    assert!(
        r.stderr.contains("  838  Emma (1996)") && r.stderr.contains("26958  Emma (1996)"),
        "{r}"
    );
    // An item rated once has no neighbour list; the error says which setting keeps it.
    let r = t.run(&["similar", P, "--item", "193609"]).fails();
    assert!(
        r.stderr
            .contains("it has 1 rating, and similar_items lists items with at least 10"),
        "{r}"
    );
    assert!(
        r.stderr.contains("--set export.similar_min_ratings=0"),
        "{r}"
    );
    let r = t.run(&["similar", P, "--item", "story"]).fails();
    assert!(
        r.stderr.contains("titles contain `story`") && r.stderr.contains("Toy Story (1995)"),
        "{r}"
    );
    assert_eq!(r.stdout, "", "{r}");
}

#[test]
fn queries_without_artifacts_say_which_command_builds_them() {
    let t = project();
    for args in [
        vec!["recommend", P, "--user", "1"],
        vec!["similar", P, "--item", "1"],
        vec!["predict", P, "--user", "1", "--item", "1"],
    ] {
        let r = t.run(&args).fails();
        assert_eq!(r.code, Some(1), "{r}");
        assert!(r.stderr.contains("never run"), "{r}");
        assert!(
            r.stderr.contains(&format!("run `recpipe run {P}` first")),
            "{r}"
        );
        assert!(!r.stderr.contains("panicked"), "{r}");
    }
    // Two export stages: the query asks which one.
    let two = format!(
        "{}\n[stages.export_b]\nkind = \"export\"\ninputs = [\"train\"]\n",
        pipeline()
    );
    t.write("pipelines/two.toml", &two);
    let r = t
        .run(&["similar", "pipelines/two.toml", "--item", "1"])
        .fails();
    assert!(
        r.stderr.contains(
            "has several export stages (`export`, `export_b`); choose one with --stage NAME"
        ),
        "{r}"
    );
    t.run(&["run", P]).ok();
    // Another configuration has not been built: the command to build it carries the --set.
    let r = t
        .run(&["recommend", P, "--user", "1", "--set", "train.k=8"])
        .fails();
    assert!(
        r.stderr
            .contains(&format!("run `recpipe run {P} --set train.k=8` first")),
        "{r}"
    );
    // A pipeline without export, and --stage naming a stage of another kind.
    let r = t
        .run(&["recommend", P, "--user", "1", "--stage", "train"])
        .fails();
    assert!(
        r.stderr
            .contains("stage `train` is a train stage, not export"),
        "{r}"
    );
    // A closed stdout ends the output quietly.
    let mut child = t
        .cmd(&["recommend", P, "--user", "1", "-n", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
