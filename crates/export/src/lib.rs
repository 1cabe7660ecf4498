//! The export stage: a trained checkpoint → tables people use outside recpipe (DuckDB,
//! Polars, pandas, a vector database, a notebook).
//!
//! | file | columns |
//! |---|---|
//! | item_embeddings.parquet | item_idx u32, item_id, title, genres list<utf8>, n_ratings u32, bias f32, embedding FixedSizeList<f32, k> |
//! | user_embeddings.parquet | user_idx u32, user_id, bias f32, embedding FixedSizeList<f32, k> |
//! | similar_items.parquet | item_idx, item_id, title, rank (1 = nearest), neighbor_idx, neighbor_id, neighbor_title, score (cosine) |
//! | recommendations.parquet | user_idx, user_id, rank (1 = best), item_idx, item_id, title, score (predicted rating; train items excluded) |
//! | pca.parquet | item_idx, item_id, title, pc1..pcC |
//!
//! `normalized = true` adds `*_embeddings_normalized.parquet` (unit-norm rows); `format`
//! adds `.npy` copies of the embeddings and `.csv` copies of every table. Schema metadata
//! of every table holds the recpipe version, the embedding dimension and the model key
//! (the train artifact's directory name). See [`Config`] for the keys.

mod config;
mod error;
mod files;
mod guard;
pub mod neighbors;
pub mod pca;
mod tables;

pub use config::{Config, Format};
pub use error::ExportError;

use arrow_array::{RecordBatch, UInt32Array};
use ndarray::{Array2, ArrayView2};
use recpipe_core::csr::Csr;
use recpipe_core::layout;
use recpipe_core::model::Model;
use recpipe_core::parquet_io::{column, read_batches, write_batches};
use recpipe_core::ratings::Catalog;
use recpipe_core::{Inputs, OutDir, Outputs, Progress, Ratings, Stage, schema};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tables::Meta;

/// The tables' file stems (the export folder's layout is core's).
pub use recpipe_core::layout::export::{
    ITEM_EMBEDDINGS, PCA, RECOMMENDATIONS, SIMILAR_ITEMS, USER_EMBEDDINGS,
};
/// Schema metadata key: "true" on the unit-norm copies of the embeddings.
pub const META_NORMALIZED: &str = "recpipe.normalized";
/// Schema metadata key of similar_items: the similarity measure ("cosine").
pub const META_SIMILARITY: &str = "recpipe.similarity";
/// Schema metadata key of similar_items: `similar_min_ratings` it was computed with.
pub const META_MIN_RATINGS: &str = "recpipe.min_ratings";

pub struct ExportStage;

impl Stage for ExportStage {
    const KIND: &'static str = "export";
    const FORMAT_VERSION: u32 = 1;
    type Config = Config;
    type Error = ExportError;

    fn validate(cfg: &Self::Config) -> std::result::Result<(), Self::Error> {
        cfg.validate()
    }

    fn run(
        cfg: &Config,
        inputs: &Inputs,
        out: &OutDir,
        progress: &Progress,
    ) -> Result<Outputs, ExportError> {
        let chosen = guard::choose(inputs)?;
        let ingest = inputs.nearest("ingest")?;
        let split = if cfg.recommendations_n > 0 {
            Some(inputs.nearest("split")?)
        } else {
            None
        };
        let summary = export(
            cfg,
            &ExportInputs {
                model: &chosen.tables.dir,
                recommender: (chosen.recommend.dir != chosen.tables.dir)
                    .then_some(chosen.recommend.dir.as_path()),
                ingest: &ingest.dir,
                split: split.map(|s| s.dir.as_path()),
            },
            out.dir(),
            progress,
        )?;
        Ok(Outputs {
            lines: summary.lines(),
            summary: serde_json::to_value(&summary).expect("the summary is plain data"),
        })
    }
}

/// The artifact directories an export reads.
#[derive(Debug, Clone, Copy)]
pub struct ExportInputs<'a> {
    /// Train artifact: model.safetensors + model.json. Its directory name is the model key.
    pub model: &'a Path,
    /// Another train artifact whose model writes recommendations.parquet (a ranking model
    /// beside the rating model of `model`); None: `model` writes them.
    pub recommender: Option<&'a Path>,
    /// Ingest artifact: users.parquet, items.parquet (ids, titles, genres, n_ratings).
    pub ingest: &'a Path,
    /// Split artifact: train.parquet, whose items are excluded from recommendations.
    /// Needed only when `recommendations_n > 0`.
    pub split: Option<&'a Path>,
}

