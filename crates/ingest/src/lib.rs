//! recpipe ingest stage: MovieLens layouts (ml-latest CSV, ml-1m/ml-10m `.dat`, ml-100k) and
//! generic delimited files → `ratings.parquet`, `users.parquet`, `items.parquet` with dense
//! ids, plus `summary.json` and, with `on_error = "skip"` or `unknown_items = "reject"`,
//! `rejects.csv`.
//!
//! The dense item id space holds only items that have at least one rating, so every
//! `item_idx` can be trained on; items listed in the metadata without ratings are counted in
//! the summary (`items_unrated`) and left out.

mod catalog;
pub mod config;
mod dedup;
pub mod detect;
pub mod error;
mod ids;
mod memory;
mod parse;
pub mod published;
mod spec;
pub mod synth;
mod tables;
mod text;
mod unknown;

pub use config::{Column, Config, Duplicates, Encoding, Format, IdOrder, OnError, UnknownItems};
pub use detect::{Layout, resolve};
pub use error::IngestError;
pub use parse::Reject;
pub use synth::{SynthConfig, SynthSummary};

use catalog::{ItemMeta, MetaRejects, UserMeta};
use parse::RawColumns;
use recpipe_core::fsutil::write_json;
use recpipe_core::layout;
use recpipe_core::ratings::Ids;
use recpipe_core::{Inputs, OutDir, Outputs, Progress, Ratings, Stage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
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
    /// Set when the data were generated (`synthetic` key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SynthSummary>,
    /// For a known MovieLens release (by folder name): its published counts and whether
    /// this copy matches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<published::PublishedCheck>,
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

/// Counts of ratings rounded to the nearest 0.5, and their sum. Bins of the usual rating
/// scales are counted in an array; any other bin goes through a map.
fn rating_histogram(rating: &[f32]) -> (BTreeMap<String, u64>, f64) {
    const FAST: usize = 64;
    let mut fast = [0u64; FAST];
    let mut bins: BTreeMap<i64, u64> = BTreeMap::new();
    let mut sum = 0f64;
    for &r in rating {
        let b = (r as f64 * 2.0).round() as i64;
        match usize::try_from(b) {
            Ok(i) if i < FAST => fast[i] += 1,
            _ => *bins.entry(b).or_default() += 1,
        }
        sum += r as f64;
    }
    for (i, &c) in fast.iter().enumerate() {
        if c > 0 {
            *bins.entry(i as i64).or_default() += c;
        }
    }
    let histogram = bins
        .into_iter()
        .map(|(b, c)| (format!("{:.1}", b as f64 / 2.0), c))
        .collect();
    (histogram, sum)
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
    let cols = read_ratings(&layout, &spec, cfg.on_error, progress)?;
    let seconds_read = started.elapsed().as_secs_f64();
    let prepared = prepare(cfg, &layout, &spec, cols)?;
    let written = write_outputs(cfg, &layout, out_dir, prepared, (started, seconds_read));
    if written.is_err() {
        remove_outputs(out_dir);
    }
    written
}

/// The ratings file parsed, after the memory guard, under a byte progress bar.
fn read_ratings(
    layout: &Layout,
    spec: &parse::Spec,
    on_error: OnError,
    progress: &Progress,
) -> Result<RawColumns, IngestError> {
    let file_len = std::fs::metadata(&layout.ratings)
        .map(|m| m.len())
        .unwrap_or(0);
    memory::check_file(&layout.ratings, file_len)?;
    let bar = progress.bytes(file_len, "ingest");
    let parsed = parse::read(&layout.ratings, spec, on_error, &bar);
    bar.finish_and_clear();
    let cols = parsed?;
    tracing::debug!(
        rows = cols.user.len(),
        "parsed {}",
        layout.ratings.display()
    );
    Ok(cols)
}

/// The users and items: dense index → original id, and the metadata by original id.
struct Entities {
    user_ids: Ids,
    item_ids: Ids,
    items_meta: HashMap<String, ItemMeta>,
    users_meta: Option<HashMap<String, UserMeta>>,
}

/// The parsed ratings with dense ids, unknown items and duplicates handled, and the
/// metadata files read: everything the tables are written from.
struct Prepared {
    cols: RawColumns,
    entities: Entities,
    meta_rejects: MetaRejects,
    unknown_item_ratings: u64,
    duplicates: u64,
}

fn prepare(
    cfg: &Config,
    layout: &Layout,
    spec: &parse::Spec,
    mut cols: RawColumns,
) -> Result<Prepared, IngestError> {
    let densify = |col: &mut Vec<u32>, keys: Option<Vec<Box<[u8]>>>| match keys {
        Some(keys) => ids::densify_keys(col, keys, cfg.id_order, cfg.encoding),
        None => ids::densify_raw(col, cfg.id_order),
    };
    let mut user_ids = densify(&mut cols.user, cols.user_keys.take());
    let mut item_ids = densify(&mut cols.item, cols.item_keys.take());
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
        Some(items) => unknown::apply(
            cfg.unknown_items,
            &unknown::Source {
                ratings: &layout.ratings,
                items,
                item_column: spec.item as u64 + 1,
            },
            &mut cols,
            &mut user_ids,
            &mut item_ids,
            |id| items_meta.contains_key(id),
        )?,
        None => 0,
    };
    let duplicates = remove_duplicates(cfg, layout, &mut cols, &user_ids, &item_ids)?;
    let users_meta = match &layout.users {
        Some(p) => Some(catalog::read_users(&mut reader, layout.format, p)?),
        None => None,
    };
    Ok(Prepared {
        cols,
        entities: Entities {
            user_ids,
            item_ids,
            items_meta,
            users_meta,
        },
        meta_rejects: reader.rejects,
        unknown_item_ratings,
        duplicates,
    })
}

