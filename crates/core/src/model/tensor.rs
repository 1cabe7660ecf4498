//! Tensor names in a checkpoint: what train writes and core's inference, evaluate and export
//! read. Factorizations hold the factor and bias tensors; the neural models add dense layers
//! named by [`hidden`], [`tower`] and [`OUTPUT`], each with the parameters [`param`] names.

/// (n_users, k) user embeddings.
pub const USER_FACTORS: &str = "user_factors";
/// (n_items, k) item embeddings.
pub const ITEM_FACTORS: &str = "item_factors";
/// (n_users,) per-user bias.
pub const USER_BIAS: &str = "user_bias";
/// (n_items,) per-item bias.
pub const ITEM_BIAS: &str = "item_bias";
/// (1,) global bias.
pub const GLOBAL_BIAS: &str = "global_bias";
/// (n_items, n_items) item-item weights of an item-item model (`ease`): score(u, j) =
/// Σ_{i ∈ user u's training items} B[i, j].
pub const ITEM_ITEM: &str = "item_item";
/// (n_users,) how many training items each user has (`ease`), as f32 (exact below 2²⁴); the
/// items themselves follow in [`USER_ITEMS`], user after user.
pub const USER_ITEM_COUNTS: &str = "user_item_counts";
/// (Σ counts,) every user's training items as item indices in f32 (exact below 2²⁴), user
/// after user, ascending within a user (`ease`).
pub const USER_ITEMS: &str = "user_items";
/// (n_items, width) frozen item content features (hybrid).
pub const ITEM_FEATURES: &str = "item_features";
/// The prefix of the last dense layer.
pub const OUTPUT: &str = "output";

/// Parameters of a dense layer, appended to its prefix by [`param`].
pub const WEIGHT: &str = "weight";
pub const BIAS: &str = "bias";
pub const BN_WEIGHT: &str = "bn.weight";
pub const BN_BIAS: &str = "bn.bias";
pub const BN_RUNNING_MEAN: &str = "bn.running_mean";
pub const BN_RUNNING_VAR: &str = "bn.running_var";

/// The prefix of hidden layer `i` (`layers.{i}`).
pub fn hidden(i: usize) -> String {
    format!("layers.{i}")
}

/// The prefix of item-tower layer `i` (`item_tower.{i}`, hybrid).
pub fn tower(i: usize) -> String {
    format!("item_tower.{i}")
}

/// The tensor name of parameter `name` of the layer at `prefix` (`layers.0.weight`).
pub fn param(prefix: &str, name: &str) -> String {
    format!("{prefix}.{name}")
}
