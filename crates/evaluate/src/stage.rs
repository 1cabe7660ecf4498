//! The evaluate stage: load the split and every upstream model, compute the metrics, write
//! metrics.json, metrics.parquet, crosstab.parquet, report.md and the plots.

use crate::baselines::{Baseline, Fitted, MOST_POPULAR};
use crate::config::Config;
use crate::crosstab::{self, Crosstab};
use crate::data::{ByUser, user_counts};
use crate::error::EvaluateError;
use crate::metrics::ranking::{Popularity, RankingTask, Scorer, evaluate_ranking};
use crate::metrics::rating::{accuracy, by_activity, rating_metrics};
use crate::results::{
    ActivityRow, Evaluation, ModelInfo, PartResult, RankingRow, RatingRow, Role, metrics_batch,
};
use crate::rng::SplitMix64;
use crate::scoring::ModelScorer;
use crate::{history, plots, report};
use recpipe_core::layout;
use recpipe_core::math::Scored;
use recpipe_core::model::Model;
use recpipe_core::ratings::Catalog;
use recpipe_core::{Goal, Headline, Inputs, OutDir, Outputs, Progress, Ratings, Stage};
use std::time::Instant;

pub struct EvaluateStage;

impl Stage for EvaluateStage {
    const KIND: &'static str = "evaluate";
    // 2: the summary holds P@k beside NDCG@k.
    const FORMAT_VERSION: u32 = 2;
    type Config = Config;
    type Error = EvaluateError;
    const HEADLINES: &'static [Headline] = &[
        Headline {
            path: "parts.*.*.rmse",
            goal: Goal::Minimize,
            label: "RMSE of a model on a part",
        },
        Headline {
            path: "parts.*.*.mae",
            goal: Goal::Minimize,
            label: "MAE of a model on a part",
        },
        Headline {
            path: "parts.*.*.p@*",
            goal: Goal::Maximize,
            label: "precision at k of a model on a part",
        },
        Headline {
            path: "parts.*.*.ndcg@*",
            goal: Goal::Maximize,
            label: "NDCG at k of a model on a part",
        },
    ];
    const REPORT: Option<&'static str> = Some(recpipe_core::layout::evaluate::REPORT);
    const SIGNATURES: &'static [&'static [&'static str]] =
        &[&[recpipe_core::layout::evaluate::METRICS_JSON]];

    fn validate(cfg: &Self::Config) -> std::result::Result<(), Self::Error> {
        cfg.validate()
    }

    fn run(
        cfg: &Config,
        inputs: &Inputs,
        out: &OutDir,
        progress: &Progress,
    ) -> Result<Outputs, EvaluateError> {
        run(cfg, inputs, out, progress)
    }
}

struct Loaded {
    name: String,
    dir: std::path::PathBuf,
    model: Model,
}

/// File names from stage names: anything but [A-Za-z0-9_-] becomes `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Every upstream model, checked against the id space of the split (`n_users`, `n_items`:
/// the largest over train and the evaluated parts).
fn load_models(
    inputs: &Inputs,
    (n_users, n_items): (u32, u32),
) -> Result<Vec<Loaded>, EvaluateError> {
    let arts = inputs.all("train");
    if arts.is_empty() {
        return Err(EvaluateError::NoModel);
    }
    let reserved: Vec<&str> = Baseline::ALL
        .iter()
        .map(|b| b.name())
        .chain([MOST_POPULAR])
        .collect();
    let mut out = Vec::new();
    for a in arts {
        if reserved.contains(&a.stage.as_str()) {
            return Err(EvaluateError::NameClash(a.stage.clone()));
        }
        let model = Model::load(&a.dir)?;
        let m = &model.meta;
        // Indices past the model's tables would panic in scoring; say it here instead.
        if m.n_users < n_users || m.n_items < n_items {
            return Err(EvaluateError::IdSpace {
                stage: a.stage.clone(),
                dir: a.dir.clone(),
                model_users: m.n_users,
                model_items: m.n_items,
                split_users: n_users,
                split_items: n_items,
            });
        }
        out.push(Loaded {
            name: a.stage.clone(),
            dir: a.dir.clone(),
            model,
        });
    }
    Ok(out)
}

