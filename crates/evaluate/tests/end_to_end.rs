//! The stage on a hand-built ingest / split / train layout: every output file, the figures
//! in them, several models in one table, and the errors a user can cause.

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array};
use recpipe_core::model::{Checkpoint, ModelKind, ModelMeta, Tensor, tensor};
use recpipe_core::parquet_io::{read_batches, write_batches};
use recpipe_core::testutil::{self, TestCatalog, artifact};
use recpipe_core::{Inputs, OutDir, Progress, Ratings, Stage, schema};
use recpipe_evaluate::{Config, EvaluateError, EvaluateStage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const N_USERS: u32 = 30;
const N_ITEMS: u32 = 40;
const K: usize = 4;

/// Deterministic values in [-1, 1).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn checkpoint(seed: u64, perturb: f32) -> Checkpoint {
    let base = |s: u64, n: usize| -> Vec<f32> {
        noise(s, n)
            .iter()
            .zip(noise(s + 1000 + seed, n))
            .map(|(a, b)| a + perturb * b)
            .collect()
    };
    let meta = ModelMeta {
        global_mean: 3.0,
        best_epoch: Some(3),
        ..testutil::meta(ModelKind::DotBias, N_USERS, N_ITEMS, K)
    };
    // Tensor seeds 1, 2, 3, 4 in the filler's call order.
    let mut s = 0;
    testutil::factorization(meta, |_, n| {
        s += 1;
        base(s, n)
    })
}

fn write_history(dir: &Path) {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(vec![1, 2, 3])),
        Arc::new(Float64Array::from(vec![1.5, 1.0, 0.8])),
        Arc::new(Float64Array::from(vec![Some(1.2), None, Some(0.9)])),
        Arc::new(Float64Array::from(vec![Some(0.9), None, Some(0.7)])),
        Arc::new(Float64Array::from(vec![None::<f64>; 3])),
        Arc::new(Float64Array::from(vec![0.1, 0.1, 0.1])),
        Arc::new(Float64Array::from(vec![1e6, 1e6, 1e6])),
        Arc::new(Float64Array::from(vec![0.01, 0.01, 0.01])),
        Arc::new(arrow_array::StringArray::from(vec!["cpu"; 3])),
    ];
    let b = RecordBatch::try_new(Arc::new(schema::history()), cols).unwrap();
    write_batches(dir.join("history.parquet"), &[b]).unwrap();
}

fn write_catalog(dir: &Path) {
    TestCatalog {
        mean_rating: 3.0,
        ..TestCatalog::new((N_USERS as usize, 100), (N_ITEMS as usize, 5000), 1999)
    }
    .write(dir);
}

struct Layout {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    inputs: Inputs,
}

/// Ratings are exactly the `perfect` model's predictions on ~45% of the pairs; 80% of them
/// to train, 20% to valid, and an empty test part.
fn layout() -> Layout {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let (ingest, split) = (root.join("ingest"), root.join("split"));
    let (perfect, noisy) = (root.join("perfect"), root.join("noisy"));
    for d in [&ingest, &split, &perfect, &noisy] {
        std::fs::create_dir_all(d).unwrap();
    }
    let truth = checkpoint(0, 0.0);
    truth.save(&perfect).unwrap();
    checkpoint(7, 0.3).save(&noisy).unwrap();
    write_history(&perfect);
    write_history(&noisy);

    let model = recpipe_core::model::Model::load(&perfect).unwrap();
    let pick = noise(99, (N_USERS * N_ITEMS) as usize);
    let (mut users, mut items) = (Vec::new(), Vec::new());
    for u in 0..N_USERS {
        for i in 0..N_ITEMS {
            if pick[(u * N_ITEMS + i) as usize] < -0.1 {
                users.push(u);
                items.push(i);
            }
        }
    }
    let rating = model.predict(&users, &items);
    let all = Ratings {
        timestamp: Some((0..users.len() as i64).collect()),
        user: users,
        item: items,
        rating,
        n_users: N_USERS,
        n_items: N_ITEMS,
    };
    all.write(ingest.join("ratings.parquet")).unwrap();
    write_catalog(&ingest);
    let (tr, va): (Vec<usize>, Vec<usize>) = (0..all.len()).partition(|i| i % 5 != 0);
    all.select(&tr).write(split.join("train.parquet")).unwrap();
    all.select(&va).write(split.join("valid.parquet")).unwrap();
    all.select(&[]).write(split.join("test.parquet")).unwrap();

    let inputs = Inputs::new(vec![
        artifact("perfect", "train", &perfect),
        artifact("noisy", "train", &noisy),
        artifact("split", "split", &split),
        artifact("ingest", "ingest", &ingest),
    ]);
    Layout {
        _tmp: tmp,
        root,
        inputs,
    }
}