/// One written file.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub name: String,
    pub rows: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct NeighborSummary {
    pub item_id: String,
    pub title: String,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub item_id: String,
    pub title: String,
    pub n_ratings: u32,
    pub neighbors: Vec<NeighborSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimilarSummary {
    /// Items with a neighbour list.
    pub items: usize,
    pub neighbors: usize,
    /// The most-rated item's neighbours.
    pub example: Option<Example>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecommendationSummary {
    pub users: usize,
    pub per_user: usize,
    pub rows: usize,
    /// Train ratings whose items were excluded.
    pub train_ratings: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub name: String,
    pub explained_variance_ratio: f64,
    /// Titles with the highest projection.
    pub top: Vec<String>,
    /// Titles with the lowest projection.
    pub bottom: Vec<String>,
}

/// What the export wrote, recorded in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub model_key: String,
    pub model: recpipe_core::model::ModelKind,
    /// The ranking model that wrote recommendations.parquet, when not `model`.
    pub recommender: Option<recpipe_core::model::ModelKind>,
    pub n_users: usize,
    pub n_items: usize,
    pub k: usize,
    pub files: Vec<FileSummary>,
    pub similar_items: Option<SimilarSummary>,
    pub recommendations: Option<RecommendationSummary>,
    pub pca: Vec<Component>,
    pub seconds: f64,
}

impl Summary {
    /// Terminal lines: the files written and a taste of what they hold. File names only:
    /// the runner moves the output directory into the cache after the stage returns.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "exported model {} ({}, k={}): {} items, {} users",
            self.model_key, self.model, self.k, self.n_items, self.n_users
        )];
        if let Some(r) = self.recommender {
            lines.push(format!("recommendations from the ranking model ({r})"));
        }
        for f in &self.files {
            lines.push(format!("  {:<40} {:>10} rows", f.name, f.rows));
        }
        if let Some(ex) = self.similar_items.as_ref().and_then(|s| s.example.as_ref()) {
            let list: Vec<String> = ex
                .neighbors
                .iter()
                .take(5)
                .map(|n| format!("{} ({:.2})", n.title, n.score))
                .collect();
            lines.push(format!(
                "most similar to {} ({} ratings): {}",
                ex.title,
                ex.n_ratings,
                list.join(", ")
            ));
        }
        for c in &self.pca {
            let top: Vec<&str> = c.top.iter().take(3).map(String::as_str).collect();
            let bottom: Vec<&str> = c.bottom.iter().take(3).map(String::as_str).collect();
            lines.push(format!(
                "{} ({:.1}% of variance): + {} | - {}",
                c.name,
                100.0 * c.explained_variance_ratio,
                top.join("; "),
                bottom.join("; ")
            ));
        }
        lines
    }
}

