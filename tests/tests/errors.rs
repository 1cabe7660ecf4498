//! Every mistake a user can make in a pipeline file is reported at its file:line:column.

use recpipe_tests::{Test, bundled_pipeline};

fn error_of(pipeline: &str, extra: &[&str]) -> String {
    let t = Test::new().with_bundled_data().file("p.toml", pipeline);
    let mut args = vec!["run", "p.toml"];
    args.extend_from_slice(extra);
    let r = t.run(&args).fails();
    assert!(r.stdout.is_empty(), "nothing ran\n{r}");
    assert!(
        !t.path(".recpipe/cache").exists() || t.artifacts("ingest").is_empty(),
        "an invalid pipeline runs nothing"
    );
    r.stderr
}

/// The valid pipeline each case breaks in one place: the shared ingest → split, `seed = 42`.
/// The positions the cases expect count its lines: 1 `name = "p"`, 3 `[stages.ingest]`,
/// 4 `kind = "ingest"`, 5 `path = "data/ml-latest-small"`, 7 `[stages.split]`,
/// 8 `kind = "split"`, 9 `inputs = ["ingest"]`, 10 `seed = 42`.
fn good() -> String {
    let text = bundled_pipeline("p", "seed = 42\n");
    assert_eq!(text.lines().nth(9), Some("seed = 42"), "{text}");
    text
}

#[test]
fn unknown_key_names_stage_key_and_position() {
    let e = error_of(&good().replace("seed = 42", "sed = 42"), &[]);
    assert!(e.contains("p.toml:10:1:"), "{e}");
    assert!(
        e.contains("stage `split`") && e.contains("unknown key `sed`"),
        "{e}"
    );
    assert!(e.contains("`seed`"), "lists the valid keys: {e}");
}

#[test]
fn unknown_kind_lists_the_known_ones() {
    let e = error_of(&good().replace("kind = \"split\"", "kind = \"splt\""), &[]);
    assert!(e.contains("p.toml:8:8:"), "{e}");
    assert!(
        e.contains("unknown kind `splt`") && e.contains("ingest, split"),
        "{e}"
    );
}

#[test]
fn wrong_type_points_at_the_value() {
    let e = error_of(&good().replace("seed = 42", "seed = \"x\""), &[]);
    assert!(e.contains("p.toml:10:8:"), "{e}");
    assert!(
        e.contains("key `seed`") && e.contains("invalid type"),
        "{e}"
    );
}

#[test]
fn input_naming_a_missing_stage() {
    let e = error_of(
        &good().replace("inputs = [\"ingest\"]", "inputs = [\"ingets\"]"),
        &[],
    );
    assert!(e.contains("p.toml:9:11:"), "{e}");
    assert!(e.contains("input `ingets` names no stage"), "{e}");
}

#[test]
fn cycle_is_named_with_its_stages() {
    let text = format!(
        "{}\n[stages.again]\nkind = \"split\"\ninputs = [\"split\"]\n",
        good()
    )
    .replace("inputs = [\"ingest\"]", "inputs = [\"again\"]");
    let e = error_of(&text, &[]);
    assert!(e.contains("cycle"), "{e}");
    assert!(
        e.contains("again → split → again") || e.contains("split → again → split"),
        "{e}"
    );
    assert!(e.contains("p.toml:"), "{e}");
}

#[test]
fn missing_data_folder_hints_at_the_download() {
    let e = error_of(&good().replace("data/ml-latest-small", "data/ml-1m"), &[]);
    assert!(e.contains("p.toml:5:8:"), "{e}");
    assert!(e.contains("data/ml-1m") && e.contains("not found"), "{e}");
    assert!(
        e.contains("https://grouplens.org/datasets/movielens/"),
        "{e}"
    );
}

#[test]
fn bad_overrides_name_the_argument() {
    let e = error_of(&good(), &["--set", "split.seed=abc"]);
    assert!(
        e.contains("--set split.seed=abc") && e.contains("invalid type"),
        "{e}"
    );
    let e = error_of(&good(), &["--set", "splt.seed=1"]);
    assert!(e.contains("no stage named `splt`"), "{e}");
    let e = error_of(&good(), &["--set", "split.sed=1"]);
    assert!(e.contains("unknown key `sed`"), "{e}");
    let e = error_of(&good(), &["--set", "split.seed"]);
    assert!(e.contains("STAGE.KEY=VALUE"), "{e}");
}

#[test]
fn invalid_toml_and_missing_file() {
    let e = error_of("name = \"p\"\n[stages.ingest\nkind = 1\n", &[]);
    assert!(e.contains("p.toml:2:"), "{e}");
    let r = Test::new().run(&["run", "nope.toml"]).fails();
    assert!(
        r.stderr.contains("nope.toml") && r.stderr.contains("pipelines/"),
        "{r}"
    );
}

#[test]
fn shipped_pipelines_parse_or_ask_for_their_download() {
    let t = Test::new().with_bundled_data();
    let dir = recpipe_tests::workspace_root().join("pipelines");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    for must in [
        "quickstart.toml",
        "ml-latest-small.toml",
        "ml-100k.toml",
        "ml-1m.toml",
        "ml-25m.toml",
        "synthetic.toml",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "pipelines/{must} is shipped"
        );
    }
    for name in names {
        let rel = format!("pipelines/{name}");
        t.write(&rel, &std::fs::read_to_string(dir.join(&name)).unwrap());
        // `dag` describes the pipeline without its data; `run` asks for the download.
        let r = t.run(&["dag", &rel]).ok();
        assert!(r.stdout.contains("split [split]"), "{r}");
        let r = t.run(&["run", &rel, "--dry-run"]);
        // ml-latest-small*.toml read the bundled data; the other MovieLens sets are downloads.
        let needs_download = name.starts_with("ml-") && !name.starts_with("ml-latest-small");
        if needs_download {
            let r = r.fails();
            assert!(r.stderr.contains("grouplens.org"), "{r}");
        } else {
            r.ok();
        }
        // Stage names follow kinds so `--set split.seed=..` works on every pipeline.
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(
            text.contains("[stages.ingest]") && text.contains("[stages.split]"),
            "{name}"
        );
    }
}
