//! Round trips and hand-computed predictions on a toy dot_bias checkpoint, and model.json's
//! contract (kind names, structural fields).

use super::tensor::{GLOBAL_BIAS, ITEM_BIAS, ITEM_FACTORS, USER_BIAS, USER_FACTORS};
use super::*;
use crate::testutil;
use std::collections::BTreeMap;

fn toy(y_range: Option<[f32; 2]>) -> Checkpoint {
    let mut tensors = BTreeMap::new();
    tensors.insert(
        USER_FACTORS.into(),
        Tensor::new(vec![2, 2], vec![1.0, 0.0, 0.5, -1.0]),
    );
    tensors.insert(
        ITEM_FACTORS.into(),
        Tensor::new(vec![3, 2], vec![2.0, 1.0, 0.0, 1.0, -1.0, 0.5]),
    );
    tensors.insert(USER_BIAS.into(), Tensor::new(vec![2], vec![0.1, -0.2]));
    tensors.insert(ITEM_BIAS.into(), Tensor::new(vec![3], vec![0.0, 0.3, -0.3]));
    tensors.insert(GLOBAL_BIAS.into(), Tensor::new(vec![1], vec![3.5]));
    Checkpoint {
        meta: ModelMeta {
            y_range,
            global_mean: 3.5,
            best_epoch: Some(1),
            ..testutil::meta(ModelKind::DotBias, 2, 3, 2)
        },
        tensors,
    }
}

#[test]
fn dot_bias_predictions_match_hand_computation_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = toy(None);
    ckpt.save(dir.path()).unwrap();
    assert_eq!(Checkpoint::load(dir.path()).unwrap(), ckpt);
    let m = Model::load(dir.path()).unwrap();
    // user 1 · item 0 = 0.5*2 + -1*1 = 0; + 3.5 - 0.2 + 0.0
    let p = m.predict(&[1, 0], &[0, 2]);
    assert!((p[0] - 3.3).abs() < 1e-6, "{p:?}");
    // user 0 · item 2 = -1; + 3.5 + 0.1 - 0.3
    assert!((p[1] - 2.3).abs() < 1e-6, "{p:?}");
    let all = m.score_users(&[1, 0]);
    assert_eq!(all.shape(), &[2, 3]);
    let pairs = m.predict(&[1, 1, 1, 0, 0, 0], &[0, 1, 2, 0, 1, 2]);
    for (a, b) in all.iter().zip(&pairs) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn y_range_squashes_into_range() {
    let dir = tempfile::tempdir().unwrap();
    toy(Some([0.5, 5.0])).save(dir.path()).unwrap();
    let m = Model::load(dir.path()).unwrap();
    let s = m.score_users(&[0, 1]);
    assert!(s.iter().all(|&v| v > 0.5 && v < 5.0));
    let raw = 3.5 + 0.1 + 0.0 + 2.0;
    let expect = 0.5 + 4.5 / (1.0 + (-raw as f32).exp());
    assert!((s[[0, 0]] - expect).abs() < 1e-6);
}

#[test]
fn nan_weights_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = toy(None);
    ckpt.tensors.get_mut(USER_BIAS).unwrap().data[0] = f32::NAN;
    let err = ckpt.save(dir.path()).unwrap_err().to_string();
    assert!(err.contains(USER_BIAS), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn wrong_shapes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = toy(None);
    ckpt.meta.n_items = 4;
    ckpt.save(dir.path()).unwrap();
    let err = Model::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains(ITEM_FACTORS), "{err}");
}

#[test]
fn model_json_names_kinds_in_snake_case_and_records_the_layers() {
    let kinds = [
        (ModelKind::Dot, "dot"),
        (ModelKind::DotBias, "dot_bias"),
        (ModelKind::Autorec, "autorec"),
        (ModelKind::Blend, "blend"),
        (ModelKind::Mlp, "mlp"),
        (ModelKind::Hybrid, "hybrid"),
        (ModelKind::Classifier, "classifier"),
        (ModelKind::Ease, "ease"),
        (ModelKind::Ials, "ials"),
        (ModelKind::Bpr, "bpr"),
    ];
    for (kind, name) in kinds {
        assert_eq!(serde_json::to_value(kind).unwrap(), name);
        assert_eq!(kind.name(), name);
        // Exactly one scoring path: factors, dense layers or an item-item matrix.
        let paths = [
            kind.is_factorization(),
            kind.is_neural(),
            kind.is_item_item(),
        ];
        assert_eq!(paths.iter().filter(|&&p| p).count(), 1, "{kind}");
        assert_eq!(
            kind.is_ranking(),
            name == "ease" || name == "ials" || name == "bpr"
        );
    }
    let meta = ModelMeta {
        net: Some(NetShape {
            join: Join::Product,
            hidden: vec![8, 4],
            item_tower: vec![],
        }),
        ..ModelMeta::new(ModelKind::Mlp, 2, 3, 4)
    };
    let json = serde_json::to_value(&meta).unwrap();
    assert_eq!(json["model"], "mlp");
    assert_eq!(json["net"]["join"], "product");
    assert_eq!(json["net"]["hidden"], serde_json::json!([8, 4]));
    let back: ModelMeta = serde_json::from_value(json).unwrap();
    assert_eq!(back, meta);
}

