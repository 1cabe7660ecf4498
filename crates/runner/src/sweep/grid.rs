//! The sweep's grid: `--grid STAGE.KEY=V1,V2,...` axes and the combinations of them a sweep
//! runs (all, or some drawn at random).

use crate::pipeline::Override;
use anyhow::{Result, anyhow, bail};
use recpipe_core::rng::SplitMix64;
use std::collections::HashSet;

/// Full grids larger than this must be sampled with `--random`.
const MAX_TRIALS: u64 = 100_000;

/// One swept key (`STAGE.KEY`) and its values, as written (TOML text, or a plain string).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// Parses `--grid STAGE.KEY=V1,V2,...` arguments. Commas inside `[...]`, `{...}` or quotes do
/// not separate values; repeating a key adds values to its axis; duplicates are dropped.
pub fn parse_grid(args: &[String]) -> Result<Vec<Axis>> {
    let mut axes: Vec<Axis> = Vec::new();
    for raw in args {
        let bad = |why: &str| {
            anyhow!(
                "`--grid {raw}`: {why}; expected STAGE.KEY=V1,V2,..., e.g. `--grid train.k=32,64` \
                 (a list value in brackets may hold commas: `--grid 'train.hidden=[10],[32,16]'`)"
            )
        };
        let Some((_, values)) = raw.split_once('=') else {
            return Err(bad("no `=`"));
        };
        let o = Override::parse(raw).map_err(|_| bad("the key must be STAGE.KEY"))?;
        if o.path.len() < 2 {
            return Err(bad("the key must be STAGE.KEY"));
        }
        let key = o.path.join(".");
        let values = split_values(values).map_err(|why| bad(&why))?;
        match axes.iter_mut().find(|a| a.key == key) {
            Some(a) => a.values.extend(values),
            None => axes.push(Axis { key, values }),
        }
    }
    for a in &mut axes {
        let mut seen = HashSet::new();
        a.values.retain(|v| seen.insert(v.clone()));
    }
    Ok(axes)
}