fn metric(batch: &RecordBatch, model: &str, metric: &str) -> (Option<u32>, f64) {
    let s = |c: &str| {
        batch
            .column_by_name(c)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone()
    };
    let (m, n, sp) = (s("model"), s("metric"), s("split"));
    let k = batch.column_by_name("k").unwrap();
    let k = k.as_any().downcast_ref::<UInt32Array>().unwrap();
    let v = batch.column_by_name("value").unwrap();
    let v = v.as_any().downcast_ref::<Float64Array>().unwrap();
    let row = (0..batch.num_rows())
        .find(|&r| m.value(r) == model && n.value(r) == metric)
        .unwrap_or_else(|| panic!("no {model}/{metric} in metrics.parquet"));
    assert_eq!(sp.value(row), "valid");
    ((!k.is_null(row)).then(|| k.value(row)), v.value(row))
}

#[test]
fn stage_writes_every_output_and_compares_models() {
    let l = layout();
    let out = OutDir::new(l.root.join("out")).unwrap();
    let res = EvaluateStage::run(&Config::default(), &l.inputs, &out, &Progress::hidden()).unwrap();

    assert_eq!(
        testutil::file_names(out.dir()),
        [
            "crosstab.parquet",
            "error_by_activity_valid.svg",
            "learning_curve_noisy.svg",
            "learning_curve_perfect.svg",
            "metrics.json",
            "metrics.parquet",
            "rating_distribution_noisy_valid.svg",
            "rating_distribution_perfect_valid.svg",
            "report.md",
        ],
        "no temporary files left behind, and the empty test part is skipped"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path("metrics.json")).unwrap()).unwrap();
    let parts = json["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    let valid = &parts[0];
    assert_eq!(valid["part"], "valid");
    let rating = valid["rating"].as_array().unwrap();
    let names: Vec<&str> = rating.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "perfect",
            "noisy",
            "global_mean",
            "user_mean",
            "item_mean",
            "bias_baseline"
        ]
    );
    let rmse = |i: usize| rating[i]["rmse"].as_f64().unwrap();
    assert!(
        rmse(0) < 1e-5,
        "the ratings are the perfect model's predictions"
    );
    assert!(rmse(1) > 0.05, "the noisy model is not perfect");
    for (b, name) in names.iter().enumerate().skip(2) {
        assert!(rmse(0) < rmse(b), "{name}");
    }
    let gains: Vec<f64> = valid["improvements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["model"] == "perfect")
        .map(|i| i["rmse_gain_pct"].as_f64().unwrap())
        .collect();
    assert_eq!(gains.len(), 4);
    assert!(gains.iter().all(|&g| g > 99.9), "{gains:?}");
    let ranking = valid["ranking"].as_array().unwrap();
    let rnames: Vec<&str> = ranking
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(rnames, ["perfect", "noisy", "most_popular"]);
    assert_eq!(ranking[0]["k"], 10);
    let valid_users = valid["n_users"].as_u64().unwrap();
    assert_eq!(ranking[0]["n_users"].as_u64().unwrap(), valid_users);
    assert_eq!(valid["activity"].as_array().unwrap().len(), 6);

    let (_, batches) = read_batches(out.path("metrics.parquet")).unwrap();
    let b = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    let (k, v) = metric(&b, "perfect", "rmse");
    assert_eq!(k, None);
    assert!((v - rmse(0)).abs() < 1e-12);
    let (k, v) = metric(&b, "noisy", "ndcg");
    assert_eq!(k, Some(10));
    assert!((0.0..=1.0).contains(&v));
    let (_, n) = metric(&b, "bias_baseline", "n_ratings_activity_0_19");
    assert!(
        n > 0.0,
        "every fixture user has fewer than 20 train ratings"
    );

    let (_, ct) = read_batches(out.path("crosstab.parquet")).unwrap();
    assert_eq!(ct[0].num_rows(), 15);
    assert_eq!(ct[0].num_columns(), 2 + 15);
    assert!(ct[0].schema().field(2).name().starts_with("Movie "));

    let report = std::fs::read_to_string(out.path("report.md")).unwrap();
    for needle in [
        "| **perfect (",
        "| **noisy (",
        "### Model vs baselines",
        "### Ranking @10",
        "### RMSE by user activity",
        "![learning_curve_perfect.svg](learning_curve_perfect.svg)",
        "The most active users × the most rated movies",
        "Movie ",
    ] {
        assert!(
            report.contains(needle),
            "report lacks {needle:?}:\n{report}"
        );
    }
    let svg = std::fs::read_to_string(out.path("learning_curve_perfect.svg")).unwrap();
    assert!(svg.starts_with("<svg"));

    assert!(
        res.lines
            .iter()
            .any(|l| l.contains("perfect") && l.contains("beats bias_baseline"))
    );
    assert!(
        res.lines
            .iter()
            .any(|l| l.trim_start().starts_with("most_popular"))
    );
    assert_eq!(res.lines.last().unwrap(), "report: report.md");
    assert!(
        res.summary["parts"]["valid"]["perfect"]["rmse"]
            .as_f64()
            .unwrap()
            < 1e-5
    );
}

