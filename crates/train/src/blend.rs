//! `model = "blend"`: a weighted average of the upstream train stages' models, without
//! training. Members must be factorizations without a sigmoid (`dot`, `dot_bias`, `autorec`
//! with `y_range = "none"`): then Σ w_m (U_m·I_m + bu_m + bi_m + g_m) is itself one
//! factorization — user factors [w_1·U_1 | w_2·U_2 | …], item factors [I_1 | I_2 | …],
//! biases the weighted sums — so the blend is saved as an ordinary checkpoint and evaluate,
//! export and predict use it unchanged.

use crate::backend::Metrics;
use crate::config::{BlendWeights, Config, ModelKind};
use crate::error::{Result, TrainError};
use crate::history::{Epoch, History};
use crate::{TrainResult, backend::Device};
use recpipe_core::math::Scored;
use recpipe_core::model::{Checkpoint, Model, ModelMeta, Tensor, tensor};
use recpipe_core::{Artifact, Inputs, Ratings};
use std::collections::BTreeMap;
use std::time::Instant;

/// Blends every upstream `train` artifact; `valid` (may be empty) scores the blend.
pub fn blend(
    cfg: &Config,
    inputs: &Inputs,
    train: &Ratings,
    valid: &Ratings,
) -> Result<TrainResult> {
    let start = Instant::now();
    let members = inputs.all("train");
    if members.len() < 2 {
        return Err(TrainError::config(
            "model",
            format!(
                "\"blend\" averages upstream train stages; list at least two in `inputs` \
                 (found {})",
                members.len()
            ),
        ));
    }
    let fixed = fixed_weights(cfg, &members)?;
    let models = load_members(&members)?;
    // Each member's validation predictions, computed once for the fit and the log.
    let member_preds: Vec<Vec<f32>> = models
        .iter()
        .map(|m| m.predict(&valid.user, &valid.item))
        .collect();
    for ((a, m), p) in members.iter().zip(&models).zip(&member_preds) {
        if !valid.is_empty() {
            let r = scored(p, valid).rmse;
            tracing::debug!(
                "blend member `{}` ({}): valid RMSE {r:.4}",
                a.stage,
                m.meta.model
            );
        }
    }
    let (weights, intercept) = match fixed {
        Some(w) => (w, 0.0),
        None => fit_weights(&member_preds, valid)?,
    };
    let (k, tensors) = fold(&models, &weights, intercept);
    let (n_users, n_items) = (models[0].meta.n_users, models[0].meta.n_items);
    let meta = ModelMeta {
        global_mean: models[0].meta.global_mean,
        device: "cpu".into(),
        config: serde_json::json!({
            "members": members.iter().map(|a| a.stage.clone()).collect::<Vec<_>>(),
            "member_models": models.iter().map(|m| m.meta.model).collect::<Vec<_>>(),
            "weights": weights,
            "intercept": intercept,
            "fitted": cfg.weights == Some(BlendWeights::Fit),
        }),
        ..ModelMeta::new(ModelKind::Blend, n_users, n_items, k)
    };
    Ok(result(Checkpoint { meta, tensors }, train, valid, start))
}

/// The rating metrics of predictions `pred` of `r`'s ratings.
fn scored(pred: &[f32], r: &Ratings) -> Metrics {
    Metrics::of(Scored {
        pred,
        truth: &r.rating,
    })
}

