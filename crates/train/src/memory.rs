//! What a training run will allocate, estimated from the model's shape before anything is
//! allocated, and refused (recpipe_core::memory) when the machine cannot hold it. Rough on
//! purpose: the big terms are the embedding tables, their optimizer moments and the
//! checkpoint copies of the weights; batches and per-rating buffers come on top.

use crate::backend::ModelSpec;
use crate::backend::per_rating;
use crate::config::{ModelKind, OptimizerKind};
use crate::error::Result;
use recpipe_core::memory::{Need, check_need, product};

const F32: u64 = 4;

/// Optimizer slots per weight (Adam's m and v, SGD's momentum, Adagrad's sum).
fn state_slots(spec: &ModelSpec) -> u64 {
    match spec.cfg.optimizer {
        OptimizerKind::Sgd | OptimizerKind::Adagrad => 1,
        _ => 2,
    }
}

fn optimizer_name(spec: &ModelSpec) -> &'static str {
    match spec.cfg.optimizer {
        OptimizerKind::Adam | OptimizerKind::AdamW | OptimizerKind::SparseAdam => "Adam state",
        OptimizerKind::Sgd => "momentum",
        OptimizerKind::Adagrad => "Adagrad state",
    }
}

/// The estimate for `spec` trained on `n_train` ratings and validated on `n_valid`.
pub(crate) fn estimate(spec: &ModelSpec, n_train: usize, n_valid: usize) -> Need {
    let (k, bs) = (spec.k, spec.cfg.batch_size);
    let rows = spec.n_users.saturating_add(spec.n_items);
    let mut need = Need::new();
    // Weights as the model holds them, and the dense copies the best epoch is kept in.
    let weights = match spec.kind {
        ModelKind::Autorec => {
            // V and W per user (2k), the item codes and the user biases.
            let users = product(&[spec.n_users, 2, k]);
            need.add("autorec user weights", users, F32);
            need.add(optimizer_name(spec), users, F32 * state_slots(spec));
            need.add("item codes", product(&[spec.n_items, k]), F32);
            need.add("per-item ratings", n_train as u64, 8);
            users.saturating_add(product(&[spec.n_items, k]))
        }
        ModelKind::Dot | ModelKind::DotBias => {
            let dim = k.saturating_add(usize::from(spec.kind == ModelKind::DotBias));
            let w = product(&[rows, dim]);
            need.add("user/item tables", w, F32);
            if !per_rating(&spec.cfg) {
                need.add(optimizer_name(spec), w, F32 * state_slots(spec));
            } else if spec.cfg.optimizer == OptimizerKind::Adagrad {
                // The grid's Adagrad keeps one squared-gradient sum per row; its sgd none.
                need.add(optimizer_name(spec), rows as u64, F32);
            }
            need.add(
                "init buffer",
                product(&[spec.n_users.max(spec.n_items), k]),
                F32,
            );
            if per_rating(&spec.cfg) {
                need.add("per-rating grid", n_train as u64, 12);
            }
            w
        }
        _ => neural(spec, &mut need, rows),
    };
    need.add("checkpoint copies", weights, 2 * F32);
    need.add("batches", product(&[bs, k.saturating_add(1), 4]), F32);
    need.add("shuffled order", n_train as u64, 4);
    need.add("validation predictions", n_valid as u64, 2 * F32);
    // The per-step history of the batched optimizers' lazy catch-up (rowopt.rs); the
    // per-rating grid steps rows in place and keeps none.
    if !per_rating(&spec.cfg) {
        need.add("step schedule", spec.expected_steps as u64, 3 * 8);
    }
    need
}

/// Embeddings, dense layers and batch activations of `mlp`, `hybrid` and `classifier`.
fn neural(spec: &ModelSpec, need: &mut Need, rows: usize) -> u64 {
    let cfg = &spec.cfg;
    let k = spec.k;
    let emb = product(&[rows, k]);
    need.add("user/item tables", emb, F32);
    need.add(optimizer_name(spec), emb, F32 * state_slots(spec));
    let mut din = k.saturating_mul(2);
    if let Some((width, _)) = &spec.item_features {
        din = din.saturating_add(cfg.item_features_hidden.last().copied().unwrap_or(*width));
    }
    let mut dense = 0u64;
    let mut widths = 0u64;
    for &dout in &cfg.hidden() {
        dense = dense.saturating_add(product(&[din, dout]));
        widths = widths.saturating_add(dout as u64);
        din = dout;
    }
    let outs = spec.classes.as_ref().map_or(1, Vec::len);
    dense = dense.saturating_add(product(&[din, outs]));
    need.add("dense layers", dense, F32 * (1 + state_slots(spec)));
    need.add(
        "activations",
        product(&[cfg.batch_size, 4]).saturating_mul(widths.saturating_add(2 * k as u64)),
        F32,
    );
    emb.saturating_add(dense)
}

/// Refuses a run the machine cannot hold, naming the settings that size it.
pub(crate) fn check(spec: &ModelSpec, n_train: usize, n_valid: usize) -> Result<()> {
    let k = spec.k;
    let hint = match spec.kind {
        ModelKind::Autorec => format!("k (hidden units, now {k}) or batch_size"),
        ModelKind::Dot | ModelKind::DotBias => format!("k (now {k}) or batch_size"),
        _ => format!("k (now {k}), hidden or batch_size"),
    };
    let need = estimate(spec, n_train, n_valid);
    // Per-step state is sized by the number of steps the whole run takes.
    let steps = if per_rating(&spec.cfg) {
        0
    } else {
        product(&[spec.expected_steps, 3 * 8])
    };
    let hint = if steps >= need.total() / 2 {
        format!("epochs (now {}) or raise batch_size", spec.cfg.epochs)
    } else {
        hint
    };
    check_need("train", &need, &hint)?;
    Ok(())
}
