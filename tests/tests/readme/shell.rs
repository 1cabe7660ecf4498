//! The README's `sh` lines as recpipe invocations: `just pipeline ARGS` is
//! `recpipe run pipelines/quickstart.toml ARGS` (the justfile's recipe), `target/release/recpipe`
//! is the binary under test. Commands that cannot run here are listed with the reason.

/// Commands (by prefix) a test cannot run, and why.
pub const SKIPPED: &[(&str, &str)] = &[
    (
        "just test",
        "the whole test suite, which this test is part of",
    ),
    (
        "cargo test",
        "the whole test suite, which this test is part of",
    ),
    (
        "recpipe sweep pipelines/ml-100k.toml",
        "needs data/ml-100k, a download from grouplens.org",
    ),
    (
        "just cv-ml100k",
        "needs data/ml-100k, a download from grouplens.org",
    ),
    (
        "just gpu-bundle",
        "rebuilds every binary with cargo-zigbuild for a GPU machine (minutes); run by hand before a GPU check",
    ),
    (
        "bash gpu-bundle/gpu-check.sh",
        "runs on a GPU machine, from the bundle `just gpu-bundle` made",
    ),
];

pub enum Mapped {
    /// Arguments for the recpipe binary.
    Run(Vec<String>),
    Skip(&'static str),
    /// A line that is neither (a comment or blank).
    Nothing,
}

/// What one line of a `sh` block runs; Err for a command this test does not know.
pub fn map(line: &str) -> Result<Mapped, String> {
    let line = strip_comment(line).trim();
    if line.is_empty() {
        return Ok(Mapped::Nothing);
    }
    if let Some((_, why)) = SKIPPED.iter().find(|(p, _)| line.starts_with(p)) {
        return Ok(Mapped::Skip(why));
    }
    let words = split_words(line)?;
    let rest = |n: usize| words[n..].to_vec();
    match words[0].as_str() {
        "recpipe" | "target/release/recpipe" | "target/debug/recpipe" => Ok(Mapped::Run(rest(1))),
        "just" => match words.get(1).map(String::as_str) {
            Some("pipeline") => {
                let mut a = vec!["run".to_string(), "pipelines/quickstart.toml".to_string()];
                a.extend(rest(2));
                Ok(Mapped::Run(a))
            }
            Some("stage") if words.len() >= 3 => {
                let pipeline = words
                    .get(3)
                    .cloned()
                    .unwrap_or("pipelines/quickstart.toml".into());
                Ok(Mapped::Run(vec![
                    "run".into(),
                    pipeline,
                    "--stage".into(),
                    words[2].clone(),
                ]))
            }
            _ => Err(format!(
                "`{line}`: no mapping for this just recipe; add one to tests/tests/readme/shell.rs or list it in SKIPPED with the reason"
            )),
        },
        "cargo" => match words.iter().position(|w| w == "--") {
            Some(p) if words.contains(&"recpipe-runner".to_string()) => {
                Ok(Mapped::Run(rest(p + 1)))
            }
            _ => Err(format!("`{line}`: unknown cargo command")),
        },
        other => Err(format!(
            "`{line}`: unknown command `{other}`; map it in tests/tests/readme/shell.rs or list it in SKIPPED with the reason"
        )),
    }
}

/// The line without a `# comment` (a `#` after whitespace, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Shell words: whitespace-separated, with '...' and "..." quoting (no escapes).
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("`{line}`: unclosed quote"));
    }
    if any {
        words.push(cur);
    }
    Ok(words)
}
