//! The seeded generator shared by every stage (see `recpipe_core::rng`): written out rather
//! than taken from `rand` so a seed gives the same model on every recpipe version.

pub use recpipe_core::rng::SplitMix64 as Rng;
