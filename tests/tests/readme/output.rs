//! `<!-- output: COMMAND -->` blocks: COMMAND runs through `sh -c` in the scratch project
//! (stdout and stderr together, `recpipe` on PATH), and the block must show what it printed,
//! up to timings, the project's absolute path and column padding.

use std::path::Path;
use std::process::Command;

/// What COMMAND prints, with the scratch path made relative.
pub fn produce(root: &Path, bin_dir: &Path, command: &str) -> Result<String, String> {
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{{ {command}\n}} 2>&1"))
        .current_dir(root)
        .env("PATH", path)
        .env("RECPIPE_NO_PROGRESS", "1")
        .env_remove("RUST_LOG")
        .env_remove("RECPIPE_CACHE_DIR")
        .output()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let root = root.display().to_string();
    Ok(text.replace(&format!("{root}/"), "").replace(&root, "."))
}

/// The block's body without a leading `$ command` line.
pub fn shown(body: &[String]) -> (Option<String>, String) {
    match body.first() {
        Some(l) if l.starts_with("$ ") => (Some(l.clone()), join(&body[1..])),
        _ => (None, join(body)),
    }
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Durations (`0.13s`, `12ms`) become `#s`, runs of spaces one space, trailing blank lines go.
pub fn normalise(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(duration_free)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    lines.join("\n").trim_end().to_string()
}

fn duration_free(word: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let number = i > start && chars[start].is_ascii_digit();
        let after_letter = start > 0 && chars[start - 1].is_alphanumeric();
        let unit = if chars[i..].starts_with(&['m', 's']) {
            2
        } else if chars[i..].starts_with(&['s']) {
            1
        } else {
            0
        };
        let ends = chars.get(i + unit).is_none_or(|c| !c.is_alphanumeric());
        if number && !after_letter && unit > 0 && ends {
            out.push_str("#s");
            i += unit;
        } else if i > start {
            out.extend(&chars[start..i]);
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn durations_and_padding_do_not_count() {
    assert_eq!(
        normalise("split   ran       0.13s  config\n1 ran in 12ms; 5 epochs, (2.5s)\n\n"),
        "split ran #s config\n1 ran in #s; 5 epochs, (#s)"
    );
    assert_eq!(normalise("ratings/s k=50 v0.1s"), "ratings/s k=50 v0.1s");
}
