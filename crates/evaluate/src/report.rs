//! report.md and the compact table printed at the end of a pipeline run.

use crate::crosstab::Crosstab;
use crate::results::{Evaluation, PartResult, Role};
use std::fmt::Write;

fn f(v: f64, digits: usize) -> String {
    if v.is_finite() {
        let s = format!("{v:.digits$}");
        // A value that rounds to zero prints as 0, not -0.000.
        match s.strip_prefix('-') {
            Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
            _ => s,
        }
    } else {
        "–".to_string()
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_string(), |v| f(v, digits))
}

/// Markdown cells must not contain pipes or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// The best model of a part by RMSE, for the headline.
pub fn best_model(p: &PartResult) -> Option<&crate::results::RatingRow> {
    p.rating
        .iter()
        .filter(|r| r.role == Role::Model)
        .min_by(|a, b| a.metrics.rmse.total_cmp(&b.metrics.rmse))
}

/// How a row is labelled: a model as its stage with what it is (`train (dot_bias k=50)`), a
/// baseline by its name.
pub fn label(eval: &Evaluation, name: &str) -> String {
    match eval.models.iter().find(|m| m.name == name) {
        Some(m) if m.kind.is_item_item() => format!("{name} ({})", m.kind),
        Some(m) => format!("{name} ({} k={})", m.kind, m.k),
        None => name.to_string(),
    }
}

fn part_section(out: &mut String, p: &PartResult, eval: &Evaluation) {
    let _ = writeln!(
        out,
        "## {} ({} ratings, {} users)\n",
        p.part, p.n_ratings, p.n_users
    );
    rating_table(out, p, eval);
    improvements_table(out, p, eval);
    ranking_table(out, p, eval);
    activity_table(out, p);
    let _ = writeln!(out);
}

/// RMSE, MAE, R² (and accuracy for classifiers) of every model and baseline.
fn rating_table(out: &mut String, p: &PartResult, eval: &Evaluation) {
    let classifier = p.rating.iter().any(|r| r.metrics.accuracy.is_some());
    let _ = writeln!(out, "### Rating prediction\n");
    let _ = write!(out, "| model | role | RMSE | MAE | R² |");
    let _ = writeln!(out, "{}", if classifier { " accuracy |" } else { "" });
    let _ = write!(out, "|---|---|---:|---:|---:|");
    let _ = writeln!(out, "{}", if classifier { "---:|" } else { "" });
    for r in &p.rating {
        let m = &r.metrics;
        let role = match r.role {
            Role::Model => "model",
            Role::Baseline => "baseline",
        };
        let name = if r.role == Role::Model {
            format!("**{}**", cell(&label(eval, &r.name)))
        } else {
            cell(&r.name)
        };
        let _ = write!(
            out,
            "| {name} | {role} | {} | {} | {} |",
            f(m.rmse, 4),
            f(m.mae, 4),
            opt(m.r2, 3)
        );
        let _ = writeln!(
            out,
            "{}",
            if classifier {
                format!(" {} |", opt(m.accuracy, 3))
            } else {
                String::new()
            }
        );
    }
    // Ranking models predict no ratings: a row of dashes says so rather than leaving them out.
    for m in eval.models.iter().filter(|m| m.kind.is_ranking()) {
        let _ = writeln!(
            out,
            "| **{}** | model (ranking) | — | — | — |{}",
            cell(&label(eval, &m.name)),
            if classifier { " — |" } else { "" }
        );
    }
}

/// Precision@k of a ranker over most-popular's on the same part, when both are there.
pub fn vs_popular(p: &PartResult, precision: f64) -> Option<f64> {
    p.ranking
        .iter()
        .find(|r| r.name == crate::baselines::MOST_POPULAR)
        .map(|pop| precision / pop.metrics.precision)
        .filter(|r| r.is_finite())
}

/// How relevance was decided, for the ranking table's caption.
fn relevance_words(eval: &Evaluation) -> String {
    match eval.relevance {
        crate::config::Relevance::Any => "every held-out interaction".into(),
        crate::config::Relevance::Threshold => format!("rating ≥ {}", eval.relevance_threshold),
    }
}

/// How far each model's RMSE is below each baseline's.
fn improvements_table(out: &mut String, p: &PartResult, eval: &Evaluation) {
    if p.improvements.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### Model vs baselines (RMSE, lower is better)\n");
    let _ = writeln!(
        out,
        "| model | baseline | baseline RMSE | model RMSE | gain | gain % |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
    for i in &p.improvements {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:+.4} | {:+.1}% |",
            cell(&label(eval, &i.model)),
            cell(&i.baseline),
            f(i.baseline_rmse, 4),
            f(i.model_rmse, 4),
            i.rmse_gain,
            i.rmse_gain_pct
        );
    }
    let _ = writeln!(
        out,
        "\nA positive gain means the model's RMSE is that much below the baseline's."
    );
}

