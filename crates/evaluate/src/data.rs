//! Ratings regrouped by user (CSR), the shape every per-user computation wants.

use recpipe_core::Ratings;

/// Ratings grouped by user, items ascending within a user.
#[derive(Debug, Clone)]
pub struct ByUser {
    offsets: Vec<usize>,
    items: Vec<u32>,
    ratings: Vec<f32>,
}

impl ByUser {
    pub fn build(r: &Ratings) -> ByUser {
        let n_users = r.n_users as usize;
        let mut offsets = vec![0usize; n_users + 1];
        for &u in &r.user {
            offsets[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            offsets[u + 1] += offsets[u];
        }
        let mut next = offsets.clone();
        let mut pairs = vec![(0u32, 0f32); r.len()];
        for ((&u, &i), &v) in r.user.iter().zip(&r.item).zip(&r.rating) {
            let slot = &mut next[u as usize];
            pairs[*slot] = (i, v);
            *slot += 1;
        }
        for u in 0..n_users {
            pairs[offsets[u]..offsets[u + 1]].sort_by_key(|p| p.0);
        }
        ByUser {
            offsets,
            items: pairs.iter().map(|p| p.0).collect(),
            ratings: pairs.iter().map(|p| p.1).collect(),
        }
    }

    pub fn n_users(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Items of user `u`, ascending (duplicates kept); empty for users outside the id space.
    pub fn items(&self, u: u32) -> &[u32] {
        let u = u as usize;
        if u + 1 >= self.offsets.len() {
            return &[];
        }
        &self.items[self.offsets[u]..self.offsets[u + 1]]
    }

    pub fn ratings(&self, u: u32) -> &[f32] {
        let u = u as usize;
        if u + 1 >= self.offsets.len() {
            return &[];
        }
        &self.ratings[self.offsets[u]..self.offsets[u + 1]]
    }

    pub fn count(&self, u: u32) -> usize {
        self.items(u).len()
    }

    /// Users with at least one rating, ascending.
    pub fn active_users(&self) -> Vec<u32> {
        (0..self.n_users() as u32)
            .filter(|&u| self.count(u) > 0)
            .collect()
    }
}

/// Number of ratings of each item.
pub fn item_counts(r: &Ratings) -> Vec<u32> {
    let mut c = vec![0u32; r.n_items as usize];
    for &i in &r.item {
        c[i as usize] += 1;
    }
    c
}

/// Number of ratings of each user.
pub fn user_counts(r: &Ratings) -> Vec<u32> {
    let mut c = vec![0u32; r.n_users as usize];
    for &u in &r.user {
        c[u as usize] += 1;
    }
    c
}
