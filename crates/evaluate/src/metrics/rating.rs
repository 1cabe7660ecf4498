//! Rating-prediction metrics: RMSE, MAE, R², classifier accuracy, and the same by user
//! activity (how many train ratings a user has), where cold users usually fare worst.

use recpipe_core::math::Scored;
pub use recpipe_core::math::nearest_class;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatingMetrics {
    pub n: usize,
    pub rmse: f64,
    pub mae: f64,
    /// 1 − SSE/SST around the evaluated part's own mean; `None` when every rating is equal.
    pub r2: Option<f64>,
    /// Share of ratings whose predicted class equals the actual one (classifiers only).
    pub accuracy: Option<f64>,
}

/// RMSE and MAE (recpipe_core::math, as the train stage computes them) and R² of the
/// predictions. Empty input gives NaN errors.
pub fn rating_metrics(s: Scored<'_>) -> RatingMetrics {
    let e = s.errors();
    let nf = e.n as f64;
    let mean = s.truth.iter().map(|&a| a as f64).sum::<f64>() / nf;
    let sst: f64 = s.truth.iter().map(|&a| (a as f64 - mean).powi(2)).sum();
    RatingMetrics {
        n: e.n,
        rmse: e.rmse,
        mae: e.mae,
        r2: (sst > 0.0).then(|| 1.0 - e.sse / sst),
        accuracy: None,
    }
}

/// Share of predictions that round to the same class as the actual rating.
pub fn accuracy(actual: &[f32], pred: &[f32], classes: &[f32]) -> f64 {
    if classes.is_empty() || actual.is_empty() {
        return f64::NAN;
    }
    let hits = actual
        .iter()
        .zip(pred)
        .filter(|&(&a, &p)| nearest_class(classes, a) == nearest_class(classes, p))
        .count();
    hits as f64 / actual.len() as f64
}

/// A user-activity bucket: users with `lo..hi` train ratings (`hi` None = no upper bound).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub lo: u32,
    pub hi: Option<u32>,
}

impl Bucket {
    /// Human label: "<20", "20–49", "≥200".
    pub fn label(&self) -> String {
        match (self.lo, self.hi) {
            (0, Some(h)) => format!("<{h}"),
            (l, Some(h)) => format!("{l}–{}", h - 1),
            (l, None) => format!("≥{l}"),
        }
    }

    /// ASCII key used in metric names: "0_19", "20_49", "200_plus".
    pub fn key(&self) -> String {
        match self.hi {
            Some(h) => format!("{}_{}", self.lo, h - 1),
            None => format!("{}_plus", self.lo),
        }
    }
}

/// Buckets from increasing edges: [20, 50] → [0,20), [20,50), [50,∞).
pub fn buckets(edges: &[u32]) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(edges.len() + 1);
    let mut lo = 0;
    for &e in edges {
        out.push(Bucket { lo, hi: Some(e) });
        lo = e;
    }
    out.push(Bucket { lo, hi: None });
    out
}

