//! `recpipe predict PIPELINE --user ID --item ID`: the train stage's checkpoint scoring
//! (user, item) pairs, through the train crate's `predict_ids`
//! (re-exported by the stage table).

use super::items::{Items, resolve_user};
use super::locate::{ancestor, fresh_dirs, pick_stage};
use super::print::{col, json_lines, table};
use super::{PredictArgs, id_json};
use crate::cache::Store;
use crate::pipeline::Pipeline;
use crate::stages;
use anyhow::{Context, Result};
use recpipe_core::ratings::Catalog;

pub fn predict(a: &PredictArgs, store: &Store) -> Result<()> {
    let p = Pipeline::load(&a.pipeline.pipeline, &a.pipeline.sets)?;
    let train = pick_stage(&p, stages::TRAIN, a.stage.as_deref())?;
    let ingest = ancestor(&p, train, stages::INGEST)?;
    let dirs = fresh_dirs(&p, store, &[train, ingest])?;
    let catalog = Catalog::read(&dirs[1])
        .with_context(|| format!("cannot read the ingest tables in {}", dirs[1].display()))?;
    let users: Vec<String> = (0..catalog.n_users())
        .map(|u| catalog.user_ids.display(u))
        .collect();
    let user = users[resolve_user(&users, &a.user)?].clone();
    let items = Items {
        ids: (0..catalog.n_items())
            .map(|i| catalog.item_ids.display(i))
            .collect(),
        titles: catalog.titles.clone(),
    };
    let picked = a
        .item
        .iter()
        .map(|q| items.resolve(q))
        .collect::<Result<Vec<_>>>()?;
    let pairs: Vec<(String, String)> = picked
        .iter()
        .map(|&i| (user.clone(), items.ids[i].clone()))
        .collect();
    let scores = stages::predict_ids(&dirs[0], &catalog, &pairs, stages::Fallback::Error)
        .with_context(|| format!("stage `{}` cannot score these pairs", p.stages[train].name))?;
    if a.flags.json {
        let v: Vec<_> = picked
            .iter()
            .zip(&scores)
            .map(|(&i, s)| {
                serde_json::json!({"user_id": id_json(&user), "item_id": id_json(&items.ids[i]), "title": items.title(i), "predicted": s})
            })
            .collect();
        json_lines(&v);
        return Ok(());
    }
    let cells: Vec<Vec<String>> = picked
        .iter()
        .zip(&scores)
        .map(|(&i, s)| {
            vec![
                user.clone(),
                items.ids[i].clone(),
                format!("{s:.4}"),
                items.title(i).to_string(),
            ]
        })
        .collect();
    table(
        &[
            col("user_id", true),
            col("item_id", true),
            col("predicted", true),
            col("title", false),
        ],
        &cells,
    );
    Ok(())
}
