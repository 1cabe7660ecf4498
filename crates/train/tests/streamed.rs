//! Per-rating SGD streamed from the train table (the path for tables too big to read
//! whole) against the same training on the table read into memory: the bundled MovieLens
//! ratings, the same checkpoint bit for bit and the same history.

mod common;

use recpipe_core::Progress;
use recpipe_train::{Config, train_model, train_streamed};

/// `text` (model, optimizer, batch size and the rest) over the settings both tests share.
fn cfg(text: &str) -> Config {
    toml::from_str(&format!(
        "k = 20\nmomentum = 0.0\nweight_decay = 0.0\nl2 = 0.01\nepochs = 3\n\
         device = \"cpu\"\n{text}"
    ))
    .unwrap()
}

#[test]
fn streamed_training_gives_the_in_memory_model_bit_for_bit() {
    let (train, valid) = common::bundled();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.parquet");
    train.write(&path).unwrap();
    for text in [
        "model = \"dot_bias\"\noptimizer = \"sgd\"\nbatch_size = 1\nlr = 0.02\ny_range = \"auto\"",
        "model = \"dot\"\noptimizer = \"adagrad\"\nbatch_size = 1\nlr = 0.1\nthreads = 1\ny_range = [0.0, 5.5]",
    ] {
        let c = cfg(text);
        let hidden = Progress::hidden();
        let a = train_model(&c, &train, &valid, &hidden).unwrap();
        let b = train_streamed(&c, &path, &valid, &hidden).unwrap();
        assert_eq!(
            b.checkpoint.meta.y_range, a.checkpoint.meta.y_range,
            "{text}"
        );
        assert_eq!(
            b.checkpoint.meta.global_mean.to_bits(),
            a.checkpoint.meta.global_mean.to_bits()
        );
        let (ta, tb) = (&a.checkpoint.tensors, &b.checkpoint.tensors);
        assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
        for (name, t) in ta {
            assert!(t.data.iter().any(|&x| x != 0.0), "{text}: {name} is zero");
            let same = t
                .data
                .iter()
                .zip(&tb[name].data)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{text}: {name} differs between the paths");
        }
        let losses = |r: &recpipe_train::TrainResult| {
            let h = &r.history.epochs;
            h.iter()
                .map(|e| (e.train_loss, e.valid_rmse))
                .collect::<Vec<_>>()
        };
        assert_eq!(losses(&b), losses(&a), "{text}");
        assert!(a.best.unwrap().rmse < 1.2, "{text}: {:?}", a.best);
    }
}

#[test]
fn streamed_training_refuses_a_batched_config_and_bad_ratings() {
    let (mut train, valid) = common::bundled();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.parquet");
    train.write(&path).unwrap();
    let batched = cfg("model = \"dot_bias\"\noptimizer = \"adam\"\nbatch_size = 64");
    let err = train_streamed(&batched, &path, &valid, &Progress::hidden()).unwrap_err();
    assert!(err.to_string().contains("batch_size = 1"), "{err}");
    train.rating[123] = f32::NAN;
    train.write(&path).unwrap();
    let c = cfg("model = \"dot_bias\"\noptimizer = \"sgd\"\nbatch_size = 1");
    let err = train_streamed(&c, &path, &valid, &Progress::hidden()).unwrap_err();
    assert!(err.to_string().contains("row 123"), "{err}");
}
