//! Top-k ranking metrics over full item rankings.
//!
//! Definitions (binary relevance; `L` = a user's top-k list, `R` = the user's relevant items):
//! - relevant: held-out items the user rated ≥ `relevance_threshold` in the evaluated part and
//!   did not rate in train (a train item is never a candidate, so it could never be hit);
//! - candidates: every item except the user's train items; when fewer than k remain, `L` is
//!   shorter than k;
//! - precision@k = |L∩R| / k (always over k, so a short list is not flattered);
//! - recall@k = |L∩R| / |R|;
//! - NDCG@k = Σ_{hits at rank r} 1/log2(r+1) / Σ_{r=1}^{min(|R|,k)} 1/log2(r+1);
//! - MAP@k: mean of AP@k = Σ_{hits at rank r} precision@r / min(|R|,k);
//! - hit rate@k: share of users with at least one hit;
//! - users with no relevant item have undefined recall/NDCG/AP and are left out of all five
//!   averages above (their count is reported); their lists still count for coverage and
//!   novelty;
//! - item coverage = distinct items over all lists / number of items;
//! - novelty = mean over every recommended item of −log2(n_i / n_users), n_i its train
//!   rating count (at least 1) and n_users the users with train ratings;
//! - ties in score are broken by the lower item index, so results never depend on thread
//!   scheduling.

use crate::data::ByUser;
use ndarray::{Array2, Axis};
use rayon::prelude::*;
use serde::Serialize;

/// Anything that scores every item for a block of users at once (a model's matrix
/// multiply, or a popularity vector broadcast).
pub trait Scorer: Sync {
    fn n_items(&self) -> usize;
    /// (users.len(), n_items) scores; higher is better.
    fn score_block(&self, users: &[u32]) -> Array2<f32>;
}

/// The same score for every user: the most-popular baseline.
pub struct Popularity {
    pub scores: Vec<f32>,
}

impl Scorer for Popularity {
    fn n_items(&self) -> usize {
        self.scores.len()
    }
    fn score_block(&self, users: &[u32]) -> Array2<f32> {
        let row = ndarray::ArrayView1::from(&self.scores);
        row.broadcast((users.len(), self.scores.len()))
            .expect("broadcast a row to a block")
            .to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankingMetrics {
    pub k: usize,
    /// Users whose list was built.
    pub n_users: usize,
    /// Users with at least one relevant item: the denominator of the averages.
    pub n_users_with_relevant: usize,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub map: f64,
    pub hit_rate: f64,
    pub coverage: f64,
    pub novelty: f64,
}

/// Per-user metrics of one top-k list.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UserMetrics {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub ap: f64,
    pub hit: bool,
}

/// Metrics of `list` (best first) against `relevant` (sorted, non-empty) at cut-off `k`.
pub fn user_metrics(list: &[u32], relevant: &[u32], k: usize) -> UserMetrics {
    debug_assert!(!relevant.is_empty());
    let (mut hits, mut dcg, mut ap) = (0usize, 0f64, 0f64);
    for (r, item) in list.iter().take(k).enumerate() {
        if relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += 1.0 / ((r + 2) as f64).log2();
            ap += hits as f64 / (r + 1) as f64;
        }
    }
    let ideal = relevant.len().min(k);
    let idcg: f64 = (0..ideal).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    UserMetrics {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant.len() as f64,
        ndcg: dcg / idcg,
        ap: ap / ideal as f64,
        hit: hits > 0,
    }
}

/// The one top-k of recpipe (train's ranking monitor, evaluate), in core.
pub use recpipe_core::rank::top_k;

/// What to rank against: the train ratings (excluded, and popularity for novelty) and the
/// evaluated part (relevance).
pub struct RankingTask<'a> {
    pub train: &'a ByUser,
    pub part: &'a ByUser,
    /// Train rating count per item.
    pub popularity: &'a [u32],
    pub n_train_users: usize,
    pub k: usize,
    pub relevance_threshold: f32,
}

/// Relevant items of `u`: part items rated ≥ threshold that are not train items, sorted.
pub fn relevant_items(task: &RankingTask, u: u32, out: &mut Vec<u32>) {
    out.clear();
    let train = task.train.items(u);
    for (&i, &r) in task.part.items(u).iter().zip(task.part.ratings(u)) {
        if r >= task.relevance_threshold && train.binary_search(&i).is_err() {
            out.push(i);
        }
    }
    out.dedup();
}

#[derive(Default)]
struct Partial {
    n_users: usize,
    n_rel: usize,
    precision: f64,
    recall: f64,
    ndcg: f64,
    ap: f64,
    hits: usize,
    novelty: f64,
    n_recommended: usize,
    seen: Vec<bool>,
}

