//! `recpipe status`: one line per stage, fresh or stale (and why), without running anything.

use super::assess::{State, assess};
use super::plan::{Blocked, plan_available};
use crate::cache::Store;
use crate::out::outln;
use crate::pipeline::Pipeline;
use anyhow::Result;

/// `recpipe status`: one line per stage.
pub fn status(p: &Pipeline, store: &Store) -> Result<()> {
    let plan = plan_available(p, store)?;
    let width = p.stages.iter().map(|s| s.name.len()).max().unwrap_or(5);
    for (i, planned) in plan.iter().enumerate() {
        let name = &p.stages[i].name;
        let planned = match planned {
            Ok(planned) => planned,
            Err(Blocked::Missing(path)) => {
                outln!(
                    "{name:<width$}  missing  input {} not found",
                    path.display()
                );
                continue;
            }
            Err(Blocked::Upstream(stage)) => {
                outln!("{name:<width$}  unknown  until `{stage}` can run (its input is missing)");
                continue;
            }
        };
        match assess(p, i, planned, store, false) {
            State::Fresh(m) => outln!(
                "{name:<width$}  fresh  {} (built {} in {:.2}s)",
                store.artifact_dir(&m.kind, &m.key).display(),
                m.start,
                m.duration_s
            ),
            State::Stale { reasons, .. } => {
                outln!("{name:<width$}  stale  {}", reasons.join("; "))
            }
        }
    }
    Ok(())
}
