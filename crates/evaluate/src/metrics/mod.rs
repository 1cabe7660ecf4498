//! Rating-prediction and ranking metrics.

pub mod ranking;
pub mod rating;
