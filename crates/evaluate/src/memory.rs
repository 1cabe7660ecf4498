//! What an evaluation will allocate, estimated before the models are loaded: the models'
//! tables (their checkpoint files' size), one prediction per rating, model and baseline,
//! the train set by user, and the per-thread blocks of scores that ranking fills.

use crate::metrics::ranking::block_rows;
use recpipe_core::memory::{Need, check_need, product};
use recpipe_core::{Inputs, Ratings};

/// Refuses an evaluation the machine cannot hold.
pub fn check(
    inputs: &Inputs,
    train: &Ratings,
    parts: &[(String, Ratings)],
    n_items: usize,
    baselines: bool,
) -> Result<(), recpipe_core::memory::MemoryError> {
    let models = inputs.all("train");
    let file_bytes: u64 = models
        .iter()
        .filter_map(|a| std::fs::metadata(a.dir.join(recpipe_core::layout::train::WEIGHTS)).ok())
        .map(|m| m.len())
        .sum();
    let rows: u64 = parts.iter().map(|(_, p)| p.len() as u64).sum();
    let scorers = (models.len() + if baselines { 4 } else { 0 }) as u64;
    let threads = rayon::current_num_threads();
    let mut need = Need::new();
    need.add("model tables", file_bytes, 1)
        .add("predictions", rows.saturating_mul(scorers), 2 * 4)
        .add("train by user", train.len() as u64, 8)
        .add(
            "ranking score blocks",
            product(&[threads, block_rows(n_items), n_items]),
            4 + 1,
        );
    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    check_need(
        "evaluate",
        &need,
        &format!(
            "the parts evaluated (now {}) or the number of train inputs (now {})",
            names.join(", "),
            models.len()
        ),
    )
}