/// The top-k metrics of every ranker.
fn ranking_table(out: &mut String, p: &PartResult, eval: &Evaluation) {
    let Some(first) = p.ranking.first() else {
        return;
    };
    let k = eval.k;
    let _ = writeln!(
        out,
        "\n### Ranking @{k}\n\n{} users ranked over every item they did not rate in train; \
         {} of them have at least one relevant item ({}) and form the averages.\n",
        first.metrics.n_users,
        first.metrics.n_users_with_relevant,
        relevance_words(eval)
    );
    let _ = writeln!(
        out,
        "| model | P@{k} | vs most_popular | R@{k} | NDCG@{k} | MAP@{k} | hit rate | coverage | novelty | seconds |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &p.ranking {
        let m = &r.metrics;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&label(eval, &r.name)),
            f(m.precision, 4),
            vs_popular(p, m.precision).map_or("–".into(), |x| format!("{x:.2}×")),
            f(m.recall, 4),
            f(m.ndcg, 4),
            f(m.map, 4),
            f(m.hit_rate, 3),
            f(m.coverage, 3),
            f(m.novelty, 2),
            f(r.seconds, 3)
        );
    }
}

/// RMSE per user-activity bucket, one column per model or baseline.
fn activity_table(out: &mut String, p: &PartResult) {
    let Some(first) = p.activity.first() else {
        return;
    };
    let _ = writeln!(
        out,
        "\n### RMSE by user activity (train ratings per user)\n"
    );
    let _ = write!(out, "| activity | users | ratings |");
    for a in &p.activity {
        let _ = write!(out, " {} |", cell(&a.name));
    }
    let _ = write!(out, "\n|---|---:|---:|");
    for _ in &p.activity {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out);
    for (b, bucket) in first.buckets.iter().enumerate() {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            bucket.label, bucket.n_users, bucket.n_ratings
        );
        for a in &p.activity {
            let _ = write!(out, " {} |", f(a.buckets[b].rmse, 4));
        }
        let _ = writeln!(out);
    }
}

