//! split.json: rows per part and how much of valid/test is cold-start for train.

use crate::strategies::{TEST, TRAIN, VALID, train_support};
use recpipe_core::Ratings;
use serde::{Deserialize, Serialize};

/// One part (train, valid or test).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartSummary {
    pub rows: usize,
    /// Share of the ratings that entered the split.
    pub fraction: f64,
    /// Distinct users / items with a rating in this part.
    pub users: usize,
    pub items: usize,
    /// Users / items of this part with no train rating (always 0 for train).
    pub cold_users: usize,
    pub cold_items: usize,
    /// Rows whose user or item has no train rating: no model can do better than a bias here.
    pub cold_rows: usize,
    /// Rows removed by `drop_cold_start`.
    pub dropped_cold_start: usize,
}

/// The whole of split.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub strategy: String,
    pub seed: u64,
    /// `predefined` with `fold`: the fold whose files were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<u32>,
    /// The dense id space, the same as ingest's: ids in every part index the same tables.
    pub n_users: u32,
    pub n_items: u32,
    /// Ratings read (from ratings.parquet, or the predefined files together).
    pub input_rows: usize,
    /// Ratings of users below `min_ratings`.
    pub dropped_min_ratings: usize,
    pub train: PartSummary,
    pub valid: PartSummary,
    pub test: PartSummary,
}

pub(crate) fn parts(r: &Ratings, part: &[u8], dropped_cold: (usize, usize)) -> [PartSummary; 3] {
    let (seen_users, seen_items) = train_support(part, &r.user, &r.item, r.n_users, r.n_items);
    // Rows dropped as cold start did enter the split: fractions stay those of the config.
    let entered = part.iter().filter(|&&p| p <= TEST).count() + dropped_cold.0 + dropped_cold.1;
    let mut out: [PartSummary; 3] = Default::default();
    let mut user_in = vec![false; r.n_users as usize];
    let mut item_in = vec![false; r.n_items as usize];
    for (p, s) in [TRAIN, VALID, TEST].into_iter().zip(out.iter_mut()) {
        user_in.fill(false);
        item_in.fill(false);
        for i in (0..part.len()).filter(|&i| part[i] == p) {
            let (u, it) = (r.user[i] as usize, r.item[i] as usize);
            s.rows += 1;
            if !user_in[u] {
                user_in[u] = true;
                s.users += 1;
                s.cold_users += usize::from(!seen_users[u]);
            }
            if !item_in[it] {
                item_in[it] = true;
                s.items += 1;
                s.cold_items += usize::from(!seen_items[it]);
            }
            s.cold_rows += usize::from(!(seen_users[u] && seen_items[it]));
        }
        s.fraction = s.rows as f64 / entered.max(1) as f64;
    }
    out[1].dropped_cold_start = dropped_cold.0;
    out[2].dropped_cold_start = dropped_cold.1;
    out
}

/// 1234567 → "1,234,567", for the terminal lines.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| std::str::from_utf8(g).expect("ASCII digits"))
        .collect();
    groups.join(",")
}

impl Summary {
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{} split{}: train {} · valid {} · test {} ratings",
            self.strategy,
            self.fold
                .map(|f| format!(" (fold {f})"))
                .unwrap_or_default(),
            thousands(self.train.rows),
            thousands(self.valid.rows),
            thousands(self.test.rows)
        )];
        lines.push(format!(
            "train covers {} of {} users and {} of {} items",
            thousands(self.train.users),
            thousands(self.n_users as usize),
            thousands(self.train.items),
            thousands(self.n_items as usize)
        ));
        for (name, p) in [("valid", &self.valid), ("test", &self.test)] {
            if p.rows > 0 && p.cold_rows > 0 {
                lines.push(format!("{name}: {}", cold_line(p)));
            }
            if p.dropped_cold_start > 0 {
                lines.push(format!(
                    "{name}: dropped {} cold-start ratings (drop_cold_start = true)",
                    thousands(p.dropped_cold_start)
                ));
            }
        }
        if self.dropped_min_ratings > 0 {
            lines.push(format!(
                "dropped {} ratings of users below min_ratings",
                thousands(self.dropped_min_ratings)
            ));
        }
        lines
    }
}

/// `362 ratings of 343 items not in train (no unseen users)`: what of a part the train part
/// never saw, naming only what there is.
fn cold_line(p: &PartSummary) -> String {
    let (rows, users, items) = (
        thousands(p.cold_rows),
        thousands(p.cold_users),
        thousands(p.cold_items),
    );
    match (p.cold_users, p.cold_items) {
        (0, _) => format!("{rows} ratings of {items} items not in train (no unseen users)"),
        (_, 0) => format!("{rows} ratings of {users} users not in train (no unseen items)"),
        _ => {
            format!("{rows} ratings of users or items not in train ({users} users, {items} items)")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_000), "1,000");
        assert_eq!(super::thousands(25_000_095), "25,000,095");
    }
}
