//! Shared building blocks of recpipe (mapped in docs/ARCHITECTURE.md): the table schemas,
//! Parquet read/write helpers that never leave a half-written file, the stage contract every
//! stage crate implements, checkpoints and inference, seeded generators, the memory guard, and
//! progress reporting.

pub mod error;
pub mod fixtures;
pub mod fsutil;
pub mod memory;
pub mod model;
pub mod parquet_io;
pub mod parquet_par;
pub mod progress;
pub mod ratings;
pub mod rng;
pub mod schema;
pub mod stage;

pub use error::{CoreError, Result};
pub use progress::Progress;
pub use ratings::Ratings;
pub use stage::{Artifact, Inputs, OutDir, Outputs, Stage};

/// The recpipe version, recorded in Parquet schema metadata and manifests.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
