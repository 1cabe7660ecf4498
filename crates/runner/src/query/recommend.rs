//! `recpipe recommend PIPELINE --user ID`: the user's rows of recommendations.parquet.

use super::RecommendArgs;
use super::items::resolve_user;
use super::locate::{fresh_dirs, pick_stage};
use super::print::{RankedCols, RankedNames, ranked};
use super::table::Table;
use crate::cache::Store;
use crate::pipeline::Pipeline;
use crate::stages;
use anyhow::{Result, bail};
use recpipe_core::layout;

pub fn recommend(a: &RecommendArgs, store: &Store) -> Result<()> {
    let p = Pipeline::load(&a.pipeline.pipeline, &a.pipeline.sets)?;
    let i = pick_stage(&p, stages::EXPORT, a.export.stage.as_deref())?;
    let dir = fresh_dirs(&p, store, &[i])?.remove(0);
    let name = &p.stages[i].name;
    let recs = Table::open(
        &dir,
        layout::export::RECOMMENDATIONS,
        &format!("stage `{name}` was run with recommendations_n = 0; set it above 0"),
    )?;
    let users = recs.ids("user_id")?;
    let (ranks, items, titles, scores) = (
        recs.u32s("rank")?,
        recs.ids("item_id")?,
        recs.texts("title")?,
        recs.f32s("score")?,
    );
    let user = a.user.trim();
    let rows: Vec<usize> = (0..users.len()).filter(|&r| users[r] == user).collect();
    if rows.is_empty() {
        let known = Table::open(
            &dir,
            layout::export::USER_EMBEDDINGS,
            "the export is incomplete",
        )?;
        resolve_user(&known.ids("user_id")?, user)?;
        bail!(
            "user `{user}` has no recommendations in {}",
            recs.path.display()
        );
    }
    let rows = super::top_rows(
        rows,
        &ranks,
        a.n,
        "items per user",
        &format!("{name}.recommendations_n"),
    );
    let names = RankedNames {
        query: ("user_id", user),
        id: "item_id",
        title: "title",
        score: "score",
    };
    ranked(
        &rows,
        &RankedCols {
            ranks: &ranks,
            ids: &items,
            titles: &titles,
            scores: &scores,
        },
        &names,
        a.export.flags.json,
    );
    Ok(())
}
