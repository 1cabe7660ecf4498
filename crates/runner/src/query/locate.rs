//! Which artifact a query reads: the pipeline's stage of the wanted kind (or `--stage`), as
//! built for this configuration (the file plus `--set`), never a stale one.

use crate::cache::Store;
use crate::exec::{self, State};
use crate::pipeline::Pipeline;
use anyhow::{Result, anyhow, bail};
use std::path::PathBuf;

/// The stage of `kind` a query reads: `--stage NAME`, else the pipeline's only one.
pub fn pick_stage(p: &Pipeline, kind: &str, flag: Option<&str>) -> Result<usize> {
    let of_kind: Vec<usize> = (0..p.stages.len())
        .filter(|&i| p.stages[i].kind() == kind)
        .collect();
    let names = || {
        of_kind
            .iter()
            .map(|&i| format!("`{}`", p.stages[i].name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = flag {
        let i = p.index_of(name).ok_or_else(|| {
            anyhow!(
                "no stage named `{name}` in {}; its {kind} stages: {}",
                p.path.display(),
                if of_kind.is_empty() {
                    "none".into()
                } else {
                    names()
                }
            )
        })?;
        if p.stages[i].kind() != kind {
            bail!(
                "stage `{name}` is a {} stage, not {kind}; {kind} stages: {}",
                p.stages[i].kind(),
                if of_kind.is_empty() {
                    "none".into()
                } else {
                    names()
                }
            );
        }
        return Ok(i);
    }
    match of_kind.as_slice() {
        [i] => Ok(*i),
        [] => bail!(
            "{} has no {kind} stage (a [stages.NAME] table with kind = \"{kind}\")",
            p.path.display()
        ),
        _ => bail!(
            "{} has several {kind} stages ({}); choose one with --stage NAME",
            p.path.display(),
            names()
        ),
    }
}

/// The nearest ancestor of stage `i` of `kind` (as the stage itself would read it).
pub fn ancestor(p: &Pipeline, i: usize, kind: &str) -> Result<usize> {
    p.upstream(i)
        .into_iter()
        .find(|&j| p.stages[j].kind() == kind)
        .ok_or_else(|| anyhow!("stage `{}` reads no {kind} stage", p.stages[i].name))
}

/// Artifact directories of stages `wanted`, each fresh for this configuration; otherwise an
/// error saying which command builds them.
pub fn fresh_dirs(p: &Pipeline, store: &Store, wanted: &[usize]) -> Result<Vec<PathBuf>> {
    let plan = exec::plan(p, store)?;
    wanted
        .iter()
        .map(|&i| match exec::assess(p, i, &plan[i], store, false) {
            State::Fresh(_) => Ok(exec::artifact_path(p, store, i, &plan)),
            State::Stale { reasons, .. } => bail!(
                "stage `{}` has no artifact for this configuration ({}); run `{}` first",
                p.stages[i].name,
                reasons.join("; "),
                run_command(p)
            ),
        })
        .collect()
}

/// `recpipe run PIPELINE [--set ...]`, as the user would type it.
pub fn run_command(p: &Pipeline) -> String {
    let mut cmd = format!("recpipe run {}", shell_word(&p.path.to_string_lossy()));
    for s in &p.overrides {
        cmd.push_str(" --set ");
        cmd.push_str(&shell_word(s));
    }
    cmd
}

fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("split.seed=7"), "split.seed=7");
        assert_eq!(shell_word("train.hidden=[10]"), "'train.hidden=[10]'");
        assert_eq!(shell_word("a b'c"), r"'a b'\''c'");
    }
}
