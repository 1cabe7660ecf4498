//! The one-off stage commands (`recpipe ingest|split|train|evaluate|export`): one stage run
//! outside any pipeline, config from flags and `--set`, inputs from artifact folders (and the
//! ancestors their manifests name), committed into `--out` the way `run` commits into the
//! cache.

use crate::cache::{self, Manifest, Pending, Store, UpstreamRef};
use crate::diag::Source;
use crate::exec::{self, Job};
use crate::handler::{Handler, Parsed};
use crate::out::outln;
use crate::pipeline::{self, Override, PipelineError};
use crate::stages;
use anyhow::{Context, Result, anyhow, bail};
use recpipe_core::{Artifact, Inputs};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A stage run outside any pipeline: config from flags and `--set key=value`, inputs from
/// artifact folders, output into `out` (replaced only when it holds an earlier artifact).
pub fn oneoff(
    kind: &str,
    flags: Vec<(String, String, String)>,
    sets: &[String],
    input_dirs: &[PathBuf],
    out: &Path,
) -> Result<()> {
    if let Some(store) = cache::store_containing(out) {
        bail!(
            "refusing to write --out {} inside the recpipe cache {}: the cache and its runs/ \
             views are written by `recpipe run` only; choose a folder outside it",
            out.display(),
            store.display()
        );
    }
    let handler = stages::get(kind).ok_or_else(|| {
        anyhow!(
            "the `{kind}` stage is not available in this build yet; available: {}",
            stages::names().join(", ")
        )
    })?;
    let config = parse_config(kind, handler, flags, sets)?;
    let (artifacts, upstream) = gather_inputs(input_dirs)?;
    let store = Store::in_memory();
    let files = handler.external_inputs(&config);
    for f in &files {
        std::fs::metadata(f).with_context(|| format!("cannot read input {}", f.display()))?;
    }
    if out.exists() && !(out.join(cache::MANIFEST).exists() || is_empty_dir(out)) {
        bail!(
            "refusing to replace {}: it exists and holds no {} (it was not written by recpipe); choose another --out or remove it",
            out.display(),
            cache::MANIFEST
        );
    }
    let pending = Pending::beside(out)?;
    // Nothing is looked up by key here, so the data files are hashed for the manifest while
    // the stage runs, on one core (on a multi-GB ratings file that is a pass over it the
    // stage would otherwise wait for).
    let (manifest, external) = std::thread::scope(|s| {
        let hashing = s.spawn(|| {
            files
                .iter()
                .map(|f| store.hash_external(f))
                .collect::<Result<Vec<_>>>()
        });
        let job = Job {
            handler,
            config: &config,
            stage: kind,
            pipeline: None,
            key: "",
            upstream: upstream.clone(),
            external: Vec::new(),
        };
        let manifest = exec::run_stage(job, Inputs::new(artifacts), pending.dir());
        let external = hashing.join().expect("hashing does not panic");
        (manifest, external)
    });
    let mut manifest = manifest.with_context(|| format!("{kind} failed"))?;
    let external = external?;
    manifest.key = cache::stage_key(
        kind,
        handler.format_version(),
        &config.json,
        &upstream,
        &external,
        &handler.environment(&config),
    );
    manifest.inputs.external = external;
    let entry = pending.commit(manifest)?;
    for l in &entry.manifest.lines {
        outln!("{l}");
    }
    outln!(
        "{kind}: wrote {} in {:.2}s",
        entry.dir.display(),
        entry.manifest.duration_s
    );
    Ok(())
}

/// The stage's config from its flags (`(key, label, value)`, taken as strings) and `--set`s
/// (taken as TOML), checked like a pipeline's stage table.
fn parse_config(
    kind: &str,
    handler: &dyn Handler,
    flags: Vec<(String, String, String)>,
    sets: &[String],
) -> Result<Parsed> {
    let mut source = Source::new(PathBuf::from("<command line>"), String::new());
    let mut table = DeTable::new();
    for (key, label, value) in flags {
        let v = pipeline::arg_string(&mut source, label, &value);
        pipeline::set_path(&mut table, &[key], v);
    }
    for raw in sets {
        let o = Override::parse(raw)?;
        if o.path.len() == 1 && o.path[0].contains('=') {
            return Err(PipelineError::BadSet(raw.clone()).into());
        }
        let v = pipeline::arg_value(&mut source, format!("--set {raw}"), &o.value);
        pipeline::set_path(&mut table, &o.path, v);
    }
    let config = handler
        .parse(Spanned::new(0..0, DeValue::Table(table.clone())))
        .map_err(|e| PipelineError::At(source.error(e.span, format!("{kind}: {}", e.message))))?;
    pipeline::check_external_inputs(&source, kind, handler, &config, &table, &(0..0))
        .map_err(PipelineError::At)?;
    Ok(config)
}

/// The input folders (as the stage's artifacts and its manifest's upstream), then the
/// ancestors their manifests recorded, nearest first.
fn gather_inputs(input_dirs: &[PathBuf]) -> Result<(Vec<Artifact>, Vec<UpstreamRef>)> {
    let mut artifacts = Vec::new();
    let mut upstream = Vec::new();
    let mut frontier = Vec::new();
    for dir in input_dirs {
        let (k, m) = detect_kind(dir)?;
        let abs = std::fs::canonicalize(dir).unwrap_or(dir.clone());
        artifacts.push(Artifact {
            stage: k.clone(),
            kind: k.clone(),
            dir: abs.clone(),
        });
        upstream.push(UpstreamRef {
            stage: k.clone(),
            kind: k,
            key: m.as_ref().map(|m| m.key.clone()).unwrap_or_default(),
            dir: Some(abs),
        });
        frontier.extend(m);
    }
    let mut seen: HashSet<PathBuf> = artifacts.iter().map(|a| a.dir.clone()).collect();
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for m in frontier {
            for u in &m.inputs.upstream {
                let Some(d) = &u.dir else { continue };
                if d.is_dir() && seen.insert(d.clone()) {
                    artifacts.push(Artifact {
                        stage: u.stage.clone(),
                        kind: u.kind.clone(),
                        dir: d.clone(),
                    });
                    next.extend(cache::read_manifest(d).ok());
                }
            }
        }
        frontier = next;
    }
    Ok((artifacts, upstream))
}

/// The kind of an artifact directory: from its manifest, else from the files it holds.
fn detect_kind(dir: &Path) -> Result<(String, Option<Manifest>)> {
    if !dir.is_dir() {
        bail!(
            "input {} is not a directory; pass an artifact folder written by recpipe (e.g. the --out of `recpipe ingest`, or .recpipe/runs/<pipeline>/<stage>)",
            dir.display()
        );
    }
    if let Ok(m) = cache::read_manifest(dir) {
        return Ok((m.kind.clone(), Some(m)));
    }
    let Some(handler) = stages::recognize(dir) else {
        bail!(
            "cannot tell which stage wrote {}: no manifest.json and none of {}",
            dir.display(),
            stages::signatures()
        )
    };
    Ok((handler.kind().to_string(), None))
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}