/// Users of the part to rank: all, or a seeded sample of `cfg.ranking_users`.
fn ranking_users(cfg: &Config, part: &ByUser) -> Vec<u32> {
    let users = part.active_users();
    if cfg.ranking_users == 0 || cfg.ranking_users >= users.len() {
        users
    } else {
        SplitMix64::new(cfg.seed).sample_sorted(&users, cfg.ranking_users)
    }
}

fn model_predictions(m: &Model, part: &Ratings) -> (Vec<f32>, Option<f64>) {
    let pred = m.predict(&part.user, &part.item);
    let acc = m
        .meta
        .classes
        .as_deref()
        .map(|classes| accuracy(&part.rating, &pred, classes));
    (pred, acc)
}

pub fn run(
    cfg: &Config,
    inputs: &Inputs,
    out: &OutDir,
    progress: &Progress,
) -> Result<Outputs, EvaluateError> {
    let started = Instant::now();
    cfg.validate()?;
    let split = inputs.nearest("split")?;
    let train = Ratings::read(split.file(layout::split::TRAIN))?;
    let parts = read_parts(cfg, split)?;
    let id_space = parts
        .iter()
        .fold((train.n_users, train.n_items), |(u, i), (_, p)| {
            (u.max(p.n_users), i.max(p.n_items))
        });
    crate::memory::check(inputs, &train, &parts, id_space.1 as usize, cfg.baselines)?;
    let models = load_models(inputs, id_space)?;
    let activity = user_counts(&train);
    let ctx = Context {
        cfg,
        fitted: Fitted::fit(&train),
        train_by_user: ByUser::build(&train),
        n_train_users: activity.iter().filter(|&&c| c > 0).count(),
        activity,
    };

    let n_rankers = models.len() + 1;
    let bar = progress.count((parts.len() * n_rankers) as u64, "evaluate");
    let mut results = Vec::new();
    let mut plot_data: Vec<(String, Vec<f32>)> = Vec::new();
    for (pi, (part_name, part)) in parts.iter().enumerate() {
        let (rating, act, preds) = ctx.rating_rows(&models, part, pi == 0);
        plot_data.extend(preds);
        let part_by_user = ByUser::build(part);
        let ranking = ctx.ranking_rows(&models, part_name, &part_by_user, &|| bar.inc(1));
        results.push(PartResult {
            part: part_name.clone(),
            n_ratings: part.len(),
            n_users: part_by_user.active_users().len(),
            improvements: PartResult::improvements(&rating),
            rating,
            ranking,
            activity: act,
        });
    }
    bar.finish_and_clear();

    let crosstab = if cfg.crosstab_size > 0 {
        Some(build_crosstab(inputs, &train, cfg.crosstab_size))
    } else {
        None
    };

    let mut eval = Evaluation {
        k: cfg.k,
        relevance_threshold: cfg.relevance_threshold,
        relevance: cfg.relevance,
        models: models.iter().map(model_info).collect(),
        parts: results,
        plots: Vec::new(),
        seconds: 0.0,
    };
    if cfg.plots {
        eval.plots = write_plots(out, &models, &parts[0], &plot_data, &eval.parts[0])?;
    }
    eval.seconds = started.elapsed().as_secs_f64();
    write_tables(out, &eval, crosstab.as_ref())?;

    let mut lines = report::lines(&eval);
    lines.push("report: report.md".to_string());
    Ok(Outputs {
        summary: summary(&eval),
        lines,
    })
}

/// The evaluated parts of the split that exist and are not empty; an error when none is.
fn read_parts(
    cfg: &Config,
    split: &recpipe_core::Artifact,
) -> Result<Vec<(String, Ratings)>, EvaluateError> {
    let mut parts = Vec::new();
    for name in &cfg.parts {
        let path = split.file(&format!("{name}.parquet"));
        // A split without a test part may not write the file at all.
        if !path.exists() {
            continue;
        }
        let r = Ratings::read(&path)?;
        if !r.is_empty() {
            parts.push((name.clone(), r));
        }
    }
    if parts.is_empty() {
        return Err(EvaluateError::NothingToEvaluate {
            parts: cfg.parts.join(", "),
            dir: split.dir.clone(),
        });
    }
    Ok(parts)
}

fn model_info(m: &Loaded) -> ModelInfo {
    ModelInfo {
        name: m.name.clone(),
        kind: m.model.meta.model,
        k: m.model.meta.k,
        n_users: m.model.meta.n_users,
        n_items: m.model.meta.n_items,
        best_epoch: m.model.meta.best_epoch,
    }
}