/// Checks the row count, then applies `cfg.duplicates`: the rows removed, or the error for
/// the first repeat.
fn remove_duplicates(
    cfg: &Config,
    layout: &Layout,
    cols: &mut RawColumns,
    user_ids: &Ids,
    item_ids: &Ids,
) -> Result<u64, IngestError> {
    let rows_before = cols.user.len();
    if rows_before == 0 {
        return Err(IngestError::Empty {
            path: layout.ratings.clone(),
            rejected: cols.rejects.len() as u64,
        });
    }
    if rows_before >= u32::MAX as usize {
        return Err(IngestError::TooMany {
            path: layout.ratings.clone(),
            what: "ratings",
            limit: u32::MAX as u64,
        });
    }
    match dedup::dedup(
        &mut cols.user,
        &mut cols.item,
        &mut cols.rating,
        &mut cols.timestamp,
        user_ids.len(),
        cfg.duplicates,
    ) {
        dedup::Outcome::Removed(n) => Ok(n),
        dedup::Outcome::Repeated(first, again) => Err(IngestError::Duplicate {
            path: layout.ratings.clone(),
            line: cols.line_of_row(again),
            first_line: cols.line_of_row(first),
            user: user_ids.display(cols.user[again] as usize),
            item: item_ids.display(cols.item[again] as usize),
        }),
    }
}

