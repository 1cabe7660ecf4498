//! The bundled MovieLens ratings as a quick in-memory fixture for the stage crates' tests and
//! benches, which may not depend on the ingest crate. Ids are dense in first-seen order;
//! the file is trusted (it ships with the repository), so this is no substitute for ingest.

use crate::ratings::Ratings;
use std::collections::HashMap;
use std::path::PathBuf;

/// data/ml-latest-small/ratings.csv in the workspace.
pub fn bundled_ratings_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/ml-latest-small/ratings.csv"
    ))
}

/// Every rating of the bundled file, users and items numbered in first-seen order.
pub fn bundled_ratings() -> Ratings {
    let path = bundled_ratings_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut users, mut items) = (HashMap::new(), HashMap::new());
    let mut r = Ratings::default();
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut f = line.split(',');
        let mut field = || {
            f.next()
                .unwrap_or_else(|| panic!("{}:{}: short line", path.display(), n + 1))
        };
        let (u, i, v) = (field(), field(), field());
        let next = users.len() as u32;
        r.user.push(*users.entry(u.to_string()).or_insert(next));
        let next = items.len() as u32;
        r.item.push(*items.entry(i.to_string()).or_insert(next));
        r.rating.push(
            v.parse()
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1)),
        );
    }
    r.n_users = users.len() as u32;
    r.n_items = items.len() as u32;
    r
}
