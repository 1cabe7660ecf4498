//! Assigning each row a part. Every function works on `part`, one label per row, and only
//! moves rows that are still in [`TRAIN`]: rows already dropped (or already placed by a
//! predefined file) are left alone, so the steps compose.

use crate::config::Compat;
use recpipe_core::csr::Csr;
use recpipe_core::rng::{NumpyRandomState, SplitMix64};

pub const TRAIN: u8 = 0;
pub const VALID: u8 = 1;
pub const TEST: u8 = 2;
pub const DROPPED: u8 = 3;

/// Rows held out for a fraction: rounded to the nearest row, like sklearn and torch.
fn target(n: usize, fraction: f64) -> usize {
    (n as f64 * fraction).round() as usize
}

fn train_rows(part: &[u8]) -> Vec<u32> {
    part.iter()
        .enumerate()
        .filter(|&(_, &p)| p == TRAIN)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Drops every row of users with fewer than `min` train-eligible ratings; returns how many.
pub fn drop_sparse_users(user: &[u32], n_users: u32, min: u32, part: &mut [u8]) -> usize {
    let mut count = vec![0u32; n_users as usize];
    for (&u, &p) in user.iter().zip(part.iter()) {
        if p == TRAIN {
            count[u as usize] += 1;
        }
    }
    let mut dropped = 0;
    for (&u, p) in user.iter().zip(part.iter_mut()) {
        if *p == TRAIN && count[u as usize] < min {
            *p = DROPPED;
            dropped += 1;
        }
    }
    dropped
}

/// Global shuffle: a uniform sample of `test_fraction` to test and `valid_fraction` to valid.
pub fn random(part: &mut [u8], valid_fraction: f64, test_fraction: f64, seed: u64) {
    let mut rows = train_rows(part);
    let n = rows.len();
    let n_test = target(n, test_fraction);
    let n_valid = target(n, valid_fraction).min(n - n_test);
    SplitMix64::new(seed).partial_shuffle(&mut rows, n_test + n_valid);
    for &r in &rows[..n_test] {
        part[r as usize] = TEST;
    }
    for &r in &rows[n_test..n_test + n_valid] {
        part[r as usize] = VALID;
    }
}

/// A notebook's random split on the train-eligible rows in table order: valid is what
/// `train_test_split(test_size=valid_fraction, random_state=seed)` (sklearn) or the
/// complement of `sample(frac=1 - valid_fraction, random_state=seed)` (pandas) would hold out.
pub fn random_compat(part: &mut [u8], valid_fraction: f64, seed: u32, compat: Compat) {
    let rows = train_rows(part);
    let n = rows.len();
    let perm = NumpyRandomState::new(seed).permutation(n);
    let held_out = match compat {
        // sklearn: n_test = ceil(test_size * n), taken from the front of the permutation.
        Compat::Sklearn => &perm[..((valid_fraction * n as f64).ceil() as usize).min(n)],
        // pandas: n = round(frac * n) (Python's round: half to even), taken from the front.
        Compat::Pandas => {
            let n_train = ((1.0 - valid_fraction) * n as f64).round_ties_even() as usize;
            &perm[n_train.min(n)..]
        }
    };
    for &i in held_out {
        part[rows[i as usize] as usize] = VALID;
    }
}

/// Global time cut: the latest ratings to test, the ones just before to valid. Ties keep
/// file order, so the cut is deterministic.
pub fn chronological(part: &mut [u8], ts: &[i64], valid_fraction: f64, test_fraction: f64) {
    let mut rows = train_rows(part);
    rows.sort_by_key(|&r| ts[r as usize]);
    let n = rows.len();
    let n_test = target(n, test_fraction);
    let n_valid = target(n, valid_fraction).min(n - n_test);
    for &r in &rows[n - n_test..] {
        part[r as usize] = TEST;
    }
    for &r in &rows[n - n_test - n_valid..n - n_test] {
        part[r as usize] = VALID;
    }
}

/// How many of a user's `n` ratings go to (valid, test).
pub trait Quota {
    fn take(&mut self, n: usize) -> (usize, usize);
}

/// Fractions per user. Rounding each user alone would drift (every 15-rating user at 10%
/// rounds 1.5 up), so the quota is the difference of the rounded running totals: each user
/// is within one rating of the fraction and the totals within one row of the target. A
/// user always keeps one rating in train.
pub struct Fractions {
    valid: f64,
    test: f64,
    seen: usize,
}

impl Fractions {
    pub fn new(valid: f64, test: f64) -> Self {
        Fractions {
            valid,
            test,
            seen: 0,
        }
    }
}

impl Quota for Fractions {
    fn take(&mut self, n: usize) -> (usize, usize) {
        let (before, after) = (self.seen, self.seen + n);
        self.seen = after;
        let test = target(after, self.test) - target(before, self.test);
        let valid = target(after, self.valid) - target(before, self.valid);
        let cap = n.saturating_sub(1);
        let test = test.min(cap);
        (valid.min(cap - test), test)
    }
}

/// `k` to test and `k` to valid, test first, leaving at least one rating in train.
pub struct LastK(pub usize);

impl Quota for LastK {
    fn take(&mut self, n: usize) -> (usize, usize) {
        let cap = n.saturating_sub(1);
        let test = self.0.min(cap);
        (self.0.min(cap - test), test)
    }
}

/// Which of a user's ratings are held out.
pub enum Within<'a> {
    /// A uniform sample, drawn from one generator over users in idx order.
    Random(SplitMix64),
    /// The latest by timestamp (ties in file order).
    Latest(&'a [i64]),
}

/// Per-user split: groups train rows by user (counting sort, rows stay in file order) and
/// holds out each user's quota.
pub fn per_user(
    part: &mut [u8],
    user: &[u32],
    n_users: u32,
    quota: &mut impl Quota,
    mut within: Within<'_>,
) {
    let eligible = user
        .iter()
        .zip(part.iter())
        .enumerate()
        .filter(|&(_, (_, &p))| p == TRAIN)
        .map(|(i, (&u, _))| (u, i as u32));
    let mut rows = Csr::group(n_users as usize, eligible);
    for u in 0..n_users {
        let slice = rows.row_mut(u);
        let n = slice.len();
        let (n_valid, n_test) = quota.take(n);
        match &mut within {
            Within::Random(rng) => {
                rng.partial_shuffle(slice, n_test + n_valid);
                for &r in &slice[..n_test] {
                    part[r as usize] = TEST;
                }
                for &r in &slice[n_test..n_test + n_valid] {
                    part[r as usize] = VALID;
                }
            }
            Within::Latest(ts) => {
                slice.sort_by_key(|&r| ts[r as usize]);
                for &r in &slice[n - n_test..] {
                    part[r as usize] = TEST;
                }
                for &r in &slice[n - n_test - n_valid..n - n_test] {
                    part[r as usize] = VALID;
                }
            }
        }
    }
}

/// Drops valid/test rows whose user or item has no train rating; returns (valid, test) counts.
pub fn drop_cold_start(
    part: &mut [u8],
    user: &[u32],
    item: &[u32],
    n_users: u32,
    n_items: u32,
) -> (usize, usize) {
    let (seen_users, seen_items) = train_support(part, user, item, n_users, n_items);
    let mut dropped = (0, 0);
    for i in 0..part.len() {
        let p = part[i];
        if (p == VALID || p == TEST)
            && !(seen_users[user[i] as usize] && seen_items[item[i] as usize])
        {
            part[i] = DROPPED;
            if p == VALID {
                dropped.0 += 1;
            } else {
                dropped.1 += 1;
            }
        }
    }
    dropped
}

/// Which users and items have at least one train rating.
pub fn train_support(
    part: &[u8],
    user: &[u32],
    item: &[u32],
    n_users: u32,
    n_items: u32,
) -> (Vec<bool>, Vec<bool>) {
    let mut seen_users = vec![false; n_users as usize];
    let mut seen_items = vec![false; n_items as usize];
    for i in 0..part.len() {
        if part[i] == TRAIN {
            seen_users[user[i] as usize] = true;
            seen_items[item[i] as usize] = true;
        }
    }
    (seen_users, seen_items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_quotas_keep_totals_on_target_and_one_in_train() {
        let mut q = Fractions::new(0.1, 0.1);
        let sizes = [15usize; 100];
        let (mut v, mut t) = (0, 0);
        for &n in &sizes {
            let (a, b) = q.take(n);
            assert!((1..=2).contains(&a) && (1..=2).contains(&b));
            v += a;
            t += b;
        }
        assert_eq!((v, t), (150, 150));
        let mut q = Fractions::new(0.5, 0.4);
        assert_eq!(q.take(1), (0, 0));
        let (a, b) = q.take(2);
        assert_eq!(a + b, 1);
    }

    #[test]
    fn last_k_leaves_one_in_train() {
        assert_eq!(LastK(2).take(10), (2, 2));
        assert_eq!(LastK(2).take(3), (0, 2));
        assert_eq!(LastK(2).take(4), (1, 2));
        assert_eq!(LastK(1).take(1), (0, 0));
    }

    #[test]
    fn the_generator_is_the_reference_splitmix64() {
        // Splits must not change under a seed: pin the generator to the reference C
        // implementation's first outputs for seed 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
        let mut part = vec![TRAIN; 20];
        random(&mut part, 0.25, 0.1, 42);
        assert_eq!(part.iter().filter(|&&p| p == VALID).count(), 5);
        assert_eq!(part.iter().filter(|&&p| p == TEST).count(), 2);
    }

    #[test]
    fn chronological_cut_takes_the_latest_and_breaks_ties_by_file_order() {
        let ts = [5, 1, 5, 3, 9, 0, 5, 2, 8, 7];
        let mut part = vec![TRAIN; 10];
        chronological(&mut part, &ts, 0.2, 0.2);
        assert_eq!(part, [0, 0, 0, 0, TEST, 0, VALID, 0, TEST, VALID]);
    }
}
