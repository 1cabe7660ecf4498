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
/// A run prints each stage (its `NAME ran|fresh|FAILED` line and the indented lines under
/// it) as it finishes, and stages that run at once finish in either order: consecutive stage
/// sections are compared in sorted order; every other line keeps its place.
pub fn normalise(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<Vec<String>> = Vec::new();
    let flush = |run: &mut Vec<Vec<String>>, out: &mut Vec<String>| {
        run.sort();
        out.extend(run.drain(..).flatten());
    };
    for l in text.lines() {
        let words: Vec<String> = l.split_whitespace().map(duration_free).collect();
        let indented = l.starts_with(char::is_whitespace);
        let stage_line = !indented
            && words
                .first()
                .is_some_and(|w| w.starts_with(|c: char| c.is_alphabetic()))
            && words
                .get(1)
                .is_some_and(|w| matches!(w.as_str(), "ran" | "fresh" | "FAILED"));
        let line = words.join(" ");
        if stage_line {
            run.push(vec![line]);
        } else if indented && !line.is_empty() && !run.is_empty() {
            run.last_mut().expect("a stage section").push(line);
        } else {
            flush(&mut run, &mut out);
            out.push(line);
        }
    }
    flush(&mut run, &mut out);
    out.join("\n").trim_end().to_string()
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

#[test]
fn stages_that_finish_in_either_order_compare_equal() {
    let a = "ingest ran 1s\n  rows 5\nbpr ran 2s\n  P@10 0.3\nease ran 1s\n  P@10 0.4\n";
    let b = "ingest ran 1s\n  rows 5\nease ran 3s\n  P@10 0.4\nbpr ran 2s\n  P@10 0.3\n";
    assert_eq!(normalise(a), normalise(b));
    // A line moved from one stage to another still counts.
    let c = "ingest ran 1s\n  rows 5\nease ran 3s\nbpr ran 2s\n  P@10 0.4\n  P@10 0.3\n";
    assert_ne!(normalise(a), normalise(c));
    // Lines outside the stage sections keep their order.
    assert_eq!(normalise("b x\na y\n"), "b x\na y");
    let d = "bpr ran 2s\n  P@10 0.3\nease ran 1s\n2 ran, 0 fresh\nbpr fresh\n";
    assert_eq!(
        normalise(d),
        "bpr ran #s\nP@10 0.3\nease ran #s\n2 ran, 0 fresh\nbpr fresh"
    );
}
