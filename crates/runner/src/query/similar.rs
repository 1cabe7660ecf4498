//! `recpipe similar PIPELINE --item ID|TITLE`: the item's rows of similar_items.parquet.

use super::SimilarArgs;
use super::items::Items;
use super::locate::{fresh_dirs, pick_stage};
use super::print::{RankedCols, RankedNames, ranked};
use super::table::Table;
use crate::cache::Store;
use crate::out::outln;
use crate::pipeline::Pipeline;
use crate::stages;
use anyhow::{Result, bail};
use recpipe_core::layout;

pub fn similar(a: &SimilarArgs, store: &Store) -> Result<()> {
    let p = Pipeline::load(&a.pipeline.pipeline, &a.pipeline.sets)?;
    let i = pick_stage(&p, stages::EXPORT, a.export.stage.as_deref())?;
    let dir = fresh_dirs(&p, store, &[i])?.remove(0);
    let name = &p.stages[i].name;
    let emb = Table::open(
        &dir,
        layout::export::ITEM_EMBEDDINGS,
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
        layout::export::SIMILAR_ITEMS,
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
    let rows: Vec<usize> = (0..of.len()).filter(|&r| &of[r] == id).collect();
    if rows.is_empty() {
        bail!(
            "{}",
            no_neighbours(&dir, name, id, items.title(q), n_ratings)
        );
    }
    let rows = super::top_rows(
        rows,
        &ranks,
        a.n,
        "neighbours per item",
        &format!("{name}.neighbors"),
    );
    if !a.export.flags.json {
        outln!(
            "item {id}: {} ({n_ratings} ratings); nearest by cosine of the item factors",
            items.title(q)
        );
    }
    let names = RankedNames {
        query: ("item_id", id),
        id: "neighbor_id",
        title: "neighbor_title",
        score: "cosine",
    };
    ranked(
        &rows,
        &RankedCols {
            ranks: &ranks,
            ids: &nb,
            titles: &nb_titles,
            scores: &scores,
        },
        &names,
        a.export.flags.json,
    );
    Ok(())
}

/// Why an item has no row in similar_items: too few ratings for the export's settings.
fn no_neighbours(dir: &std::path::Path, stage: &str, id: &str, title: &str, n: u32) -> String {
    let config = crate::cache::read_manifest(dir)
        .map(|m| m.config)
        .unwrap_or_default();
    let min = config["similar_min_ratings"].as_u64().unwrap_or(0);
    let top = config["similar_items_top"].as_u64().unwrap_or(0);
    let ratings = if n == 1 { "rating" } else { "ratings" };
    let mut why = format!(
        "item {id} ({title}) has no neighbours in stage `{stage}`: it has {n} {ratings}, and similar_items lists items with at least {min} (`--set {stage}.similar_min_ratings=0` keeps all)"
    );
    if top > 0 {
        why.push_str(&format!(
            ", and only the {top} most rated (similar_items_top)"
        ));
    }
    why
}
