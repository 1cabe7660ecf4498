//! The `[train]` table of a pipeline. Every key has a default; an unknown key is an error.

use crate::error::{Result, TrainError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;

/// The model kinds and the embedding join are core's: model.json records them too.
pub use recpipe_core::model::{Join, ModelKind};

/// `weights` of a blend: given numbers, or fitted on the validation set.
#[derive(Debug, Clone, PartialEq)]
pub enum BlendWeights {
    Fixed(Vec<f32>),
    Fit,
}

impl Serialize for BlendWeights {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            BlendWeights::Fixed(w) => w.serialize(s),
            BlendWeights::Fit => s.serialize_str("fit"),
        }
    }
}

impl<'de> Deserialize<'de> for BlendWeights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            List(Vec<f32>),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "weights must be \"fit\" or a list of numbers, e.g. [0.5, 0.5]",
            )
        })? {
            Raw::Name(n) if n == "fit" => Ok(BlendWeights::Fit),
            Raw::Name(n) => Err(serde::de::Error::custom(format!(
                "weights = \"{n}\": use \"fit\" or a list of numbers, e.g. [0.5, 0.5]"
            ))),
            Raw::List(v) => Ok(BlendWeights::Fixed(v)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// PyTorch `Adam`: weight decay added to the gradient (coupled L2).
    #[default]
    Adam,
    /// PyTorch `AdamW`: weight decay applied to the weights, decoupled from the gradient.
    #[serde(rename = "adamw")]
    AdamW,
    /// PyTorch `SGD` with `momentum`. With `batch_size = 1` and `momentum = 0`, `dot` and
    /// `dot_bias` train on the parallel per-rating grid path (cpu/grid.rs), the fast one for
    /// large data; there `weight_decay` acts only on the rows a rating touches.
    Sgd,
    /// PyTorch `SparseAdam`: moments of a row change only in batches that touch it.
    SparseAdam,
    /// Per-rating row-wise Adagrad (libmf): one squared-gradient sum per embedding row, the
    /// step of a row shrinking as its ratings add up. `dot` / `dot_bias` with
    /// `batch_size = 1` only: it trains on the parallel grid path for large data.
    Adagrad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitKind {
    /// uniform(-s, s), s = init_scale or 0.01.
    #[default]
    Uniform,
    /// uniform(0, s), s = init_scale or 0.05.
    UniformPos,
    /// normal(0, s), s = init_scale or 0.01.
    Normal,
    /// Keras `he_normal`: truncated normal with std sqrt(2 / fan_in) (times init_scale if set).
    HeNormal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    Constant,
    /// fastai `fit_one_cycle`: cosine warm-up from lr/25 to lr over `pct_start` of the steps,
    /// then cosine annealing to lr/25e4.
    OneCycle,
    /// lr · gamma^(epoch / step_size), PyTorch `StepLR` stepped once per epoch.
    Step,
}

/// `device`: `"auto"`, `"cpu"`, `"cuda"` (the first CUDA device) or `"cuda:N"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceChoice {
    /// The first CUDA device when a driver and a device are present and the CUDA backend
    /// trains the model, else cpu (with a log line saying why).
    #[default]
    Auto,
    Cpu,
    /// CUDA device N (`"cuda"` is `"cuda:0"`).
    Cuda(usize),
}

impl TryFrom<String> for DeviceChoice {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| {
                    format!(
                        "unknown device `{other}`: expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\""
                    )
                }),
        }
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        match d {
            DeviceChoice::Auto => "auto".into(),
            DeviceChoice::Cpu => "cpu".into(),
            // "cuda" stays "cuda" in the record (and the cache key) it always had.
            DeviceChoice::Cuda(0) => "cuda".into(),
            DeviceChoice::Cuda(n) => format!("cuda:{n}"),
        }
    }
}

/// Output squashing: `"none"`, `"auto"` (the training ratings' range, widened so the
/// sigmoid can reach the extremes) or `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum YRange {
    None,
    #[default]
    Auto,
    Range(f32, f32),
}

