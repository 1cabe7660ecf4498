//! After a run: its stages become the pipeline's view (`.recpipe/runs/<pipeline>`).

use super::plan::Planned;
use super::{Outcome, run_name};
use crate::cache::Store;
use crate::pipeline::Pipeline;
use crate::view;
use anyhow::Result;
use std::time::SystemTime;

/// Make this run's stages the pipeline's view, with the stages it did not touch kept from the
/// previous view only where they are what this configuration would build (same key).
pub(super) fn publish_view(
    p: &Pipeline,
    store: &Store,
    plan: &[Planned],
    outcomes: &[(usize, Outcome)],
) -> Result<()> {
    let stages = outcomes
        .iter()
        .map(|(i, o)| {
            let m = o.manifest();
            let r = view::StageRef {
                kind: m.kind.clone(),
                key: m.key.clone(),
            };
            (p.stages[*i].name.clone(), r)
        })
        .collect();
    let record = view::RunRecord {
        pipeline: run_name(p),
        file: p.path.clone(),
        overrides: p.overrides.clone(),
        finished: crate::numbers::rfc3339(SystemTime::now()),
        stages,
    };
    view::publish(store, record, |stage, r| {
        p.index_of(stage)
            .is_some_and(|i| p.stages[i].kind() == r.kind && plan[i].key == r.key)
    })?;
    Ok(())
}