/// The given weights (equal ones by default), or None when they are to be fitted.
fn fixed_weights(cfg: &Config, members: &[&Artifact]) -> Result<Option<Vec<f32>>> {
    Ok(match &cfg.weights {
        None => Some(vec![1.0 / members.len() as f32; members.len()]),
        Some(BlendWeights::Fit) => None,
        Some(BlendWeights::Fixed(w)) if w.len() == members.len() => Some(w.clone()),
        Some(BlendWeights::Fixed(w)) => {
            return Err(TrainError::config(
                "weights",
                format!(
                    "has {} values for {} upstream train stages ({}); give one per stage, \
                     in `inputs` order",
                    w.len(),
                    members.len(),
                    members
                        .iter()
                        .map(|a| a.stage.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    })
}

/// The members' models, refused unless each is a factorization without a sigmoid on the
/// first one's users and items.
fn load_members(members: &[&Artifact]) -> Result<Vec<Model>> {
    let mut models: Vec<Model> = Vec::with_capacity(members.len());
    for a in members {
        let m = Model::load(&a.dir)?;
        let bad = |why: String| {
            TrainError::config(
                "inputs",
                format!(
                    "stage `{}` ({} model) cannot be blended: {why}",
                    a.stage, m.meta.model
                ),
            )
        };
        if m.meta.model.is_ranking() {
            return Err(bad(
                "a ranking model's scores are not ratings; blend rating models only".into(),
            ));
        }
        if !m.meta.model.is_factorization() {
            return Err(bad(
                "only dot, dot_bias, autorec and blend models fold into one factorization".into(),
            ));
        }
        if m.meta.y_range.is_some() {
            return Err(bad(
                "its output goes through a sigmoid; train it with y_range = \"none\"".into(),
            ));
        }
        if let Some(f) = models.first()
            && (f.meta.n_users, f.meta.n_items) != (m.meta.n_users, m.meta.n_items)
        {
            return Err(bad(format!(
                "it has {} users × {} items, the first member {} × {}: blend models \
                 trained on the same split",
                m.meta.n_users, m.meta.n_items, f.meta.n_users, f.meta.n_items
            )));
        }
        models.push(m);
    }
    Ok(models)
}

/// Σ w_m (U_m·I_m + bu_m + bi_m + g_m) + intercept as one factorization: its k and tensors.
fn fold(models: &[Model], weights: &[f32], intercept: f32) -> (usize, BTreeMap<String, Tensor>) {
    let (n_users, n_items) = (
        models[0].meta.n_users as usize,
        models[0].meta.n_items as usize,
    );
    let k: usize = models.iter().map(|m| m.meta.k).sum();
    let (mut uf, mut itf) = (vec![0.0f32; n_users * k], vec![0.0f32; n_items * k]);
    let (mut ub, mut ib, mut g) = (vec![0.0f32; n_users], vec![0.0f32; n_items], intercept);
    let mut col = 0;
    for (m, &w) in models.iter().zip(weights) {
        let km = m.meta.k;
        let (u, i) = (
            m.user_factors().expect("validated at load"),
            m.item_factors().expect("validated at load"),
        );
        for (r, row) in u.rows().into_iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                uf[r * k + col + c] = w * v;
            }
        }
        for (r, row) in i.rows().into_iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                itf[r * k + col + c] = v;
            }
        }
        for (acc, b) in [(&mut ub, m.user_bias()), (&mut ib, m.item_bias())] {
            if let Some(b) = b {
                acc.iter_mut().zip(b).for_each(|(a, &b)| *a += w * b);
            }
        }
        g += w * m
            .checkpoint()
            .tensors
            .get(tensor::GLOBAL_BIAS)
            .map_or(0.0, |t| t.data[0]);
        col += km;
    }
    let mut tensors = BTreeMap::new();
    tensors.insert(
        tensor::USER_FACTORS.into(),
        Tensor::new(vec![n_users, k], uf),
    );
    tensors.insert(
        tensor::ITEM_FACTORS.into(),
        Tensor::new(vec![n_items, k], itf),
    );
    tensors.insert(tensor::USER_BIAS.into(), Tensor::new(vec![n_users], ub));
    tensors.insert(tensor::ITEM_BIAS.into(), Tensor::new(vec![n_items], ib));
    tensors.insert(tensor::GLOBAL_BIAS.into(), Tensor::new(vec![1], vec![g]));
    (k, tensors)
}

/// The blend as a one-epoch training result: its fit on train and its valid metrics.
fn result(checkpoint: Checkpoint, train: &Ratings, valid: &Ratings, start: Instant) -> TrainResult {
    let model = Model::from_checkpoint(checkpoint.clone(), std::path::Path::new("blend"))
        .expect("a blend of validated factorizations is valid");
    let best = (!valid.is_empty()).then(|| scored(&model.predict(&valid.user, &valid.item), valid));
    let fit = scored(&model.predict(&train.user, &train.item), train);
    let seconds = start.elapsed().as_secs_f64();
    TrainResult {
        checkpoint,
        history: History {
            epochs: vec![Epoch {
                epoch: 1,
                train_loss: fit.rmse * fit.rmse,
                valid_rmse: best.map(|m| m.rmse),
                valid_mae: best.map(|m| m.mae),
                valid_precision: None,
                seconds,
                ratings_per_s: train.len() as f64 / seconds.max(1e-9),
                lr: 0.0,
            }],
            device: Device::Cpu.name(),
        },
        best_epoch: 1,
        best,
        device: Device::Cpu,
        threads: 1,
        stopped_early: false,
        ranking: None,
    }
}

/// Least-squares weights and intercept for the members' predictions on `valid` (stacking on
/// the held-out set early stopping already watches; test stays untouched). The normal
/// equations are (M+1)×(M+1), solved by Gaussian elimination with partial pivoting.
fn fit_weights(preds: &[Vec<f32>], valid: &Ratings) -> Result<(Vec<f32>, f32)> {
    if valid.is_empty() {
        return Err(TrainError::config(
            "weights",
            "\"fit\" needs a validation set; set valid_fraction in the split stage or give \
             the weights",
        ));
    }
    let d = preds.len() + 1;
    let x = |r: usize, j: usize| {
        if j < preds.len() {
            preds[j][r] as f64
        } else {
            1.0
        }
    };
    let mut a = vec![vec![0.0f64; d + 1]; d];
    for r in 0..valid.len() {
        for (i, row) in a.iter_mut().enumerate() {
            let xi = x(r, i);
            for (j, v) in row[..d].iter_mut().enumerate() {
                *v += xi * x(r, j);
            }
            row[d] += xi * valid.rating[r] as f64;
        }
    }
    for c in 0..d {
        let p = (c..d)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .expect("non-empty range");
        if a[p][c].abs() < 1e-9 * valid.len() as f64 {
            return Err(TrainError::config(
                "weights",
                "cannot fit: the members' predictions are collinear on the validation set \
                 (identical models?); give the weights instead",
            ));
        }
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                row[c..]
                    .iter_mut()
                    .zip(&pivot[c..])
                    .for_each(|(v, &q)| *v -= f * q);
            }
        }
    }
    let sol: Vec<f64> = (0..d).map(|i| a[i][d] / a[i][i]).collect();
    tracing::debug!(
        "blend weights fitted on valid: {:?} + {:.4}",
        &sol[..d - 1],
        sol[d - 1]
    );
    Ok((
        sol[..d - 1].iter().map(|&w| w as f32).collect(),
        sol[d - 1] as f32,
    ))
}

