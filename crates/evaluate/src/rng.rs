//! The seeded generator shared by every stage (see `recpipe_core::rng`).

pub use recpipe_core::rng::SplitMix64;
