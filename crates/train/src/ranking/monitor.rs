//! How a ranking model is watched while it trains: precision@10 on the valid split (every
//! valid interaction relevant, the user's train items never candidates — evaluate's
//! protocol with `relevance = "any"`), or without a valid split on the train fold itself
//! (train items relevant, nothing excluded), next to most-popular's on the same fold. A model
//! below most-popular is reported loudly in the summary rather than passing silently.

use super::Interactions;
use ndarray::Array2;
use rayon::prelude::*;
use recpipe_core::Ratings;
use recpipe_core::csr::Csr;
use recpipe_core::model::{Checkpoint, Model};
use recpipe_core::rank::top_k;
use serde::Serialize;
use std::path::Path;

/// The list length of the monitored precision.
pub const K: usize = 10;
/// Users scored per block (one matrix product each).
const BLOCK: usize = 256;

/// The monitored fold and its relevant items.
pub struct Monitor<'a> {
    train: &'a Interactions,
    /// Relevant items per user, ascending.
    relevant: Csr<u32>,
    /// Users with at least one relevant item.
    users: Vec<u32>,
    /// `true`: the valid split; `false`: the train fold.
    valid: bool,
    /// Most-popular's precision@10 on the fold.
    popular: f64,
}

/// A finished ranking model against most-popular, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankCheck {
    /// "valid" or "train" (the train fold, without a valid split).
    pub fold: &'static str,
    /// The model's precision@10.
    pub precision: f64,
    /// Most-popular's precision@10 on the same fold.
    pub popular: f64,
}

impl RankCheck {
    /// True when the model ranks below most-popular.
    pub fn below_popular(&self) -> bool {
        self.precision < self.popular
    }
}

impl<'a> Monitor<'a> {
    pub fn new(train: &'a Interactions, valid: &Ratings) -> Monitor<'a> {
        let is_valid = !valid.is_empty();
        let mut relevant = if is_valid {
            Csr::group(
                train.n_users,
                (0..valid.len())
                    .filter(|&r| (valid.user[r] as usize) < train.n_users)
                    .filter(|&r| {
                        train
                            .items
                            .row(valid.user[r])
                            .binary_search(&valid.item[r])
                            .is_err()
                    })
                    .map(|r| (valid.user[r], valid.item[r])),
            )
        } else {
            train.items.clone()
        };
        relevant.sort_rows();
        let users: Vec<u32> = (0..train.n_users as u32)
            .filter(|&u| !relevant.row(u).is_empty())
            .collect();
        let mut m = Monitor {
            train,
            relevant,
            users,
            valid: is_valid,
            popular: 0.0,
        };
        let pop: Vec<f32> = train.popularity().iter().map(|&n| n as f32).collect();
        m.popular = m.mean_precision(|block| {
            ndarray::ArrayView1::from(&pop)
                .broadcast((block.len(), pop.len()))
                .expect("a row broadcast to a block")
                .to_owned()
        });
        m
    }

    /// "valid" or "train".
    pub fn fold(&self) -> &'static str {
        if self.valid { "valid" } else { "train" }
    }

    /// The precision@10 of the model in `ckpt`, handing the checkpoint back.
    pub fn precision(&self, ckpt: Checkpoint) -> (Checkpoint, f64) {
        let model = Model::from_checkpoint(ckpt, Path::new("ranking model"))
            .expect("the ranking fit writes a valid checkpoint");
        let p = self.mean_precision(|block| model.score_users(block));
        (model.into_checkpoint(), p)
    }

    /// The model's precision next to most-popular's.
    pub fn check(&self, precision: f64) -> RankCheck {
        RankCheck {
            fold: self.fold(),
            precision,
            popular: self.popular,
        }
    }

