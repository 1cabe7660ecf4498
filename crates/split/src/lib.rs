//! The split stage: an ingest artifact's ratings → train.parquet, valid.parquet,
//! test.parquet (ratings schema, the ingest's dense id space) and split.json.
//!
//! Strategies (`strategy = ...`): `random` (default), `user_random` (alias `stratified`),
//! `chronological`, `user_chronological` (alias `user_chrono`), `leave_last_k` (alias
//! `leave_last`), `predefined` (with `fold` filling in `{fold}` in its file paths, for
//! cross-validation folds such as ml-100k's u1..u5). See [`Strategy`] for what each does and
//! [`Config`] for the keys. A seed always gives the same split, on any machine and recpipe version.

mod config;
mod error;
mod memory;
mod predefined;
mod strategies;
mod stream;
mod summary;

pub use config::{Config, Strategy};
pub use error::SplitError;
pub use summary::{PartSummary, Summary};

use recpipe_core::layout;
use recpipe_core::ratings::Catalog;
use recpipe_core::rng::SplitMix64;
use recpipe_core::{Inputs, OutDir, Outputs, Progress, Ratings, Stage, fsutil};
use std::path::{Path, PathBuf};
use strategies::{DROPPED, Fractions, LastK, TEST, TRAIN, VALID, Within};

pub struct SplitStage;

