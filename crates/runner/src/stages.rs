//! The table of stage kinds the runner knows. Registering a kind is one line in `registry`.

use crate::handler::{Handler, handler};
use std::sync::OnceLock;

fn registry() -> Vec<Box<dyn Handler>> {
    let mut kinds: Vec<Box<dyn Handler>> = vec![
        // ── registered stage kinds ───────────────────────────────────────────
        handler::<recpipe_ingest::IngestStage>(),
        handler::<recpipe_split::SplitStage>(),
        handler::<recpipe_train::TrainStage>(),
        handler::<recpipe_evaluate::EvaluateStage>(),
        handler::<recpipe_export::ExportStage>(),
    ];
    // A tiny deterministic stage for the end-to-end tests of the runner itself (locks, kills,
    // parallelism); it exists only when the tests ask for it.
    if std::env::var_os("RECPIPE_TEST_STAGES").is_some() {
        kinds.push(handler::<crate::test_stage::TestStage>());
    }
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