impl Serialize for YRange {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            YRange::None => s.serialize_str("none"),
            YRange::Auto => s.serialize_str("auto"),
            YRange::Range(lo, hi) => [*lo, *hi].serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for YRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Range(Vec<f32>),
        }
        let err = || {
            serde::de::Error::custom(
                "y_range must be \"none\", \"auto\" or [lo, hi] with lo < hi, e.g. [0.0, 5.5]",
            )
        };
        match Raw::deserialize(d).map_err(|_| err())? {
            Raw::Name(n) if n == "none" => Ok(YRange::None),
            Raw::Name(n) if n == "auto" => Ok(YRange::Auto),
            Raw::Range(v) if v.len() == 2 && v[0] < v[1] && v.iter().all(|x| x.is_finite()) => {
                Ok(YRange::Range(v[0], v[1]))
            }
            _ => Err(err()),
        }
    }
}

/// Every knob of the train stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub model: ModelKind,
    /// Embedding dimension; default 50 (32 for `classifier`, 500 hidden units for `autorec`).
    pub k: Option<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    /// Peak learning rate (the constant one for `schedule = "constant"`).
    pub lr: f32,
    /// sgd momentum.
    pub momentum: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Coupled (adam, sgd, sparse_adam) or decoupled (adamw) weight decay, as in PyTorch.
    pub weight_decay: f32,
    /// Keras-style L2 penalty `l2 · Σ w²` on the embedding rows a batch uses.
    pub l2: f32,
    pub init: InitKind,
    pub init_scale: Option<f32>,
    pub y_range: YRange,
    pub schedule: ScheduleKind,
    /// `step`: epochs between decays.
    pub step_size: usize,
    /// `step`: decay factor.
    pub gamma: f32,
    /// `one_cycle`: share of the steps spent warming up.
    pub pct_start: f32,
    pub seed: u64,
    /// Worker threads; 0 = all cores.
    pub threads: usize,
    /// Stop after this many epochs without a better validation RMSE.
    pub early_stopping_patience: Option<usize>,
    /// Save the epoch with the best validation RMSE rather than the last one.
    pub keep_best: bool,
    pub device: DeviceChoice,

    // mlp / hybrid / classifier
    pub join: Join,
    /// Dropout on the joined embeddings; default 0.05 (mlp, hybrid) / 0 (classifier).
    pub dropout: Option<f32>,
    /// Hidden layer widths; default [10] (mlp, hybrid) / [128, 128, 128] (classifier).
    pub hidden: Option<Vec<usize>>,
    /// Dropout before the output layer; default 0.5 (mlp, hybrid) / 0.3 (classifier).
    pub output_dropout: Option<f32>,
    /// Batch norm after each hidden layer; default false (mlp, hybrid) / true (classifier).
    pub batch_norm: Option<bool>,

    // hybrid
    /// Use the items table's genres as a multi-hot item feature.
    pub genres: bool,
    /// Parquet file with `item_id` and a FixedSizeList<f32> column of item features.
    pub item_features_file: Option<PathBuf>,
    /// Dense layers the item features pass through before the join.
    pub item_features_hidden: Vec<usize>,

    // blend
    /// One weight per upstream train stage, in `inputs` order, or `"fit"`: least squares
    /// (with an intercept) on the validation set. Default: equal weights.
    pub weights: Option<BlendWeights>,

    // ranking models (ease, ials, bpr)
    /// Ratings ≥ this are the positives a ranking model learns from; default: every train
    /// row is an interaction, whatever its rating.
    pub positive_threshold: Option<f32>,
    /// `ease`: the L2 weight λ added to the Gram matrix's diagonal (default
    /// [`EASE_LAMBDA`]).
    pub lambda: Option<f32>,
    /// `ials`: confidence slope, c = 1 + alpha·r (default [`IALS_ALPHA`]).
    pub alpha: Option<f32>,
    /// `ials` / `bpr`: L2 weight on the factors (default [`IALS_REG`] / [`BPR_REG`]).
    pub reg: Option<f32>,
    /// `ials`: conjugate-gradient steps per row and half-sweep (default [`IALS_CG_STEPS`]).
    pub cg_steps: Option<usize>,
    /// `bpr`: negatives sampled per positive and epoch (default [`BPR_NEGATIVES`]).
    pub negatives: Option<usize>,
    /// `ials`: the r of an interaction's confidence c = 1 + alpha·r (default
    /// [`IALS_CONFIDENCE`]).
    pub confidence: Option<Confidence>,
}

/// `confidence` of `ials`: what r is in c = 1 + alpha·r.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// r = 1 for every interaction.
    Binary,
    /// r = the interaction's rating.
    Rating,
}

