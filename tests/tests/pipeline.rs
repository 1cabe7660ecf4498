//! The quick-start pipeline end to end on the bundled data: what `just pipeline` runs.

use recpipe_core::Ratings;
use recpipe_core::ratings::{Catalog, Ids};
use recpipe_tests::Test;

const QS: &str = "pipelines/quickstart.toml";

fn metric(m: &serde_json::Value, path: &[&str]) -> f64 {
    let mut v = m;
    for p in path {
        v = &v[*p];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {m:#}"))
}

fn json(t: &Test, rel: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(t.path(rel)).unwrap()).unwrap()
}

#[test]
fn quickstart_trains_evaluates_and_exports_then_reuses_everything() {
    let t = Test::new()
        .with_bundled_data()
        .with_shipped_pipeline("quickstart.toml");
    let r = t.run(&["run", QS]).ok();
    for s in ["ingest", "split", "train", "evaluate", "export"] {
        assert_eq!(r.status_of(s), "ran", "{r}");
    }
    // The run ends with the model-vs-baselines table and the report's path.
    assert!(r.stdout.contains("bias_baseline"), "{r}");
    // Models are labelled with what they are, not only their stage's name.
    assert!(r.stdout.contains("train (dot_bias k=50) "), "{r}");
    assert!(
        r.stdout
            .contains("train (dot_bias k=50) beats bias_baseline by"),
        "{r}"
    );
    // A rating model ranks below most-popular on the bundled data; the summary says so.
    assert!(
        r.stdout
            .contains("train (dot_bias k=50) ranks below most_popular: P@10 "),
        "{r}"
    );
    // The ranking model beside it beats most-popular, says by how much, and writes the
    // export's recommendations (the embeddings stay dot_bias's).
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("ease (ease) P@10 is "))
        .unwrap_or_else(|| panic!("no ease vs most_popular line\n{r}"));
    let ratio: f64 = line
        .split("P@10 is ")
        .nth(1)
        .unwrap()
        .split('×')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ratio > 1.2, "{line}");
    assert!(
        r.stdout
            .contains("recommendations from the ranking model (ease)"),
        "{r}"
    );
    let report = t.path(".recpipe/runs/quickstart/evaluate/report.md");
    assert!(
        r.stdout.contains(&format!("report: {}", report.display())),
        "{r}"
    );
    assert!(
        std::fs::read_to_string(&report)
            .unwrap()
            .contains("bias_baseline")
    );

    // The trained model beats the regularised bias baseline on the held-out ratings, and its
    // history is the one the evaluate stage plotted.
    let train = json(&t, ".recpipe/runs/quickstart/train/manifest.json");
    let rmse = metric(&train["summary"], &["valid_rmse"]);
    assert!((0.80..0.86).contains(&rmse), "valid RMSE {rmse}");
    let metrics = t.path(".recpipe/runs/quickstart/evaluate/metrics.parquet");
    let (_, batches) = recpipe_core::parquet_io::read_batches(&metrics).unwrap();
    assert!(batches.iter().map(|b| b.num_rows()).sum::<usize>() > 10);
    for f in [
        "item_embeddings.parquet",
        "user_embeddings.parquet",
        "similar_items.parquet",
        "recommendations.parquet",
        "pca.parquet",
    ] {
        let p = t.path(&format!(".recpipe/runs/quickstart/export/{f}"));
        assert!(recpipe_core::parquet_io::row_count(&p).unwrap() > 0, "{f}");
    }
    let model =
        recpipe_core::model::Model::load(&t.path(".recpipe/runs/quickstart/train")).unwrap();
    assert_eq!(model.meta.model.name(), "dot_bias");
    assert_eq!(model.meta.k, 50);

    // Warm: nothing runs, and the evaluation is still shown.
    let warm = t.run(&["run", QS]).ok();
    assert!(warm.stdout.contains("0 ran, 6 fresh"), "{warm}");
    assert!(warm.stdout.contains("bias_baseline"), "{warm}");
    assert!(warm.stdout.contains("report: "), "{warm}");

    // One train key: train and everything after it rerun, ingest and split are reused.
    let r = t.run(&["run", QS, "--set", "train.epochs=2"]).ok();
    assert_eq!(r.status_of("ingest"), "fresh", "{r}");
    assert_eq!(r.status_of("split"), "fresh", "{r}");
    assert_eq!(r.status_of("ease"), "fresh", "{r}");
    for s in ["train", "evaluate", "export"] {
        assert_eq!(r.status_of(s), "ran", "{r}");
    }
    assert!(r.stage("train").contains("epochs"), "{r}");
    let train = json(&t, ".recpipe/runs/quickstart/train/manifest.json");
    assert_eq!(train["config"]["epochs"], 2);
}