fn crosstab_section(out: &mut String, c: &Crosstab) {
    let _ = writeln!(
        out,
        "## The most active users × the most rated movies\n\n\
         Ratings of the top {} users (rows, by number of ratings) for the top {} movies \
         (columns, by number of ratings); blank where the user did not rate the movie. \
         The same table is in crosstab.parquet.\n",
        c.users.len(),
        c.items.len()
    );
    let _ = write!(out, "| user |");
    for t in &c.items {
        let _ = write!(out, " {} |", cell(&truncate(t, 22)));
    }
    let _ = write!(out, "\n|---|");
    for _ in &c.items {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out);
    for (u, row) in c.users.iter().zip(&c.cells) {
        let _ = write!(out, "| {} |", cell(u));
        for v in row {
            match v {
                Some(v) => {
                    let _ = write!(out, " {v:.1} |");
                }
                None => {
                    let _ = write!(out, "  |");
                }
            }
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out);
}

const DEFINITIONS: &str = "## Definitions

- **RMSE / MAE**: root mean squared / mean absolute error of the predicted rating. **R²**: 1 − SSE/SST around the part's own mean rating (0 = as good as predicting that mean).
- **accuracy** (classifiers): share of ratings whose prediction rounds to the same rating class.
- **Baselines**, fitted on the same train part: `global_mean`; `user_mean` and `item_mean` (the global mean for users/items absent from train); `bias_baseline` = μ + b_u + b_i with regularised biases (ALS, 10 sweeps, reg_u = 15, reg_i = 10: Surprise's `BaselineOnly`), clipped to the train rating range; `most_popular` ranks items by train rating count.
- **Ranking**: every item the user did not rate in train is a candidate; ties in score go to the lower item index. Relevant = held-out rating ≥ the threshold, or with `relevance = \"any\"` every held-out interaction. Ranking models (`ease`, `ials`, `bpr`) score items, not ratings: they have no RMSE (—). **vs most_popular**: P@k over most-popular's P@k on the same part. P@k = hits / k (even when fewer than k candidates exist); R@k = hits / relevant; NDCG@k with binary gains and the ideal DCG over min(relevant, k) items; MAP@k divides by min(relevant, k); hit rate = share of users with at least one hit. Users with no relevant item are left out of these averages. **coverage**: distinct items recommended / all items. **novelty**: mean −log2(share of train users who rated the item) over every recommended item (higher = less obvious picks).
- **Activity**: a user's number of ratings in train.
";

pub fn markdown(eval: &Evaluation, crosstab: Option<&Crosstab>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Evaluation report\n");
    for m in &eval.models {
        let _ = writeln!(
            out,
            "- model **{}**: {} ({} users × {} items, k = {}{})",
            cell(&m.name),
            m.kind,
            m.n_users,
            m.n_items,
            m.k,
            m.best_epoch
                .map_or(String::new(), |e| format!(", best epoch {e}"))
        );
    }
    let _ = writeln!(out);
    for p in &eval.parts {
        if let Some(best) = best_model(p) {
            let bias = p.improvements.iter().find(|i| {
                i.model == best.name && i.baseline == crate::baselines::Baseline::Bias.name()
            });
            let _ = write!(
                out,
                "**{}**: best model `{}` with RMSE {}",
                p.part,
                label(eval, &best.name),
                f(best.metrics.rmse, 4)
            );
            if let Some(i) = bias {
                let _ = write!(
                    out,
                    " ({:+.1}% vs the bias baseline's {})",
                    i.rmse_gain_pct,
                    f(i.baseline_rmse, 4)
                );
            }
            let _ = writeln!(out, ".\n");
        }
    }
    for p in &eval.parts {
        part_section(&mut out, p, eval);
    }
    if !eval.plots.is_empty() {
        let _ = writeln!(out, "## Plots\n");
        for p in &eval.plots {
            let _ = writeln!(out, "![{p}]({p})\n");
        }
    }
    if let Some(c) = crosstab.filter(|c| !c.users.is_empty()) {
        crosstab_section(&mut out, c);
    }
    out.push_str(DEFINITIONS);
    out
}

/// The compact table printed at the end of a run: one block per part, a row per model and
/// baseline.
pub fn lines(eval: &Evaluation) -> Vec<String> {
    let mut out = Vec::new();
    let k = eval.k;
    for p in &eval.parts {
        out.push(format!(
            "{} ({} ratings, {} users)",
            p.part, p.n_ratings, p.n_users
        ));
        let width = p
            .rating
            .iter()
            .map(|r| label(eval, &r.name).chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let ndcg_head = format!("NDCG@{k}");
        let p_head = format!("P@{k}");
        out.push(format!(
            "  {:width$}  {:>7}  {:>7}  {:>7}  {:>8}  {:>8}",
            "model", "RMSE", "MAE", "R²", p_head, ndcg_head
        ));
        let ranking = |name: &str| p.ranking.iter().find(|r| r.name == name);
        let ranks_only = |name: &str| {
            eval.models
                .iter()
                .any(|m| m.name == name && m.kind.is_ranking())
        };
        let mut names: Vec<(&str, Option<&crate::metrics::rating::RatingMetrics>)> = p
            .rating
            .iter()
            .map(|r| (r.name.as_str(), Some(&r.metrics)))
            .collect();
        for r in &p.ranking {
            if !names.iter().any(|(n, _)| *n == r.name) {
                names.push((r.name.as_str(), None));
            }
        }
        let width = names
            .iter()
            .map(|(n, _)| label(eval, n).chars().count())
            .max()
            .unwrap_or(5)
            .max(width);
        out.pop();
        out.push(format!(
            "  {:width$}  {:>7}  {:>7}  {:>7}  {:>8}  {:>8}",
            "model", "RMSE", "MAE", "R²", p_head, ndcg_head
        ));
        for (name, m) in names {
            let rk = ranking(name);
            let blank = if ranks_only(name) { "—" } else { "" };
            out.push(format!(
                "  {:width$}  {:>7}  {:>7}  {:>7}  {:>8}  {:>8}",
                label(eval, name),
                m.map_or(blank.into(), |m| f(m.rmse, 4)),
                m.map_or(blank.into(), |m| f(m.mae, 4)),
                m.map_or(blank.into(), |m| opt(m.r2, 3)),
                rk.map_or("".into(), |r| f(r.metrics.precision, 4)),
                rk.map_or("".into(), |r| f(r.metrics.ndcg, 4)),
            ));
        }
        for i in p
            .improvements
            .iter()
            .filter(|i| i.baseline == crate::baselines::Baseline::Bias.name())
        {
            let verb = if i.rmse_gain >= 0.0 {
                "beats"
            } else {
                "trails"
            };
            out.push(format!(
                "  {} {verb} bias_baseline by {:.4} RMSE ({:.1}%)",
                label(eval, &i.model),
                i.rmse_gain.abs(),
                i.rmse_gain_pct.abs()
            ));
        }
        for r in p.ranking.iter().filter(|r| ranks_only(&r.name)) {
            if let Some(x) = vs_popular(p, r.metrics.precision) {
                out.push(format!(
                    "  {} P@{k} is {x:.2}× most_popular's",
                    label(eval, &r.name)
                ));
            }
        }
        out.extend(ranking_verdicts(eval, p));
    }
    out
}

/// A line per model that ranks below most-popular on precision@k: the table shows it, and
/// the summary says it too, so a weak top-N list is never read as a success.
fn ranking_verdicts(eval: &Evaluation, p: &crate::results::PartResult) -> Vec<String> {
    let find = |name: &str| p.ranking.iter().find(|r| r.name == name);
    let Some(popular) = find(crate::baselines::MOST_POPULAR) else {
        return Vec::new();
    };
    p.ranking
        .iter()
        .filter(|r| r.role == crate::results::Role::Model)
        .filter(|r| r.metrics.precision < popular.metrics.precision)
        .map(|r| {
            let ranking = eval
                .models
                .iter()
                .any(|m| m.name == r.name && m.kind.is_ranking());
            let why = if ranking {
                "tune the ranking model before using its recommendations"
            } else {
                "a model fitted to ratings ranks poorly"
            };
            format!(
                "  {} ranks below most_popular: P@{k} {} vs {} ({why})",
                label(eval, &r.name),
                f(r.metrics.precision, 4),
                f(popular.metrics.precision, 4),
                k = eval.k,
            )
        })
        .collect()
}
