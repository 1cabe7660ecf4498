//! Running the README's `python` and `sql` blocks: Python with polars, numpy and duckdb
//! (RECPIPE_PYTHON, else bench/.venv from `scripts/python_env.sh`, else python3), SQL through
//! duckdb's Python package, one statement at a time, each required to return rows.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const NEEDED: &str = "import polars, numpy, duckdb, pyarrow";

/// A Python that imports [`NEEDED`], or why there is none.
pub fn find() -> Result<PathBuf, String> {
    let root = recpipe_tests::workspace_root();
    let explicit = std::env::var_os("RECPIPE_PYTHON").map(PathBuf::from);
    let candidates: Vec<PathBuf> = match &explicit {
        Some(p) => vec![p.clone()],
        None => vec![root.join("bench/.venv/bin/python"), "python3".into()],
    };
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", NEEDED])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(py.clone());
        }
    }
    Err(format!(
        "none of {candidates:?} can `{NEEDED}`; `bash scripts/python_env.sh` makes bench/.venv"
    ))
}

pub fn run(py: &Path, dir: &Path, code: &str) -> Result<String, String> {
    let out = Command::new(py)
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot start {}: {e}", py.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "exit {:?}\n{stdout}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

const SQL_RUNNER: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
for i, s in enumerate(json.loads(sys.argv[1]), 1):
    rows = con.execute(s).fetchall()
    if not rows:
        sys.exit(f"statement {i} returned no rows:\n{s}")
    print(f"statement {i}: {len(rows)} rows, first {rows[0]}")
"#;

/// Each statement of `sql`, run by DuckDB in `dir`.
pub fn run_sql(py: &Path, dir: &Path, sql: &str) -> Result<String, String> {
    let statements = statements(sql);
    if statements.is_empty() {
        return Err("no SQL statement in the block".into());
    }
    let out = Command::new(py)
        .args(["-c", SQL_RUNNER])
        .arg(serde_json::to_string(&statements).unwrap())
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot start {}: {e}", py.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Statements separated by `;` outside quotes, with `--` comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let mut quote = false;
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !quote && c == '-' && chars.get(i + 1) == Some(&'-') {
                break;
            }
            if c == '\'' {
                quote = !quote;
            }
            if !quote && c == ';' {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
            i += 1;
        }
        cur.push('\n');
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// "(the failing line is README.md:N)" from a traceback's last `File "<string>", line K`.
pub fn line_of(traceback: &str, b: &crate::Block) -> String {
    let k = traceback
        .rsplit("File \"<string>\", line ")
        .next()
        .filter(|_| traceback.contains("File \"<string>\""))
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok());
    match k {
        Some(k) => format!("(the failing line is {}:{})", b.file, b.line + k),
        None => String::new(),
    }
}

#[test]
fn tracebacks_point_at_the_documents_line() {
    let b = crate::Block {
        file: "README.md".into(),
        lang: "python".into(),
        line: 100,
        body: vec![],
        output_of: None,
    };
    let tb = "Traceback (most recent call last):\n  File \"<string>\", line 6, in <module>\nValueError: x";
    assert_eq!(line_of(tb, &b), "(the failing line is README.md:106)");
    assert_eq!(line_of("no traceback", &b), "");
}