/// Splits `V1,V2,...` at the commas outside brackets, braces and TOML strings.
fn split_values(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut cur = String::new();
    let push = |cur: &mut String, out: &mut Vec<String>| -> Result<(), String> {
        let v = cur.trim();
        if v.is_empty() {
            return Err(format!("empty value (value {} of the list)", out.len() + 1));
        }
        out.push(v.to_string());
        cur.clear();
        Ok(())
    };
    for c in s.chars() {
        if let Some(q) = quote {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' => depth.push(c),
            ']' | '}' => {
                let open = if c == ']' { '[' } else { '{' };
                if depth.pop() != Some(open) {
                    return Err(format!("unbalanced `{c}`"));
                }
            }
            ',' if depth.is_empty() => {
                push(&mut cur, &mut out)?;
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if let Some(open) = depth.last() {
        return Err(format!("unclosed `{open}`"));
    }
    push(&mut cur, &mut out)?;
    Ok(out)
}

/// How many combinations the grid has, if it can be counted in a u64.
pub fn grid_size(axes: &[Axis]) -> Option<u64> {
    axes.iter()
        .try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64))
}

/// Combination number `index` of the grid (the last axis varies fastest): a value index per axis.
fn combination(axes: &[Axis], mut index: u64) -> Vec<usize> {
    let mut out = vec![0; axes.len()];
    for (slot, a) in out.iter_mut().zip(axes).rev() {
        let n = a.values.len() as u64;
        *slot = (index % n) as usize;
        index /= n;
    }
    out
}

/// The grid's combinations to run: all of them, or `random` distinct ones drawn with `seed`
/// (in grid order, so related trials sit together in the output).
pub fn trials(axes: &[Axis], random: Option<u64>, seed: u64) -> Result<Vec<Vec<usize>>> {
    let total = grid_size(axes)
        .ok_or_else(|| anyhow!("the grid has more combinations than can be counted"))?;
    let indices: Vec<u64> = match random {
        Some(n) if n < total => {
            if n > MAX_TRIALS {
                bail!("--random {n}: at most {MAX_TRIALS} trials per sweep");
            }
            draw(total, n, seed)
        }
        _ => {
            if total > MAX_TRIALS {
                bail!(
                    "the grid has {total} combinations (more than {MAX_TRIALS}); sample some of \
                     them with --random N"
                );
            }
            if let Some(n) = random {
                tracing::info!("--random {n}: the grid has only {total} combinations; running all");
            }
            (0..total).collect()
        }
    };
    Ok(indices.into_iter().map(|i| combination(axes, i)).collect())
}

/// `n` distinct combination numbers below `total` drawn with `seed`, in order.
fn draw(total: u64, n: u64, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64::stream(seed, 0x5EED_5EEB);
    let mut picked: Vec<u64> = if total <= 4 * MAX_TRIALS {
        let mut all: Vec<u64> = (0..total).collect();
        rng.partial_shuffle(&mut all, n as usize);
        all.truncate(n as usize);
        all
    } else {
        // n ≤ MAX_TRIALS is a small share of the grid: rejection rarely repeats.
        let mut seen = HashSet::new();
        while (seen.len() as u64) < n {
            seen.insert(rng.below(total));
        }
        seen.into_iter().collect()
    };
    picked.sort_unstable();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(args: &[&str]) -> Result<Vec<Axis>> {
        parse_grid(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn grid_values_split_outside_brackets_and_quotes() {
        let g = grid(&["train.hidden=[10],[32, 16]", r#"ingest.path="a,b",c"#]).unwrap();
        assert_eq!(g[0].key, "train.hidden");
        assert_eq!(g[0].values, ["[10]", "[32, 16]"]);
        assert_eq!(g[1].values, [r#""a,b""#, "c"]);
        let g = grid(&["train.k=32", "train.k=64,32", "train.lr=1e-3"]).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].values, ["32", "64"]);
        let g = grid(&["train.opt={ name = \"adam\", beta = [0.9, 0.99] },sgd"]).unwrap();
        assert_eq!(g[0].values.len(), 2);
    }

    #[test]
    fn bad_grids_say_why() {
        for (arg, why) in [
            ("train.k", "no `=`"),
            ("k=1,2", "STAGE.KEY"),
            ("train.k=1,,2", "empty value"),
            ("train.k=", "empty value"),
            ("train.hidden=[1,2", "unclosed `[`"),
            ("train.hidden=1]", "unbalanced `]`"),
            ("train.name=\"a,b", "unterminated"),
        ] {
            let e = grid(&[arg]).unwrap_err().to_string();
            assert!(e.contains(why), "{arg}: {e}");
            assert!(e.contains(arg), "{arg}: {e}");
        }
    }

    #[test]
    fn grid_order_and_random_sampling() {
        let axes = grid(&["a.x=1,2,3", "a.y=p,q"]).unwrap();
        let all = trials(&axes, None, 0).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], [0, 0]);
        assert_eq!(all[1], [0, 1]);
        assert_eq!(all[5], [2, 1]);
        let some = trials(&axes, Some(4), 7).unwrap();
        assert_eq!(some.len(), 4);
        let distinct: HashSet<_> = some.iter().collect();
        assert_eq!(distinct.len(), 4);
        assert_eq!(some, trials(&axes, Some(4), 7).unwrap());
        assert_eq!(trials(&axes, Some(60), 7).unwrap().len(), 6);
        let huge: Vec<Axis> = (0..8)
            .map(|i| Axis {
                key: format!("a.k{i}"),
                values: (0..20).map(|v| v.to_string()).collect(),
            })
            .collect();
        assert!(
            trials(&huge, None, 0)
                .unwrap_err()
                .to_string()
                .contains("--random")
        );
        assert_eq!(trials(&huge, Some(5), 1).unwrap().len(), 5);
    }
}
