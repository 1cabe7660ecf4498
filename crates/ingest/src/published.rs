//! The published counts of the MovieLens releases. A copy that differs was truncated,
//! modified or mislabelled; ingest still reads it, but says so.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// (folder name as unzipped, ratings, users, rated items)
const PUBLISHED: [(&str, u64, u64, u64); 6] = [
    ("ml-latest-small", 100_836, 610, 9_724),
    ("ml-100k", 100_000, 943, 1_682),
    ("ml-1m", 1_000_209, 6_040, 3_706),
    ("ml-10m100k", 10_000_054, 69_878, 10_677),
    ("ml-20m", 20_000_263, 138_493, 26_744),
    ("ml-25m", 25_000_095, 162_541, 59_047),
];

/// The outcome of comparing an ingested MovieLens release with its published counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedCheck {
    pub dataset: String,
    pub ratings: u64,
    pub users: u64,
    pub items: u64,
    pub matches: bool,
}

impl PublishedCheck {
    /// A one-line warning when the counts differ.
    pub fn warning(&self) -> Option<String> {
        (!self.matches).then(|| {
            format!(
                "{} as published has {} ratings, {} users, {} rated items; this copy differs \
                 (a modified or truncated file?)",
                self.dataset, self.ratings, self.users, self.items
            )
        })
    }
}

/// The check for the release whose folder holds `ratings_file`, if it is a known one.
pub fn check(ratings_file: &Path, ratings: u64, users: u64, items: u64) -> Option<PublishedCheck> {
    let folder = ratings_file
        .parent()?
        .file_name()?
        .to_string_lossy()
        .to_lowercase();
    let &(name, r, u, i) = PUBLISHED.iter().find(|(name, ..)| *name == folder)?;
    Some(PublishedCheck {
        dataset: name.to_string(),
        ratings: r,
        users: u,
        items: i,
        matches: (r, u, i) == (ratings, users, items),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_folders_are_checked_and_others_are_not() {
        let ok = check(Path::new("data/ml-1m/ratings.dat"), 1_000_209, 6_040, 3_706).unwrap();
        assert!(ok.matches && ok.warning().is_none());
        let off = check(Path::new("x/ML-100K/u.data"), 99_999, 943, 1_682).unwrap();
        assert!(!off.matches);
        assert!(off.warning().unwrap().contains("100000 ratings"));
        assert!(check(Path::new("data/mine/ratings.csv"), 1, 1, 1).is_none());
    }
}
