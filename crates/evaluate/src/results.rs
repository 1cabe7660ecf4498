//! The figures an evaluation produces, shaped once and written three ways: metrics.json
//! (nested, for `jq`), metrics.parquet (long format, for DuckDB/pandas) and report.md.

use crate::metrics::ranking::RankingMetrics;
use crate::metrics::rating::{BucketMetrics, RatingMetrics};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Model,
    Baseline,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The train stage's name in the pipeline.
    pub name: String,
    pub kind: recpipe_core::model::ModelKind,
    pub k: usize,
    pub n_users: u32,
    pub n_items: u32,
    pub best_epoch: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RatingRow {
    pub name: String,
    pub role: Role,
    #[serde(flatten)]
    pub metrics: RatingMetrics,
}

#[derive(Debug, Clone, Serialize)]
pub struct RankingRow {
    pub name: String,
    pub role: Role,
    #[serde(flatten)]
    pub metrics: RankingMetrics,
    /// Wall time of scoring and ranking every user.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActivityRow {
    pub name: String,
    pub buckets: Vec<BucketMetrics>,
}

/// How far a model's RMSE is below a baseline's.
#[derive(Debug, Clone, Serialize)]
pub struct Improvement {
    pub model: String,
    pub baseline: String,
    pub baseline_rmse: f64,
    pub model_rmse: f64,
    /// baseline − model: positive when the model is better.
    pub rmse_gain: f64,
    /// 100 × gain / baseline.
    pub rmse_gain_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartResult {
    pub part: String,
    pub n_ratings: usize,
    pub n_users: usize,
    pub rating: Vec<RatingRow>,
    pub ranking: Vec<RankingRow>,
    pub activity: Vec<ActivityRow>,
    pub improvements: Vec<Improvement>,
}

impl PartResult {
    pub fn improvements(rating: &[RatingRow]) -> Vec<Improvement> {
        let mut out = Vec::new();
        for m in rating.iter().filter(|r| r.role == Role::Model) {
            for b in rating.iter().filter(|r| r.role == Role::Baseline) {
                let gain = b.metrics.rmse - m.metrics.rmse;
                out.push(Improvement {
                    model: m.name.clone(),
                    baseline: b.name.clone(),
                    baseline_rmse: b.metrics.rmse,
                    model_rmse: m.metrics.rmse,
                    rmse_gain: gain,
                    rmse_gain_pct: 100.0 * gain / b.metrics.rmse,
                });
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub k: usize,
    pub relevance_threshold: f32,
    pub relevance: crate::config::Relevance,
    pub models: Vec<ModelInfo>,
    pub parts: Vec<PartResult>,
    pub plots: Vec<String>,
    pub seconds: f64,
}

/// One row of metrics.parquet.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub model: String,
    pub split: String,
    pub metric: String,
    pub k: Option<u32>,
    pub value: f64,
}

impl Evaluation {
    /// Long format: (model, split, metric, k, value). Rating metrics have k null; bucket
    /// metrics are named `rmse_activity_20_49` etc.
    pub fn rows(&self) -> Vec<MetricRow> {
        let mut rows = Vec::new();
        for p in &self.parts {
            let mut push = |model: &str, metric: String, k: Option<u32>, value: f64| {
                rows.push(MetricRow {
                    model: model.to_string(),
                    split: p.part.clone(),
                    metric,
                    k,
                    value,
                })
            };
            for r in &p.rating {
                let m = &r.metrics;
                push(&r.name, "n_ratings".into(), None, m.n as f64);
                push(&r.name, "rmse".into(), None, m.rmse);
                push(&r.name, "mae".into(), None, m.mae);
                if let Some(v) = m.r2 {
                    push(&r.name, "r2".into(), None, v);
                }
                if let Some(v) = m.accuracy {
                    push(&r.name, "accuracy".into(), None, v);
                }
            }
            for r in &p.ranking {
                let m = &r.metrics;
                let k = Some(m.k as u32);
                for (name, v) in [
                    ("precision", m.precision),
                    ("recall", m.recall),
                    ("ndcg", m.ndcg),
                    ("map", m.map),
                    ("hit_rate", m.hit_rate),
                    ("coverage", m.coverage),
                    ("novelty", m.novelty),
                    ("n_users_ranked", m.n_users as f64),
                    ("n_users_with_relevant", m.n_users_with_relevant as f64),
                ] {
                    push(&r.name, name.into(), k, v);
                }
            }
            for a in &p.activity {
                for b in &a.buckets {
                    let key = b.bucket.key();
                    push(
                        &a.name,
                        format!("n_ratings_activity_{key}"),
                        None,
                        b.n_ratings as f64,
                    );
                    push(&a.name, format!("rmse_activity_{key}"), None, b.rmse);
                    push(&a.name, format!("mae_activity_{key}"), None, b.mae);
                }
            }
        }
        rows
    }
}

pub fn metrics_batch(rows: &[MetricRow]) -> RecordBatch {
    let schema = Arc::new(
        Schema::new(vec![
            Field::new("model", DataType::Utf8, false),
            Field::new("split", DataType::Utf8, false),
            Field::new("metric", DataType::Utf8, false),
            Field::new("k", DataType::UInt32, true),
            Field::new("value", DataType::Float64, false),
        ])
        .with_metadata(recpipe_core::schema::metadata(&[])),
    );
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.model))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.split))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| &r.metric),
        )),
        Arc::new(UInt32Array::from(
            rows.iter().map(|r| r.k).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.value))),
    ];
    RecordBatch::try_new(schema, cols).expect("columns match the metrics schema")
}