#[test]
fn sampled_ranking_users_and_no_extras() {
    let l = layout();
    let out = OutDir::new(l.root.join("out")).unwrap();
    let cfg = Config {
        ranking_users: 5,
        baselines: false,
        plots: false,
        crosstab_size: 0,
        ..Config::default()
    };
    EvaluateStage::run(&cfg, &l.inputs, &out, &Progress::hidden()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path("metrics.json")).unwrap()).unwrap();
    let valid = &json["parts"][0];
    assert_eq!(valid["rating"].as_array().unwrap().len(), 2);
    assert_eq!(valid["ranking"][0]["n_users"], 5);
    assert!(!out.path("crosstab.parquet").exists());
    assert!(!out.path("error_by_activity_valid.svg").exists());
}

#[test]
fn user_errors_say_what_to_do() {
    let l = layout();
    let run = |inputs: &Inputs, cfg: &Config| {
        let out = OutDir::new(l.root.join("out-err")).unwrap();
        EvaluateStage::run(cfg, inputs, &out, &Progress::hidden()).unwrap_err()
    };
    let split_only = Inputs::new(
        l.inputs
            .artifacts
            .iter()
            .filter(|a| a.kind != "train")
            .cloned()
            .collect(),
    );
    let e = run(&split_only, &Config::default());
    assert!(matches!(e, EvaluateError::NoModel), "{e}");
    assert!(e.to_string().contains("inputs"));

    let test_only = Config {
        parts: vec!["test".into()],
        ..Config::default()
    };
    let e = run(&l.inputs, &test_only).to_string();
    assert!(
        e.contains("nothing to evaluate") && e.contains("valid_fraction"),
        "{e}"
    );

    let small = l.root.join("small");
    let mut ckpt = checkpoint(0, 0.0);
    ckpt.meta.n_items = 10;
    ckpt.tensors.insert(
        tensor::ITEM_FACTORS.into(),
        Tensor::new(vec![10, K], vec![0.1; 10 * K]),
    );
    ckpt.tensors.insert(
        tensor::ITEM_BIAS.into(),
        Tensor::new(vec![10], vec![0.0; 10]),
    );
    ckpt.save(&small).unwrap();
    let mut inputs = l.inputs.clone();
    inputs.artifacts[1] = artifact("small", "train", &small);
    let e = run(&inputs, &Config::default()).to_string();
    assert!(e.contains("`small`") && e.contains("retrain"), "{e}");

    let mut inputs = l.inputs.clone();
    inputs.artifacts[0].stage = "global_mean".into();
    let e = run(&inputs, &Config::default()).to_string();
    assert!(e.contains("rename"), "{e}");

    let e = run(
        &l.inputs,
        &Config {
            k: 0,
            ..Config::default()
        },
    )
    .to_string();
    assert!(e.contains("`k`"), "{e}");
}

#[test]
fn classes_give_accuracy_and_missing_history_gives_no_curve() {
    let l = layout();
    let classes_dir = l.root.join("classes");
    let mut ckpt = checkpoint(0, 0.0);
    ckpt.meta.classes = Some((1..=10).map(|c| c as f32 * 0.5).collect());
    ckpt.save(&classes_dir).unwrap();
    let mut inputs = l.inputs.clone();
    inputs.artifacts[0] = artifact("clf", "train", &classes_dir);
    let out = OutDir::new(l.root.join("out")).unwrap();
    EvaluateStage::run(&Config::default(), &inputs, &out, &Progress::hidden()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path("metrics.json")).unwrap()).unwrap();
    let rating = &json["parts"][0]["rating"];
    // Predictions equal the ratings, so both round to the same half star every time.
    assert_eq!(rating[0]["name"], "clf");
    assert_eq!(rating[0]["accuracy"], 1.0);
    assert!(rating[1]["accuracy"].is_null(), "no classes, no accuracy");
    let report = std::fs::read_to_string(out.path("report.md")).unwrap();
    assert!(report.contains("| R² | accuracy |"), "{report}");
    assert!(!out.path("learning_curve_clf.svg").exists());
    assert!(out.path("learning_curve_noisy.svg").exists());
}