#[test]
fn a_neural_model_is_rebuilt_from_model_json_alone() {
    // mlp, product join, k = 2, one hidden layer of 3 units, then the output.
    let mut ckpt = toy(None);
    ckpt.meta = ModelMeta {
        net: Some(NetShape {
            join: Join::Product,
            hidden: vec![3],
            item_tower: vec![],
        }),
        ..testutil::meta(ModelKind::Mlp, 2, 3, 2)
    };
    let mut put = |name: String, shape: Vec<usize>, data: Vec<f32>| {
        ckpt.tensors.insert(name, Tensor::new(shape, data));
    };
    let (h, out) = (tensor::hidden(0), tensor::OUTPUT);
    put(tensor::param(&h, tensor::WEIGHT), vec![3, 2], vec![1.0; 6]);
    put(tensor::param(&h, tensor::BIAS), vec![3], vec![0.0; 3]);
    put(tensor::param(out, tensor::WEIGHT), vec![1, 3], vec![1.0; 3]);
    put(tensor::param(out, tensor::BIAS), vec![1], vec![0.5]);
    let dir = tempfile::tempdir().unwrap();
    ckpt.save(dir.path()).unwrap();
    let m = Model::load(dir.path()).unwrap();
    // user 0 ⊙ item 0 = [2, 0]; each hidden unit = relu(2) = 2; output = 3 * 2 + 0.5.
    let p = m.predict(&[0], &[0]);
    assert!((p[0] - 6.5).abs() < 1e-6, "{p:?}");

    // model.json listing a second hidden layer the weights lack is refused.
    ckpt.meta.net.as_mut().unwrap().hidden.push(3);
    ckpt.save(dir.path()).unwrap();
    let err = Model::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("layers.1.weight"), "{err}");
}

/// An item-item checkpoint: 3 users, 3 items, B given, user 2 with no items.
fn item_item(counts: Vec<f32>, items: Vec<f32>) -> Checkpoint {
    let mut tensors = BTreeMap::new();
    let b = vec![0.0, 0.5, -1.0, 2.0, 0.0, 0.25, 1.0, -0.5, 0.0];
    tensors.insert(tensor::ITEM_ITEM.into(), Tensor::new(vec![3, 3], b));
    tensors.insert(
        tensor::USER_ITEM_COUNTS.into(),
        Tensor::new(vec![counts.len()], counts),
    );
    tensors.insert(
        tensor::USER_ITEMS.into(),
        Tensor::new(vec![items.len()], items),
    );
    Checkpoint {
        meta: ModelMeta::new(ModelKind::Ease, 3, 3, 0),
        tensors,
    }
}

#[test]
fn an_item_item_model_scores_a_user_by_the_rows_of_their_items() {
    // user 0 has items {0, 2}, user 1 has {1}, user 2 none.
    let m = Model::from_checkpoint(
        item_item(vec![2.0, 1.0, 0.0], vec![2.0, 0.0, 1.0]),
        std::path::Path::new("t"),
    )
    .unwrap();
    assert_eq!(m.user_items(0), &[0, 2]);
    let s = m.score_users(&[0, 1, 2]);
    // x_0 · B = B[0] + B[2]; x_1 · B = B[1]; x_2 · B = 0.
    assert_eq!(s.row(0).to_vec(), vec![1.0, 0.0, -1.0]);
    assert_eq!(s.row(1).to_vec(), vec![2.0, 0.0, 0.25]);
    assert_eq!(s.row(2).to_vec(), vec![0.0, 0.0, 0.0]);
    assert_eq!(m.predict(&[0, 1], &[0, 2]), vec![1.0, 0.25]);
    // Bad histories are schema errors naming the tensor, not panics.
    for (counts, items, tensor) in [
        (
            vec![2.0, 1.0],
            vec![2.0, 0.0, 1.0],
            tensor::USER_ITEM_COUNTS,
        ),
        (vec![2.0, 1.0, 0.0], vec![2.0, 7.0, 1.0], tensor::USER_ITEMS),
        (
            vec![2.0, 1.5, 0.0],
            vec![2.0, 0.0, 1.0],
            tensor::USER_ITEM_COUNTS,
        ),
        (vec![2.0, 2.0, 0.0], vec![2.0, 0.0, 1.0], tensor::USER_ITEMS),
    ] {
        let err = Model::from_checkpoint(item_item(counts, items), std::path::Path::new("t"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(tensor), "{tensor}: {err}");
    }
}