impl Stage for SplitStage {
    const KIND: &'static str = "split";
    const FORMAT_VERSION: u32 = 1;
    type Config = Config;
    type Error = SplitError;
    const SIGNATURES: &'static [&'static [&'static str]] = &[&[layout::split::TRAIN]];

    fn validate(cfg: &Self::Config) -> std::result::Result<(), Self::Error> {
        cfg.validate()
    }

    fn external_inputs(cfg: &Config) -> Vec<PathBuf> {
        // A config that fails validation reads nothing: the stage reports the config error
        // (e.g. `{fold}` in a path without `fold`) instead of the runner a missing file.
        if cfg.strategy == Strategy::Predefined && cfg.validate().is_ok() {
            cfg.files()
        } else {
            Vec::new()
        }
    }

    fn run(
        cfg: &Config,
        inputs: &Inputs,
        out: &OutDir,
        progress: &Progress,
    ) -> Result<Outputs, SplitError> {
        let ingest = inputs.nearest("ingest")?;
        let summary = split(cfg, &ingest.dir, out.dir(), progress)?;
        Ok(Outputs {
            lines: summary.lines(),
            summary: serde_json::to_value(&summary).expect("the summary is plain data"),
        })
    }
}

/// Splits the ingest artifact in `ingest_dir` into `out_dir`; the stage without the runner.
/// In memory when the memory guard allows it, else streamed row group by row group.
pub fn split(
    cfg: &Config,
    ingest_dir: &Path,
    out_dir: &Path,
    progress: &Progress,
) -> Result<Summary, SplitError> {
    split_within(cfg, ingest_dir, out_dir, progress, None)
}

/// [`split`] with `budget`, the bytes the in-memory path may take (None: what the memory
/// guard allows). Above it every strategy but `predefined` streams the ratings table
/// (`stream.rs`), with the same tables and summary as in memory.
pub fn split_within(
    cfg: &Config,
    ingest_dir: &Path,
    out_dir: &Path,
    progress: &Progress,
    budget: Option<u64>,
) -> Result<Summary, SplitError> {
    cfg.validate()?;
    if cfg.strategy != Strategy::Predefined {
        let path = ingest_dir.join(layout::ingest::RATINGS);
        if !memory::in_memory_fits(&path, budget) {
            return stream::split(cfg, &path, out_dir, progress);
        }
    }
    let (ratings, mut part, dropped_min_ratings) = assign(cfg, ingest_dir)?;
    let dropped_cold = if cfg.drop_cold_start {
        strategies::drop_cold_start(
            &mut part,
            &ratings.user,
            &ratings.item,
            ratings.n_users,
            ratings.n_items,
        )
    } else {
        (0, 0)
    };
    let [train, valid, test] = summary::parts(&ratings, &part, dropped_cold);
    let summary = Summary {
        strategy: cfg.strategy.name().to_string(),
        seed: cfg.seed,
        fold: cfg.fold,
        n_users: ratings.n_users,
        n_items: ratings.n_items,
        input_rows: ratings.len(),
        dropped_min_ratings,
        train,
        valid,
        test,
    };

    let bar = progress.count(3, "writing");
    let files = [
        (TRAIN, layout::split::TRAIN),
        (VALID, layout::split::VALID),
        (TEST, layout::split::TEST),
    ];
    for (label, name) in files {
        let rows: Vec<usize> = (0..part.len()).filter(|&i| part[i] == label).collect();
        ratings.select(&rows).write(out_dir.join(name))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    fsutil::write_json(out_dir.join(layout::split::SUMMARY), &summary)?;
    tracing::debug!(
        train = summary.train.rows,
        valid = summary.valid.rows,
        test = summary.test.rows,
        "split done"
    );
    Ok(summary)
}

/// Reads the input and labels every row; returns the ratings, the labels and the number of
/// rows dropped by `min_ratings`.
fn assign(cfg: &Config, ingest_dir: &Path) -> Result<(Ratings, Vec<u8>, usize), SplitError> {
    if cfg.strategy == Strategy::Predefined {
        let catalog = Catalog::read(ingest_dir)?;
        let mut loaded = predefined::load(cfg, &catalog)?;
        if cfg.valid_file.is_none() {
            // Only train rows are still TRAIN, so valid is carved out of the train file alone.
            strategies::random(&mut loaded.part, cfg.valid_fraction, 0.0, cfg.seed);
        }
        return Ok((loaded.ratings, loaded.part, 0));
    }
    let (path, r) = read_ratings(cfg, ingest_dir)?;
    let (mut part, dropped) = first_labels(cfg, &path, r.len(), |min, part| {
        Ok(strategies::drop_sparse_users(&r.user, r.n_users, min, part))
    })?;
    hold_out(cfg, &r, &mut part);
    debug_assert!(part.iter().all(|&p| p <= DROPPED));
    Ok((r, part, dropped))
}

/// The labels both the in-memory and the streaming split start from: every one of the
/// `rows` rows TRAIN, then, when `min_ratings` > 1, the rows of users with fewer ratings
/// DROPPED by `drop_sparse(min_ratings, labels)` (in memory or in a pass over the file),
/// which returns how many it dropped. Returns the labels and that count, or the error
/// naming `path` and the setting when no row is left to train on.
fn first_labels(
    cfg: &Config,
    path: &Path,
    rows: usize,
    drop_sparse: impl FnOnce(u32, &mut [u8]) -> Result<usize, SplitError>,
) -> Result<(Vec<u8>, usize), SplitError> {
    let mut part = vec![TRAIN; rows];
    let dropped = if cfg.min_ratings > 1 {
        drop_sparse(cfg.min_ratings, &mut part)?
    } else {
        0
    };
    if !part.contains(&TRAIN) {
        return Err(SplitError::Config {
            key: "min_ratings",
            message: format!(
                "= {} removes every user of {}; lower it",
                cfg.min_ratings,
                path.display()
            ),
        });
    }
    Ok((part, dropped))
}

/// The ingest artifact's ratings (and their path), checked for what the strategy needs.
fn read_ratings(cfg: &Config, ingest_dir: &Path) -> Result<(PathBuf, Ratings), SplitError> {
    let path = ingest_dir.join(layout::ingest::RATINGS);
    memory::check(&path)?;
    let r = Ratings::read(&path)?;
    if r.is_empty() {
        return Err(SplitError::Empty {
            path,
            hint: "; check the ingest stage's input and filters".into(),
        });
    }
    if u32::try_from(r.len()).is_err() {
        return Err(SplitError::TooLarge {
            rows: r.len(),
            path,
        });
    }
    if r.timestamp.is_none() && cfg.strategy.needs_timestamps() {
        return Err(SplitError::NoTimestamps {
            strategy: cfg.strategy.name(),
            path,
        });
    }
    Ok((path, r))
}

/// Moves the valid and test rows of the configured strategy out of TRAIN.
fn hold_out(cfg: &Config, r: &Ratings, part: &mut [u8]) {
    let ts = r.timestamp.as_deref().unwrap_or(&[]);
    let (vf, tf) = (cfg.valid_fraction, cfg.test_fraction);
    match cfg.strategy {
        Strategy::Random => match cfg.compat {
            // validate() checked that the seed fits NumPy's 32-bit seeds.
            Some(c) => strategies::random_compat(part, vf, cfg.seed as u32, c),
            None => strategies::random(part, vf, tf, cfg.seed),
        },
        Strategy::Chronological => strategies::chronological(part, ts, vf, tf),
        Strategy::UserRandom => strategies::per_user(
            part,
            &r.user,
            r.n_users,
            &mut Fractions::new(vf, tf),
            Within::Random(SplitMix64::new(cfg.seed)),
        ),
        Strategy::UserChronological => strategies::per_user(
            part,
            &r.user,
            r.n_users,
            &mut Fractions::new(vf, tf),
            Within::Latest(ts),
        ),
        Strategy::LeaveLastK => strategies::per_user(
            part,
            &r.user,
            r.n_users,
            &mut LastK(cfg.k as usize),
            Within::Latest(ts),
        ),
        Strategy::Predefined => unreachable!("handled in assign"),
    }
}

/// Reads an artifact's split.json (for `recpipe show` and downstream stages).
pub fn read_summary(split_dir: &Path) -> Result<Summary, SplitError> {
    Ok(fsutil::read_json(split_dir.join(layout::split::SUMMARY))?)
}