/// What every part is measured against: the train ratings, grouped and fitted once.
struct Context<'a> {
    cfg: &'a Config,
    fitted: Fitted,
    train_by_user: ByUser,
    /// Train ratings per user, for the activity buckets.
    activity: Vec<u32>,
    n_train_users: usize,
}

impl Context<'_> {
    /// Rating metrics of every model, then every baseline, overall and by user activity;
    /// with `keep_preds`, the models' predictions too (for the plots).
    #[allow(clippy::type_complexity)]
    fn rating_rows(
        &self,
        models: &[Loaded],
        part: &Ratings,
        keep_preds: bool,
    ) -> (Vec<RatingRow>, Vec<ActivityRow>, Vec<(String, Vec<f32>)>) {
        let (mut rating, mut act, mut preds) = (Vec::new(), Vec::new(), Vec::new());
        let activity_row = |name: &str, pred: &[f32]| ActivityRow {
            name: name.to_string(),
            buckets: by_activity(
                &part.user,
                &part.rating,
                pred,
                &self.activity,
                &self.cfg.activity_buckets,
            ),
        };
        // A ranking model's scores are not ratings: it has no rating metrics.
        for m in models.iter().filter(|m| !m.model.meta.model.is_ranking()) {
            let (pred, acc) = model_predictions(&m.model, part);
            let mut metrics = rating_metrics(Scored {
                pred: &pred,
                truth: &part.rating,
            });
            metrics.accuracy = acc;
            rating.push(RatingRow {
                name: m.name.clone(),
                role: Role::Model,
                metrics,
            });
            act.push(activity_row(&m.name, &pred));
            if keep_preds {
                preds.push((m.name.clone(), pred));
            }
        }
        if self.cfg.baselines {
            for b in Baseline::ALL {
                let pred = self.fitted.predict(b, &part.user, &part.item);
                rating.push(RatingRow {
                    name: b.name().to_string(),
                    role: Role::Baseline,
                    metrics: rating_metrics(Scored {
                        pred: &pred,
                        truth: &part.rating,
                    }),
                });
                act.push(activity_row(b.name(), &pred));
            }
        }
        (rating, act, preds)
    }

    /// Ranking metrics of every model, then of most-popular; `tick` after each.
    fn ranking_rows(
        &self,
        models: &[Loaded],
        part_name: &str,
        part_by_user: &ByUser,
        tick: &dyn Fn(),
    ) -> Vec<RankingRow> {
        let users = ranking_users(self.cfg, part_by_user);
        let task = RankingTask {
            train: &self.train_by_user,
            part: part_by_user,
            popularity: &self.fitted.popularity,
            n_train_users: self.n_train_users,
            k: self.cfg.k,
            relevance_threshold: self.cfg.threshold(),
        };
        let popularity = Popularity {
            scores: self.fitted.popularity.iter().map(|&c| c as f32).collect(),
        };
        let mut rankers: Vec<(&str, Role, &dyn Scorer)> = Vec::new();
        let scorers: Vec<ModelScorer> = models.iter().map(|m| ModelScorer(&m.model)).collect();
        for (m, s) in models.iter().zip(&scorers) {
            rankers.push((&m.name, Role::Model, s));
        }
        // Most-popular is in every ranking table: the bar a top-N list must clear.
        rankers.push((MOST_POPULAR, Role::Baseline, &popularity));
        let mut ranking = Vec::new();
        for (name, role, scorer) in rankers {
            let t = Instant::now();
            let metrics = evaluate_ranking(scorer, &users, &task);
            let seconds = t.elapsed().as_secs_f64();
            tracing::debug!(
                part = part_name,
                model = name,
                users = users.len(),
                seconds,
                "ranked"
            );
            ranking.push(RankingRow {
                name: name.to_string(),
                role,
                metrics,
                seconds,
            });
            tick();
        }
        ranking
    }
}