fn bucket_of(edges: &[u32], activity: u32) -> usize {
    edges.partition_point(|&e| e <= activity)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketMetrics {
    pub bucket: Bucket,
    pub label: String,
    pub n_users: usize,
    pub n_ratings: usize,
    pub rmse: f64,
    pub mae: f64,
}

/// RMSE and MAE per activity bucket; `activity[u]` is user u's number of train ratings.
/// Buckets with no rating are kept (n = 0, NaN errors) so every model gets the same rows.
pub fn by_activity(
    users: &[u32],
    actual: &[f32],
    pred: &[f32],
    activity: &[u32],
    edges: &[u32],
) -> Vec<BucketMetrics> {
    let bs = buckets(edges);
    let mut se = vec![0f64; bs.len()];
    let mut ae = vec![0f64; bs.len()];
    let mut n = vec![0usize; bs.len()];
    let mut seen = std::collections::HashSet::new();
    let mut n_users = vec![0usize; bs.len()];
    for ((&u, &a), &p) in users.iter().zip(actual).zip(pred) {
        let b = bucket_of(edges, activity.get(u as usize).copied().unwrap_or(0));
        let d = p as f64 - a as f64;
        se[b] += d * d;
        ae[b] += d.abs();
        n[b] += 1;
        if seen.insert(u) {
            n_users[b] += 1;
        }
    }
    bs.into_iter()
        .enumerate()
        .map(|(b, bucket)| BucketMetrics {
            label: bucket.label(),
            bucket,
            n_users: n_users[b],
            n_ratings: n[b],
            rmse: (se[b] / n[b] as f64).sqrt(),
            mae: ae[b] / n[b] as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn rmse_mae_r2_match_hand_computation() {
        // errors 1, -1, 0, 2: SE 6, AE 4; mean 3.5 → SST 0.25+2.25+0.25+2.25 = 5
        let actual = [3.0, 5.0, 4.0, 2.0];
        let pred = [4.0, 4.0, 4.0, 4.0];
        let m = rating_metrics(Scored {
            pred: &pred,
            truth: &actual,
        });
        assert_eq!(m.n, 4);
        assert!(close(m.rmse, (6.0f64 / 4.0).sqrt()), "{m:?}");
        assert!(close(m.mae, 1.0), "{m:?}");
        assert!(close(m.r2.unwrap(), 1.0 - 6.0 / 5.0), "{m:?}");
        let perfect = rating_metrics(Scored {
            pred: &actual,
            truth: &actual,
        });
        assert!(close(perfect.rmse, 0.0) && close(perfect.r2.unwrap(), 1.0));
        let flat = Scored {
            pred: &[3.0, 4.0],
            truth: &[3.0, 3.0],
        };
        assert_eq!(rating_metrics(flat).r2, None);
    }

    #[test]
    fn accuracy_rounds_to_nearest_class() {
        let classes = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(nearest_class(&classes, 2.4), 1);
        assert_eq!(
            nearest_class(&classes, 2.5),
            1,
            "ties go to the lower class"
        );
        assert_eq!(nearest_class(&classes, 9.0), 4);
        let acc = accuracy(&[1.0, 2.0, 5.0, 4.0], &[1.2, 2.6, 4.6, 1.0], &classes);
        assert!(close(acc, 0.5), "{acc}");
    }

    #[test]
    fn buckets_split_users_by_train_activity() {
        let bs = buckets(&[20, 50]);
        let labels: Vec<_> = bs.iter().map(Bucket::label).collect();
        assert_eq!(labels, ["<20", "20–49", "≥50"]);
        assert_eq!(bs[1].key(), "20_49");
        assert_eq!(bs[2].key(), "50_plus");
        assert_eq!(bucket_of(&[20, 50], 19), 0);
        assert_eq!(bucket_of(&[20, 50], 20), 1);
        assert_eq!(bucket_of(&[20, 50], 50), 2);
        // user 0: 5 train ratings, user 1: 30, user 2: 60
        let activity = [5, 30, 60];
        let users = [0, 0, 1, 2];
        let actual = [4.0, 2.0, 3.0, 5.0];
        let pred = [3.0, 2.0, 3.5, 5.0];
        let m = by_activity(&users, &actual, &pred, &activity, &[20, 50]);
        assert_eq!(m[0].n_ratings, 2);
        assert_eq!(m[0].n_users, 1);
        assert!(close(m[0].rmse, (1.0f64 / 2.0).sqrt()));
        assert!(close(m[0].mae, 0.5));
        assert!(close(m[1].rmse, 0.5));
        assert!(close(m[2].rmse, 0.0));
        let empty = by_activity(&[0], &[4.0], &[4.0], &activity, &[1, 2]);
        assert_eq!(empty[1].n_ratings, 0);
        assert!(empty[1].rmse.is_nan());
    }
}
