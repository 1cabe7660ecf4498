//! The `[split]` table of a pipeline: which strategy, which fractions, which seed.

use crate::error::SplitError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How ratings are divided into train / valid / test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Rows shuffled globally with `seed`; the first `test_fraction` to test, the next
    /// `valid_fraction` to valid (the notebooks' `random_split`).
    #[default]
    Random,
    /// Each user's ratings shuffled and split in the fractions, so every user with two or
    /// more ratings keeps at least one in train.
    #[serde(alias = "stratified")]
    UserRandom,
    /// One global time cut: the latest `test_fraction` of all ratings to test, the
    /// `valid_fraction` before them to valid.
    Chronological,
    /// Per user, the latest `test_fraction` of the user's ratings to test and the
    /// `valid_fraction` before them to valid; every user keeps at least one in train.
    #[serde(alias = "user_chrono")]
    UserChronological,
    /// Per user, the last `k` ratings by time to test and the `k` before them to valid; a
    /// user always keeps at least one rating in train, so short histories give up fewer.
    #[serde(alias = "leave_last")]
    LeaveLastK,
    /// Train and test read from `train_file` / `test_file` (e.g. ml-100k `u1.base` /
    /// `u1.test`); valid is `valid_file` when given, else `valid_fraction` of the train file.
    Predefined,
}

impl Compat {
    pub fn name(self) -> &'static str {
        match self {
            Compat::Sklearn => "sklearn",
            Compat::Pandas => "pandas",
        }
    }
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::UserRandom => "user_random",
            Strategy::Chronological => "chronological",
            Strategy::UserChronological => "user_chronological",
            Strategy::LeaveLastK => "leave_last_k",
            Strategy::Predefined => "predefined",
        }
    }

    pub fn needs_timestamps(self) -> bool {
        matches!(
            self,
            Strategy::Chronological | Strategy::UserChronological | Strategy::LeaveLastK
        )
    }

    fn uses_fractions(self) -> bool {
        !matches!(self, Strategy::LeaveLastK)
    }
}

/// Reproduce the row sets of a Python notebook's random split (strategy `random` only). The
/// rows are the ingested table's, which keep the ratings file's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compat {
    /// `train, valid = sklearn.model_selection.train_test_split(ratings,
    /// test_size=valid_fraction, random_state=seed)`: valid is the first
    /// ceil(valid_fraction · n) rows of `np.random.RandomState(seed).permutation(n)`.
    Sklearn,
    /// `train = ratings.sample(frac=1 - valid_fraction, random_state=seed)` and valid the
    /// rest: train is the first round((1 - valid_fraction) · n) rows of the same permutation.
    Pandas,
}

pub const DEFAULT_VALID_FRACTION: f64 = 0.1;
pub const DEFAULT_TEST_FRACTION: f64 = 0.0;
pub const DEFAULT_SEED: u64 = 42;
pub const DEFAULT_K: u32 = 1;

/// Every knob of the split stage. Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub strategy: Strategy,
    /// Share of ratings in valid, in [0, 1). Default 0.1 (a 90/10 split).
    pub valid_fraction: f64,
    /// Share of ratings in test, in [0, 1). Default 0: test.parquet is written empty.
    pub test_fraction: f64,
    /// Seed of the shuffles (random, user_random, and predefined's valid carve-out).
    pub seed: u64,
    /// Draw the random split exactly as scikit-learn or pandas would (NumPy's MT19937), so
    /// results compare with a notebook's on the very same rows. Needs `seed` < 2^32.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compat: Option<Compat>,
    /// Ratings per user held out in each of test and valid by `leave_last_k`.
    pub k: u32,
    /// Users with fewer ratings than this are dropped before splitting (0: keep all).
    pub min_ratings: u32,
    /// Drop valid/test rows whose user or item has no rating in train (counted in split.json).
    pub drop_cold_start: bool,
    /// `predefined`: train ratings, `user item rating [timestamp]` per line with original ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_file: Option<PathBuf>,
    /// `predefined`: test ratings, same format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_file: Option<PathBuf>,
    /// `predefined`: valid ratings; without it valid is `valid_fraction` of the train file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_file: Option<PathBuf>,
    /// `predefined`: a fold number (1, 2, ...) put in place of the text `{fold}` in
    /// `train_file`, `test_file` and `valid_file`, so one pipeline covers every fold of a
    /// cross-validation (`train_file = "data/ml-100k/u{fold}.base"`, `--grid split.fold=1,2,3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fold: Option<u32>,
}

