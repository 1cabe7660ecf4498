//! Planning a run: which stages a command touches ([`select`]) and the cache key of every
//! stage ([`plan`]), computed from its config, its inputs' keys and its data files' hashes.

use super::RunOptions;
use crate::cache::{self, ExternalRef, Store, UpstreamRef};
use crate::pipeline::{Pipeline, missing_input};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// The cache identity of one stage of a pipeline.
#[derive(Debug, Clone)]
pub struct Planned {
    pub key: String,
    pub upstream: Vec<UpstreamRef>,
    pub external: Vec<ExternalRef>,
}

/// Cache keys of every stage, in pipeline (topological) order.
pub fn plan(p: &Pipeline, store: &Store) -> Result<Vec<Planned>> {
    let mut out: Vec<Planned> = Vec::with_capacity(p.stages.len());
    for i in 0..p.stages.len() {
        let planned = plan_one(p, store, i, |j| out[j].key.clone())?;
        out.push(planned);
    }
    store.save_stat_cache();
    Ok(out)
}

/// Why a stage cannot be planned without running something first (`status` without data).
#[derive(Debug, Clone)]
pub enum Blocked {
    /// A data file or folder it reads does not exist.
    Missing(PathBuf),
    /// It reads (maybe indirectly) the stage named, whose data is missing.
    Upstream(String),
}

/// Like [`plan`], with the stages whose data is missing (and what reads them) left out.
pub fn plan_available(p: &Pipeline, store: &Store) -> Result<Vec<Result<Planned, Blocked>>> {
    let mut out: Vec<Result<Planned, Blocked>> = Vec::with_capacity(p.stages.len());
    for (i, s) in p.stages.iter().enumerate() {
        let blocked = s.inputs.iter().find_map(|&j| match &out[j] {
            Err(Blocked::Missing(_)) => Some(Blocked::Upstream(p.stages[j].name.clone())),
            Err(b) => Some(b.clone()),
            Ok(_) => None,
        });
        let entry =
            match blocked.or_else(|| missing_input(s.handler, &s.config).map(Blocked::Missing)) {
                Some(b) => Err(b),
                None => Ok(plan_one(p, store, i, |j| {
                    out[j].as_ref().expect("inputs are planned").key.clone()
                })?),
            };
        out.push(entry);
    }
    store.save_stat_cache();
    Ok(out)
}

fn plan_one(
    p: &Pipeline,
    store: &Store,
    i: usize,
    key_of: impl Fn(usize) -> String,
) -> Result<Planned> {
    let s = &p.stages[i];
    let upstream = s
        .inputs
        .iter()
        .map(|&j| UpstreamRef {
            stage: p.stages[j].name.clone(),
            kind: p.stages[j].kind().to_string(),
            key: key_of(j),
            dir: None,
        })
        .collect::<Vec<_>>();
    let external = s
        .handler
        .external_inputs(&s.config)
        .iter()
        .map(|f| store.hash_external(f))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("stage `{}`: cannot hash its input files", s.name))?;
    let key = cache::stage_key(
        s.kind(),
        s.handler.format_version(),
        &s.config.json,
        &upstream,
        &external,
        &s.handler.environment(&s.config),
    );
    Ok(Planned {
        key,
        upstream,
        external,
    })
}

/// Which stages a command touches (`needed`: the targets and their ancestors) and which of
/// them are forced.
pub fn select(p: &Pipeline, opts: &RunOptions) -> Result<(Vec<bool>, Vec<bool>)> {
    let n = p.stages.len();
    let mut targets = vec![opts.stages.is_empty(); n];
    for name in &opts.stages {
        let i = p.stage_index(name)?;
        targets[i] = true;
        if opts.downstream {
            for j in p.downstream(i) {
                targets[j] = true;
            }
        }
    }
    let mut needed = targets.clone();
    for i in (0..n).filter(|&i| targets[i]) {
        for j in p.upstream(i) {
            needed[j] = true;
        }
    }
    let forced = if opts.force { targets } else { vec![false; n] };
    Ok((needed, forced))
}
