//! What a sweep ranks its trials by: `--metric STAGE.PATH` (a dotted path into the summary a
//! stage recorded in its manifest), or the first exact headline a stage of the pipeline
//! declares (the train stage's validation RMSE); better is lower or higher as that stage's
//! headlines say, unless `--minimize` / `--maximize` decide.

use crate::handler::Handler;
use crate::pipeline::Pipeline;
use crate::stages;
use anyhow::{Result, anyhow, bail};
use recpipe_core::Goal;
use serde_json::Value;

/// Where the metric lives: a stage name and a path into its summary.
#[derive(Debug, Clone)]
pub struct Metric {
    pub stage: String,
    pub path: Vec<String>,
    /// Which way is better, from the stage's headline of this path (None: not a headline).
    pub goal: Option<Goal>,
}

impl Metric {
    pub fn parse(spec: &str) -> Result<Metric> {
        let bad = || {
            anyhow!(
                "--metric {spec}: expected STAGE.PATH, a dotted path into the summary the stage \
                 recorded in its manifest.json (array indices as numbers), e.g. \
                 `--metric train.valid_rmse` or `--metric evaluate.parts.valid.train.p@10`; \
                 `recpipe show PIPELINE STAGE -v` prints a summary"
            )
        };
        let (stage, path) = spec.split_once('.').ok_or_else(bad)?;
        let path: Vec<String> = path.split('.').map(|s| s.trim().to_string()).collect();
        if stage.trim().is_empty() || path.iter().any(|s| s.is_empty()) {
            return Err(bad());
        }
        Ok(Metric {
            stage: stage.trim().to_string(),
            path,
            goal: None,
        })
    }

    /// `--metric` (or the default) for pipeline `p`: its stage must be in `p`; the goal is
    /// the stage's headline of the path, if it is one.
    pub fn for_pipeline(spec: Option<&str>, p: &Pipeline) -> Result<Metric> {
        let mut m = match spec {
            Some(spec) => Metric::parse(spec)?,
            None => Metric::default_for(p)?,
        };
        let Some(i) = p.index_of(&m.stage) else {
            bail!(
                "--metric {}: no stage named `{}` in {}; stages: {}",
                m.name(),
                m.stage,
                p.path.display(),
                p.stage_names().join(", ")
            );
        };
        m.goal = goal_of(p.stages[i].handler, &m.path);
        Ok(m)
    }

    /// The default: the first exact headline of the first stage (in pipeline order) that
    /// declares one.
    fn default_for(p: &Pipeline) -> Result<Metric> {
        for s in &p.stages {
            if let Some(h) = default_headline(s.handler) {
                return Ok(Metric {
                    stage: s.name.clone(),
                    path: h.split('.').map(str::to_string).collect(),
                    goal: None,
                });
            }
        }
        let kinds: Vec<String> = stages::all()
            .iter()
            .filter_map(|h| {
                default_headline(h.as_ref()).map(|p| format!("a {} stage's {p}", h.kind()))
            })
            .collect();
        bail!(
            "no --metric given and {} has no stage to read the default ({}) from; pass --metric \
             STAGE.PATH, e.g. --metric split.train.rows",
            p.path.display(),
            kinds.join(" or ")
        )
    }

    /// `STAGE.PATH`, as shown in the output.
    pub fn name(&self) -> String {
        format!("{}.{}", self.stage, self.path.join("."))
    }

    /// Reads the metric from a stage's summary.
    pub fn read(&self, summary: &Value) -> Read {
        let v = match walk(summary, &self.path) {
            Ok(v) => v,
            Err(why) => return Read::Missing(why),
        };
        match v {
            Value::Number(n) => n.as_f64().map_or(Read::Null, Read::Value),
            Value::Bool(b) => Read::Value(f64::from(u8::from(*b))),
            Value::Null => Read::Null,
            other => Read::Missing(format!(
                "`{}` is a {}, not a number",
                self.path.join("."),
                json_type(other)
            )),
        }
    }
}

/// The path of a kind's first exact headline: its default sweep metric.
fn default_headline(h: &dyn Handler) -> Option<&'static str> {
    h.headlines().iter().find(|h| h.is_exact()).map(|h| h.path)
}

/// Which way is better for `path` of a stage of handler `h`, if the path is a headline.
fn goal_of(h: &dyn Handler, path: &[String]) -> Option<Goal> {
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    h.headlines()
        .iter()
        .find(|hl| hl.matches(&segments))
        .map(|hl| hl.goal)
}

/// What reading the metric from a summary gave.
pub enum Read {
    Value(f64),
    /// The path exists but holds no number (null: e.g. the run diverged).
    Null,
    /// The path is not in the summary: a mistake in `--metric`, the same for every trial.
    Missing(String),
}

/// The value at `path`, or where the walk stopped and what was there instead.
fn walk<'a>(summary: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    let mut v = summary;
    for (n, seg) in path.iter().enumerate() {
        let next = match v {
            Value::Object(map) => map.get(seg.as_str()),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|k| a.get(k)),
            _ => None,
        };
        let Some(next) = next else {
            let at = if n == 0 {
                "the summary".to_string()
            } else {
                format!("`{}`", path[..n].join("."))
            };
            let has = match v {
                Value::Object(map) => format!(
                    "keys: {}",
                    map.keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Value::Array(a) => format!("indices 0..{}", a.len()),
                other => format!("a {} value, not a table", json_type(other)),
            };
            return Err(format!("{at} has no `{seg}` ({has})"));
        };
        v = next;
    }
    Ok(v)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_paths_walk_tables_and_lists() {
        let s =
            serde_json::json!({"valid_rmse": 0.9, "models": [{"valid": {"rmse": 0.8}}], "n": null});
        let m = Metric::parse("evaluate.models.0.valid.rmse").unwrap();
        assert!(matches!(m.read(&s), Read::Value(x) if x == 0.8));
        let m = Metric::parse("train.n").unwrap();
        assert!(matches!(m.read(&s), Read::Null));
        let m = Metric::parse("train.models.3.valid").unwrap();
        assert!(matches!(m.read(&s), Read::Missing(w) if w.contains("indices 0..1")));
        let m = Metric::parse("train.models").unwrap();
        assert!(matches!(m.read(&s), Read::Missing(w) if w.contains("is a list")));
        let m = Metric::parse("train.best_valid_rmse").unwrap();
        assert!(matches!(m.read(&s), Read::Missing(w)
            if w.contains("the summary has no `best_valid_rmse`") && w.contains("valid_rmse")));
        assert!(Metric::parse("train").is_err());
        assert!(Metric::parse("train.").is_err());
    }

    #[test]
    fn the_default_and_the_goals_come_from_the_stages_headlines() {
        let train = stages::get(stages::TRAIN).unwrap();
        // What train really records in its summary.
        assert_eq!(default_headline(train), Some("valid_rmse"));
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(goal_of(train, &path("valid_rmse")), Some(Goal::Minimize));
        assert_eq!(goal_of(train, &path("epochs_run")), None);
        let evaluate = stages::get(stages::EVALUATE).unwrap();
        assert_eq!(default_headline(evaluate), None);
        for (p, goal) in [
            ("parts.test.blend.p@10", Goal::Maximize),
            ("parts.valid.train.ndcg@5", Goal::Maximize),
            ("parts.test.blend.rmse", Goal::Minimize),
        ] {
            assert_eq!(goal_of(evaluate, &path(p)), Some(goal), "{p}");
        }
    }
}