/// `ease`'s default λ (tuned on the bundled MovieLens data, see BENCHMARKS.md).
pub const EASE_LAMBDA: f32 = 500.0;
/// `ials`'s default confidence slope.
pub const IALS_ALPHA: f32 = 1.0;
/// `ials`'s default L2 weight (tuned with rating confidences on a validation carve-out of
/// the bundled ml-latest-small, see BENCHMARKS.md).
pub const IALS_REG: f32 = 30.0;
/// `ials`'s default conjugate-gradient steps.
pub const IALS_CG_STEPS: usize = 3;
/// `bpr`'s default L2 weight.
pub const BPR_REG: f32 = 0.01;
/// `bpr`'s default negatives per positive (4 beat 1 and 8 on the bundled data).
pub const BPR_NEGATIVES: usize = 4;
/// `ials`'s default confidence: the rating (a higher rating, a surer positive).
pub const IALS_CONFIDENCE: Confidence = Confidence::Rating;

impl Default for Config {
    fn default() -> Self {
        Config {
            model: ModelKind::DotBias,
            k: None,
            epochs: 5,
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-4,
            l2: 0.0,
            init: InitKind::Uniform,
            init_scale: None,
            y_range: YRange::Auto,
            schedule: ScheduleKind::Constant,
            step_size: 1,
            gamma: 0.5,
            pct_start: 0.25,
            seed: 42,
            threads: 0,
            early_stopping_patience: None,
            keep_best: true,
            device: DeviceChoice::Auto,
            join: Join::Concat,
            dropout: None,
            hidden: None,
            output_dropout: None,
            batch_norm: None,
            genres: true,
            item_features_file: None,
            item_features_hidden: vec![32, 16],
            weights: None,
            positive_threshold: None,
            lambda: None,
            alpha: None,
            reg: None,
            cg_steps: None,
            negatives: None,
            confidence: None,
        }
    }
}

impl Config {
    pub fn k(&self) -> usize {
        self.k.unwrap_or(match self.model {
            ModelKind::Classifier => 32,
            ModelKind::Autorec => 500,
            _ => 50,
        })
    }
    pub fn dropout(&self) -> f32 {
        self.dropout.unwrap_or(match self.model {
            ModelKind::Classifier => 0.0,
            _ => 0.05,
        })
    }
    pub fn hidden(&self) -> Vec<usize> {
        self.hidden.clone().unwrap_or_else(|| match self.model {
            ModelKind::Classifier => vec![128, 128, 128],
            _ => vec![10],
        })
    }
    pub fn output_dropout(&self) -> f32 {
        self.output_dropout.unwrap_or(match self.model {
            ModelKind::Classifier => 0.3,
            _ => 0.5,
        })
    }
    pub fn batch_norm(&self) -> bool {
        self.batch_norm
            .unwrap_or(matches!(self.model, ModelKind::Classifier))
    }
    /// `ease`'s λ.
    pub fn lambda(&self) -> f32 {
        self.lambda.unwrap_or(EASE_LAMBDA)
    }
    /// `ials`'s confidence slope.
    pub fn alpha(&self) -> f32 {
        self.alpha.unwrap_or(IALS_ALPHA)
    }
    /// The L2 weight of `ials` or `bpr`.
    pub fn reg(&self) -> f32 {
        self.reg.unwrap_or(match self.model {
            ModelKind::Bpr => BPR_REG,
            _ => IALS_REG,
        })
    }
    /// `ials`'s conjugate-gradient steps.
    pub fn cg_steps(&self) -> usize {
        self.cg_steps.unwrap_or(IALS_CG_STEPS)
    }
    /// `bpr`'s negatives per positive.
    pub fn negatives(&self) -> usize {
        self.negatives.unwrap_or(BPR_NEGATIVES)
    }
    /// `ials`'s confidence.
    pub fn confidence(&self) -> Confidence {
        self.confidence.unwrap_or(IALS_CONFIDENCE)
    }

    /// Checks every value a user can get wrong, naming the key.
    pub fn validate(&self) -> Result<()> {
        self.validate_numbers()?;
        self.validate_model()
    }