/// The tuned pipeline's shape end to end, with short training: two models on the notebooks'
/// exact split, a blend of them feeding evaluate (one comparison table) and export.
#[test]
fn best_pipeline_blends_two_models_and_compares_them() {
    let t = Test::new()
        .with_bundled_data()
        .with_shipped_pipeline("ml-latest-small-best.toml");
    let p = "pipelines/ml-latest-small-best.toml";
    let short = [
        "--set",
        "mf.epochs=2",
        "--set",
        "autorec.epochs=3",
        "--set",
        "autorec.k=32",
        "--set",
        "autorec.lr=1e-3",
    ];
    let r = t.run(&[&["run", p][..], &short[..]].concat()).ok();
    for s in ["mf", "autorec", "blend", "evaluate", "export"] {
        assert_eq!(r.status_of(s), "ran", "{r}");
    }
    for row in [
        "blend (blend k=",
        "mf (",
        "autorec (",
        ") beats bias_baseline",
    ] {
        assert!(r.stdout.contains(row), "{row}: {r}");
    }
    // A blend folds its members into one model: no epochs, no training rate.
    let folded = r
        .stdout
        .lines()
        .find(|l| l.contains("blend of 2 members: "))
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        folded.contains("mf (") && folded.contains("autorec ("),
        "{folded}"
    );
    assert!(
        !folded.contains("epoch") && !folded.contains("ratings/s"),
        "{folded}"
    );
    let run = ".recpipe/runs/ml-latest-small-best";
    let blend = recpipe_core::model::Model::load(&t.path(&format!("{run}/blend"))).unwrap();
    assert_eq!((blend.meta.model.name(), blend.meta.k), ("blend", 32 + 32));
    let split = json(&t, &format!("{run}/split/manifest.json"));
    // sklearn's train_test_split(test_size=0.1) of the published 100,836 rows holds out
    // ceil(10,083.6).
    assert_eq!(
        metric(&split["summary"], &["valid", "rows"]),
        10_084.0,
        "{split:#}"
    );
    // ... and they are NumPy's rows: Σ userId·1,000,003 + movieId over the held-out ratings,
    // computed with NumPy 2.4 (RandomState(42).permutation(100836)[:10084]).
    let cat = Catalog::read(t.path(&format!("{run}/ingest"))).unwrap();
    let valid = Ratings::read(t.path(&format!("{run}/split/valid.parquet"))).unwrap();
    let (Ids::Int(users), Ids::Int(items)) = (&cat.user_ids, &cat.item_ids) else {
        panic!("MovieLens ids are integers");
    };
    let fingerprint: i64 = valid
        .user
        .iter()
        .zip(&valid.item)
        .map(|(&u, &i)| users[u as usize] * 1_000_003 + items[i as usize])
        .sum();
    assert_eq!(fingerprint, 3_255_167_524_479);
    let rmse = |stage: &str| {
        let m = json(&t, &format!("{run}/{stage}/manifest.json"));
        metric(&m["summary"], &["valid_rmse"])
    };
    let (b, mf, ar) = (rmse("blend"), rmse("mf"), rmse("autorec"));
    assert!(b < mf.max(ar), "blend {b} vs members {mf}, {ar}");
    // Retuning one member reruns it and the blend, not the other member.
    let r = t
        .run(&[&["run", p][..], &short[..], &["--set", "mf.epochs=3"][..]].concat())
        .ok();
    assert_eq!(r.status_of("autorec"), "fresh", "{r}");
    assert_eq!(r.status_of("mf"), "ran", "{r}");
    assert_eq!(r.status_of("blend"), "ran", "{r}");
}
