//! Finding a user or an item from what the user typed: a raw id of the data, or (items) a
//! title — exact, case-insensitive; then without its year; then as a substring. More than
//! one match at the first tier that has any is an error listing the candidates.

use anyhow::{Result, bail};
use std::fmt::Write;

/// Item ids and titles by dense idx.
pub struct Items {
    pub ids: Vec<String>,
    pub titles: Vec<Option<String>>,
}

/// How many candidates an ambiguous title lists.
const SHOWN: usize = 15;

impl Items {
    pub fn title(&self, idx: usize) -> &str {
        self.titles
            .get(idx)
            .and_then(|t| t.as_deref())
            .unwrap_or("")
    }

    /// The dense idx of the item `query` names.
    pub fn resolve(&self, query: &str) -> Result<usize> {
        let q = query.trim();
        if let Some(i) = self.ids.iter().position(|id| id == q) {
            return Ok(i);
        }
        let lower = q.to_lowercase();
        let tiers: [&dyn Fn(&str) -> bool; 3] =
            [&|t| t == lower, &|t| strip_year(t) == lower, &|t| {
                t.contains(&lower)
            }];
        // A number that is no id is not looked for inside titles ("0" is in thousands).
        let tiers = if q.parse::<i64>().is_ok() {
            &tiers[..2]
        } else {
            &tiers[..]
        };
        for (tier, matches) in tiers.iter().enumerate() {
            let found: Vec<usize> = (0..self.ids.len())
                .filter(|&i| matches(&self.title(i).to_lowercase()))
                .collect();
            match found.as_slice() {
                [] => continue,
                [i] => return Ok(*i),
                _ => bail!("{}", self.ambiguous(q, &found, tier == 2)),
            }
        }
        bail!(
            "no item has the id or title `{q}` ({} items; ids are the data's own, e.g. MovieLens movieId)",
            self.ids.len()
        )
    }

    fn ambiguous(&self, q: &str, found: &[usize], substring: bool) -> String {
        let (how, pass) = if substring {
            ("contain", "one of these ids (or a full title)")
        } else {
            ("are", "one of these ids")
        };
        let mut msg = format!(
            "item `{q}` is ambiguous: {} titles {how} `{q}`; pass {pass} to --item:",
            found.len()
        );
        let width = found.iter().map(|&i| self.ids[i].len()).max().unwrap_or(0);
        for &i in found.iter().take(SHOWN) {
            let _ = write!(msg, "\n  {:>width$}  {}", self.ids[i], self.title(i));
        }
        if found.len() > SHOWN {
            let _ = write!(msg, "\n  … and {} more", found.len() - SHOWN);
        }
        msg
    }
}

/// "toy story (1995)" → "toy story".
fn strip_year(t: &str) -> &str {
    let t = t.trim_end();
    match t.strip_suffix(')').and_then(|s| s.rsplit_once('(')) {
        Some((head, year)) if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) => {
            head.trim_end()
        }
        _ => t,
    }
}

/// The dense idx of the user with raw id `query`.
pub fn resolve_user(ids: &[String], query: &str) -> Result<usize> {
    let q = query.trim();
    match ids.iter().position(|id| id == q) {
        Some(i) => Ok(i),
        None => bail!(
            "unknown user `{q}`: no user has this id in the data ({} users{})",
            ids.len(),
            id_range(ids)
        ),
    }
}

/// ", ids 1..610" when the ids are numbers.
fn id_range(ids: &[String]) -> String {
    let nums: Option<Vec<i64>> = ids.iter().map(|s| s.parse().ok()).collect();
    match nums.as_deref() {
        Some(n) if !n.is_empty() => {
            let (lo, hi) = (n.iter().min().unwrap(), n.iter().max().unwrap());
            format!(", ids {lo}..{hi}")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Items {
        let t = |s: &str| Some(s.to_string());
        Items {
            ids: ["1", "3114", "78499", "2", "50"].map(String::from).to_vec(),
            titles: vec![
                t("Toy Story (1995)"),
                t("Toy Story 2 (1999)"),
                t("Toy Story 3 (2010)"),
                t("Jumanji (1995)"),
                None,
            ],
        }
    }

    #[test]
    fn ids_then_exact_titles_then_titles_without_year_then_substrings() {
        let it = items();
        assert_eq!(it.resolve("3114").unwrap(), 1);
        assert_eq!(it.resolve("toy story (1995)").unwrap(), 0);
        assert_eq!(it.resolve("TOY STORY 2").unwrap(), 1);
        assert_eq!(it.resolve("Toy Story").unwrap(), 0);
        assert_eq!(it.resolve("umanj").unwrap(), 3);
    }

    #[test]
    fn ambiguous_and_unknown_titles_are_errors_that_say_what_to_do() {
        let it = items();
        let e = it.resolve("story ").unwrap_err().to_string();
        assert!(e.contains("3 titles contain `story`"), "{e}");
        assert!(e.contains("\n  78499  Toy Story 3 (2010)"), "{e}");
        let e = it.resolve("Casablanca").unwrap_err().to_string();
        assert!(
            e.contains("no item has the id or title `Casablanca`"),
            "{e}"
        );
        let e = it.resolve("9").unwrap_err().to_string();
        assert!(e.contains("no item has the id or title `9`"), "{e}");
    }

    #[test]
    fn unknown_users_are_named_with_the_id_range() {
        let ids = ["1", "7", "610"].map(String::from);
        assert_eq!(resolve_user(&ids, " 7").unwrap(), 1);
        let e = resolve_user(&ids, "611").unwrap_err().to_string();
        assert!(
            e.contains("unknown user `611`") && e.contains("ids 1..610"),
            "{e}"
        );
    }
}
