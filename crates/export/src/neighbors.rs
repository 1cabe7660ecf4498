//! Nearest items by cosine and top-N recommendations: a block of rows × every item as one
//! matrix multiply, then a bounded top-k scan per row. Blocks run in parallel with rayon.

use ndarray::{Array2, ArrayView2, Axis, s};
use rayon::prelude::*;

/// (dense idx, score), best first.
pub type Ranked = Vec<(u32, f32)>;

/// Floats of one score block (rows × items); bounds memory at ~32 MiB per worker.
const BLOCK_FLOATS: usize = 8 << 20;

/// Rows per block for score matrices `n_cols` wide.
pub fn block_rows(n_cols: usize) -> usize {
    (BLOCK_FLOATS / n_cols.max(1)).clamp(8, 512)
}

/// The `k` highest scores of `row` into `out`, best first; equal scores keep the lower index
/// first, so the result does not depend on block boundaries or thread count. `skip(j)` is
/// asked only for entries that would enter the top k, so an expensive test (a binary search
/// through a user's history) costs little. NaN scores are never selected.
pub fn top_k(row: &[f32], k: usize, skip: impl FnMut(usize) -> bool, out: &mut Ranked) {
    let mut top = TopK::new(k);
    top.scan(row, 0, skip);
    out.clear();
    out.extend_from_slice(top.ranked());
}

/// A running top-k over scores fed in ascending index order, possibly in several pieces.
///
/// One pass with a threshold instead of `select_nth_unstable` over the whole row: once k
/// entries are held, almost every score fails the comparison with the current k-th best, and
/// that comparison runs on 16 scores at a time, so the scan costs a fraction of a compare
/// per item and no copy of the row.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    held: Ranked,
    min: f32,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            held: Vec::with_capacity(k + 1),
            min: f32::NEG_INFINITY,
        }
    }

    pub fn clear(&mut self) {
        self.held.clear();
        self.min = f32::NEG_INFINITY;
    }

    pub fn ranked(&self) -> &[(u32, f32)] {
        &self.held
    }

    /// Offers `scores[j]` as index `offset + j`; `skip` gets that index too.
    pub fn scan(&mut self, scores: &[f32], offset: usize, mut skip: impl FnMut(usize) -> bool) {
        if self.k == 0 {
            return;
        }
        const LANES: usize = 16;
        let mut start = 0;
        // Fill up to k first, one by one.
        while self.held.len() < self.k && start < scores.len() {
            self.offer(scores[start], offset + start, &mut skip);
            start += 1;
        }
        let rest = &scores[start..];
        let mut chunks = rest.chunks_exact(LANES);
        let mut at = offset + start;
        for chunk in &mut chunks {
            let min = self.min;
            // Branch-free so it compiles to vector compares; NaN > min is false.
            if chunk.iter().fold(false, |any, &s| any | (s > min)) {
                for (j, &s) in chunk.iter().enumerate() {
                    if s > self.min {
                        self.offer(s, at + j, &mut skip);
                    }
                }
            }
            at += LANES;
        }
        for (j, &s) in chunks.remainder().iter().enumerate() {
            if s > self.min {
                self.offer(s, at + j, &mut skip);
            }
        }
    }

    fn offer(&mut self, s: f32, j: usize, skip: &mut impl FnMut(usize) -> bool) {
        if s.is_nan() || (self.held.len() == self.k && s <= self.min) || skip(j) {
            return;
        }
        let at = self.held.partition_point(|&(_, v)| v >= s);
        self.held.insert(at, (j as u32, s));
        if self.held.len() > self.k {
            self.held.pop();
        }
        if self.held.len() == self.k {
            self.min = self.held[self.k - 1].1;
        }
    }
}

/// Rows scaled to unit L2 norm; all-zero rows stay zero (cosine 0 with everything).
pub fn normalize_rows(a: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = a.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let norm = row
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            let inv = (1.0 / norm) as f32;
            row.mapv_inplace(|v| v * inv);
        }
    }
    out
}

/// Candidate columns per score tile: a (rows × TILE) tile of f32 stays in L2 cache while it
/// is scanned, instead of a full row block streaming through memory twice.
const TILE: usize = 2048;
/// Query rows per parallel task.
const QUERY_BLOCK: usize = 128;

/// For each item in `queries`, its `k` nearest other items by cosine among the rows
/// `candidates` (ascending) of `normed` (unit-norm rows, see [`normalize_rows`]).
/// `tick(rows)` is called after every block, for progress bars.
pub fn similar_items(
    normed: ArrayView2<'_, f32>,
    queries: &[u32],
    candidates: &[u32],
    k: usize,
    tick: &(dyn Fn(usize) + Sync),
) -> Vec<Ranked> {
    let pool = select(normed, candidates);
    let blocks: Vec<Vec<Ranked>> = queries
        .par_chunks(QUERY_BLOCK)
        .map(|chunk| {
            let q = select(normed, chunk);
            let mut tops = vec![TopK::new(k); chunk.len()];
            for c0 in (0..candidates.len()).step_by(TILE) {
                let c1 = (c0 + TILE).min(candidates.len());
                let scores = q.dot(&pool.slice(s![c0..c1, ..]).t());
                for ((top, &qi), row) in tops.iter_mut().zip(chunk).zip(scores.rows()) {
                    with_slice(row, |s| top.scan(s, c0, |j| candidates[j] == qi));
                }
            }
            tick(chunk.len());
            tops.iter()
                .map(|t| {
                    t.ranked()
                        .iter()
                        .map(|&(j, s)| (candidates[j as usize], s))
                        .collect()
                })
                .collect()
        })
        .collect();
    blocks.into_iter().flatten().collect()
}

