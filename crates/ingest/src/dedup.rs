//! Repeated (user, item) pairs. Rows are bucketed by user with a counting sort, each user's
//! rows sorted by item on all cores, and repeats resolved by the configured policy.

use crate::config::Duplicates;
use rayon::prelude::*;

/// The effect of deduplication on the rows (indices into the kept rows, file order).
pub(crate) enum Outcome {
    /// Number of rows removed.
    Removed(u64),
    /// duplicates = "error": the first repeated pair, as (first row, repeated row).
    Repeated(usize, usize),
}

/// Group of rows with the same (user, item), in file order.
fn groups(user: &[u32], item: &[u32], n_users: usize) -> Vec<Vec<u32>> {
    let mut start = vec![0usize; n_users + 1];
    for &u in user {
        start[u as usize + 1] += 1;
    }
    for i in 0..n_users {
        start[i + 1] += start[i];
    }
    let mut cursor = start.clone();
    let mut perm = vec![0u32; user.len()];
    for (row, &u) in user.iter().enumerate() {
        let c = &mut cursor[u as usize];
        perm[*c] = row as u32;
        *c += 1;
    }
    drop(cursor);
    let mut slices = Vec::with_capacity(n_users);
    let mut rest: &mut [u32] = &mut perm;
    for u in 0..n_users {
        let (a, b) = rest.split_at_mut(start[u + 1] - start[u]);
        slices.push(a);
        rest = b;
    }
    slices
        .into_par_iter()
        .flat_map_iter(|rows| {
            rows.sort_unstable_by_key(|&r| ((item[r as usize] as u64) << 32) | r as u64);
            let mut found: Vec<Vec<u32>> = Vec::new();
            let mut i = 0;
            while i < rows.len() {
                let mut j = i + 1;
                while j < rows.len() && item[rows[j] as usize] == item[rows[i] as usize] {
                    j += 1;
                }
                if j - i > 1 {
                    found.push(rows[i..j].to_vec());
                }
                i = j;
            }
            found
        })
        .collect()
}

/// Resolve repeated pairs in place. `rating` and `timestamp` of the kept row carry the
/// policy's result; removed rows are compacted away, keeping file order.
pub(crate) fn dedup(
    user: &mut Vec<u32>,
    item: &mut Vec<u32>,
    rating: &mut Vec<f32>,
    timestamp: &mut Option<Vec<i64>>,
    n_users: usize,
    policy: Duplicates,
) -> Outcome {
    // MovieLens files list each user's ratings by ascending item: strictly increasing
    // (user, item) keys cannot repeat, which spares the bucketing pass and its memory.
    let increasing = user
        .par_windows(2)
        .zip(item.par_windows(2))
        .all(|(u, i)| (u[0], i[0]) < (u[1], i[1]));
    if increasing {
        return Outcome::Removed(0);
    }
    let groups = groups(user, item, n_users);
    if groups.is_empty() {
        return Outcome::Removed(0);
    }
    if policy == Duplicates::Error {
        let g = groups
            .iter()
            .min_by_key(|g| g[1])
            .expect("groups is not empty");
        return Outcome::Repeated(g[0] as usize, g[1] as usize);
    }
    let mut keep = vec![true; user.len()];
    let mut removed = 0u64;
    for g in &groups {
        let kept = match policy {
            Duplicates::KeepFirst => g[0],
            Duplicates::KeepLast | Duplicates::Error => g[g.len() - 1],
            Duplicates::Mean => {
                let mean =
                    g.iter().map(|&r| rating[r as usize] as f64).sum::<f64>() / g.len() as f64;
                let first = g[0] as usize;
                rating[first] = mean as f32;
                if let Some(ts) = timestamp.as_mut() {
                    ts[first] = g.iter().map(|&r| ts[r as usize]).max().unwrap_or(ts[first]);
                }
                g[0]
            }
        };
        for &r in g {
            if r != kept {
                keep[r as usize] = false;
                removed += 1;
            }
        }
    }
    compact(user, &keep);
    compact(item, &keep);
    compact(rating, &keep);
    if let Some(ts) = timestamp.as_mut() {
        compact(ts, &keep);
    }
    Outcome::Removed(removed)
}

fn compact<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
    let mut w = 0;
    for r in 0..v.len() {
        if keep[r] {
            v[w] = v[r];
            w += 1;
        }
    }
    v.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: Duplicates) -> (Vec<u32>, Vec<f32>, Vec<i64>, u64) {
        let mut user = vec![0, 1, 0, 0, 1];
        let mut item = vec![5, 5, 5, 6, 4];
        let mut rating = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        let mut ts = Some(vec![10, 20, 30, 40, 50]);
        let removed = match dedup(&mut user, &mut item, &mut rating, &mut ts, 2, policy) {
            Outcome::Removed(n) => n,
            Outcome::Repeated(..) => panic!("not an error policy"),
        };
        (item, rating, ts.unwrap(), removed)
    }

    #[test]
    fn policies() {
        let (item, rating, ts, removed) = run(Duplicates::KeepLast);
        assert_eq!(
            (removed, item, rating, ts.clone()),
            (
                1,
                vec![5, 5, 6, 4],
                vec![2.0, 3.0, 4.0, 5.0],
                vec![20, 30, 40, 50]
            )
        );
        let (_, rating, ts, _) = run(Duplicates::KeepFirst);
        assert_eq!(
            (rating, ts),
            (vec![1.0, 2.0, 4.0, 5.0], vec![10, 20, 40, 50])
        );
        let (_, rating, ts, _) = run(Duplicates::Mean);
        assert_eq!(
            (rating, ts),
            (vec![2.0, 2.0, 4.0, 5.0], vec![30, 20, 40, 50])
        );
        let mut user = vec![0, 1, 0];
        let mut item = vec![5, 5, 5];
        let mut rating = vec![1.0, 2.0, 3.0];
        assert!(matches!(
            dedup(
                &mut user,
                &mut item,
                &mut rating,
                &mut None,
                2,
                Duplicates::Error
            ),
            Outcome::Repeated(0, 2)
        ));
    }
}