/// The export stage without the runner: reads the artifacts in `inputs`, writes into `out`.
pub fn export(
    cfg: &Config,
    inputs: &ExportInputs<'_>,
    out: &Path,
    progress: &Progress,
) -> Result<Summary, ExportError> {
    cfg.validate()?;
    guard::check_memory(cfg, inputs.model)?;
    if let Some(r) = inputs.recommender {
        guard::check_memory(cfg, r)?;
    }
    let start = Instant::now();
    let model = Model::load(inputs.model)?;
    let recommender = inputs.recommender.map(Model::load).transpose()?;
    let model_key = model_key(inputs.model);
    // An item-item model (ease) has no embeddings: it writes recommendations only.
    let tables = if model.meta.model.is_item_item() {
        None
    } else {
        Some(factors(&model, inputs.model)?)
    };
    let (n_users, n_items) = (model.meta.n_users as usize, model.meta.n_items as usize);
    let k = tables.map_or(0, |(items, _)| items.ncols());
    if let Some(r) = &recommender
        && (r.meta.n_users as usize, r.meta.n_items as usize) != (n_users, n_items)
    {
        return Err(ExportError::input(
            inputs.recommender.unwrap_or(inputs.model),
            format!(
                "the ranking model has {} users × {} items, the rating model {n_users} × \
                 {n_items}: export models trained on the same split",
                r.meta.n_users, r.meta.n_items
            ),
        ));
    }
    let catalog = read_catalog(inputs.ingest, n_users, n_items)?;
    let n_ratings = read_n_ratings(inputs.ingest, n_items)?;
    // Read before any work, so a mismatched split fails in a second, not after the
    // neighbour search.
    let train = read_train(cfg, inputs.split, n_users, n_items)?;

    let mut w = Writer {
        cfg,
        out,
        files: Vec::new(),
        base: vec![
            (schema::META_EMBEDDING_DIM, k.to_string()),
            (schema::META_MODEL_KEY, model_key.clone()),
        ],
    };
    let items_normed = match tables {
        Some(t) => write_embeddings(&mut w, &catalog, &model, t, &n_ratings)?,
        None => None,
    };
    let similar_items = match items_normed.as_ref().filter(|_| cfg.neighbors > 0) {
        Some(normed) => Some(write_similar(
            &mut w,
            &catalog,
            normed.view(),
            &n_ratings,
            progress,
        )?),
        None => None,
    };
    let recommendations = match train {
        Some(train) => Some(write_recommendations(
            &mut w,
            &catalog,
            recommender.as_ref().unwrap_or(&model),
            &train,
            progress,
        )?),
        None => None,
    };
    let pca = if let Some((items, _)) = tables.filter(|_| cfg.pca_components > 0 && k > 0) {
        write_pca(&mut w, &catalog, items)?
    } else {
        Vec::new()
    };

    let summary = Summary {
        model_key,
        model: model.meta.model,
        recommender: recommender.as_ref().map(|r| r.meta.model),
        n_users,
        n_items,
        k,
        files: w.files,
        similar_items,
        recommendations,
        pca,
        seconds: start.elapsed().as_secs_f64(),
    };
    tracing::debug!(
        items = n_items,
        users = n_users,
        files = summary.files.len(),
        seconds = summary.seconds,
        "export done"
    );
    Ok(summary)
}

/// The item and user factor tables; an error for a model without them.
fn factors<'m>(
    model: &'m Model,
    dir: &Path,
) -> Result<(ArrayView2<'m, f32>, ArrayView2<'m, f32>), ExportError> {
    match (model.item_factors(), model.user_factors()) {
        (Some(i), Some(u)) => Ok((i, u)),
        _ => Err(ExportError::input(
            dir,
            format!(
                "model `{}` has no user_factors/item_factors tensors; export needs an \
                 embedding model (dot, dot_bias, ials, bpr)",
                model.meta.model
            ),
        )),
    }
}

/// The ingest catalog, checked against the model's id space.
fn read_catalog(ingest: &Path, n_users: usize, n_items: usize) -> Result<Catalog, ExportError> {
    let catalog = Catalog::read(ingest)?;
    if catalog.n_items() != n_items || catalog.n_users() != n_users {
        return Err(ExportError::input(
            ingest,
            format!(
                "the ingest artifact has {} users and {} items but the model was trained on {} \
                 users and {} items; export the model with the ingest it was trained from",
                catalog.n_users(),
                catalog.n_items(),
                n_users,
                n_items
            ),
        ));
    }
    Ok(catalog)
}

/// The split's train ratings when recommendations are wanted, checked against the model's
/// id space.
fn read_train(
    cfg: &Config,
    split: Option<&Path>,
    n_users: usize,
    n_items: usize,
) -> Result<Option<Ratings>, ExportError> {
    if cfg.recommendations_n == 0 {
        return Ok(None);
    }
    let Some(split) = split else {
        return Err(ExportError::config(
            "recommendations_n",
            format!(
                "= {} needs the split artifact (its train.parquet says which items each \
                 user has seen); give the export a split input, or set recommendations_n = 0",
                cfg.recommendations_n
            ),
        ));
    };
    let train_path = split.join(layout::split::TRAIN);
    let train = Ratings::read(&train_path)?;
    if train.n_users as usize != n_users || train.n_items as usize != n_items {
        return Err(ExportError::input(
            &train_path,
            format!(
                "the split has {} users and {} items but the model was trained on {} \
                 users and {} items; export the model with the split it was trained on",
                train.n_users, train.n_items, n_users, n_items
            ),
        ));
    }
    Ok(Some(train))
}

