mod common;

use common::{Planted, bundled, planted, rmse};
use recpipe_core::model::Model;
use recpipe_core::{Inputs, OutDir, Progress, Ratings, Stage};
use recpipe_train::{
    Config, ModelKind, OptimizerKind, TrainError, TrainStage, YRange, train_model,
};

fn quiet() -> Progress {
    Progress::hidden()
}

#[test]
fn planted_low_rank_data_is_recovered() {
    let p = planted(300, 200, 4, 30_000, 0.1);
    let cfg = Config {
        k: Some(8),
        epochs: 12,
        lr: 1e-2,
        weight_decay: 0.0,
        batch_size: 128,
        y_range: YRange::None,
        ..Config::default()
    };
    let res = train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap();
    let got = res.best.unwrap().rmse;
    let baseline = rmse(&p.valid_bias_only, &p.valid.rating);
    assert!(
        got < 0.5 * baseline,
        "valid RMSE {got:.4} is not well below the bias-only optimum {baseline:.4}"
    );
    // the history decreases overall
    let h = &res.history.epochs;
    assert!(h.last().unwrap().train_loss < h[0].train_loss);
}

/// I-AutoRec learns planted structure (well below the bias-only optimum), and its checkpoint —
/// saved as a factorization — scores the same in core, for pairs and for whole users.
#[test]
fn autorec_recovers_planted_data_and_round_trips_through_core() {
    let p = planted(300, 200, 4, 30_000, 0.1);
    let baseline = rmse(&p.valid_bias_only, &p.valid.rating);
    for y_range in ["\"none\"", "\"auto\""] {
        let cfg: Config = toml::from_str(&format!(
            "model = \"autorec\"\nk = 32\nepochs = 40\nlr = 3e-3\nweight_decay = 1e-3\n\
             batch_size = 16\ny_range = {y_range}"
        ))
        .unwrap();
        let res = train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap();
        let got = res.best.unwrap().rmse;
        assert!(
            got < 0.6 * baseline,
            "{y_range}: valid RMSE {got:.4} is not well below the bias-only optimum {baseline:.4}"
        );
        let dir = tempfile::tempdir().unwrap();
        res.save(dir.path()).unwrap();
        let m = Model::load(dir.path()).unwrap();
        assert_eq!((m.meta.model, m.meta.k), (ModelKind::Autorec, 32));
        assert!(m.meta.model.is_factorization());
        let pred = m.predict(&p.valid.user, &p.valid.item);
        assert!((rmse(&pred, &p.valid.rating) - got).abs() < 1e-5);
        let all = m.score_users(&[3]);
        assert!((all[[0, 11]] - m.predict(&[3], &[11])[0]).abs() < 1e-5);
    }
}

fn split_dir(train: &Ratings, valid: &Ratings) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    train.write(dir.path().join("train.parquet")).unwrap();
    valid.write(dir.path().join("valid.parquet")).unwrap();
    Ratings {
        n_users: train.n_users,
        n_items: train.n_items,
        timestamp: Some(vec![]),
        ..Default::default()
    }
    .write(dir.path().join("test.parquet"))
    .unwrap();
    dir
}

#[test]
fn stage_writes_a_checkpoint_that_core_loads_to_the_same_predictions() {
    let p = planted(120, 80, 3, 6_000, 0.2);
    let split = split_dir(&p.train, &p.valid);
    let out = tempfile::tempdir().unwrap();
    let cfg: Config = toml::from_str("k = 6\nepochs = 3\nthreads = 2").unwrap();
    let outputs = TrainStage::run(
        &cfg,
        &Inputs::single("split", split.path()),
        &OutDir::new(out.path()).unwrap(),
        &quiet(),
    )
    .unwrap();
    let model = Model::load(out.path()).unwrap();
    assert_eq!(model.meta.model, ModelKind::DotBias);
    assert_eq!(
        (model.meta.n_users, model.meta.n_items, model.meta.k),
        (120, 80, 6)
    );
    let pred = model.predict(&p.valid.user, &p.valid.item);
    let best = outputs.summary["valid_rmse"].as_f64().unwrap();
    assert!((rmse(&pred, &p.valid.rating) - best).abs() < 1e-5);
    let hist = recpipe_core::parquet_io::row_count(out.path().join("history.parquet")).unwrap();
    assert_eq!(hist, 3);
    assert!(outputs.summary["ratings_per_s"].as_f64().unwrap() > 0.0);
    // the saved weights are the best epoch's
    let best_epoch = outputs.summary["best_epoch"].as_u64().unwrap();
    assert_eq!(model.meta.best_epoch, Some(best_epoch as u32));
}

