//! Every fenced code block of README.md and docs/*.md is executed or checked:
//!
//! - `sh`: each command line runs (just recipes and `target/release/recpipe` mapped to the
//!   binary under test, see readme/shell.rs; commands that need a download are listed there
//!   with the reason) in a scratch project holding the bundled data and the shipped pipelines;
//! - `python`: runs in that project after the quick-start pipeline, with polars and duckdb;
//! - `sql`: each statement runs in DuckDB (from the export folder when it names no path) and
//!   must return rows;
//! - `toml`: a complete pipeline must pass `recpipe dag`; one titled `# pipelines/NAME.toml`
//!   must be that shipped file's configuration (`recpipe status` on it finds every stage fresh);
//! - `text` after `<!-- output: COMMAND -->`: the block is what COMMAND prints today (timings,
//!   paths and padding aside). `just readme` rewrites those blocks from a real run.
//!
//! A failing block fails the test with its file and line.

mod readme {
    pub mod blocks;
    pub mod output;
    pub mod python;
    pub mod shell;
}

use readme::blocks::{self, Block};
use readme::{output, python, shell};
use recpipe_tests::{Test, workspace_root};
use std::path::{Path, PathBuf};

struct Project {
    t: Test,
    bin_dir: PathBuf,
    python: Result<PathBuf, String>,
}

fn project() -> Project {
    let mut t = Test::new().with_bundled_data();
    let pipelines = workspace_root().join("pipelines");
    for e in std::fs::read_dir(&pipelines).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            t = t.with_shipped_pipeline(&name);
        }
    }
    let bin_dir = t.path("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(recpipe_tests::bin(), bin_dir.join("recpipe")).unwrap();
    // What `just pipeline` leaves: snippets may read its artifacts in any order.
    t.run(&["run", "pipelines/quickstart.toml"]).ok();
    Project {
        t,
        bin_dir,
        python: python::find(),
    }
}

/// README.md, then docs/*.md, each file's blocks in order. Each file is checked in a project
/// of its own, as a reader would follow it from `just pipeline`.
fn documents() -> Vec<Vec<Block>> {
    let root = workspace_root();
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".md"))
                .map(|n| format!("docs/{n}"))
                .collect()
        })
        .unwrap_or_default();
    docs.sort();
    files.extend(docs);
    files
        .iter()
        .map(|f| blocks::parse(f, &std::fs::read_to_string(root.join(f)).unwrap()))
        .collect()
}

fn check_sh(p: &Project, b: &Block) -> Result<String, String> {
    let mut report = Vec::new();
    for line in &b.body {
        match shell::map(line)? {
            shell::Mapped::Nothing => {}
            shell::Mapped::Skip(why) => report.push(format!("skipped `{}`: {why}", line.trim())),
            shell::Mapped::Run(args) => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let r = p.t.run(&args);
                if r.code != Some(0) {
                    return Err(format!("`{}` failed\n{r}", line.trim()));
                }
                report.push(format!("ran `{}`", line.trim()));
            }
        }
    }
    Ok(report.join("; "))
}

fn check_toml(p: &Project, b: &Block) -> Result<String, String> {
    let text = b.text();
    if !(text.lines().any(|l| l.starts_with("name =")) && text.contains("[stages.")) {
        return Ok("a fragment, not a whole pipeline: not run".into());
    }
    let rel = format!(
        "readme-snippets/{}-{}.toml",
        b.file.replace('/', "-"),
        b.line
    );
    p.t.write(&rel, &text);
    let dag = p.t.run(&["dag", &rel]);
    if dag.code != Some(0) {
        return Err(format!("`recpipe dag` rejects it\n{dag}"));
    }
    let Some(shipped) = b.body.first().and_then(|l| l.strip_prefix("# pipelines/")) else {
        return Ok("a pipeline: `recpipe dag` accepts it".into());
    };
    let status = p.t.run(&["status", &rel]);
    let stale: Vec<&str> = status
        .stdout
        .lines()
        .filter(|l| !l.contains(" fresh "))
        .collect();
    if status.code != Some(0) || !stale.is_empty() {
        return Err(format!(
            "it is not pipelines/{shipped} as shipped (after running that file, these stages of the snippet are not fresh):\n{}",
            status
        ));
    }
    Ok(format!("pipelines/{shipped} as shipped"))
}