/// The item and user embedding tables, and their unit-norm copies when configured. Returns
/// the unit-norm item rows when the neighbour search needs them.
fn write_embeddings(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    model: &Model,
    (items, users): (ArrayView2<'_, f32>, ArrayView2<'_, f32>),
    n_ratings: &[u32],
) -> Result<Option<Array2<f32>>, ExportError> {
    let raw = w.meta(&[(META_NORMALIZED, "false")]);
    let b = tables::item_embeddings(catalog, items, n_ratings, model.item_bias(), &raw)?;
    w.table(ITEM_EMBEDDINGS, &b)?;
    w.npy(ITEM_EMBEDDINGS, items)?;
    let b = tables::user_embeddings(catalog, users, model.user_bias(), &raw)?;
    w.table(USER_EMBEDDINGS, &b)?;
    w.npy(USER_EMBEDDINGS, users)?;

    let need_normed = w.cfg.normalized || w.cfg.neighbors > 0;
    let items_normed = need_normed.then(|| neighbors::normalize_rows(items));
    if let Some(normed) = items_normed.as_ref().filter(|_| w.cfg.normalized) {
        let unit = w.meta(&[(META_NORMALIZED, "true")]);
        let name = format!("{ITEM_EMBEDDINGS}_normalized");
        let b =
            tables::item_embeddings(catalog, normed.view(), n_ratings, model.item_bias(), &unit)?;
        w.table(&name, &b)?;
        w.npy(&name, normed.view())?;
        let users_normed = neighbors::normalize_rows(users);
        let name = format!("{USER_EMBEDDINGS}_normalized");
        let b = tables::user_embeddings(catalog, users_normed.view(), model.user_bias(), &unit)?;
        w.table(&name, &b)?;
        w.npy(&name, users_normed.view())?;
    }
    Ok(items_normed)
}

