//! Shared building blocks of recpipe (mapped in docs/ARCHITECTURE.md): the table schemas,
//! Parquet read/write helpers that never leave a half-written file, the stage contract every
//! stage crate implements, the artifact layout (file and tensor names), checkpoints and
//! inference, seeded generators, the memory guard, and progress reporting. Builders for other
//! crates' tests live behind the `test-utils` feature.

pub mod csr;
pub mod error;
pub mod fsutil;
pub mod layout;
pub mod math;
pub mod memory;
pub mod model;
pub mod parquet_io;
pub mod parquet_par;
pub mod progress;
pub mod rank;
pub mod ratings;
pub mod ratings_stream;
pub mod rng;
pub mod schema;
pub mod stage;
#[cfg(any(test, feature = "test-utils"))]
pub mod testutil;

pub use error::{CoreError, Result};
pub use progress::Progress;
pub use ratings::Ratings;
pub use stage::{Artifact, Goal, Headline, Inputs, OutDir, Outputs, Stage};

/// The recpipe version, recorded in Parquet schema metadata and manifests.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