/// The placeholder `fold` replaces in the file paths.
pub const FOLD_PLACEHOLDER: &str = "{fold}";

impl Default for Config {
    fn default() -> Self {
        Config {
            strategy: Strategy::Random,
            valid_fraction: DEFAULT_VALID_FRACTION,
            test_fraction: DEFAULT_TEST_FRACTION,
            seed: DEFAULT_SEED,
            compat: None,
            k: DEFAULT_K,
            min_ratings: 0,
            drop_cold_start: false,
            train_file: None,
            test_file: None,
            valid_file: None,
            fold: None,
        }
    }
}

impl Config {
    /// Checks that need no data: ranges, keys that do not apply to the strategy, required files.
    /// A key that would silently have no effect is an error, like an unknown key.
    pub fn validate(&self) -> Result<(), SplitError> {
        self.validate_fractions()?;
        self.validate_compat()?;
        self.validate_k()?;
        if self.strategy == Strategy::Predefined {
            self.validate_predefined()
        } else {
            self.validate_no_files()
        }
    }

    /// valid_fraction and test_fraction: in range, leaving train rows, and only where used.
    fn validate_fractions(&self) -> Result<(), SplitError> {
        let s = self.strategy.name();
        for (key, v) in [
            ("valid_fraction", self.valid_fraction),
            ("test_fraction", self.test_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(SplitError::config(
                    key,
                    format!("{v} is outside [0, 1); use e.g. 0.1 to hold out 10% of the ratings"),
                ));
            }
        }
        if self.valid_fraction + self.test_fraction >= 1.0 {
            return Err(SplitError::config(
                "valid_fraction",
                format!(
                    "valid_fraction {} + test_fraction {} = {} leaves nothing for train; \
                     their sum must be below 1",
                    self.valid_fraction,
                    self.test_fraction,
                    self.valid_fraction + self.test_fraction
                ),
            ));
        }
        if !self.strategy.uses_fractions() {
            if self.valid_fraction != DEFAULT_VALID_FRACTION {
                return Err(SplitError::config(
                    "valid_fraction",
                    format!(
                        "has no effect with strategy `{s}`, which holds out `k` ratings per user; remove it"
                    ),
                ));
            }
            if self.test_fraction != DEFAULT_TEST_FRACTION {
                return Err(SplitError::config(
                    "test_fraction",
                    format!(
                        "has no effect with strategy `{s}`, which holds out `k` ratings per user; remove it"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `compat` only with `random`, a two-way split and a 32-bit seed.
    fn validate_compat(&self) -> Result<(), SplitError> {
        let s = self.strategy.name();
        if let Some(c) = self.compat {
            if self.strategy != Strategy::Random {
                return Err(SplitError::config(
                    "compat",
                    format!("only applies to strategy `random`, not `{s}`; remove it"),
                ));
            }
            if self.test_fraction != DEFAULT_TEST_FRACTION {
                return Err(SplitError::config(
                    "test_fraction",
                    format!(
                        "compat = \"{}\" reproduces a two-way train/valid split; \
                         remove test_fraction (or drop compat for a three-way split)",
                        c.name()
                    ),
                ));
            }
            if u32::try_from(self.seed).is_err() {
                return Err(SplitError::config(
                    "seed",
                    format!(
                        "{} is too large for compat = \"{}\": NumPy's RandomState takes seeds \
                         from 0 to 4294967295",
                        self.seed,
                        c.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `k` only with `leave_last_k`, and at least 1 there.
    fn validate_k(&self) -> Result<(), SplitError> {
        let s = self.strategy.name();
        if self.strategy == Strategy::LeaveLastK {
            if self.k == 0 {
                return Err(SplitError::config(
                    "k",
                    "must be at least 1 (the number of latest ratings per user held out)",
                ));
            }
        } else if self.k != DEFAULT_K {
            return Err(SplitError::config(
                "k",
                format!("only applies to strategy `leave_last_k`, not `{s}`; remove it"),
            ));
        }
        Ok(())
    }

    /// `predefined`: the files it needs, no keys it ignores, and the fold.
    fn validate_predefined(&self) -> Result<(), SplitError> {
        if self.train_file.is_none() {
            return Err(SplitError::config(
                "train_file",
                "strategy `predefined` needs `train_file` (and `test_file`), \
                 e.g. train_file = \"data/ml-100k/u1.base\"",
            ));
        }
        if self.test_file.is_none() {
            return Err(SplitError::config(
                "test_file",
                "strategy `predefined` needs `test_file`, e.g. test_file = \"data/ml-100k/u1.test\"",
            ));
        }
        if self.test_fraction != DEFAULT_TEST_FRACTION {
            return Err(SplitError::config(
                "test_fraction",
                "has no effect with strategy `predefined`: test is `test_file`; remove it",
            ));
        }
        if self.valid_file.is_some() && self.valid_fraction != DEFAULT_VALID_FRACTION {
            return Err(SplitError::config(
                "valid_fraction",
                "has no effect when `valid_file` is given; remove one of them",
            ));
        }
        if self.min_ratings != 0 {
            return Err(SplitError::config(
                "min_ratings",
                "is not supported with strategy `predefined`: the files are used as given",
            ));
        }
        self.validate_fold()
    }

    /// Every other strategy: no `fold` and no predefined files.
    fn validate_no_files(&self) -> Result<(), SplitError> {
        let s = self.strategy.name();
        if self.fold.is_some() {
            return Err(SplitError::config(
                "fold",
                format!(
                    "only applies to strategy `predefined`, not `{s}` (it fills in \
                     `{FOLD_PLACEHOLDER}` in train_file / test_file); remove it"
                ),
            ));
        }
        for (key, v) in [
            ("train_file", &self.train_file),
            ("test_file", &self.test_file),
            ("valid_file", &self.valid_file),
        ] {
            if v.is_some() {
                return Err(SplitError::config(
                    key,
                    format!(
                        "only applies to strategy `predefined`, not `{s}`; set strategy = \"predefined\" or remove it"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `fold` and the `{fold}` placeholders go together.
    fn validate_fold(&self) -> Result<(), SplitError> {
        let templated: Vec<&'static str> = self
            .file_keys()
            .filter(|(_, p)| p.is_some_and(|p| has_placeholder(p)))
            .map(|(key, _)| key)
            .collect();
        match self.fold {
            None => {
                if let Some(&key) = templated.first() {
                    return Err(SplitError::config(
                        key,
                        format!(
                            "contains `{FOLD_PLACEHOLDER}` but `fold` is not set; add e.g. \
                             `fold = 1` to [stages.split] (or `--set split.fold=1`, or sweep \
                             the folds with `--grid split.fold=1,2,3,4,5`)"
                        ),
                    ));
                }
            }
            Some(0) => {
                return Err(SplitError::config(
                    "fold",
                    "must be at least 1 (folds are numbered from 1, like ml-100k's u1..u5)",
                ));
            }
            Some(f) => {
                if templated.is_empty() {
                    return Err(SplitError::config(
                        "fold",
                        format!(
                            "= {f} has no effect: none of train_file, test_file, valid_file \
                             contains `{FOLD_PLACEHOLDER}`; write the fold's place in the paths \
                             (train_file = \"data/ml-100k/u{FOLD_PLACEHOLDER}.base\") or remove `fold`"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn file_keys(&self) -> impl Iterator<Item = (&'static str, Option<&PathBuf>)> {
        [
            ("train_file", self.train_file.as_ref()),
            ("valid_file", self.valid_file.as_ref()),
            ("test_file", self.test_file.as_ref()),
        ]
        .into_iter()
    }

    /// `path` with `{fold}` replaced by the fold number (unchanged without `fold`).
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        match self.fold {
            Some(f) if has_placeholder(path) => PathBuf::from(
                path.to_string_lossy()
                    .replace(FOLD_PLACEHOLDER, &f.to_string()),
            ),
            _ => path.to_path_buf(),
        }
    }

    /// `train_file`, `valid_file`, `test_file` with `{fold}` filled in: the files read.
    pub fn resolved_train_file(&self) -> Option<PathBuf> {
        self.train_file.as_deref().map(|p| self.resolve_path(p))
    }

    /// See [`Config::resolved_train_file`].
    pub fn resolved_valid_file(&self) -> Option<PathBuf> {
        self.valid_file.as_deref().map(|p| self.resolve_path(p))
    }

    /// See [`Config::resolved_train_file`].
    pub fn resolved_test_file(&self) -> Option<PathBuf> {
        self.test_file.as_deref().map(|p| self.resolve_path(p))
    }

    /// The files a `predefined` split reads, `{fold}` filled in, for the runner's cache key
    /// (so each fold's artifacts are keyed by that fold's files).
    pub fn files(&self) -> Vec<PathBuf> {
        [
            self.resolved_train_file(),
            self.resolved_valid_file(),
            self.resolved_test_file(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn has_placeholder(path: &Path) -> bool {
    path.to_string_lossy().contains(FOLD_PLACEHOLDER)
}
