//! Checks made before an export reads anything big: that it was given one model (an export
//! writes one set of tables; with two train inputs it would silently pick one), and that
//! the machine can hold the tables, the neighbour and recommendation score blocks and PCA.

use crate::config::Config;
use crate::error::ExportError;
use crate::neighbors::block_rows;
use recpipe_core::layout;
use recpipe_core::memory::{Need, check_need, product};
use recpipe_core::model::ModelMeta;
use recpipe_core::{Artifact, Inputs};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Train stages' upstream train stages, from their manifests (a blend lists its models).
fn upstream_trains(a: &Artifact) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(a.dir.join(layout::MANIFEST)) else {
        return Vec::new();
    };
    let Ok(m) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    m["inputs"]["upstream"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["kind"] == "train")
        .filter_map(|u| u["dir"].as_str().map(PathBuf::from))
        .collect()
}

/// The models an export reads: `tables` gives the embeddings, neighbours and PCA, and
/// `recommend` the recommendations.
#[derive(Debug, Clone, Copy)]
pub struct Chosen<'a> {
    pub tables: &'a Artifact,
    pub recommend: &'a Artifact,
}

/// Whether a train artifact holds a ranking model (`ease`, `ials`, `bpr`), from model.json.
fn is_ranking(a: &Artifact) -> bool {
    recpipe_core::fsutil::read_json::<ModelMeta>(a.dir.join(layout::train::META))
        .is_ok_and(|m| m.model.is_ranking())
}

/// The models to export. The train artifacts that are not themselves inputs of another
/// train artifact (the models a blend combines are not exported beside it) must be one
/// model, or one rating model and one ranking model: then the recommendations come from the
/// ranking model (its top-N beats a rating model's) and the tables from the rating model.
pub fn choose(inputs: &Inputs) -> Result<Chosen<'_>, ExportError> {
    let trains = inputs.all("train");
    let covered: HashSet<PathBuf> = trains.iter().flat_map(|a| upstream_trains(a)).collect();
    let top: Vec<&Artifact> = trains
        .iter()
        .copied()
        .filter(|a| !covered.contains(&a.dir))
        .collect();
    if let [a, b] = top[..]
        && is_ranking(a) != is_ranking(b)
    {
        let (rank, rate) = if is_ranking(a) { (a, b) } else { (b, a) };
        return Ok(Chosen {
            tables: rate,
            recommend: rank,
        });
    }
    let one = single_model(&top)?;
    let one = one.map_or_else(|| inputs.nearest("train"), Ok)?;
    Ok(Chosen {
        tables: one,
        recommend: one,
    })
}

/// The one model of `top`, or an error naming the stages when there are several.
fn single_model<'a>(top: &[&'a Artifact]) -> Result<Option<&'a Artifact>, ExportError> {
    if top.len() > 1 {
        let names: Vec<&str> = top.iter().map(|a| a.stage.as_str()).collect();
        return Err(ExportError::config(
            "inputs",
            format!(
                "names {} train stages ({}), but an export writes the tables of one model; \
                 give each model its own export stage (e.g. [stages.export_{}] with \
                 inputs = [\"{}\"]); a rating model and a ranking model may share one \
                 (recommendations from the ranking model)",
                top.len(),
                names.join(", "),
                names[1],
                names[1]
            ),
        ));
    }
    Ok(top.first().copied())
}

/// Refuses an export the machine cannot hold, from the model's shape in model.json.
pub fn check_memory(cfg: &Config, model_dir: &Path) -> Result<(), ExportError> {
    let Ok(meta) =
        recpipe_core::fsutil::read_json::<ModelMeta>(model_dir.join(layout::train::META))
    else {
        return Ok(()); // Model::load reports a missing or broken model.json
    };
    let (nu, ni, k) = (meta.n_users as usize, meta.n_items as usize, meta.k);
    let file = std::fs::metadata(model_dir.join(layout::train::WEIGHTS)).map_or(0, |m| m.len());
    let threads = rayon::current_num_threads();
    let mut need = Need::new();
    need.add("model tables", file, 1);
    need.add("embedding tables", product(&[nu + ni, k]), 2 * 4);
    if cfg.normalized || cfg.neighbors > 0 {
        need.add("unit-norm copies", product(&[nu + ni, k]), 2 * 4);
    }
    // The neighbour search and the recommendations run one after the other: one set of
    // per-thread score blocks at a time.
    if cfg.neighbors > 0 || cfg.recommendations_n > 0 {
        need.add("score blocks", product(&[threads, block_rows(ni), ni]), 4);
    }
    need.add("similar-item rows", product(&[ni, cfg.neighbors]), 64);
    need.add(
        "recommendation rows",
        product(&[nu, cfg.recommendations_n]),
        64,
    );
    if cfg.pca_components > 0 {
        need.add("PCA data", product(&[ni, k]), 2 * 8);
        need.add("PCA covariance", product(&[k, k, 3]), 8);
    }
    let hint = format!(
        "neighbors (now {}), recommendations_n (now {}) or pca_components (now {}), or train a \
         smaller k (now {k})",
        cfg.neighbors, cfg.recommendations_n, cfg.pca_components
    );
    check_need("export", &need, &hint)?;
    Ok(())
}