    /// Mean over the fold's users of hits in the top 10 / 10.
    fn mean_precision(&self, score: impl Fn(&[u32]) -> Array2<f32> + Sync) -> f64 {
        if self.users.is_empty() {
            return 0.0;
        }
        let hits: usize = self
            .users
            .par_chunks(BLOCK)
            .map(|block| {
                // A matrix product may come back column-major (k = 1, say): rows need slices.
                let scores = score(block);
                let scores = scores.as_standard_layout();
                let (mut buf, mut top) = (Vec::new(), Vec::new());
                let mut hits = 0;
                for (r, &u) in block.iter().enumerate() {
                    let row = scores.row(r);
                    let row = row.as_slice().expect("a standard-layout score block");
                    let exclude: &[u32] = if self.valid {
                        self.train.items.row(u)
                    } else {
                        &[]
                    };
                    top_k(row, exclude, K, &mut buf, &mut top);
                    let rel = self.relevant.row(u);
                    hits += top.iter().filter(|i| rel.binary_search(i).is_ok()).count();
                }
                hits
            })
            .sum();
        hits as f64 / (K * self.users.len()) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Factors, Fitted, checkpoint, epoch_row, finish};
    use super::*;
    use crate::backend::Device;
    use crate::config::{Config, ModelKind};

    const N_ITEMS: usize = 30;

    /// 4 users: items 0 and 1 are the popular ones (3 users each), 2 and 3 rare; in valid,
    /// users 0 and 1 take item 20, user 2 takes item 1 and user 3 item 0.
    fn data() -> (Interactions, Ratings) {
        let pairs = [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (2, 0),
            (2, 2),
            (3, 1),
            (3, 3),
        ];
        let mut items = Csr::group(4, pairs.iter().copied());
        items.sort_rows();
        let train = Interactions {
            items,
            n_users: 4,
            n_items: N_ITEMS,
        };
        let valid = Ratings {
            user: vec![0, 1, 2, 3],
            item: vec![20, 20, 1, 0],
            rating: vec![4.0; 4],
            n_users: 4,
            n_items: N_ITEMS as u32,
            ..Ratings::default()
        };
        (train, valid)
    }

    /// A k=1 factorization scoring item i as `item[i]` for every user.
    fn constant(item: Vec<f32>) -> Factors {
        Factors {
            k: 1,
            user: vec![1.0; 4],
            item,
            item_bias: None,
        }
    }

    #[test]
    fn precision_against_most_popular_and_the_warning_below_it() {
        let (train, valid) = data();
        let m = Monitor::new(&train, &valid);
        assert_eq!(m.fold(), "valid");
        // Most-popular's top 10 (train items left out, ties to the lower index) hits for
        // users 2 and 3 only: (0 + 0 + 1 + 1) / 40.
        assert!((m.popular - 0.05).abs() < 1e-12, "{}", m.popular);
        let cfg = Config {
            model: ModelKind::Ials,
            ..Config::default()
        };
        let mut above = vec![0.0; N_ITEMS];
        above[20] = 2.0;
        (above[0], above[1]) = (1.0, 1.0);
        // Items 0, 1 and 20 last: nobody's valid item makes the top 10.
        let mut below = vec![0.0; N_ITEMS];
        (below[0], below[1], below[20]) = (-1.0, -1.0, -1.0);
        for (scores, precision, warned) in [(above, 0.1, false), (below, 0.0, true)] {
            let ckpt = checkpoint(&cfg, &train, Fitted::Factors(constant(scores)), Device::Cpu);
            let (ckpt, p) = m.precision(ckpt);
            assert!((p - precision).abs() < 1e-12, "{p} vs {precision}");
            let r = finish(ckpt, vec![epoch_row(1, 0.5, p, 0.1, 8)], &m, 1, Device::Cpu).unwrap();
            assert_eq!(r.ranking.unwrap().below_popular(), warned);
            let out = r.outputs();
            let lines = out.lines.join("\n");
            assert!(lines.contains("valid precision@10"), "{lines}");
            assert_eq!(
                lines.contains("WARNING: ials ranks below most-popular on valid"),
                warned,
                "{lines}"
            );
            assert_eq!(out.summary["below_popular"], warned);
            assert!(out.summary["valid_rmse"].is_null());
        }
    }
}