#[test]
fn divergence_is_reported_with_its_epoch_and_no_checkpoint_is_written() {
    let p = planted(50, 40, 2, 2_000, 0.1);
    let split = split_dir(&p.train, &p.valid);
    let out = tempfile::tempdir().unwrap();
    let cfg = Config {
        optimizer: OptimizerKind::Sgd,
        lr: 1e4,
        y_range: YRange::None,
        ..Config::default()
    };
    let err = TrainStage::run(
        &cfg,
        &Inputs::single("split", split.path()),
        &OutDir::new(out.path()).unwrap(),
        &quiet(),
    )
    .unwrap_err();
    assert!(
        matches!(err, TrainError::Diverged { epoch: 1, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("epoch 1") && msg.contains("lower `lr`"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn same_seed_gives_the_same_model_for_any_thread_count() {
    let p = planted(100, 70, 3, 5_000, 0.2);
    for model in [ModelKind::DotBias, ModelKind::Autorec] {
        let run = |threads: usize, seed: u64| {
            let cfg = Config {
                model,
                epochs: 2,
                threads,
                seed,
                k: Some(5),
                batch_size: if model == ModelKind::Autorec { 8 } else { 64 },
                ..Config::default()
            };
            train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap()
        };
        let a = run(2, 1);
        let b = run(1, 1);
        assert_eq!(a.checkpoint.tensors, b.checkpoint.tensors, "{model:?}");
        assert_eq!(a.best.unwrap().rmse, b.best.unwrap().rmse);
        let c = run(2, 2);
        assert_ne!(a.checkpoint.tensors, c.checkpoint.tensors, "{model:?}");
    }
}

#[test]
fn every_optimizer_and_schedule_learns() {
    let p = planted(100, 80, 3, 8_000, 0.1);
    let base = rmse(&p.valid_bias_only, &p.valid.rating);
    for (opt, lr, sched) in [
        ("adam", 1e-2, "constant"),
        ("adamw", 1e-2, "one_cycle"),
        ("sparse_adam", 1e-2, "step"),
        ("sgd", 0.05, "constant"),
    ] {
        let cfg: Config = toml::from_str(&format!(
            "optimizer = \"{opt}\"\nlr = {lr}\nschedule = \"{sched}\"\nk = 6\nepochs = 8\n\
             weight_decay = 0.0\ny_range = \"none\"\nbatch_size = 32"
        ))
        .unwrap();
        let res = train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap();
        let got = res.best.unwrap().rmse;
        assert!(
            got < 0.8 * base,
            "{opt}/{sched}: {got:.4} vs bias-only {base:.4}"
        );
    }
}

#[test]
fn cuda_is_refused_clearly_and_dot_has_no_biases() {
    let p = planted(30, 20, 2, 500, 0.1);
    let cfg: Config = toml::from_str("device = \"cuda\"").unwrap();
    let err = train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap_err();
    assert!(err.to_string().contains("device = \"cpu\""), "{err}");
    let cfg = Config {
        model: ModelKind::Dot,
        epochs: 1,
        ..Config::default()
    };
    let res = train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap();
    assert!(!res.checkpoint.tensors.contains_key("user_bias"));
    assert!(res.checkpoint.tensors.contains_key("item_factors"));
}

/// The reference setting. 5 epochs take ~1 s even in the dev profile.
#[test]
fn reference_setting_on_the_bundled_data() {
    let (train, valid) = bundled();
    let cfg = Config {
        model: ModelKind::DotBias,
        k: Some(50),
        epochs: 5,
        batch_size: 64,
        lr: 1e-3,
        weight_decay: 1e-4,
        y_range: YRange::Range(0.0, 5.5),
        ..Config::default()
    };
    let res = train_model(&cfg, &train, &valid, &quiet()).unwrap();
    let curve: Vec<f64> = res
        .history
        .epochs
        .iter()
        .map(|e| e.valid_rmse.unwrap())
        .collect();
    let secs: Vec<f64> = res.history.epochs.iter().map(|e| e.seconds).collect();
    eprintln!("dot_bias valid RMSE by epoch: {curve:?}, seconds: {secs:?}");
    let best = res.best.unwrap().rmse;
    assert!(
        best <= 0.845,
        "valid RMSE {best:.4} after 5 epochs: {curve:?}"
    );
}

fn half_stars(r: &Ratings) -> Ratings {
    let mut r = r.clone();
    r.rating
        .iter_mut()
        .for_each(|x| *x = ((*x * 2.0).round() / 2.0).clamp(0.5, 5.0));
    r
}

#[test]
fn neural_models_learn_and_round_trip_through_core() {
    let p = planted(150, 100, 3, 12_000, 0.1);
    let (train, valid) = (half_stars(&p.train), half_stars(&p.valid));
    let mean = train.mean_rating() as f32;
    let mean_rmse = rmse(&vec![mean; valid.len()], &valid.rating);
    let mut g = common::Gen::new(3);
    let feats: Vec<f32> = (0..100 * 4).map(|_| g.unit() as f32).collect();
    for (model, extra) in [
        ("mlp", "join = \"product\"\nbatch_norm = true"),
        ("mlp", ""),
        ("hybrid", ""),
        ("hybrid", "item_features_hidden = []"),
        ("classifier", "hidden = [32, 32]"),
    ] {
        let cfg: Config = toml::from_str(&format!(
            "model = \"{model}\"\nk = 8\nepochs = 4\nlr = 5e-3\nbatch_size = 128\n{extra}"
        ))
        .unwrap();
        let f = (model == "hybrid").then(|| (4, feats.clone()));
        let res = recpipe_train::train_model_with(&cfg, &train, &valid, f, &quiet()).unwrap();
        let best = res.best.unwrap();
        assert!(
            best.rmse < 0.9 * mean_rmse,
            "{model} {extra}: RMSE {:.4} vs predicting the mean {mean_rmse:.4}",
            best.rmse
        );
        assert_eq!(best.accuracy.is_some(), model == "classifier");
        let dir = tempfile::tempdir().unwrap();
        res.save(dir.path()).unwrap();
        let m = Model::load(dir.path()).unwrap();
        let pred = m.predict(&valid.user, &valid.item);
        let got = rmse(&pred, &valid.rating);
        assert!(
            (got - best.rmse).abs() < 1e-4,
            "{model}: core {got} vs trainer {}",
            best.rmse
        );
        let all = m.score_users(&[0, 5]);
        assert_eq!(all.shape(), &[2, 100]);
        assert!((all[[1, 7]] - m.predict(&[5], &[7])[0]).abs() < 1e-5);
    }
}

/// The notebooks' mlp on the bundled data (k 50, concat, dropout 0.05, hidden [10],
/// output dropout 0.5, sigmoid y_range).
#[test]
fn mlp_on_the_bundled_data() {
    let (train, valid) = bundled();
    let cfg: Config = toml::from_str("model = \"mlp\"\nepochs = 3\ny_range = [0.0, 5.5]").unwrap();
    let res = train_model(&cfg, &train, &valid, &quiet()).unwrap();
    let curve: Vec<(f64, f64)> = res
        .history
        .epochs
        .iter()
        .map(|e| (e.valid_rmse.unwrap(), e.ratings_per_s))
        .collect();
    eprintln!("mlp (valid RMSE, ratings/s) by epoch: {curve:?}");
    assert!(res.best.unwrap().rmse < 0.93, "{curve:?}");
}

#[test]
fn predict_by_original_ids_with_and_without_fallback() {
    use recpipe_core::ratings::{Catalog, Ids};
    use recpipe_train::{Fallback, predict_ids};
    let p = planted(30, 20, 2, 2_000, 0.1);
    let cfg = Config {
        epochs: 1,
        k: Some(4),
        ..Config::default()
    };
    let res = train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    res.save(dir.path()).unwrap();
    let catalog = Catalog {
        user_ids: Ids::Int((0..30).map(|i| 100 + i).collect()),
        item_ids: Ids::Str((0..20).map(|i| format!("m{i}")).collect()),
        titles: vec![None; 20],
        genres: vec![vec![]; 20],
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(u, i)| (u.to_string(), i.to_string()))
            .collect()
    };
    let model = Model::load(dir.path()).unwrap();
    let got = predict_ids(
        dir.path(),
        &catalog,
        &pairs(&[("105", "m7"), ("129", "m0")]),
        Fallback::Error,
    )
    .unwrap();
    assert_eq!(got, model.predict(&[5, 29], &[7, 0]));
    let unknown = pairs(&[("105", "m7"), ("999", "m1")]);
    let err = predict_ids(dir.path(), &catalog, &unknown, Fallback::Error).unwrap_err();
    assert!(err.to_string().contains("unknown user_id `999`"), "{err}");
    let got = predict_ids(dir.path(), &catalog, &unknown, Fallback::GlobalMean).unwrap();
    assert_eq!(got[1], model.meta.global_mean);
    assert_eq!(got[0], model.predict(&[5], &[7])[0]);
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    // Few ratings per row, lots of noise and no regularisation: valid RMSE turns up fast.
    let p = planted(200, 150, 2, 6_000, 1.0);
    let cfg: Config = toml::from_str(
        "k = 32\nepochs = 40\nlr = 2e-2\nweight_decay = 0.0\ny_range = \"none\"\n\
         early_stopping_patience = 2",
    )
    .unwrap();
    let res = train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap();
    let h = &res.history.epochs;
    assert!(res.stopped_early && h.len() < 40, "ran {} epochs", h.len());
    assert_eq!(res.best_epoch, h.len() - 2);
    let best = h[res.best_epoch - 1].valid_rmse.unwrap();
    assert!(h.iter().all(|e| e.valid_rmse.unwrap() >= best));
    assert_eq!(res.best.unwrap().rmse, best);
}

/// `optimizer = "sgd"` with `batch_size = 1` and no momentum: the per-rating grid path.
/// `extra` may name another `optimizer` (adagrad).
fn per_rating_sgd(extra: &str) -> Config {
    let opt = if extra.contains("optimizer") {
        ""
    } else {
        "optimizer = \"sgd\"\n"
    };
    toml::from_str(&format!(
        "{opt}batch_size = 1\nmomentum = 0.0\nweight_decay = 0.0\n{extra}"
    ))
    .unwrap()
}

#[test]
fn per_rating_sgd_and_adagrad_recover_planted_data() {
    let p = planted(300, 200, 4, 30_000, 0.1);
    let baseline = rmse(&p.valid_bias_only, &p.valid.rating);
    for opt in [
        "optimizer = \"sgd\"\nlr = 0.02",
        "optimizer = \"adagrad\"\nlr = 0.1",
    ] {
        let cfg = per_rating_sgd(&format!(
            "{opt}\nk = 8\nepochs = 12\nl2 = 0.001\ny_range = \"none\""
        ));
        let res = train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap();
        let got = res.best.unwrap().rmse;
        assert!(
            got < 0.5 * baseline,
            "{opt}: valid RMSE {got:.4} is not well below the bias-only optimum {baseline:.4}"
        );
        let h = &res.history.epochs;
        assert!(h.last().unwrap().train_loss < h[0].train_loss);
    }
    let batched: Config = toml::from_str("optimizer = \"adagrad\"\nbatch_size = 64").unwrap();
    let err = train_model(&batched, &p.train, &p.valid, &quiet()).unwrap_err();
    assert!(err.to_string().contains("batch_size = 1"), "{err}");
}

#[test]
fn per_rating_sgd_is_deterministic_for_any_thread_count() {
    let p = planted(100, 70, 3, 5_000, 0.2);
    for opt in ["sgd", "adagrad"] {
        let run = |threads: usize, seed: u64| {
            let mut cfg = per_rating_sgd(&format!(
                "optimizer = \"{opt}\"\nk = 5\nepochs = 3\nlr = 0.02\nl2 = 0.001"
            ));
            cfg.threads = threads;
            cfg.seed = seed;
            train_model(&cfg, &p.train, &p.valid, &quiet()).unwrap()
        };
        let a = run(2, 1);
        assert_eq!(a.checkpoint.tensors, run(2, 1).checkpoint.tensors, "{opt}");
        assert_eq!(a.checkpoint.tensors, run(1, 1).checkpoint.tensors, "{opt}");
        assert_eq!(a.checkpoint.tensors, run(3, 1).checkpoint.tensors, "{opt}");
        assert_ne!(a.checkpoint.tensors, run(2, 2).checkpoint.tensors, "{opt}");
    }
}

/// Settings search for the per-rating path on ml-latest-small:
/// `RECPIPE_SGD="lr=0.02 l2=0.01 k=64 epochs=20" cargo test --release -- --ignored sweep`.
#[test]
#[ignore]
fn per_rating_sgd_sweep_on_the_bundled_data() {
    let (train, valid) = bundled();
    let spec = std::env::var("RECPIPE_SGD").unwrap_or_default();
    let extra: String = spec
        .split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            format!("{k} = {v}\n")
        })
        .collect();
    let cfg = per_rating_sgd(&format!("y_range = [0.0, 5.5]\n{extra}"));
    let res = train_model(&cfg, &train, &valid, &quiet()).unwrap();
    let curve: Vec<String> = res
        .history
        .epochs
        .iter()
        .map(|e| format!("{:.4}", e.valid_rmse.unwrap()))
        .collect();
    let rps: f64 = res
        .history
        .epochs
        .iter()
        .map(|e| e.ratings_per_s)
        .sum::<f64>()
        / res.history.epochs.len() as f64;
    eprintln!(
        "{spec}: best {:.4} at epoch {}, {:.2}M ratings/s, curve {curve:?}",
        res.best.unwrap().rmse,
        res.best_epoch,
        rps / 1e6
    );
}

/// Trains `cfg` as a stage on `split` into a temp dir; returns the dir.
fn train_stage(cfg: &str, split: &std::path::Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let cfg: Config = toml::from_str(cfg).unwrap();
    TrainStage::run(
        &cfg,
        &Inputs::single("split", split),
        &OutDir::new(out.path()).unwrap(),
        &quiet(),
    )
    .unwrap();
    out
}

fn blend_inputs(members: &[(&str, &std::path::Path)], split: &std::path::Path) -> Inputs {
    let mut a: Vec<recpipe_core::stage::Artifact> = members
        .iter()
        .map(|(name, dir)| recpipe_core::stage::Artifact {
            stage: name.to_string(),
            kind: "train".into(),
            dir: dir.to_path_buf(),
        })
        .collect();
    a.push(recpipe_core::stage::Artifact {
        stage: "split".into(),
        kind: "split".into(),
        dir: split.to_path_buf(),
    });
    Inputs::new(a)
}

/// A blend is exactly the weighted average of its members' predictions, saved as one
/// factorization that core loads; bad members and weights are refused by name.
#[test]
fn blend_averages_members_exactly_and_refuses_what_cannot_fold() {
    let p = planted(120, 80, 3, 6_000, 0.2);
    let split = split_dir(&p.train, &p.valid);
    let mf = train_stage("k = 6\nepochs = 3\ny_range = \"none\"", split.path());
    let ar = train_stage(
        "model = \"autorec\"\nk = 16\nepochs = 5\nlr = 3e-3\nbatch_size = 8\ny_range = \"none\"",
        split.path(),
    );
    let inputs = blend_inputs(&[("mf", mf.path()), ("ar", ar.path())], split.path());
    let (pa, pb) = blend_fixed_weights(&p, &inputs, (mf.path(), ar.path()));
    blend_fitted_weights(&p, &inputs, &pa, &pb);
    blend_refusals(split.path(), (mf.path(), ar.path()));
}

/// Weights 0.3 and 0.7: the blend predicts their average exactly. Returns the members'
/// valid predictions.
fn blend_fixed_weights(
    p: &Planted,
    inputs: &Inputs,
    (mf, ar): (&std::path::Path, &std::path::Path),
) -> (Vec<f32>, Vec<f32>) {
    let out = tempfile::tempdir().unwrap();
    let cfg: Config = toml::from_str("model = \"blend\"\nweights = [0.3, 0.7]").unwrap();
    let outputs =
        TrainStage::run(&cfg, inputs, &OutDir::new(out.path()).unwrap(), &quiet()).unwrap();
    let blend = Model::load(out.path()).unwrap();
    assert_eq!((blend.meta.model, blend.meta.k), (ModelKind::Blend, 6 + 16));
    let (a, b) = (Model::load(mf).unwrap(), Model::load(ar).unwrap());
    let (u, i) = (&p.valid.user, &p.valid.item);
    let (pa, pb, pc) = (a.predict(u, i), b.predict(u, i), blend.predict(u, i));
    for ((x, y), z) in pa.iter().zip(&pb).zip(&pc) {
        assert!((0.3 * x + 0.7 * y - z).abs() < 1e-4, "{x} {y} {z}");
    }
    let got = outputs.summary["valid_rmse"].as_f64().unwrap();
    assert!((rmse(&pc, &p.valid.rating) - got).abs() < 1e-6);
    let all = blend.score_users(&[2]);
    assert!((all[[0, 9]] - blend.predict(&[2], &[9])[0]).abs() < 1e-4);
    (pa, pb)
}

/// Fitted weights: least squares on valid can only do better there than any one member.
fn blend_fitted_weights(p: &Planted, inputs: &Inputs, pa: &[f32], pb: &[f32]) {
    let out = tempfile::tempdir().unwrap();
    let cfg: Config = toml::from_str("model = \"blend\"\nweights = \"fit\"").unwrap();
    let fitted = TrainStage::run(&cfg, inputs, &OutDir::new(out.path()).unwrap(), &quiet())
        .unwrap()
        .summary["valid_rmse"]
        .as_f64()
        .unwrap();
    let (ra, rb) = (rmse(pa, &p.valid.rating), rmse(pb, &p.valid.rating));
    assert!(
        fitted <= ra.min(rb) + 1e-6,
        "fitted {fitted} vs members {ra}, {rb}"
    );
    let meta = Model::load(out.path()).unwrap().meta;
    assert_eq!(meta.config["fitted"], true);
    assert_eq!(meta.config["weights"].as_array().unwrap().len(), 2);
    assert!(toml::from_str::<Config>("weights = \"best\"").is_err());
}

/// Members that cannot fold, too few members and a wrong number of weights are refused by
/// name.
fn blend_refusals(split: &std::path::Path, (mf, ar): (&std::path::Path, &std::path::Path)) {
    let err = |cfg: &str, members: &[(&str, &std::path::Path)]| {
        let cfg: Config = toml::from_str(cfg).unwrap();
        let out = tempfile::tempdir().unwrap();
        TrainStage::run(
            &cfg,
            &blend_inputs(members, split),
            &OutDir::new(out.path()).unwrap(),
            &quiet(),
        )
        .unwrap_err()
        .to_string()
    };
    let sig = train_stage("k = 4\nepochs = 1", split);
    let e = err("model = \"blend\"", &[("mf", mf), ("sig", sig.path())]);
    assert!(
        e.contains("`sig`") && e.contains("y_range = \"none\""),
        "{e}"
    );
    let e = err("model = \"blend\"", &[("mf", mf)]);
    assert!(e.contains("at least two"), "{e}");
    let e = err(
        "model = \"blend\"\nweights = [1.0]",
        &[("mf", mf), ("ar", ar)],
    );
    assert!(e.contains("weights") && e.contains("mf, ar"), "{e}");
    let mlp = train_stage(
        "model = \"mlp\"\nk = 4\nepochs = 1\ny_range = \"none\"",
        split,
    );
    let e = err("model = \"blend\"", &[("mf", mf), ("mlp", mlp.path())]);
    assert!(e.contains("`mlp`") && e.contains("factorization"), "{e}");
    let e = toml::from_str::<Config>("weights = [1.0]")
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("weights"), "{e}");
}
