//! The `[evaluate]` table of a pipeline.

use crate::error::EvaluateError;
use serde::{Deserialize, Serialize};

/// Which held-out interactions the ranking metrics count as relevant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relevance {
    /// A held-out rating ≥ `relevance_threshold`.
    #[default]
    Threshold,
    /// Every held-out interaction, whatever its rating (the top-N protocol of implicit
    /// feedback: Microsoft recommenders' MovieLens benchmark).
    Any,
}

/// Every knob of the evaluate stage. Parsed strictly: an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Length of the top-k lists the ranking metrics judge.
    pub k: usize,
    /// A held-out rating at or above this counts as relevant for the ranking metrics.
    pub relevance_threshold: f32,
    /// `"threshold"` (held-out ratings ≥ `relevance_threshold` are relevant) or `"any"`
    /// (every held-out interaction is).
    pub relevance: Relevance,
    /// Split parts to evaluate, in order; parts that hold no ratings are skipped.
    pub parts: Vec<String>,
    /// Users ranked for the ranking metrics: 0 = every user of the part, otherwise a seeded
    /// random sample of that many (full ranking of 100k+ users is the slow part).
    pub ranking_users: usize,
    /// Seed of the ranking-user sample.
    pub seed: u64,
    /// Edges of the user-activity buckets, in train ratings per user: [20, 50, 200] gives
    /// <20, 20–49, 50–199 and ≥200.
    pub activity_buckets: Vec<u32>,
    /// Fit and report the global/user/item mean, bias and most-popular baselines.
    pub baselines: bool,
    /// Top-N users × top-N movies of the ratings crosstab (0 = none).
    pub crosstab_size: usize,
    /// Write SVG plots next to the report.
    pub plots: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            k: 10,
            relevance_threshold: 4.0,
            relevance: Relevance::Threshold,
            parts: vec!["valid".into(), "test".into()],
            ranking_users: 0,
            seed: 42,
            activity_buckets: vec![20, 50, 200],
            baselines: true,
            crosstab_size: 15,
            plots: true,
        }
    }
}

pub const PARTS: [&str; 2] = ["valid", "test"];

impl Config {
    /// The rating at or above which a held-out interaction is relevant (every one for
    /// `relevance = "any"`).
    pub fn threshold(&self) -> f32 {
        match self.relevance {
            Relevance::Threshold => self.relevance_threshold,
            Relevance::Any => f32::NEG_INFINITY,
        }
    }

    pub fn validate(&self) -> Result<(), EvaluateError> {
        if self.k == 0 {
            return Err(EvaluateError::config(
                "k",
                "must be at least 1 (e.g. k = 10)",
            ));
        }
        if !self.relevance_threshold.is_finite() {
            return Err(EvaluateError::config(
                "relevance_threshold",
                "must be a finite rating (e.g. 4.0)",
            ));
        }
        if self.parts.is_empty() {
            return Err(EvaluateError::config(
                "parts",
                "is empty; use [\"valid\"], [\"test\"] or [\"valid\", \"test\"]",
            ));
        }
        for (i, p) in self.parts.iter().enumerate() {
            if !PARTS.contains(&p.as_str()) {
                return Err(EvaluateError::config(
                    "parts",
                    format!(
                        "has `{p}`; only \"valid\" and \"test\" can be evaluated (train items \
                         are what the ranking metrics exclude)"
                    ),
                ));
            }
            if self.parts[..i].contains(p) {
                return Err(EvaluateError::config("parts", format!("lists `{p}` twice")));
            }
        }
        if self.activity_buckets.first() == Some(&0)
            || self.activity_buckets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(EvaluateError::config(
                "activity_buckets",
                format!(
                    "must be increasing positive rating counts (e.g. [20, 50, 200]); got {:?}",
                    self.activity_buckets
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_strict_parsing() {
        let c: Config = toml::from_str("k = 5").unwrap();
        assert_eq!(c.k, 5);
        assert_eq!(c.parts, ["valid", "test"]);
        assert!(c.validate().is_ok());
        let c: Config = toml::from_str("relevance = \"any\"").unwrap();
        assert_eq!(
            (c.relevance, c.threshold()),
            (Relevance::Any, f32::NEG_INFINITY)
        );
        assert!(toml::from_str::<Config>("relevance = \"some\"").is_err());
        let err = toml::from_str::<Config>("topk = 5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("topk"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let bad = [
            ("k = 0", "`k`"),
            ("parts = [\"train\"]", "`parts`"),
            ("parts = [\"valid\", \"valid\"]", "twice"),
            ("parts = []", "`parts`"),
            ("activity_buckets = [50, 20]", "`activity_buckets`"),
        ];
        for (text, needle) in bad {
            let c: Config = toml::from_str(text).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