    /// The numeric keys: sizes, rates, moments, schedule.
    fn validate_numbers(&self) -> Result<()> {
        if self.k() == 0 {
            return Err(TrainError::config("k", "must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(TrainError::config("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(TrainError::config("batch_size", "must be at least 1"));
        }
        positive("lr", self.lr)?;
        positive("eps", self.eps)?;
        unit("momentum", self.momentum)?;
        unit("beta1", self.beta1)?;
        unit("beta2", self.beta2)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("l2", self.l2)?;
        if let Some(s) = self.init_scale {
            positive("init_scale", s)?;
        }
        if self.step_size == 0 {
            return Err(TrainError::config("step_size", "must be at least 1"));
        }
        positive("gamma", self.gamma)?;
        if !(self.pct_start > 0.0 && self.pct_start < 1.0) {
            return Err(TrainError::config(
                "pct_start",
                format!("must be in (0, 1), got {}", self.pct_start),
            ));
        }
        if self.early_stopping_patience == Some(0) {
            return Err(TrainError::config(
                "early_stopping_patience",
                "must be at least 1 (leave it out to train all epochs)",
            ));
        }
        unit("dropout", self.dropout())?;
        unit("output_dropout", self.output_dropout())
    }

    /// The ranking models' keys: each only with its models, and in range.
    fn validate_ranking(&self) -> Result<()> {
        use ModelKind::{Bpr, Ease, Ials};
        let only = |key: &'static str, set: bool, models: &[ModelKind]| -> Result<()> {
            if set && !models.contains(&self.model) {
                let names: Vec<String> = models.iter().map(|m| format!("\"{m}\"")).collect();
                return Err(TrainError::config(
                    key,
                    format!(
                        "only applies to model = {} (this stage trains \"{}\"); remove it",
                        names.join(" or "),
                        self.model
                    ),
                ));
            }
            Ok(())
        };
        only(
            "positive_threshold",
            self.positive_threshold.is_some(),
            &[Ease, Ials, Bpr],
        )?;
        only("lambda", self.lambda.is_some(), &[Ease])?;
        only("alpha", self.alpha.is_some(), &[Ials])?;
        only("cg_steps", self.cg_steps.is_some(), &[Ials])?;
        only("reg", self.reg.is_some(), &[Ials, Bpr])?;
        only("negatives", self.negatives.is_some(), &[Bpr])?;
        only("confidence", self.confidence.is_some(), &[Ials])?;
        if let Some(t) = self.positive_threshold
            && !t.is_finite()
        {
            return Err(TrainError::config(
                "positive_threshold",
                format!("must be a finite rating, got {t}"),
            ));
        }
        positive("lambda", self.lambda())?;
        non_negative("alpha", self.alpha())?;
        non_negative("reg", self.reg())?;
        if self.cg_steps() == 0 {
            return Err(TrainError::config("cg_steps", "must be at least 1"));
        }
        if self.negatives() == 0 {
            return Err(TrainError::config("negatives", "must be at least 1"));
        }
        Ok(())
    }

    /// The keys that only make sense for some models.
    fn validate_model(&self) -> Result<()> {
        self.validate_ranking()?;
        if self.hidden().contains(&0) || self.item_features_hidden.contains(&0) {
            return Err(TrainError::config(
                "hidden",
                "layer widths must be at least 1",
            ));
        }
        if self.optimizer == OptimizerKind::Adagrad
            && !(self.model.is_embedding() && self.batch_size == 1)
        {
            return Err(TrainError::config(
                "optimizer",
                "\"adagrad\" is the per-rating optimizer of `dot` and `dot_bias`: set \
                 batch_size = 1 (or pick adam / sgd for batched training)",
            ));
        }
        if self.weights.is_some() && self.model != ModelKind::Blend {
            return Err(TrainError::config(
                "weights",
                "only applies to model = \"blend\"; remove it",
            ));
        }
        if let Some(BlendWeights::Fixed(w)) = &self.weights
            && w.iter().any(|v| !v.is_finite())
        {
            return Err(TrainError::config("weights", "must be finite numbers"));
        }
        if self.model == ModelKind::Hybrid && !self.genres && self.item_features_file.is_none() {
            return Err(TrainError::config(
                "model",
                "`hybrid` needs item features: set genres = true or item_features_file",
            ));
        }
        Ok(())
    }
}

fn positive(key: &'static str, v: f32) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(TrainError::config(key, format!("must be > 0, got {v}")))
    }
}

