//! Is a stage fresh? Its entry is looked up by key and verified; when it is stale, the
//! reasons are found by comparing against the manifest of the pipeline's last run of it.

use super::plan::Planned;
use super::run_name;
use crate::cache::{self, Invalid, Manifest, Store};
use crate::handler::Handler;
use crate::numbers;
use crate::pipeline::Pipeline;
use crate::view;
use std::collections::BTreeMap;

#[derive(Debug)]
pub enum State {
    Fresh(Box<Manifest>),
    Stale {
        reasons: Vec<String>,
        /// Set when an artifact with this key exists but failed verification.
        corrupt: Option<Invalid>,
    },
}

/// Fresh (with its verified manifest) or stale with the reasons, comparing against the manifest
/// the pipeline's last run of this stage recorded.
pub fn assess(p: &Pipeline, i: usize, planned: &Planned, store: &Store, forced: bool) -> State {
    let s = &p.stages[i];
    let mut corrupt = None;
    if !forced {
        match store.lookup(s.kind(), &planned.key) {
            Ok(entry) => return State::Fresh(Box::new(entry.manifest)),
            Err(Invalid::Missing) => {}
            Err(e) => corrupt = Some(e),
        }
    }
    let mut reasons = Vec::new();
    if forced {
        reasons.push("forced (--force)".to_string());
    }
    if let Some(c) = &corrupt {
        reasons.push(format!("cached artifact is damaged: {c}"));
    }
    // Forced or damaged already says why; otherwise explain against the last recorded run.
    if reasons.is_empty() {
        reasons = why_stale(p, i, planned, store);
    }
    State::Stale { reasons, corrupt }
}

/// Why a stage whose entry is not in the cache must run.
fn why_stale(p: &Pipeline, i: usize, planned: &Planned, store: &Store) -> Vec<String> {
    let s = &p.stages[i];
    if let Some(when) = store.collected(s.kind(), &planned.key) {
        return vec![format!(
            "its artifact was collected by gc ({})",
            when.trim()
        )];
    }
    let previous = view::stage_target(store, &run_name(p), &s.name)
        .and_then(|d| cache::read_manifest(&d).ok());
    match previous {
        None => vec!["never run".to_string()],
        Some(prev) if prev.key == planned.key => {
            vec!["its artifact was removed from the cache".to_string()]
        }
        Some(prev) => {
            let mut reasons = differences(s.handler, &s.config.json, planned, &prev);
            if reasons.is_empty() {
                reasons.push("cache key changed".to_string());
            }
            reasons
        }
    }
}

fn differences(
    handler: &dyn Handler,
    config: &serde_json::Value,
    planned: &Planned,
    prev: &Manifest,
) -> Vec<String> {
    if prev.kind != handler.kind() {
        return vec![format!(
            "kind changed from {} to {}",
            prev.kind,
            handler.kind()
        )];
    }
    let mut out = Vec::new();
    if prev.format_version != handler.format_version() {
        out.push(format!(
            "{} stage format version changed from {} to {}",
            handler.kind(),
            prev.format_version,
            handler.format_version()
        ));
    }
    out.extend(config_differences(&prev.config, config));
    for e in &planned.external {
        match prev.inputs.external.iter().find(|x| x.path == e.path) {
            Some(x) if x.blake3 == e.blake3 => {}
            Some(_) => out.push(format!("input {} changed", e.path.display())),
            None => out.push(format!("new input {}", e.path.display())),
        }
    }
    for u in &planned.upstream {
        match prev.inputs.upstream.iter().find(|x| x.stage == u.stage) {
            Some(x) if x.key == u.key => {}
            Some(_) => out.push(format!("upstream `{}` changed", u.stage)),
            None => out.push(format!("new upstream `{}`", u.stage)),
        }
    }
    out
}

/// Config keys changed, added or removed, by dotted path.
fn config_differences(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", old, &mut a);
    flatten("", new, &mut b);
    let mut out = Vec::new();
    for (k, new) in &b {
        match a.get(k) {
            Some(old) if old != new => {
                out.push(format!("config key `{k}` changed from {old} to {new}"))
            }
            None => out.push(format!("config key `{k}` added ({new})")),
            _ => {}
        }
    }
    for k in a.keys().filter(|k| !b.contains_key(*k)) {
        out.push(format!("config key `{k}` removed"));
    }
    out
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), numbers::tidy(other).to_string());
        }
    }
}