fn check_python(p: &Project, b: &Block) -> Result<String, String> {
    let py = match &p.python {
        Ok(py) => py,
        Err(why) => return Ok(format!("skipped: no python with polars ({why})")),
    };
    // They read what `just pipeline` leaves (an earlier snippet may have run another
    // configuration): this run is all fresh and puts its view back.
    p.t.run(&["run", "pipelines/quickstart.toml"]).ok();
    if b.lang == "python" {
        python::run(py, p.t.root(), &b.text())
            .map(|_| "ran".into())
            .map_err(|e| format!("{e}{}", python::line_of(&e, b)))
    } else {
        let dir = if b.text().contains("'.recpipe/") {
            p.t.root().to_path_buf()
        } else {
            p.t.path(".recpipe/runs/quickstart/export")
        };
        python::run_sql(py, &dir, &b.text()).map(|o| o.trim().replace('\n', "; "))
    }
}

fn check_output(p: &Project, b: &Block, command: &str) -> Result<String, String> {
    let got = output::produce(p.t.root(), &p.bin_dir, command)?;
    let (_, shown) = output::shown(&b.body);
    if output::normalise(&got) != output::normalise(&shown) {
        return Err(format!(
            "the block is not what `{command}` prints today (`just readme` rewrites it):\n--- README\n{shown}--- real run\n{got}"
        ));
    }
    Ok(format!("matches `{command}`"))
}

fn check(p: &Project, b: &Block) -> Result<String, String> {
    match (b.lang.as_str(), &b.output_of) {
        (_, Some(cmd)) => check_output(p, b, cmd),
        ("sh" | "bash" | "shell", _) => check_sh(p, b),
        ("toml", _) => check_toml(p, b),
        ("python" | "sql", _) => check_python(p, b),
        ("text" | "", _) => Ok("text, not checked".into()),
        (other, _) => Err(format!(
            "a ```{other} block: this test does not know how to check it"
        )),
    }
}

/// One new project per document, shared by its blocks.
fn with_projects(doc: Vec<Block>) -> Vec<(std::rc::Rc<Project>, Block)> {
    let p = std::rc::Rc::new(project());
    doc.into_iter().map(|b| (p.clone(), b)).collect()
}

#[test]
fn every_snippet_of_the_readme_and_docs_runs() {
    let in_ci = std::env::var_os("CI").is_some() || std::env::var_os("RECPIPE_PYTHON").is_some();
    if let Err(why) = python::find() {
        assert!(
            !in_ci,
            "CI (or RECPIPE_PYTHON) needs a python with polars: {why}"
        );
        eprintln!("skipped: no python with polars: the python and sql blocks are not run ({why})");
    }
    let mut failures = Vec::new();
    for b in documents().into_iter().flat_map(with_projects) {
        let (p, b) = (&*b.0, &b.1);
        match check(p, b) {
            Ok(note) => eprintln!("{} ```{}: {note}", b.place(), b.lang),
            Err(e) => failures.push(format!("{} ```{} block failed: {e}", b.place(), b.lang)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `just readme`: rewrite every `<!-- output: ... -->` block from a real run (run blocks in
/// document order, so state such as an earlier run is what the reader would have).
#[test]
#[ignore = "rewrites README.md and docs/*.md; run with `just readme`"]
fn regenerate_output_blocks() {
    let root = workspace_root();
    let mut rewritten: Vec<(String, usize, String)> = Vec::new();
    for b in documents().into_iter().flat_map(with_projects) {
        let (p, b) = (&*b.0, &b.1);
        match &b.output_of {
            Some(cmd) => {
                let got = output::produce(p.t.root(), &p.bin_dir, cmd).unwrap();
                let (prompt, _) = output::shown(&b.body);
                let body = prompt.map(|l| format!("{l}\n")).unwrap_or_default() + &got;
                rewritten.push((b.file.clone(), b.line, body));
            }
            None => {
                let _ = check(p, b);
            }
        }
    }
    // Bottom-up, so earlier line numbers stay valid.
    rewritten.sort_by(|a, b| (&a.0, b.1).cmp(&(&b.0, a.1)));
    for (file, line, body) in rewritten {
        let path: &Path = &root.join(&file);
        let text = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, blocks::replace_body(&text, line, &body)).unwrap();
        eprintln!("rewrote {file}:{line}");
    }
}
