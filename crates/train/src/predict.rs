//! Scoring (user_id, item_id) pairs given by original ids, for `recpipe predict`.

use crate::error::{Result, TrainError};
use recpipe_core::model::Model;
use recpipe_core::ratings::Catalog;
use std::path::Path;

/// What to do with an id the model has never seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Stop with an error naming the id.
    #[default]
    Error,
    /// Predict the training data's mean rating for that pair.
    GlobalMean,
}

/// Predicted ratings for pairs of original ids (as text, as a user types them), with the
/// checkpoint in `model_dir` and the id maps of the ingest artifact it was trained on.
pub fn predict_ids(
    model_dir: &Path,
    catalog: &Catalog,
    pairs: &[(String, String)],
    fallback: Fallback,
) -> Result<Vec<f32>> {
    let model = Model::load(model_dir)?;
    let users = catalog.user_ids.index();
    let items = catalog.item_ids.index();
    let (nu, ni) = (model.meta.n_users, model.meta.n_items);
    let mut known = Vec::with_capacity(pairs.len());
    let (mut ku, mut ki) = (Vec::new(), Vec::new());
    for (row, (u, i)) in pairs.iter().enumerate() {
        let lookup = |map: &std::collections::HashMap<String, u32>, id: &str, n: u32| {
            map.get(id.trim()).copied().filter(|&x| x < n)
        };
        match (lookup(&users, u, nu), lookup(&items, i, ni)) {
            (Some(uu), Some(ii)) => {
                known.push(Some(ku.len()));
                ku.push(uu);
                ki.push(ii);
            }
            (uu, _) if fallback == Fallback::Error => {
                let (what, id) = if uu.is_none() {
                    ("user_id", u)
                } else {
                    ("item_id", i)
                };
                return Err(TrainError::Predict(format!(
                    "pair {}: unknown {what} `{id}`: the model was not trained on it; \
                     check the id or pass the global-mean fallback flag",
                    row + 1
                )));
            }
            _ => known.push(None),
        }
    }
    let scores = model.predict(&ku, &ki);
    Ok(known
        .into_iter()
        .map(|k| k.map_or(model.meta.global_mean, |j| scores[j]))
        .collect())
}