/// crosstab.parquet (when built), metrics.parquet, metrics.json and report.md.
fn write_tables(
    out: &OutDir,
    eval: &Evaluation,
    crosstab: Option<&Crosstab>,
) -> Result<(), EvaluateError> {
    if let Some(c) = crosstab {
        recpipe_core::parquet_io::write_batches(
            out.path(layout::evaluate::CROSSTAB),
            &[c.to_batch()],
        )?;
    }
    recpipe_core::parquet_io::write_batches(
        out.path(layout::evaluate::METRICS),
        &[metrics_batch(&eval.rows())],
    )?;
    recpipe_core::fsutil::write_json(out.path(layout::evaluate::METRICS_JSON), eval)?;
    recpipe_core::fsutil::write_atomic(
        out.path(layout::evaluate::REPORT),
        report::markdown(eval, crosstab).as_bytes(),
    )?;
    Ok(())
}

/// The crosstab of the full ratings when an ingest artifact is upstream (titles, original
/// ids), else of the train part with dense indices.
fn build_crosstab(inputs: &Inputs, train: &Ratings, n: usize) -> Crosstab {
    if let Ok(ingest) = inputs.nearest("ingest") {
        let catalog = Catalog::read(&ingest.dir)
            .inspect_err(|e| tracing::warn!("crosstab without titles: {e}"))
            .ok();
        let all = Ratings::read(ingest.file(layout::ingest::RATINGS))
            .inspect_err(|e| tracing::warn!("crosstab of train only: {e}"))
            .ok();
        return crosstab::build(all.as_ref().unwrap_or(train), catalog.as_ref(), n);
    }
    crosstab::build(train, None, n)
}

fn write_plots(
    out: &OutDir,
    models: &[Loaded],
    (part_name, part): &(String, Ratings),
    preds: &[(String, Vec<f32>)],
    result: &PartResult,
) -> Result<Vec<String>, EvaluateError> {
    let mut written = Vec::new();
    for m in models {
        let safe = file_safe(&m.name);
        if let Some(h) =
            history::read(&m.dir.join(layout::train::HISTORY))?.filter(|h| !h.epoch.is_empty())
        {
            let name = layout::evaluate::learning_curve(&safe);
            plots::learning_curve(&out.path(&name), &m.name, &h)?;
            written.push(name);
        }
    }
    for (model, pred) in preds {
        let name = layout::evaluate::rating_distribution(&file_safe(model), part_name);
        plots::rating_distribution(
            &out.path(&name),
            &format!("Ratings in {part_name}: actual vs {model}"),
            &part.rating,
            pred,
        )?;
        written.push(name);
    }
    let rows: Vec<(String, Vec<_>)> = result
        .activity
        .iter()
        .map(|a| (a.name.clone(), a.buckets.clone()))
        .collect();
    if !rows.is_empty() {
        let name = layout::evaluate::error_by_activity(part_name);
        plots::error_by_activity(
            &out.path(&name),
            &format!("RMSE by user activity ({part_name})"),
            &rows,
        )?;
        written.push(name);
    }
    Ok(written)
}

fn summary(eval: &Evaluation) -> serde_json::Value {
    let mut parts = serde_json::Map::new();
    for p in &eval.parts {
        let mut models = serde_json::Map::new();
        for r in &p.rating {
            let mut m = serde_json::json!({ "rmse": r.metrics.rmse, "mae": r.metrics.mae });
            if let Some(rk) = p.ranking.iter().find(|x| x.name == r.name) {
                m[format!("p@{}", eval.k)] = rk.metrics.precision.into();
                m[format!("ndcg@{}", eval.k)] = rk.metrics.ndcg.into();
            }
            models.insert(r.name.clone(), m);
        }
        // Ranking models: ranking metrics only.
        for rk in p.ranking.iter().filter(|x| x.role == Role::Model) {
            if !models.contains_key(&rk.name) {
                models.insert(
                    rk.name.clone(),
                    serde_json::json!({
                        format!("p@{}", eval.k): rk.metrics.precision,
                        format!("ndcg@{}", eval.k): rk.metrics.ndcg,
                    }),
                );
            }
        }
        if let Some(rk) = p.ranking.iter().find(|x| x.name == MOST_POPULAR) {
            models.insert(
                MOST_POPULAR.into(),
                serde_json::json!({
                    format!("p@{}", eval.k): rk.metrics.precision,
                    format!("ndcg@{}", eval.k): rk.metrics.ndcg,
                }),
            );
        }
        parts.insert(p.part.clone(), models.into());
    }
    serde_json::json!({
        "parts": parts,
        "report": layout::evaluate::REPORT,
        "plots": eval.plots,
        "seconds": eval.seconds,
    })
}