/// Per-user and per-item statistics, then the tables, rejects.csv and summary.json.
/// `times`: when the stage started, and how long reading took.
fn write_outputs(
    cfg: &Config,
    layout: &Layout,
    out_dir: &Path,
    mut p: Prepared,
    (started, seconds_read): (Instant, f64),
) -> Result<Summary, IngestError> {
    let cols = &mut p.cols;
    let (n_users, n_items) = (p.entities.user_ids.len(), p.entities.item_ids.len());
    let ((user_stats, item_stats), (histogram, sum)) = rayon::join(
        || {
            rayon::join(
                || tables::Stats::compute(&cols.user, &cols.rating, n_users),
                || tables::Stats::compute(&cols.item, &cols.rating, n_items),
            )
        },
        || rating_histogram(&cols.rating),
    );
    let rows_kept = cols.user.len() as u64;
    let rejects: Vec<(PathBuf, &Reject)> = cols
        .rejects
        .iter()
        .map(|r| (layout.ratings.clone(), r))
        .chain(p.meta_rejects.iter().map(|(p, r)| (p.clone(), r)))
        .collect();

    let write_started = Instant::now();
    let seconds_prepare = started.elapsed().as_secs_f64() - seconds_read;
    let ratings = Ratings {
        n_users: n_users as u32,
        n_items: n_items as u32,
        user: std::mem::take(&mut cols.user),
        item: std::mem::take(&mut cols.item),
        rating: std::mem::take(&mut cols.rating),
        timestamp: cols.timestamp.take(),
    };
    let (users_missing, items_missing) = write_tables(
        cfg,
        out_dir,
        &ratings,
        &p.entities,
        [&user_stats, &item_stats],
        &rejects,
    )?;
    let listed = layout.items.is_some();
    let summary = Summary {
        format: detect::format_name(layout.format).to_string(),
        files: layout.files(),
        rows_read: cols.rows_read,
        rows_kept,
        rejected: rejects.len() as u64,
        blank_lines: cols.blank_lines,
        duplicates: p.duplicates,
        users: n_users as u64,
        items: n_items as u64,
        // Every rated item is either listed (and so not unrated) or missing.
        items_unrated: if listed {
            p.entities.items_meta.len() as u64 - (n_items as u64 - items_missing)
        } else {
            0
        },
        items_without_metadata: if listed { items_missing } else { 0 },
        users_without_metadata: users_missing,
        unknown_item_ratings: p.unknown_item_ratings,
        has_timestamps: ratings.timestamp.is_some(),
        mean_rating: sum / rows_kept as f64,
        rating_histogram: histogram,
        seconds: started.elapsed().as_secs_f64(),
        seconds_read,
        seconds_prepare,
        seconds_write: write_started.elapsed().as_secs_f64(),
        synthetic: None,
        published: published::check(&layout.ratings, rows_kept, n_users as u64, n_items as u64),
    };
    if let Some(w) = summary.published.as_ref().and_then(|p| p.warning()) {
        tracing::warn!("{w}");
    }
    write_json(out_dir.join(layout::ingest::SUMMARY), &summary)?;
    Ok(summary)
}

/// ratings.parquet beside users.parquet, items.parquet and rejects.csv (when kept);
/// returns how many users and items had no metadata row.
fn write_tables(
    cfg: &Config,
    out_dir: &Path,
    ratings: &Ratings,
    e: &Entities,
    [user_stats, item_stats]: [&tables::Stats; 2],
    rejects: &[(PathBuf, &Reject)],
) -> Result<(u64, u64), IngestError> {
    let (r, meta) = rayon::join(
        || {
            recpipe_core::parquet_par::write_ratings(ratings, out_dir.join(layout::ingest::RATINGS))
                .map(drop)
                .map_err(IngestError::from)
        },
        || -> Result<_, IngestError> {
            let users_missing = tables::write_users(
                &out_dir.join(layout::ingest::USERS),
                &e.user_ids,
                user_stats,
                e.users_meta.as_ref(),
            )?;
            let items_missing = tables::write_items(
                &out_dir.join(layout::ingest::ITEMS),
                &e.item_ids,
                item_stats,
                &e.items_meta,
            )?;
            let rejects_path = out_dir.join(layout::ingest::REJECTS);
            if cfg.on_error == OnError::Skip || cfg.unknown_items == UnknownItems::Reject {
                tables::write_rejects(&rejects_path, rejects)?;
            } else {
                // A one-off run into a reused folder must not leave an earlier run's list.
                let _ = std::fs::remove_file(&rejects_path);
            }
            Ok((users_missing, items_missing))
        },
    );
    r?;
    meta
}
