//! Rows grouped by a dense key (compressed sparse rows): one flat array of values with
//! per-key offsets, built by a counting sort. The one grouping-by-user every stage uses
//! (evaluate's per-user metrics, export's seen items, split's per-user hold-out).

use crate::Ratings;

/// Values grouped by key `0..n_keys`, in input order within a key until sorted.
#[derive(Debug, Clone)]
pub struct Csr<T> {
    offsets: Vec<usize>,
    values: Vec<T>,
}

impl<T: Copy + Default> Csr<T> {
    /// Groups `(key, value)` pairs by key (every key below `n_keys`). The iterator is walked
    /// twice, once to count and once to place, so it must be cheap to clone.
    pub fn group<I>(n_keys: usize, pairs: I) -> Csr<T>
    where
        I: Iterator<Item = (u32, T)> + Clone,
    {
        let mut offsets = vec![0usize; n_keys + 1];
        for (k, _) in pairs.clone() {
            offsets[k as usize + 1] += 1;
        }
        for k in 0..n_keys {
            offsets[k + 1] += offsets[k];
        }
        let mut next = offsets.clone();
        let mut values = vec![T::default(); offsets[n_keys]];
        for (k, v) in pairs {
            let slot = &mut next[k as usize];
            values[*slot] = v;
            *slot += 1;
        }
        Csr { offsets, values }
    }
}

impl<T> Csr<T> {
    pub fn n_keys(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The values of key `k`; empty for keys outside `0..n_keys`.
    pub fn row(&self, k: u32) -> &[T] {
        let k = k as usize;
        if k + 1 >= self.offsets.len() {
            return &[];
        }
        &self.values[self.offsets[k]..self.offsets[k + 1]]
    }

    /// The values of key `k`, to reorder in place.
    pub fn row_mut(&mut self, k: u32) -> &mut [T] {
        let k = k as usize;
        &mut self.values[self.offsets[k]..self.offsets[k + 1]]
    }

    /// Sorts every row by `key`, stably (equal keys keep input order).
    pub fn sort_rows_by_key<K: Ord>(&mut self, key: impl Fn(&T) -> K) {
        for k in 0..self.n_keys() {
            self.values[self.offsets[k]..self.offsets[k + 1]].sort_by_key(&key);
        }
    }

    /// The same grouping with every value mapped.
    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> Csr<U> {
        Csr {
            offsets: self.offsets.clone(),
            values: self.values.iter().map(f).collect(),
        }
    }
}

impl<T: Ord> Csr<T> {
    /// Sorts every row ascending.
    pub fn sort_rows(&mut self) {
        for k in 0..self.n_keys() {
            self.values[self.offsets[k]..self.offsets[k + 1]].sort_unstable();
        }
    }
}

impl Csr<(u32, f32)> {
    /// Ratings grouped by user as `(item, rating)`, items ascending within a user (repeats
    /// of an item keep file order).
    pub fn by_user(r: &Ratings) -> Csr<(u32, f32)> {
        let rows = r
            .user
            .iter()
            .copied()
            .zip(r.item.iter().copied().zip(r.rating.iter().copied()));
        let mut csr = Csr::group(r.n_users as usize, rows);
        csr.sort_rows_by_key(|p| p.0);
        csr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_in_input_order_and_sorts_rows() {
        let pairs = [(2u32, 10u32), (0, 5), (2, 3), (0, 7), (2, 3)];
        let mut c = Csr::group(4, pairs.iter().copied());
        assert_eq!(c.n_keys(), 4);
        assert_eq!(c.row(0), [5, 7]);
        assert!(c.row(1).is_empty());
        assert_eq!(c.row(2), [10, 3, 3]);
        assert!(c.row(3).is_empty() && c.row(9).is_empty());
        c.sort_rows();
        assert_eq!(c.row(2), [3, 3, 10]);
        c.row_mut(0).reverse();
        assert_eq!(c.map(|v| v * 2).row(0), [14, 10]);
    }

    #[test]
    fn by_user_sorts_items_and_keeps_repeats_in_file_order() {
        let r = Ratings {
            n_users: 2,
            n_items: 3,
            user: vec![1, 0, 1, 1],
            item: vec![2, 1, 0, 2],
            rating: vec![4.0, 3.0, 5.0, 1.0],
            timestamp: None,
        };
        let c = Csr::by_user(&r);
        assert_eq!(c.row(0), [(1, 3.0)]);
        assert_eq!(c.row(1), [(0, 5.0), (2, 4.0), (2, 1.0)]);
    }
}
