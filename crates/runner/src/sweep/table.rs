//! What a sweep prints at the end: the best trials as a table, the failed ones, the command
//! that reproduces the best, and the mean ± sd of the metric over the trials.

use super::Trial;
use super::grid::Axis;
use crate::out::outln;
use crate::pipeline::Override;
use std::path::Path;

/// The metric over the successful trials: for a grid over folds (`--grid split.fold=1,2,3,4,5`)
/// the cross-validated score and its spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Trials with a metric (failed ones are left out).
    pub n: usize,
    /// All trials.
    pub of: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); needs two trials.
    pub sd: Option<f64>,
}

impl Stats {
    pub fn of(rows: &[Trial]) -> Option<Stats> {
        // Trial order, so the sum does not depend on the ranking.
        let mut ok: Vec<(u32, f64)> = rows
            .iter()
            .filter_map(|r| r.metric.map(|m| (r.id, m)))
            .collect();
        ok.sort_by_key(|&(id, _)| id);
        let xs: Vec<f64> = ok.into_iter().map(|(_, m)| m).collect();
        Stats::from_values(&xs, rows.len())
    }

    fn from_values(xs: &[f64], of: usize) -> Option<Stats> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let sd = (n >= 2).then(|| {
            let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        Some(Stats { n, of, mean, sd })
    }

    /// `mean over 5 trials: 0.912345 ± 0.007123 (sd)`.
    pub fn line(&self) -> String {
        let over = if self.n == self.of {
            format!("{} trial{}", self.n, if self.n == 1 { "" } else { "s" })
        } else {
            format!("{} of {} trials (failed ones left out)", self.n, self.of)
        };
        match self.sd {
            Some(sd) => format!(
                "mean over {over}: {} ± {} (sd)",
                fmt_metric(self.mean),
                fmt_metric(sd)
            ),
            None => format!("mean over {over}: {}", fmt_metric(self.mean)),
        }
    }
}

pub fn fmt_metric(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.6}")
    }
}

/// Quoted for a POSIX shell when it holds anything beyond plain word characters.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.=/,:+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What the end of a sweep prints about: the ranked trials and where they came from.
pub struct Ranked<'a> {
    /// Best first.
    pub rows: &'a [Trial],
    pub axes: &'a [Axis],
    pub metric: &'a str,
    /// The table file written.
    pub out: &'a Path,
    pub pipeline: &'a Path,
    pub base_sets: &'a [String],
}

impl Ranked<'_> {
    /// The `top` best trials as a table, the failures, and the best trial's command.
    pub fn print(&self, top: usize) {
        let rows = self.rows;
        let shown = rows.len().min(top.max(1));
        print_aligned(&self.cells(shown));
        if rows.len() > shown {
            outln!("... {} more", rows.len() - shown);
        }
        let failed: Vec<&Trial> = rows.iter().filter(|r| r.metric.is_none()).collect();
        for f in &failed {
            let e = f.error.as_deref().unwrap_or("failed");
            outln!("trial {} failed: {}", f.id, e.lines().next().unwrap_or(e));
        }
        outln!(
            "{} trial{}, {} failed; table: {}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            failed.len(),
            self.out.display()
        );
        if let Some(best) = rows.first().filter(|r| r.metric.is_some()) {
            outln!(
                "best: trial {} with {} = {}; reproduce it with\n  {}",
                best.id,
                self.metric,
                fmt_metric(best.metric.unwrap_or_default()),
                self.command(best)
            );
        }
    }

    /// The header and the first `shown` rows, as text cells.
    fn cells(&self, shown: usize) -> Vec<Vec<String>> {
        let mut header = vec![
            "rank".to_string(),
            "trial".to_string(),
            self.metric.to_string(),
            "seconds".to_string(),
        ];
        header.extend(self.axes.iter().map(|a| a.key.clone()));
        let mut table = vec![header];
        for (r, row) in self.rows.iter().take(shown).enumerate() {
            let mark = if r == 0 && row.metric.is_some() {
                "*1".to_string()
            } else {
                (r + 1).to_string()
            };
            let mut cells = vec![
                mark,
                row.id.to_string(),
                row.metric
                    .map(fmt_metric)
                    .unwrap_or_else(|| "FAILED".into()),
                format!("{:.2}", row.seconds),
            ];
            cells.extend(
                self.axes
                    .iter()
                    .zip(&row.values)
                    .map(|(a, &v)| a.values[v].clone()),
            );
            table.push(cells);
        }
        table
    }

    /// `recpipe run PIPELINE --set ...` with the base `--set` flags the grid does not
    /// override and the trial's values.
    fn command(&self, best: &Trial) -> String {
        let mut cmd = vec![
            "recpipe".to_string(),
            "run".to_string(),
            shell_word(&self.pipeline.display().to_string()),
        ];
        let axes = self.axes;
        let grid = axes
            .iter()
            .zip(&best.values)
            .map(|(a, &v)| format!("{}={}", a.key, a.values[v]));
        let kept = self.base_sets.iter().filter(|s| {
            Override::parse(s).map_or(true, |o| !axes.iter().any(|a| a.key == o.path.join(".")))
        });
        for s in kept.cloned().chain(grid) {
            cmd.push("--set".into());
            cmd.push(shell_word(&s));
        }
        cmd.join(" ")
    }
}

/// A blank line, then the rows with columns padded to their widest cell (the first two, rank
/// and trial, right-aligned).
fn print_aligned(table: &[Vec<String>]) {
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    outln!();
    for r in table {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c < 2 {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        outln!("{}", line.join("  ").trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_the_mean_and_sample_sd_of_the_successful_trials() {
        let st = Stats::from_values(&[0.9, 0.94, 0.92], 3).unwrap();
        assert!((st.mean - 0.92).abs() < 1e-12);
        assert!((st.sd.unwrap() - 0.02).abs() < 1e-12);
        assert_eq!(st.line(), "mean over 3 trials: 0.920000 ± 0.020000 (sd)");
        let one = Stats::from_values(&[2.0], 4).unwrap();
        assert_eq!(one.sd, None);
        assert_eq!(
            one.line(),
            "mean over 1 of 4 trials (failed ones left out): 2"
        );
        assert_eq!(Stats::from_values(&[], 2), None);
        let trial = |id, metric| Trial {
            id,
            values: vec![],
            metric,
            error: None,
            seconds: 0.0,
            train_key: None,
            metric_key: None,
        };
        let st = Stats::of(&[trial(2, Some(3.0)), trial(1, None), trial(3, Some(1.0))]).unwrap();
        assert_eq!((st.n, st.of, st.mean), (2, 3, 2.0));
        assert_eq!(st.sd, Some(2f64.sqrt()));
    }

    #[test]
    fn values_become_shell_words() {
        assert_eq!(shell_word("train.k=16"), "train.k=16");
        assert_eq!(
            shell_word("train.hidden=[32, 16]"),
            "'train.hidden=[32, 16]'"
        );
    }
}
