//! model.json: the model kind and the structural fields a reader needs to rebuild a model
//! from its tensors, with no knowledge of the train config that produced it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of model (the train config's `model`, and model.json's `model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// user · item embeddings.
    Dot,
    /// dot + user bias + item bias + global bias (the notebooks' `EmbeddingDotBias`).
    #[default]
    DotBias,
    /// Embeddings joined by concat or product, then dense layers.
    Mlp,
    /// `mlp` with item content features (genres, a user-given item feature file).
    Hybrid,
    /// Rating values as classes, softmax cross-entropy.
    Classifier,
    /// I-AutoRec: each item's ratings encoded by one sigmoid layer of `k` units (default
    /// 500) and decoded to every user; `batch_size` counts items, `weight_decay` is λ.
    /// Saved as a factorization (user factors = decoder, item factors = item codes).
    Autorec,
    /// No training: a weighted average of the upstream train stages (`inputs`), which must be
    /// factorizations without a sigmoid; saved as one factorization. See `weights`.
    Blend,
    /// EASE (Steck 2019): a closed-form item-item model on implicit interactions,
    /// B = −P / diag(P) with P = (XᵀX + λI)⁻¹ and a zero diagonal. Saved as an
    /// [`ITEM_ITEM`](super::tensor::ITEM_ITEM) matrix plus each user's training items
    /// (score(u, ·) = x_u · B), not as a factorization. A ranking model.
    Ease,
    /// Implicit ALS with confidence weights (Hu, Koren & Volinsky 2008). A ranking model,
    /// saved as a factorization.
    Ials,
    /// Bayesian personalised ranking: pairwise SGD with sampled negatives (Rendle 2009). A
    /// ranking model, saved as a factorization (with item biases).
    Bpr,
}

impl ModelKind {
    /// The name in configs and model.json (`dot_bias`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Dot => "dot",
            ModelKind::DotBias => "dot_bias",
            ModelKind::Mlp => "mlp",
            ModelKind::Hybrid => "hybrid",
            ModelKind::Classifier => "classifier",
            ModelKind::Autorec => "autorec",
            ModelKind::Blend => "blend",
            ModelKind::Ease => "ease",
            ModelKind::Ials => "ials",
            ModelKind::Bpr => "bpr",
        }
    }

    /// Trained as plain embeddings (dot, dot_bias).
    pub fn is_embedding(self) -> bool {
        matches!(self, ModelKind::Dot | ModelKind::DotBias)
    }

    /// Kinds whose checkpoint is a factorization — score = user_factors · item_factors
    /// (+ biases, squashed into y_range) — so all-item scoring is one matrix product.
    /// `autorec` is saved in this form (its item factors are the items' codes), and so is a
    /// `blend` of such models (their factors side by side).
    pub fn is_factorization(self) -> bool {
        matches!(
            self,
            ModelKind::Dot
                | ModelKind::DotBias
                | ModelKind::Autorec
                | ModelKind::Blend
                | ModelKind::Ials
                | ModelKind::Bpr
        )
    }

    /// Kinds scored through dense layers (their model.json has a [`NetShape`]).
    pub fn is_neural(self) -> bool {
        matches!(
            self,
            ModelKind::Mlp | ModelKind::Hybrid | ModelKind::Classifier
        )
    }

    /// Ranking models (`ease`, `ials`, `bpr`): trained on interactions, their scores order
    /// items for a user and are not ratings (no RMSE, no blend).
    pub fn is_ranking(self) -> bool {
        matches!(self, ModelKind::Ease | ModelKind::Ials | ModelKind::Bpr)
    }

    /// Scored through an item-item matrix over the user's training items (`ease`).
    pub fn is_item_item(self) -> bool {
        self == ModelKind::Ease
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the neural models combine a user's and an item's embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Join {
    /// `[user, item]`: 2k inputs.
    #[default]
    Concat,
    /// `user ⊙ item`: k inputs.
    Product,
}

/// The dense layers of a neural model, as model.json records them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetShape {
    pub join: Join,
    /// Widths of the hidden layers (`layers.{i}`), in order; the output layer follows.
    pub hidden: Vec<usize>,
    /// Widths of the item-tower layers (`item_tower.{i}`) the item features pass through
    /// before the join (hybrid); empty when the features join directly or there are none.
    #[serde(default)]
    pub item_tower: Vec<usize>,
}

/// model.json: what a reader needs to rebuild the model without the train config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    pub model: ModelKind,
    pub n_users: u32,
    pub n_items: u32,
    /// Embedding dimension.
    pub k: usize,
    /// Output squashed to `lo + (hi - lo) * sigmoid(x)` when set.
    pub y_range: Option<[f32; 2]>,
    /// Mean rating of the training data.
    pub global_mean: f32,
    /// Rating values of the classes (classifier only), in class order.
    #[serde(default)]
    pub classes: Option<Vec<f32>>,
    /// The dense layers (mlp, hybrid, classifier); absent for factorizations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetShape>,
    #[serde(default)]
    pub best_epoch: Option<u32>,
    #[serde(default)]
    pub device: String,
    /// The full train config, for the record only: no reader needs it to rebuild the model.
    #[serde(default)]
    pub config: serde_json::Value,
}

impl ModelMeta {
    /// A model of `model` kind and these sizes; everything else empty (no y_range, a zero
    /// global mean, no classes or layers, no config). Set the rest with struct update syntax.
    pub fn new(model: ModelKind, n_users: u32, n_items: u32, k: usize) -> Self {
        ModelMeta {
            model,
            n_users,
            n_items,
            k,
            y_range: None,
            global_mean: 0.0,
            classes: None,
            net: None,
            best_epoch: None,
            device: String::new(),
            config: serde_json::Value::Null,
        }
    }
}