/// Users per scoring block: a block's score matrix is kept under ~64 MB.
pub fn block_rows(n_items: usize) -> usize {
    (16_000_000 / n_items.max(1)).clamp(1, 256)
}

/// Rank every item for each of `users` (blocks of users in parallel, one `score_block` per
/// block) and average the metrics.
pub fn evaluate_ranking(scorer: &dyn Scorer, users: &[u32], task: &RankingTask) -> RankingMetrics {
    let n_items = scorer.n_items();
    let info: Vec<f64> = task
        .popularity
        .iter()
        .map(|&c| -((c.max(1) as f64) / task.n_train_users.max(1) as f64).log2())
        .collect();
    let blocks: Vec<Partial> = users
        .par_chunks(block_rows(n_items))
        .map(|chunk| {
            let scores = scorer.score_block(chunk);
            let mut p = Partial {
                seen: vec![false; n_items],
                ..Default::default()
            };
            let (mut buf, mut list, mut rel) = (Vec::new(), Vec::new(), Vec::new());
            for (row, &u) in scores.axis_iter(Axis(0)).zip(chunk) {
                let row = row.as_slice().expect("score rows are contiguous");
                top_k(row, task.train.items(u), task.k, &mut buf, &mut list);
                p.n_users += 1;
                for &i in &list {
                    p.seen[i as usize] = true;
                    p.novelty += info.get(i as usize).copied().unwrap_or(0.0);
                }
                p.n_recommended += list.len();
                relevant_items(task, u, &mut rel);
                if rel.is_empty() {
                    continue;
                }
                let m = user_metrics(&list, &rel, task.k);
                p.n_rel += 1;
                p.precision += m.precision;
                p.recall += m.recall;
                p.ndcg += m.ndcg;
                p.ap += m.ap;
                p.hits += usize::from(m.hit);
            }
            p
        })
        .collect();
    // Summed in block order, so the figures do not depend on thread scheduling.
    let mut t = Partial {
        seen: vec![false; n_items],
        ..Default::default()
    };
    for b in blocks {
        t.n_users += b.n_users;
        t.n_rel += b.n_rel;
        t.precision += b.precision;
        t.recall += b.recall;
        t.ndcg += b.ndcg;
        t.ap += b.ap;
        t.hits += b.hits;
        t.novelty += b.novelty;
        t.n_recommended += b.n_recommended;
        for (s, x) in t.seen.iter_mut().zip(b.seen) {
            *s |= x;
        }
    }
    let nr = t.n_rel as f64;
    RankingMetrics {
        k: task.k,
        n_users: t.n_users,
        n_users_with_relevant: t.n_rel,
        precision: t.precision / nr,
        recall: t.recall / nr,
        ndcg: t.ndcg / nr,
        map: t.ap / nr,
        hit_rate: t.hits as f64 / nr,
        coverage: t.seen.iter().filter(|&&s| s).count() as f64 / n_items.max(1) as f64,
        novelty: t.novelty / t.n_recommended.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recpipe_core::Ratings;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn top(row: &[f32], exclude: &[u32], k: usize) -> Vec<u32> {
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        top_k(row, exclude, k, &mut buf, &mut out);
        out
    }

    #[test]
    fn top_k_orders_breaks_ties_by_index_and_excludes() {
        let row = [0.5, 0.9, 0.1, 0.9, 0.7, f32::NAN, -0.0, 0.0];
        assert_eq!(top(&row, &[], 3), [1, 3, 4]);
        assert_eq!(top(&row, &[1], 3), [3, 4, 0]);
        assert_eq!(top(&row, &[1, 1, 3], 2), [4, 0]);
        // k larger than the candidate list: every candidate, NaN last
        assert_eq!(top(&row, &[0, 1, 2, 3], 10), [4, 6, 7, 5]);
        assert_eq!(top(&row, &[], 0), Vec::<u32>::new());
    }

    #[test]
    fn top_k_threshold_scan_matches_a_full_sort() {
        // Many ties and a long row, so the buffer is pruned many times.
        let mut state = 12345u64;
        let row: Vec<f32> = (0..5000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 40) % 50) as f32 / 7.0
            })
            .collect();
        let exclude: Vec<u32> = (0..5000).step_by(7).collect();
        for k in [1, 3, 10, 64] {
            let mut all: Vec<(f32, u32)> = row
                .iter()
                .enumerate()
                .filter(|(i, _)| exclude.binary_search(&(*i as u32)).is_err())
                .map(|(i, &s)| (s, i as u32))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let expect: Vec<u32> = all.iter().take(k).map(|p| p.1).collect();
            assert_eq!(top(&row, &exclude, k), expect, "k = {k}");
        }
    }

    #[test]
    fn user_metrics_match_hand_computation() {
        // list [a, b, c, d], relevant {b, d, z}; hits at ranks 2 and 4
        let m = user_metrics(&[10, 11, 12, 13], &[11, 13, 99], 4);
        assert!(close(m.precision, 0.5));
        assert!(close(m.recall, 2.0 / 3.0));
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 2.0;
        assert!(close(m.ndcg, dcg / idcg), "{m:?}");
        assert!(close(m.ap, (1.0 / 2.0 + 2.0 / 4.0) / 3.0), "{m:?}");
        assert!(m.hit);
        // k larger than the list: precision still over k, AP over min(|R|, k)
        let m = user_metrics(&[5], &[5], 10);
        assert!(close(m.precision, 0.1));
        assert!(close(m.recall, 1.0) && close(m.ndcg, 1.0) && close(m.ap, 1.0));
        let miss = user_metrics(&[1, 2], &[3], 2);
        assert_eq!(miss, UserMetrics::default());
    }

    struct Fixed(Array2<f32>);
    impl Scorer for Fixed {
        fn n_items(&self) -> usize {
            self.0.ncols()
        }
        fn score_block(&self, users: &[u32]) -> Array2<f32> {
            self.0.select(
                Axis(0),
                &users.iter().map(|&u| u as usize).collect::<Vec<_>>(),
            )
        }
    }

    fn ratings(rows: &[(u32, u32, f32)], n_users: u32, n_items: u32) -> Ratings {
        Ratings {
            user: rows.iter().map(|r| r.0).collect(),
            item: rows.iter().map(|r| r.1).collect(),
            rating: rows.iter().map(|r| r.2).collect(),
            timestamp: None,
            n_users,
            n_items,
        }
    }

    #[test]
    fn evaluate_ranking_excludes_train_skips_users_without_relevant_items() {
        // 3 users × 5 items. Item scores identical for everyone: 4 > 3 > 2 > 1 > 0 by index.
        let scores = Array2::from_shape_fn((3, 5), |(_, i)| i as f32);
        let train = ratings(&[(0, 4, 5.0), (1, 4, 5.0), (1, 3, 1.0), (2, 0, 3.0)], 3, 5);
        // user 0: relevant {3} (rank 1 once item 4 is excluded) and {0} at rank 4;
        // user 1: item 2 rated 3.0 → not relevant, no relevant item at all;
        // user 2: relevant {4, 1}; item 0 is rated ≥ 4 but is a train item → not relevant.
        let part = ratings(
            &[
                (0, 3, 4.0),
                (0, 0, 4.5),
                (1, 2, 3.0),
                (2, 4, 5.0),
                (2, 1, 4.0),
                (2, 0, 5.0),
            ],
            3,
            5,
        );
        let (tr, pa) = (ByUser::build(&train), ByUser::build(&part));
        let pop = crate::data::item_counts(&train);
        let task = RankingTask {
            train: &tr,
            part: &pa,
            popularity: &pop,
            n_train_users: 3,
            k: 2,
            relevance_threshold: 4.0,
        };
        let m = evaluate_ranking(&Fixed(scores), &[0, 1, 2], &task);
        // lists: u0 [3, 2], u1 [2, 1], u2 [4, 3]
        assert_eq!((m.n_users, m.n_users_with_relevant), (3, 2));
        // u0: hit at rank 1 of R={0,3}; u2: hit at rank 1 of R={1,4}
        assert!(close(m.precision, 0.5), "{m:?}");
        assert!(close(m.recall, 0.5), "{m:?}");
        let ndcg = 1.0 / (1.0 + 1.0 / 3f64.log2());
        assert!(close(m.ndcg, ndcg), "{m:?}");
        assert!(close(m.map, 0.5), "{m:?}");
        assert!(close(m.hit_rate, 1.0), "{m:?}");
        // items 1, 2, 3, 4 recommended out of 5
        assert!(close(m.coverage, 0.8), "{m:?}");
        // popularity: item4 2, item3 1, item2 0→1, item1 0→1; six recommendations
        let info = |c: f64| -(c / 3.0).log2();
        let novelty = (info(1.0) + info(1.0) + info(1.0) + info(1.0) + info(2.0) + info(1.0)) / 6.0;
        assert!(close(m.novelty, novelty), "{m:?} vs {novelty}");
    }

    #[test]
    fn popularity_ranks_the_same_for_every_user() {
        let p = Popularity {
            scores: vec![1.0, 3.0, 2.0],
        };
        let b = p.score_block(&[0, 5]);
        assert_eq!(b.shape(), &[2, 3]);
        assert_eq!(b.row(1).to_vec(), vec![1.0, 3.0, 2.0]);
        assert!(block_rows(59_000) >= 1 && block_rows(10) == 256);
    }
}
