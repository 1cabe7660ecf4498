//! Scoring a trained model for ranking.

use crate::metrics::ranking::Scorer;
use ndarray::{Array2, ArrayView1, Axis};
use recpipe_core::model::Model;

/// A trained model as a [`Scorer`].
///
/// For the embedding models (`dot`, `dot_bias`) the block is scored as `U·Vᵀ + b_item`, the
/// model's own logits without the user and global bias and without the `y_range` sigmoid:
/// those are constant along a user's row or strictly increasing, so the ranking is the same,
/// and skipping one `exp` per (user, item) pair roughly halves the cost of ranking a large
/// catalogue. (The sigmoid also saturates in f32, which would turn distinct scores into
/// ties.) Other model kinds go through [`Model::score_users`].
pub struct ModelScorer<'a>(pub &'a Model);

impl Scorer for ModelScorer<'_> {
    fn n_items(&self) -> usize {
        self.0.meta.n_items as usize
    }

    fn score_block(&self, users: &[u32]) -> Array2<f32> {
        let m = self.0;
        let embedding = m.meta.model.is_factorization();
        let item_bias = m.item_bias().filter(|b| b.len() == self.n_items());
        match (embedding, m.user_factors(), m.item_factors()) {
            (true, Some(uf), Some(itf)) if m.item_bias().is_none() || item_bias.is_some() => {
                let rows = uf.select(
                    Axis(0),
                    &users.iter().map(|&u| u as usize).collect::<Vec<_>>(),
                );
                let mut scores = rows.dot(&itf.t());
                if let Some(b) = item_bias {
                    scores += &ArrayView1::from(b);
                }
                scores
            }
            _ => m.score_users(users),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ranking::top_k;
    use recpipe_core::model::{ModelKind, ModelMeta};
    use recpipe_core::testutil;

    #[test]
    fn logits_rank_like_the_models_own_scores() {
        let meta = ModelMeta {
            y_range: Some([0.5, 5.0]),
            global_mean: 3.5,
            ..testutil::meta(ModelKind::DotBias, 5, 50, 3)
        };
        let ckpt = testutil::factorization(meta, testutil::uniform(7, 0.5));
        let m = Model::from_checkpoint(ckpt, std::path::Path::new("t")).unwrap();
        let users = [4, 0, 2];
        let fast = ModelScorer(&m).score_block(&users);
        let full = m.score_users(&users);
        let (mut buf, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for (r, u) in users.iter().enumerate() {
            let (fr, sr) = (fast.row(r), full.row(r));
            top_k(fr.as_slice().unwrap(), &[3, 9], 20, &mut buf, &mut a);
            top_k(sr.as_slice().unwrap(), &[3, 9], 20, &mut buf, &mut b);
            assert_eq!(a, b, "user {u}");
        }
    }
}