/// similar_items: each query item's nearest items by cosine, among the items with at least
/// `similar_min_ratings` ratings (queries: all of them, or the `similar_items_top` most rated).
fn write_similar(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    normed: ArrayView2<'_, f32>,
    n_ratings: &[u32],
    progress: &Progress,
) -> Result<SimilarSummary, ExportError> {
    let cfg = w.cfg;
    let t = Instant::now();
    let most_rated = most_rated(n_ratings, normed.nrows());
    let candidates: Vec<u32> = (0..normed.nrows() as u32)
        .filter(|&i| n_ratings[i as usize] >= cfg.similar_min_ratings)
        .collect();
    let queries: Vec<u32> = if cfg.similar_items_top == 0 {
        candidates.clone()
    } else {
        let mut q: Vec<u32> = most_rated
            .iter()
            .copied()
            .filter(|&i| n_ratings[i as usize] >= cfg.similar_min_ratings)
            .take(cfg.similar_items_top)
            .collect();
        q.sort_unstable();
        q
    };
    let bar = progress.count(queries.len() as u64, "similar");
    let ranked = neighbors::similar_items(normed, &queries, &candidates, cfg.neighbors, &|n| {
        bar.inc(n as u64)
    });
    bar.finish_and_clear();
    let min = cfg.similar_min_ratings.to_string();
    let meta = w.meta(&[(META_SIMILARITY, "cosine"), (META_MIN_RATINGS, &min)]);
    w.table(
        SIMILAR_ITEMS,
        &tables::similar_items(catalog, &queries, &ranked, &meta)?,
    )?;
    let example = most_rated.first().and_then(|&top| {
        let at = queries.binary_search(&top).ok()?;
        Some(Example {
            item_id: catalog.item_ids.display(top as usize),
            title: title(catalog, top),
            n_ratings: n_ratings[top as usize],
            neighbors: ranked[at]
                .iter()
                .map(|&(i, s)| NeighborSummary {
                    item_id: catalog.item_ids.display(i as usize),
                    title: title(catalog, i),
                    score: s,
                })
                .collect(),
        })
    });
    Ok(SimilarSummary {
        items: queries.len(),
        neighbors: cfg.neighbors,
        example,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// recommendations: every user's top `recommendations_n` items by predicted rating, the
/// items they rated in train left out.
fn write_recommendations(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    model: &Model,
    train: &Ratings,
    progress: &Progress,
) -> Result<RecommendationSummary, ExportError> {
    let t = Instant::now();
    let (n_users, n_items) = (train.n_users as usize, train.n_items as usize);
    let mut seen = Csr::group(
        n_users,
        train.user.iter().copied().zip(train.item.iter().copied()),
    );
    seen.sort_rows();
    let users_all: Vec<u32> = (0..n_users as u32).collect();
    let bar = progress.count(n_users as u64, "recommend");
    let ranked = neighbors::recommend(
        &users_all,
        n_items,
        w.cfg.recommendations_n,
        &|block| model.score_users(block),
        &|u| seen.row(u),
        &|n| bar.inc(n as u64),
    );
    bar.finish_and_clear();
    let b = tables::recommendations(catalog, &users_all, &ranked, &w.base)?;
    let rows = b.num_rows();
    w.table(RECOMMENDATIONS, &b)?;
    Ok(RecommendationSummary {
        users: n_users,
        per_user: w.cfg.recommendations_n,
        rows,
        train_ratings: train.len(),
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// pca: the items projected on their first `pca_components` principal components, and the
/// titles at both ends of each.
fn write_pca(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    items: ArrayView2<'_, f32>,
) -> Result<Vec<Component>, ExportError> {
    let n_items = items.nrows();
    let p = pca::pca(items, w.cfg.pca_components);
    w.table(PCA, &tables::pca(catalog, p.projection.view(), &w.base)?)?;
    let mut components = Vec::new();
    for (c, col) in p.projection.columns().into_iter().enumerate() {
        let mut order: Vec<u32> = (0..n_items as u32).collect();
        order.sort_by(|&a, &b| col[b as usize].total_cmp(&col[a as usize]).then(a.cmp(&b)));
        let n = w.cfg.pca_titles.min(n_items);
        components.push(Component {
            name: format!("pc{}", c + 1),
            explained_variance_ratio: p.explained_ratio[c],
            top: order[..n].iter().map(|&i| title(catalog, i)).collect(),
            bottom: order[n_items - n..]
                .iter()
                .rev()
                .map(|&i| title(catalog, i))
                .collect(),
        });
    }
    Ok(components)
}

/// Writes a table in every configured format and records it.
struct Writer<'a> {
    cfg: &'a Config,
    out: &'a Path,
    files: Vec<FileSummary>,
    /// Schema metadata of every table: the embedding dimension and the model key.
    base: Meta,
}

impl Writer<'_> {
    /// The base metadata plus `extra`.
    fn meta(&self, extra: &[(&'static str, &str)]) -> Meta {
        let mut m = self.base.clone();
        m.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        m
    }

    fn table(&mut self, name: &str, batch: &RecordBatch) -> Result<(), ExportError> {
        let rows = batch.num_rows();
        let file = layout::export::file(name, layout::export::PARQUET);
        write_batches(self.out.join(&file), std::slice::from_ref(batch))?;
        self.files.push(FileSummary { name: file, rows });
        if self.cfg.wants(Format::Csv) {
            let file = layout::export::file(name, layout::export::CSV);
            files::write_csv(&self.out.join(&file), std::slice::from_ref(batch))?;
            self.files.push(FileSummary { name: file, rows });
        }
        Ok(())
    }

    fn npy(&mut self, name: &str, a: ArrayView2<'_, f32>) -> Result<(), ExportError> {
        if self.cfg.wants(Format::Npy) {
            let file = layout::export::file(name, layout::export::NPY);
            files::write_npy(&self.out.join(&file), a)?;
            self.files.push(FileSummary {
                name: file,
                rows: a.nrows(),
            });
        }
        Ok(())
    }
}

/// The train artifact's directory name, after resolving links (`.recpipe/runs/...` points
/// at the cache directory, whose name is the cache key).
fn model_key(dir: &Path) -> String {
    let resolved = std::fs::canonicalize(dir).unwrap_or_else(|_| PathBuf::from(dir));
    resolved
        .file_name()
        .or_else(|| dir.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// n_ratings of items.parquet, by item_idx.
fn read_n_ratings(ingest: &Path, n_items: usize) -> Result<Vec<u32>, ExportError> {
    let path = ingest.join(layout::ingest::ITEMS);
    let (_, batches) = read_batches(&path)?;
    let mut out = Vec::with_capacity(n_items);
    for b in &batches {
        out.extend_from_slice(column::<UInt32Array>(b, "n_ratings", &path)?.values());
    }
    if out.len() != n_items {
        return Err(ExportError::input(
            &path,
            format!("{} rows but the model has {n_items} items", out.len()),
        ));
    }
    Ok(out)
}

/// Item indices by n_ratings, most rated first (lower idx first among equals).
fn most_rated(n_ratings: &[u32], n_items: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n_items as u32).collect();
    order.sort_by(|&a, &b| {
        n_ratings[b as usize]
            .cmp(&n_ratings[a as usize])
            .then(a.cmp(&b))
    });
    order
}

fn title(catalog: &Catalog, idx: u32) -> String {
    catalog
        .titles
        .get(idx as usize)
        .and_then(|t| t.clone())
        .unwrap_or_else(|| format!("item {}", catalog.item_ids.display(idx as usize)))
}
