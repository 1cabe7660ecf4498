//! `recpipe`: run recommender pipelines from TOML with a content-addressed stage cache. The
//! binaries (`recpipe`, and `recpipe-e2e` with the test-only stage kind) call [`main`].

mod cache;
mod cli;
mod commands;
mod diag;
mod exec;
mod gc;
mod handler;
mod names;
mod numbers;
mod out;
mod pipeline;
mod query;
mod stages;
mod sweep;
mod synth;
#[cfg(feature = "test-stages")]
mod test_stage;
mod view;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Command};
use pipeline::{Pipeline, PipelineError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Parse the command line, run the command, print its error (if any) on stderr.
pub fn main() -> ExitCode {
    let mut cli = Cli::parse();
    cli.cache_dir = cli.command.cache_dir();
    init_logging(cli.verbose);
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_message(&e));
            if let Some(excerpt) = e.downcast_ref::<PipelineError>().and_then(|p| p.excerpt()) {
                eprintln!("{excerpt}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once (a message that already quotes its
/// source does not repeat it).
fn error_message(e: &anyhow::Error) -> String {
    if let Some(PipelineError::Read { path, source }) =
        e.chain().find_map(|c| c.downcast_ref::<PipelineError>())
        && source.kind() == std::io::ErrorKind::NotFound
    {
        return format!(
            "pipeline file {} not found; the shipped pipelines are in pipelines/",
            path.display()
        );
    }
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

/// Warnings and the few infos that matter by default; `-v` debug and `-vv` trace for recpipe's
/// own crates; `RUST_LOG`, when set, decides instead. `RUST_LOG` takes `LEVEL` and
/// `TARGET=LEVEL` directives separated by commas (`recpipe_train=debug,warn`): target
/// prefixes, without the regex span filters of `EnvFilter`, whose regex engine would add
/// about 20 s of CPU to every build for a feature nobody here uses.
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = match verbose {
        0 => "warn,recpipe=info",
        1 => "warn,recpipe=debug",
        _ => "info,recpipe=trace",
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(recpipe_core::progress::LogWriter::default)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time();
    tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .init();
}

fn store(cli_dir: Option<PathBuf>) -> Result<cache::Store> {
    let base = match cli_dir {
        Some(d) => d,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    cache::Store::open(base.join(".recpipe"))
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(a) => {
            let p = Pipeline::load(&a.pipeline.pipeline, &a.pipeline.sets)?;
            let store = store(cli.cache_dir)?;
            let opts = exec::RunOptions {
                stages: a.stage,
                force: a.force,
                downstream: a.downstream,
                dry_run: a.dry_run,
                quiet: false,
            };
            exec::run(&p, &store, &opts)?;
            Ok(())
        }
        Command::Sweep(a) => sweep::sweep(&a, &store(cli.cache_dir)?),
        Command::Recommend(a) => query::recommend(&a, &store(cli.cache_dir)?),
        Command::Similar(a) => query::similar(&a, &store(cli.cache_dir)?),
        Command::Predict(a) => query::predict(&a, &store(cli.cache_dir)?),
        Command::Status { pipeline: a, .. } => {
            let p = Pipeline::load_without_data(&a.pipeline, &a.sets)?;
            exec::status(&p, &store(cli.cache_dir)?)
        }
        Command::Show {
            pipeline, stage, ..
        } => {
            let p = Pipeline::load(&pipeline.pipeline, &pipeline.sets)?;
            commands::show(&p, &store(cli.cache_dir)?, &stage, cli.verbose > 0)
        }
        Command::Dag { pipeline, format } => {
            let p = Pipeline::load_without_data(&pipeline.pipeline, &pipeline.sets)?;
            commands::dag(&p, format);
            Ok(())
        }
        Command::Gc {
            dry_run, keep_runs, ..
        } => gc::gc(&store(cli.cache_dir)?, dry_run, keep_runs),
        Command::Devices(a) => commands::devices(&a),
        Command::Ingest {
            path,
            out,
            format,
            on_error,
            duplicates,
            id_order,
            sets,
        } => {
            let flags = ingest_flags(
                &path,
                [
                    ("format", "--format", format),
                    ("on_error", "--on-error", on_error),
                    ("duplicates", "--duplicates", duplicates),
                    ("id_order", "--id-order", id_order),
                ],
            );
            commands::oneoff(stages::INGEST, flags, &sets.sets, &[], &out.out)
        }
        Command::Synth {
            out,
            users,
            items,
            ratings,
            seed,
        } => synth::synth(
            &out,
            &synth::Flags {
                users,
                items,
                ratings,
                seed,
            },
        ),
        Command::Split(a) => oneoff(stages::SPLIT, &a),
        Command::Train(a) => oneoff(stages::TRAIN, &a),
        Command::Evaluate(a) => oneoff(stages::EVALUATE, &a),
        Command::Export(a) => oneoff(stages::EXPORT, &a),
    }
}

/// `recpipe ingest PATH`'s config keys as (key, flag as written, value): `path`, then each
/// option given.
fn ingest_flags(
    path: &std::path::Path,
    options: [(&str, &str, Option<String>); 4],
) -> Vec<(String, String, String)> {
    let mut flags = vec![(
        "path".to_string(),
        format!("PATH {}", path.display()),
        path.to_string_lossy().into_owned(),
    )];
    for (key, flag, v) in options {
        if let Some(v) = v {
            flags.push((key.to_string(), format!("{flag} {v}"), v));
        }
    }
    flags
}

/// `recpipe split|train|evaluate|export --input DIR... --out DIR`.
fn oneoff(kind: &str, a: &cli::StageArgs) -> Result<()> {
    commands::oneoff(kind, vec![], &a.sets.sets, &a.input, &a.out.out)
}
