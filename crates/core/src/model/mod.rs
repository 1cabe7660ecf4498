//! Checkpoints (model.safetensors + model.json) and inference.
//!
//! Inference lives in core, not in the train crate, because evaluate and export must score a
//! trained model and stage crates never depend on each other. Training writes checkpoints
//! through [`Checkpoint::save`]; everything downstream reads them through [`Model::load`].
//! What a checkpoint holds is the contract in [`meta`] (model.json) and [`tensor`] (the
//! tensor names); a reader needs nothing of train's config.

mod checkpoint;
mod inference;
pub mod meta;
mod nn;
pub mod tensor;
#[cfg(test)]
mod tests;

pub use checkpoint::{Checkpoint, MODEL_KEY, Tensor};
pub use inference::Model;
pub use meta::{Join, ModelKind, ModelMeta, NetShape};
pub use nn::BN_EPS;
