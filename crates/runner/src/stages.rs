//! The table of stage kinds the runner knows, and the only runner file that names a stage
//! crate or a kind. Registering a kind is one line in `registry`; the rest of the runner asks
//! a [`Handler`] how to present a stage (headlines, report, artifact signatures), or uses the
//! kind constants and entry points below where a command is about one kind.

use crate::handler::{Handler, handler};
use recpipe_core::Stage;
use std::sync::OnceLock;

/// The kind that reads a data set (`recpipe ingest`; its artifact holds the id maps).
pub const INGEST: &str = <recpipe_ingest::IngestStage as Stage>::KIND;
/// `recpipe split`.
pub const SPLIT: &str = <recpipe_split::SplitStage as Stage>::KIND;
/// The kind whose artifact is a model checkpoint (`recpipe train`, `recpipe predict`).
pub const TRAIN: &str = <recpipe_train::TrainStage as Stage>::KIND;
/// `recpipe evaluate`.
pub const EVALUATE: &str = <recpipe_evaluate::EvaluateStage as Stage>::KIND;
/// The kind whose artifact holds recommendations and embeddings (`recommend`, `similar`).
pub const EXPORT: &str = <recpipe_export::ExportStage as Stage>::KIND;

/// `recpipe synth`: the ingest crate's generator of MovieLens-style data.
pub mod synthetic {
    pub use recpipe_ingest::IngestError as Error;
    pub use recpipe_ingest::synth::{SynthConfig as Config, generate};
}

/// `recpipe predict`: a train artifact's predicted ratings by the data's own ids.
pub use recpipe_train::{Fallback, predict_ids};

fn registry() -> Vec<Box<dyn Handler>> {
    #[allow(unused_mut)] // pushed to only with the `test-stages` feature
    let mut kinds: Vec<Box<dyn Handler>> = vec![
        // ── registered stage kinds ───────────────────────────────────────────
        handler::<recpipe_ingest::IngestStage>(),
        handler::<recpipe_split::SplitStage>(),
        handler::<recpipe_train::TrainStage>(),
        handler::<recpipe_evaluate::EvaluateStage>(),
        handler::<recpipe_export::ExportStage>(),
    ];
    // A tiny deterministic stage for the end-to-end tests of the runner itself (locks, kills,
    // parallelism); only the `recpipe-e2e` binary (feature `test-stages`) has it.
    #[cfg(feature = "test-stages")]
    kinds.push(handler::<crate::test_stage::TestStage>());
    kinds
}

static REGISTRY: OnceLock<Vec<Box<dyn Handler>>> = OnceLock::new();

pub fn all() -> &'static [Box<dyn Handler>] {
    REGISTRY.get_or_init(registry)
}

pub fn get(kind: &str) -> Option<&'static dyn Handler> {
    all().iter().find(|h| h.kind() == kind).map(|h| h.as_ref())
}

pub fn names() -> Vec<&'static str> {
    all().iter().map(|h| h.kind()).collect()
}

/// The kind whose artifact folder `dir` (one without manifest.json) looks like: the first in
/// table order with a signature that `dir` holds.
pub fn recognize(dir: &std::path::Path) -> Option<&'static dyn Handler> {
    all().iter().find(|h| h.recognizes(dir)).map(|h| h.as_ref())
}

/// The registered signatures, for an error that says what none of them matched
/// (`ratings.parquet and items.parquet, train.parquet, ...`).
pub fn signatures() -> String {
    let sets: Vec<String> = all()
        .iter()
        .flat_map(|h| h.signatures())
        .map(|set| set.join(" and "))
        .collect();
    sets.join(", ")
}
