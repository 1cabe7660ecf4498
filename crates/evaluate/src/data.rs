//! Ratings regrouped by user (core's CSR), the shape every per-user computation wants, and
//! per-user / per-item counts.

use recpipe_core::Ratings;
use recpipe_core::csr::Csr;

/// Ratings grouped by user, items ascending within a user.
#[derive(Debug, Clone)]
pub struct ByUser {
    items: Csr<u32>,
    ratings: Csr<f32>,
}

impl ByUser {
    pub fn build(r: &Ratings) -> ByUser {
        let pairs = Csr::by_user(r);
        ByUser {
            items: pairs.map(|p| p.0),
            ratings: pairs.map(|p| p.1),
        }
    }

    pub fn n_users(&self) -> usize {
        self.items.n_keys()
    }

    /// Items of user `u`, ascending (duplicates kept); empty for users outside the id space.
    pub fn items(&self, u: u32) -> &[u32] {
        self.items.row(u)
    }

    pub fn ratings(&self, u: u32) -> &[f32] {
        self.ratings.row(u)
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
