//! End-to-end tests live in tests/tests/*.rs; they run the real `recpipe` binary through
//! [`Test`], which gives each test its own directory, pipeline files and `.recpipe` cache.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root (this crate lives in `<root>/tests`), or `RECPIPE_WORKSPACE_ROOT` when
/// set (test binaries carried to another machine by `just gpu-bundle`).
pub fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("RECPIPE_WORKSPACE_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(root);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Path of the binary under test, built once per test process: `RECPIPE_BIN` if set, else
/// `recpipe-e2e` (the `recpipe` binary plus the test-only `_test` stage kind, feature
/// `test-stages` of recpipe-runner) built by cargo in the profile these tests were built with.
/// The plain `recpipe` binary, which has no `_test` kind, is left alone.
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(b) = std::env::var_os("RECPIPE_BIN") {
            return PathBuf::from(b);
        }
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<test-binary>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binaries live in target/<profile>/deps")
            .to_path_buf();
        let profile = profile_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "debug".into());
        let profile = if profile == "debug" {
            "dev".to_string()
        } else {
            profile
        };
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "-p",
                "recpipe-runner",
                "--bin",
                "recpipe-e2e",
            ])
            .args(["--features", "test-stages"])
            .args(["--profile", &profile])
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p recpipe-runner failed");
        profile_dir.join(format!("recpipe-e2e{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A scratch project directory for one test.
pub struct Test {
    dir: tempfile::TempDir,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::Builder::new()
                .prefix("recpipe-e2e-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// Copy the bundled ml-latest-small files ingest reads into `data/ml-latest-small`.
    pub fn with_bundled_data(self) -> Test {
        let src = workspace_root().join("data/ml-latest-small");
        let dst = self.path("data/ml-latest-small");
        std::fs::create_dir_all(&dst).unwrap();
        for f in ["ratings.csv", "movies.csv"] {
            std::fs::copy(src.join(f), dst.join(f)).unwrap();
        }
        self
    }

    /// Copy a shipped pipeline from the repository's pipelines/ folder.
    pub fn with_shipped_pipeline(self, name: &str) -> Test {
        let text = std::fs::read_to_string(workspace_root().join("pipelines").join(name))
            .expect("shipped pipeline");
        self.file(&format!("pipelines/{name}"), &text)
    }

    /// A shipped pipeline cut just before `[stages.<stage>]`: the runner's own tests keep
    /// ingest → split and leave training to the tests that are about it.
    pub fn with_shipped_pipeline_before(self, name: &str, stage: &str) -> Test {
        let text = std::fs::read_to_string(workspace_root().join("pipelines").join(name))
            .expect("shipped pipeline");
        let cut = text
            .find(&format!("[stages.{stage}]"))
            .unwrap_or_else(|| panic!("{name} has no stage `{stage}`"));
        self.file(&format!("pipelines/{name}"), &text[..cut])
    }

    pub fn file(self, rel: &str, content: &str) -> Test {
        self.write(rel, content);
        self
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The command, in the test directory (the binary has the test-only stage kind).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("RECPIPE_NO_PROGRESS", "1")
            .env_remove("RECPIPE_CACHE_DIR")
            .env_remove("RUST_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self
            .cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("start recpipe");
        Run::from(out, args)
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start recpipe")
    }

    /// Artifact directories of a kind in the cache.
    pub fn artifacts(&self, kind: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path(".recpipe/cache").join(kind))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn tmp_entries(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.path(".recpipe/tmp"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// The two stages the data-reading pipelines here start with: `ingest` of the bundled
/// ml-latest-small (see [`Test::with_bundled_data`]) and a `split` of it. The split table is
/// left open, so the text that follows it goes on with the split's own keys.
pub const BUNDLED_INGEST_SPLIT: &str = r#"[stages.ingest]
kind = "ingest"
path = "data/ml-latest-small"

[stages.split]
kind = "split"
inputs = ["ingest"]
"#;

/// A pipeline named `name` that starts with [`BUNDLED_INGEST_SPLIT`] and goes on with `rest`
/// (the split's keys first). Line 1 is `name`, line 10 the first line of `rest`.
pub fn bundled_pipeline(name: &str, rest: &str) -> String {
    format!("name = \"{name}\"\n\n{BUNDLED_INGEST_SPLIT}{rest}")
}

/// `[stages.<stage>]` of the test-only `_test` kind, reading `inputs` and writing
/// `value = "<stage>"`; more keys may follow on the next lines.
pub fn test_stage(stage: &str, inputs: &[&str]) -> String {
    let mut s = format!("[stages.{stage}]\nkind = \"_test\"\n");
    if !inputs.is_empty() {
        let quoted: Vec<String> = inputs.iter().map(|i| format!("\"{i}\"")).collect();
        s += &format!("inputs = [{}]\n", quoted.join(", "));
    }
    s + &format!("value = \"{stage}\"\n")
}

/// A pipeline named `name` of the given stage tables (from [`test_stage`]), a blank line apart.
pub fn test_pipeline(name: &str, stages: &[String]) -> String {
    format!("name = \"{name}\"\n\n{}", stages.join("\n"))
}

/// Wait for a child with a generous bound, so a deadlock fails the test instead of hanging it.
pub fn wait_output(child: Child, limit: Duration) -> Run {
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Run::from(out.expect("wait for recpipe"), &[]),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
            panic!("recpipe did not finish within {limit:?} (deadlock?)");
        }
    }
}

/// Poll until `cond` holds, failing after a generous bound.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    args: String,
}

impl Run {
    fn from(out: Output, args: &[&str]) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args: args.join(" "),
        }
    }

    pub fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "`recpipe {}` failed\n{self}", self.args);
        self
    }

    pub fn fails(self) -> Run {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "`recpipe {}` should have failed\n{self}",
            self.args
        );
        self
    }

    /// The line of `recpipe run`/`status` output about `stage` (stage lines start at column 0;
    /// the stages' own summary lines are indented and may start with a stage's name).
    pub fn stage(&self, stage: &str) -> &str {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with(char::is_whitespace))
            .find(|l| l.split_whitespace().next() == Some(stage))
            .unwrap_or_else(|| panic!("no line for stage `{stage}`\n{self}"))
    }

    pub fn has_stage(&self, stage: &str) -> bool {
        self.stdout
            .lines()
            .filter(|l| !l.starts_with(char::is_whitespace))
            .any(|l| l.split_whitespace().next() == Some(stage))
    }

    /// The stage line's status word: ran, fresh, would, stale, FAILED.
    pub fn status_of(&self, stage: &str) -> &str {
        self.stage(stage)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