fn unit(key: &'static str, v: f32) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(TrainError::config(
            key,
            format!("must be in [0, 1), got {v}"),
        ))
    }
}

fn non_negative(key: &'static str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(TrainError::config(key, format!("must be >= 0, got {v}")))
    }
}

#[cfg(test)]
impl Config {
    /// Plain SGD at lr 1 (no momentum, no decay, init scale 0.5): one step moves every weight
    /// by minus its gradient, which the trainers' gradient tests compare with finite
    /// differences.
    pub(crate) fn plain_sgd(model: ModelKind) -> Config {
        Config {
            model,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.0,
            weight_decay: 0.0,
            lr: 1.0,
            init_scale: Some(0.5),
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_from_an_empty_table_and_unknown_keys_are_named() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.k(), 50);
        let err = toml::from_str::<Config>("lr = 0.01\nepoch = 3").unwrap_err();
        assert!(err.to_string().contains("epoch"), "{err}");
    }

    #[test]
    fn y_range_forms() {
        let c: Config = toml::from_str("y_range = [0.0, 5.5]").unwrap();
        assert_eq!(c.y_range, YRange::Range(0.0, 5.5));
        let c: Config = toml::from_str("y_range = \"none\"").unwrap();
        assert_eq!(c.y_range, YRange::None);
        assert!(toml::from_str::<Config>("y_range = [5.0, 1.0]").is_err());
        assert!(toml::from_str::<Config>("y_range = \"sometimes\"").is_err());
        let json = serde_json::to_string(&Config::default()).unwrap();
        let back: Config = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Config::default());
    }

    #[test]
    fn model_defaults_and_validation() {
        let c: Config = toml::from_str("model = \"classifier\"").unwrap();
        assert_eq!(
            (c.k(), c.hidden(), c.batch_norm()),
            (32, vec![128; 3], true)
        );
        let c: Config = toml::from_str("lr = -1.0").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("`lr`"), "{err}");
        let c: Config = toml::from_str("optimizer = \"adamw\"").unwrap();
        assert_eq!(c.optimizer, OptimizerKind::AdamW);
        c.validate().unwrap();
    }

    #[test]
    fn ranking_keys_parse_default_and_belong_to_their_models() {
        let c: Config = toml::from_str("model = \"ease\"\nlambda = 250.0").unwrap();
        assert_eq!((c.model, c.lambda()), (ModelKind::Ease, 250.0));
        c.validate().unwrap();
        let c: Config =
            toml::from_str("model = \"ials\"\nalpha = 4.0\ncg_steps = 2\npositive_threshold = 3.5")
                .unwrap();
        assert_eq!((c.alpha(), c.cg_steps(), c.reg()), (4.0, 2, IALS_REG));
        assert_eq!(c.confidence(), Confidence::Rating);
        let c: Config = toml::from_str("model = \"ials\"\nconfidence = \"binary\"").unwrap();
        assert_eq!(c.confidence(), Confidence::Binary);
        c.validate().unwrap();
        let c: Config = toml::from_str("model = \"bpr\"\nnegatives = 3").unwrap();
        assert_eq!((c.negatives(), c.reg()), (3, BPR_REG));
        c.validate().unwrap();
        for (toml, key) in [
            (
                "model = \"dot_bias\"\nlambda = 1.0",
                "`lambda` only applies to model = \"ease\"",
            ),
            (
                "model = \"ease\"\nalpha = 1.0",
                "`alpha` only applies to model = \"ials\"",
            ),
            ("model = \"ease\"\nreg = 1.0", "\"ials\" or \"bpr\""),
            (
                "positive_threshold = 4.0",
                "`positive_threshold` only applies",
            ),
            ("model = \"ease\"\nlambda = 0.0", "`lambda` must be > 0"),
            (
                "model = \"ials\"\ncg_steps = 0",
                "`cg_steps` must be at least 1",
            ),
            (
                "model = \"bpr\"\nnegatives = 0",
                "`negatives` must be at least 1",
            ),
            ("model = \"bpr\"\nreg = -1.0", "`reg` must be >= 0"),
            (
                "model = \"bpr\"\nconfidence = \"binary\"",
                "`confidence` only applies to model = \"ials\"",
            ),
        ] {
            let c: Config = toml::from_str(toml).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
    }
}
