//! `recpipe similar PIPELINE --item ID|TITLE`: the item's rows of similar_items.parquet.

use super::items::Items;
use super::locate::{fresh_dirs, pick_stage};
use super::print::{col, json_lines, table};
use super::table::Table;
use super::{SimilarArgs, id_json};
use crate::cache::Store;
use crate::out::outln;
use crate::pipeline::Pipeline;
use anyhow::{Result, bail};

pub fn similar(a: &SimilarArgs, store: &Store) -> Result<()> {
    let p = Pipeline::load(&a.pipeline.pipeline, &a.pipeline.sets)?;
    let i = pick_stage(&p, "export", a.stage.as_deref())?;
    let dir = fresh_dirs(&p, store, &[i])?.remove(0);
    let name = &p.stages[i].name;
    let emb = Table::open(
        &dir,
        recpipe_export::ITEM_EMBEDDINGS,
        "the export is incomplete",
    )?;
    let items = Items {
        ids: emb.ids("item_id")?,
        titles: emb.texts("title")?,
    };
    let q = items.resolve(&a.item)?;
    let n_ratings = emb.u32s("n_ratings")?[q];
    let sim = Table::open(
        &dir,
        recpipe_export::SIMILAR_ITEMS,
        &format!("stage `{name}` was run with neighbors = 0; set it above 0"),
    )?;
    let (of, ranks, nb, nb_titles, scores) = (
        sim.ids("item_id")?,
        sim.u32s("rank")?,
        sim.ids("neighbor_id")?,
        sim.texts("neighbor_title")?,
        sim.f32s("score")?,
    );
    let id = &items.ids[q];
    let mut rows: Vec<usize> = (0..of.len()).filter(|&r| &of[r] == id).collect();
    if rows.is_empty() {
        bail!(
            "item {id} ({}) has no neighbours in {}: it has {n_ratings} ratings, and the export lists only items with at least `similar_min_ratings` (and with `similar_items_top`, only the most rated)",
            items.title(q),
            sim.path.display()
        );
    }
    rows.sort_by_key(|&r| ranks[r]);
    if rows.len() < a.n {
        tracing::warn!(
            "the export keeps {} neighbours per item; for more, `--set {name}.neighbors={}` and run the pipeline again",
            rows.len(),
            a.n
        );
    }
    rows.truncate(a.n);
    let title = |r: usize| nb_titles[r].clone().unwrap_or_default();
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|&r| {
                serde_json::json!({"item_id": id_json(id), "rank": ranks[r], "neighbor_id": id_json(&nb[r]), "neighbor_title": title(r), "score": scores[r]})
            })
            .collect();
        json_lines(&v);
        return Ok(());
    }
    outln!(
        "item {id}: {} ({n_ratings} ratings); nearest by cosine of the item factors",
        items.title(q)
    );
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|&r| {
            vec![
                ranks[r].to_string(),
                nb[r].clone(),
                format!("{:.3}", scores[r]),
                title(r),
            ]
        })
        .collect();
    table(
        &[
            col("rank", true),
            col("item_id", true),
            col("cosine", true),
            col("title", false),
        ],
        &cells,
    );
    Ok(())
}
