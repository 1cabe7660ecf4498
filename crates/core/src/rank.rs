//! The `k` best items of a score row with a user's own items left out: the one top-k of
//! the ranking metrics (evaluate's, and the train stage's ranking monitor), so a model is
//! scored the same way everywhere. Ties in score go to the lower item index, so results
//! never depend on thread scheduling; NaN ranks last.

use std::cmp::Ordering;

fn key(s: f32) -> f32 {
    // NaN ranks last; +0.0 folds −0.0 into 0.0 so `>` and `total_cmp` agree.
    if s.is_nan() {
        f32::NEG_INFINITY
    } else {
        s + 0.0
    }
}

fn better(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The `k` best items of `row`, best first, skipping `exclude` (ascending, duplicates allowed).
/// One pass over the row with a threshold: only an item beating the current k-th best enters
/// a small buffer, which `select_nth_unstable` prunes back to k when it fills.
pub fn top_k(
    row: &[f32],
    exclude: &[u32],
    k: usize,
    buf: &mut Vec<(f32, u32)>,
    out: &mut Vec<u32>,
) {
    buf.clear();
    out.clear();
    if k == 0 {
        return;
    }
    let cap = (2 * k).max(k + 16);
    let mut threshold: Option<f32> = None;
    let mut scan = |lo: usize, hi: usize, buf: &mut Vec<(f32, u32)>| {
        for (i, &s) in row[lo..hi].iter().enumerate() {
            let s = key(s);
            // Items come in ascending index, so an equal score loses the tie to the k-th.
            if threshold.is_none_or(|t| s > t) {
                buf.push((s, (lo + i) as u32));
                if buf.len() == cap {
                    buf.select_nth_unstable_by(k - 1, better);
                    buf.truncate(k);
                    threshold = Some(buf[k - 1].0);
                    // The k-th after selection is the worst kept; ties with it at a lower index
                    // are already inside, later ones lose.
                }
            }
        }
    };
    let mut lo = 0usize;
    for &x in exclude {
        let x = x as usize;
        if x >= row.len() {
            break;
        }
        if x >= lo {
            scan(lo, x, buf);
            lo = x + 1;
        }
    }
    scan(lo, row.len(), buf);
    buf.sort_unstable_by(better);
    buf.truncate(k);
    out.extend(buf.iter().map(|p| p.1));
}
