//! recpipe ingest stage: MovieLens layouts (ml-latest CSV, ml-1m/ml-10m `.dat`, ml-100k) and
//! generic delimited files → `ratings.parquet`, `users.parquet`, `items.parquet` with dense
//! ids, plus `summary.json` and, with `on_error = "skip"` or `unknown_items = "reject"`,
//! `rejects.csv`.
//!
//! The dense item id space holds only items that have at least one rating, so every
//! `item_idx` can be trained on; items listed in the metadata without ratings are counted in
//! the summary (`items_unrated`) and left out.

mod batch;
mod catalog;
pub mod config;
pub mod detect;
pub mod error;
mod extsort;
mod ids;
mod keyed;
mod memory;
mod parse;
pub mod published;
mod spec;
mod store;
mod stream;
pub mod synth;
mod tables;
mod text;
mod unknown;

pub use config::{Column, Config, Duplicates, Encoding, Format, IdOrder, OnError, UnknownItems};
pub use detect::{Layout, resolve};
pub use error::IngestError;
pub use parse::Reject;
pub use synth::{SynthConfig, SynthSummary};

use recpipe_core::fsutil::write_json;
use recpipe_core::layout;
use recpipe_core::{Inputs, OutDir, Outputs, Progress, Stage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What an ingest run did; also written as `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The layout read (`ml-latest`, `ml-1m`, `ml-100k`, `generic`).
    pub format: String,
    /// The files read, ratings first.
    pub files: Vec<PathBuf>,
    /// Non-blank data rows in the ratings file (kept + rejected).
    pub rows_read: u64,
    /// Ratings written after rejects and duplicates.
    pub rows_kept: u64,
    /// Rows rejected (ratings and metadata files), listed in rejects.csv.
    pub rejected: u64,
    pub blank_lines: u64,
    /// Rows removed as repeats of an earlier (user, item) pair.
    pub duplicates: u64,
    pub users: u64,
    pub items: u64,
    /// Items in the metadata file that have no rating (not in the dense id space).
    pub items_unrated: u64,
    /// Rated items absent from the metadata file (title null, genres empty).
    pub items_without_metadata: u64,
    /// Ratings of items the items file does not list: kept (`unknown_items = "keep"`, their
    /// items counted in `items_without_metadata`) or rejected (`"reject"`, in `rejected`).
    #[serde(default)]
    pub unknown_item_ratings: u64,
    /// Rated users absent from the users file, when there is one.
    pub users_without_metadata: u64,
    pub has_timestamps: bool,
    pub mean_rating: f64,
    /// Counts of ratings rounded to the nearest 0.5.
    pub rating_histogram: BTreeMap<String, u64>,
    /// Wall time of the whole stage, then of its phases.
    pub seconds: f64,
    /// Reading and parsing the ratings file.
    pub seconds_read: f64,
    /// Dense ids, duplicates, metadata files, statistics.
    pub seconds_prepare: f64,
    pub seconds_write: f64,
    /// Bytes of rows that did not fit `memory_budget` and waited in a spill file.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spilled_bytes: u64,
    /// Set when the data were generated (`synthetic` key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SynthSummary>,
    /// For a known MovieLens release (by folder name): its published counts and whether
    /// this copy matches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<published::PublishedCheck>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Summary {
    /// The terminal report.
    pub fn lines(&self) -> Vec<String> {
        let mut l = vec![
            format!(
                "ingest ({}): {} ratings, {} users, {} items in {:.2}s",
                self.format, self.rows_kept, self.users, self.items, self.seconds
            ),
            format!(
                "  rows read {}, rejected {}, duplicates removed {}, blank lines {}",
                self.rows_read, self.rejected, self.duplicates, self.blank_lines
            ),
        ];
        if self.items_unrated > 0 || self.items_without_metadata > 0 {
            l.push(format!(
                "  items without ratings (left out) {}, rated items without metadata {}",
                self.items_unrated, self.items_without_metadata
            ));
        }
        if self.unknown_item_ratings > 0 {
            l.push(format!(
                "  ratings of items missing from the items file: {} (see unknown_items)",
                self.unknown_item_ratings
            ));
        }
        if self.rejected > 0 {
            l.push(format!(
                "  rejected rows are listed in {}",
                layout::ingest::REJECTS
            ));
        }
        if let Some(w) = self.published.as_ref().and_then(|p| p.warning()) {
            l.push(format!("  warning: {w}"));
        }
        l
    }
}

/// The ingest stage for the runner.
pub struct IngestStage;

impl Stage for IngestStage {
    const KIND: &'static str = "ingest";
    const FORMAT_VERSION: u32 = 1;
    type Config = Config;
    type Error = IngestError;
    const SIGNATURES: &'static [&'static [&'static str]] = &[&[
        recpipe_core::layout::ingest::RATINGS,
        recpipe_core::layout::ingest::ITEMS,
    ]];

    fn external_inputs(cfg: &Config) -> Vec<PathBuf> {
        if cfg.synthetic.is_some() {
            return Vec::new();
        }
        resolve(cfg).map(|l| l.files()).unwrap_or_default()
    }

    fn run(
        cfg: &Config,
        inputs: &Inputs,
        out: &OutDir,
        progress: &Progress,
    ) -> Result<Outputs, IngestError> {
        run(cfg, inputs, out, progress)
    }
}

/// The stage entry point (ingest has no upstream inputs).
pub fn run(
    cfg: &Config,
    _inputs: &Inputs,
    out: &OutDir,
    progress: &Progress,
) -> Result<Outputs, IngestError> {
    let summary = ingest(cfg, out.dir(), progress)?;
    let lines = summary.lines();
    Ok(Outputs {
        summary: serde_json::to_value(&summary).unwrap_or_default(),
        lines,
    })
}

/// Ingest without a pipeline: read `cfg.path` (or generate `cfg.synthetic`) and write the
/// tables into `out_dir`. On error, no output file of this run is left behind.
pub fn ingest(cfg: &Config, out_dir: &Path, progress: &Progress) -> Result<Summary, IngestError> {
    let started = Instant::now();
    std::fs::create_dir_all(out_dir).map_err(|e| IngestError::io(out_dir, e))?;
    let Some(synth_cfg) = &cfg.synthetic else {
        return ingest_files(cfg, out_dir, progress, started);
    };
    // The generated files go through the real loader, so the synthetic pipeline exercises
    // the same code as real data; they live inside out_dir and are removed afterwards.
    let src = out_dir.join(".synthetic");
    let generated = synth::generate(synth_cfg, &src);
    let result = generated.and_then(|s| {
        let real = Config {
            path: src.clone(),
            format: Format::MlLatest,
            synthetic: None,
            ..cfg.clone()
        };
        let mut summary = ingest_files(&real, out_dir, progress, started)?;
        summary.files.clear();
        summary.synthetic = Some(s);
        write_json(out_dir.join(layout::ingest::SUMMARY), &summary)?;
        Ok(summary)
    });
    let _ = std::fs::remove_dir_all(&src);
    if result.is_err() {
        remove_outputs(out_dir);
    }
    result
}

fn remove_outputs(out_dir: &Path) {
    for f in [
        layout::ingest::RATINGS,
        layout::ingest::USERS,
        layout::ingest::ITEMS,
        layout::ingest::SUMMARY,
        layout::ingest::REJECTS,
    ] {
        let _ = std::fs::remove_file(out_dir.join(f));
    }
}

fn ingest_files(
    cfg: &Config,
    out_dir: &Path,
    progress: &Progress,
    started: Instant,
) -> Result<Summary, IngestError> {
    let layout = resolve(cfg)?;
    if layout.items.is_none() && cfg.unknown_items != UnknownItems::Keep {
        return Err(IngestError::Config {
            key: "unknown_items",
            message: format!(
                "{} has no items file (movies.csv, movies.dat or u.item) to check item ids \
                 against; remove unknown_items",
                layout.ratings.display()
            ),
        });
    }
    let spec = spec::build(&layout, cfg)?;
    let file_len = std::fs::metadata(&layout.ratings)
        .map(|m| m.len())
        .unwrap_or(0);
    let plan = stream::plan(cfg, file_len)?;
    memory::check_file(&layout.ratings, file_len, plan.budget)?;
    let spill = stream::spill_dir(out_dir);
    std::fs::create_dir_all(&spill).map_err(|e| IngestError::io(&spill, e))?;
    let result = ingest_stream(cfg, &layout, &spec, plan, out_dir, progress, started);
    let _ = std::fs::remove_dir_all(&spill);
    if result.is_err() {
        remove_outputs(out_dir);
    }
    result
}

/// Read (rows to the store), prepare (ids, metadata, unknown items, duplicates), write
/// (ratings streamed from the store, then users, items, rejects and the summary).
fn ingest_stream(
    cfg: &Config,
    layout: &Layout,
    spec: &parse::Spec,
    plan: stream::Plan,
    out_dir: &Path,
    progress: &Progress,
    started: Instant,
) -> Result<Summary, IngestError> {
    let spill = stream::spill_dir(out_dir);
    let file_len = std::fs::metadata(&layout.ratings)
        .map(|m| m.len())
        .unwrap_or(0);
    let bar = progress.bytes(file_len, "ingest");
    let read = stream::read(cfg, &layout.ratings, spec, plan, &spill, &bar);
    bar.finish_and_clear();
    let mut read = read?;
    tracing::debug!(
        rows = read.rows(),
        spilled = read.spilled_bytes(),
        "parsed {}",
        layout.ratings.display()
    );
    let seconds_read = started.elapsed().as_secs_f64();

    // The items file is read after the ratings, not beside them: at 250M ratings its 600k
    // titles would sit on top of the full row store (240 MB more peak RSS, measured).
    let mut reader = catalog::Reader {
        encoding: cfg.encoding,
        on_error: cfg.on_error,
        rejects: Vec::new(),
    };
    let items_meta = match &layout.items {
        Some(p) => catalog::read_items(&mut reader, layout.format, p, layout.genres.as_deref())?,
        None => Default::default(),
    };
    let unknown_item_ratings = match &layout.items {
        Some(items) => read.unknown_items(
            cfg.unknown_items,
            &unknown::Source {
                ratings: &layout.ratings,
                items,
                item_column: spec.item as u64 + 1,
            },
            |ids, i| items_meta.get(ids, i).is_some(),
        )?,
        None => 0,
    };
    if read.rows_kept_before_dedup() == 0 {
        return Err(IngestError::Empty {
            path: layout.ratings.clone(),
            rejected: read.cols.rejects.len() as u64,
        });
    }
    if read.rows() >= u32::MAX as u64 {
        return Err(IngestError::TooMany {
            path: layout.ratings.clone(),
            what: "ratings",
            limit: u32::MAX as u64,
        });
    }
    let dedup = read.dedup(cfg.duplicates, &layout.ratings, &spill, progress)?;
    let duplicates = dedup.removed;
    let users_meta = match &layout.users {
        Some(p) => Some(catalog::read_users(&mut reader, layout.format, p)?),
        None => None,
    };
    let seconds_prepare = started.elapsed().as_secs_f64() - seconds_read;

    let write_started = Instant::now();
    let (n_users, n_items) = (read.user_ids.len(), read.item_ids.len());
    let w = read.write(dedup, &out_dir.join(layout::ingest::RATINGS), progress)?;
    // The two id tables are written side by side (each is one thread's work).
    let (users_missing, items_missing) = rayon::join(
        || {
            tables::write_users(
                &out_dir.join(layout::ingest::USERS),
                &read.user_ids,
                &w.user_stats,
                users_meta.as_ref(),
            )
        },
        || {
            tables::write_items(
                &out_dir.join(layout::ingest::ITEMS),
                &read.item_ids,
                &w.item_stats,
                &items_meta,
            )
        },
    );
    let (users_missing, items_missing) = (users_missing?, items_missing?);
    let rejects: Vec<(PathBuf, &Reject)> = read
        .cols
        .rejects
        .iter()
        .map(|r| (layout.ratings.clone(), r))
        .chain(reader.rejects.iter().map(|(p, r)| (p.clone(), r)))
        .collect();
    let rejects_path = out_dir.join(layout::ingest::REJECTS);
    if cfg.on_error == OnError::Skip || cfg.unknown_items == UnknownItems::Reject {
        tables::write_rejects(&rejects_path, &rejects)?;
    } else {
        // A one-off run into a reused folder must not leave an earlier run's list.
        let _ = std::fs::remove_file(&rejects_path);
    }
    let listed = layout.items.is_some();
    let rows_kept = w.rows;
    let summary = Summary {
        format: detect::format_name(layout.format).to_string(),
        files: layout.files(),
        rows_read: read.cols.rows_read,
        rows_kept,
        rejected: rejects.len() as u64,
        blank_lines: read.cols.blank_lines,
        duplicates,
        users: n_users as u64,
        items: n_items as u64,
        // Every rated item is either listed (and so not unrated) or missing.
        items_unrated: if listed {
            items_meta.len() as u64 - (n_items as u64 - items_missing)
        } else {
            0
        },
        items_without_metadata: if listed { items_missing } else { 0 },
        users_without_metadata: users_missing,
        unknown_item_ratings,
        has_timestamps: w.has_timestamps,
        mean_rating: w.sum / rows_kept as f64,
        rating_histogram: w.histogram,
        seconds: started.elapsed().as_secs_f64(),
        seconds_read,
        seconds_prepare,
        seconds_write: write_started.elapsed().as_secs_f64(),
        spilled_bytes: read.spilled_bytes(),
        synthetic: None,
        published: published::check(&layout.ratings, rows_kept, n_users as u64, n_items as u64),
    };
    if let Some(w) = summary.published.as_ref().and_then(|p| p.warning()) {
        tracing::warn!("{w}");
    }
    write_json(out_dir.join(layout::ingest::SUMMARY), &summary)?;
    drop(rejects);
    drop_in_background((read, items_meta, users_meta));
    Ok(summary)
}

/// Frees `value` on a thread of its own. The row store and the id maps are hundreds of MB
/// at 25M ratings, in many allocations; unmapping them takes a tenth of a second that the
/// caller (a one-off command about to exit, or the next stage) need not wait for.
fn drop_in_background<T: Send + 'static>(value: T) {
    // If no thread can be started, the closure (and the value) is dropped right here.
    let _ = std::thread::Builder::new()
        .name("ingest-free".into())
        .spawn(move || drop(value));
}