fn select(a: ArrayView2<'_, f32>, rows: &[u32]) -> Array2<f32> {
    let rows: Vec<usize> = rows.iter().map(|&r| r as usize).collect();
    a.select(Axis(0), &rows)
}

/// For each user in `users`, the `n` best-scored items of `score(block)` (a (block, n_items)
/// matrix) that `seen(user)` (sorted item indices) does not contain.
pub fn recommend<'a>(
    users: &[u32],
    n_items: usize,
    n: usize,
    score: &(dyn Fn(&[u32]) -> Array2<f32> + Sync),
    seen: &(dyn Fn(u32) -> &'a [u32] + Sync),
    tick: &(dyn Fn(usize) + Sync),
) -> Vec<Ranked> {
    let block = block_rows(n_items);
    let blocks: Vec<Vec<Ranked>> = users
        .par_chunks(block)
        .map(|chunk| {
            let scores = score(chunk);
            let mut top = TopK::new(n);
            let ranked = chunk
                .iter()
                .zip(scores.rows())
                .map(|(&u, row)| {
                    let history = seen(u);
                    top.clear();
                    with_slice(row, |s| {
                        top.scan(s, 0, |j| history.binary_search(&(j as u32)).is_ok())
                    });
                    top.ranked().to_vec()
                })
                .collect();
            tick(chunk.len());
            ranked
        })
        .collect();
    blocks.into_iter().flatten().collect()
}

fn with_slice(row: ndarray::ArrayView1<'_, f32>, f: impl FnOnce(&[f32])) {
    match row.as_slice() {
        Some(s) => f(s),
        None => f(&row.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_best_in_order_and_breaks_ties_by_index() {
        let row = [0.1, 0.9, 0.5, 0.9, f32::NAN, -1.0, 0.7];
        let mut out = Vec::new();
        top_k(&row, 3, |_| false, &mut out);
        assert_eq!(out, vec![(1, 0.9), (3, 0.9), (6, 0.7)]);
        top_k(&row, 3, |j| j == 1, &mut out);
        assert_eq!(out, vec![(3, 0.9), (6, 0.7), (2, 0.5)]);
        top_k(&row, 10, |_| false, &mut out);
        assert_eq!(out.len(), 6, "NaN is never selected: {out:?}");
        assert_eq!(out.last(), Some(&(5, -1.0)));
        top_k(&row, 0, |_| false, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn top_k_matches_a_full_sort() {
        // A deterministic pseudo-random row with many repeated values.
        let row: Vec<f32> = (0..5000u32)
            .map(|i| ((i.wrapping_mul(2654435761) >> 7) % 997) as f32 / 997.0)
            .collect();
        let mut expect: Vec<(u32, f32)> = row
            .iter()
            .enumerate()
            .map(|(j, &s)| (j as u32, s))
            .collect();
        expect.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        expect.retain(|&(j, _)| j % 3 != 0);
        let mut out = Vec::new();
        top_k(&row, 25, |j| j % 3 == 0, &mut out);
        assert_eq!(out, expect[..25].to_vec());
    }

    #[test]
    fn normalize_leaves_zero_rows_zero() {
        let a = ndarray::array![[3.0f32, 4.0], [0.0, 0.0]];
        let n = normalize_rows(a.view());
        assert_eq!(n, ndarray::array![[0.6f32, 0.8], [0.0, 0.0]]);
    }

    #[test]
    fn similar_items_across_tiles_match_brute_force() {
        // More candidates than one tile, so the running top-k spans tile boundaries.
        let n = 2 * TILE + 300;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let a = Array2::from_shape_simple_fn((n, 8), || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        });
        let normed = normalize_rows(a.view());
        // Every third item is a candidate; queries include non-candidates and tile edges.
        let candidates: Vec<u32> = (0..n as u32).filter(|i| i % 3 != 1).collect();
        let queries = [0u32, 1, TILE as u32 - 1, TILE as u32, n as u32 - 1];
        let got = similar_items(normed.view(), &queries, &candidates, 10, &|_| {});
        for (q, ranked) in queries.iter().zip(&got) {
            let qv = normed.row(*q as usize);
            let mut brute: Vec<(u32, f32)> = candidates
                .iter()
                .filter(|&&c| c != *q)
                .map(|&c| (c, qv.dot(&normed.row(c as usize))))
                .collect();
            brute.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            let ids: Vec<u32> = ranked.iter().map(|r| r.0).collect();
            let want: Vec<u32> = brute[..10].iter().map(|r| r.0).collect();
            assert_eq!(ids, want, "query {q}");
            for (r, b) in ranked.iter().zip(&brute) {
                assert!((r.1 - b.1).abs() < 1e-5);
            }
        }
    }
}