/// The summary line of a blend: what it combined and with which weights (a blend folds its
/// members' factors into one model; it trains no epochs).
pub(crate) fn describe(meta: &ModelMeta, seconds: f64) -> String {
    let c = &meta.config;
    let names = |key: &str| -> Vec<String> {
        c[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (members, models) = (names("members"), names("member_models"));
    let weights: Vec<f64> = c["weights"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .unwrap_or_default();
    // `0.5 × mf (dot_bias) + 0.5 × autorec (autorec)`, `- 0.02 × …` for a negative weight.
    let mut sum = String::new();
    for (i, m) in members.iter().enumerate() {
        let model = models.get(i).map(|s| format!(" ({s})")).unwrap_or_default();
        let w = weights.get(i).copied();
        let sign = match (i, w) {
            (0, Some(w)) if w < 0.0 => "-",
            (0, _) => "",
            (_, Some(w)) if w < 0.0 => " - ",
            _ => " + ",
        };
        let w = w.map_or(String::new(), |w| format!("{} × ", short(w.abs())));
        sum.push_str(&format!("{sign}{w}{m}{model}"));
    }
    let b = c["intercept"].as_f64().unwrap_or(0.0);
    match short(b.abs()) {
        z if z == "0" => {}
        z => sum.push_str(&format!(" {} {z}", if b < 0.0 { "-" } else { "+" })),
    }
    let how = if c["fitted"].as_bool() == Some(true) {
        ", weights fitted on valid"
    } else {
        ""
    };
    format!(
        "blend of {} members: {sum}{how}; folded into one k={} model in {seconds:.2}s",
        members.len(),
        meta.k
    )
}

/// At most four decimals, without trailing zeros: `0.5`, `0.6321`, `-0.012`.
fn short(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}
