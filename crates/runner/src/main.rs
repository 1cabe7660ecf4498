//! `recpipe`: run recommender pipelines from TOML with a content-addressed stage cache.

mod cache;
mod cli;
mod commands;
mod diag;
mod exec;
mod gc;
mod handler;
mod names;
mod pipeline;
mod stages;
mod sweep;
mod test_stage;
mod view;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Command};
use pipeline::{Pipeline, PipelineError};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(excerpt) = e.downcast_ref::<PipelineError>().and_then(|p| p.excerpt()) {
                eprintln!("{excerpt}");
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
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
        Command::Status(a) => {
            let p = Pipeline::load_without_data(&a.pipeline, &a.sets)?;
            exec::status(&p, &store(cli.cache_dir)?)
        }
        Command::Show { pipeline, stage } => {
            let p = Pipeline::load(&pipeline.pipeline, &pipeline.sets)?;
            commands::show(&p, &store(cli.cache_dir)?, &stage)
        }
        Command::Dag { pipeline, format } => {
            let p = Pipeline::load_without_data(&pipeline.pipeline, &pipeline.sets)?;
            commands::dag(&p, format);
            Ok(())
        }
        Command::Gc { dry_run, keep_runs } => gc::gc(&store(cli.cache_dir)?, dry_run, keep_runs),
        Command::Ingest {
            path,
            out,
            format,
            on_error,
            duplicates,
            id_order,
            sets,
        } => {
            let mut flags = vec![(
                "path".to_string(),
                format!("PATH {}", path.display()),
                path.to_string_lossy().into_owned(),
            )];
            for (key, flag, v) in [
                ("format", "--format", format),
                ("on_error", "--on-error", on_error),
                ("duplicates", "--duplicates", duplicates),
                ("id_order", "--id-order", id_order),
            ] {
                if let Some(v) = v {
                    flags.push((key.to_string(), format!("{flag} {v}"), v));
                }
            }
            commands::oneoff("ingest", flags, &sets.sets, &[], &out.out)
        }
        Command::Synth {
            out,
            users,
            items,
            ratings,
            seed,
        } => synth(&out.out, users, items, ratings, seed),
        Command::Split(a) => commands::oneoff("split", vec![], &a.sets.sets, &a.input, &a.out.out),
        Command::Train(a) => commands::oneoff("train", vec![], &a.sets.sets, &a.input, &a.out.out),
        Command::Evaluate(a) => {
            commands::oneoff("evaluate", vec![], &a.sets.sets, &a.input, &a.out.out)
        }
        Command::Export(a) => {
            commands::oneoff("export", vec![], &a.sets.sets, &a.input, &a.out.out)
        }
    }
}

fn synth(
    out: &std::path::Path,
    users: Option<u64>,
    items: Option<u64>,
    ratings: Option<u64>,
    seed: Option<u64>,
) -> Result<()> {
    let mut cfg = recpipe_ingest::synth::SynthConfig::default();
    let narrow = |v: u64, flag: &str| -> Result<u32> {
        u32::try_from(v)
            .map_err(|_| anyhow::anyhow!("{flag} {v} is too large (at most {})", u32::MAX))
    };
    if let Some(u) = users {
        cfg.n_users = narrow(u, "--users")?;
    }
    if let Some(i) = items {
        cfg.n_items = narrow(i, "--items")?;
    }
    if let Some(r) = ratings {
        cfg.n_ratings = r;
    }
    if let Some(s) = seed {
        cfg.seed = s;
    }
    let summary = recpipe_ingest::synth::generate(&cfg, out)
        .with_context(|| format!("cannot generate synthetic data into {}", out.display()))?;
    println!(
        "synth: wrote {} ratings of {} users on {} items to {} and {} in {:.2}s",
        summary.n_ratings,
        summary.n_users,
        summary.n_items,
        summary.ratings_file.display(),
        summary.movies_file.display(),
        summary.seconds
    );
    println!(
        "  the planted model's RMSE is {:.4} (bias only {:.4}); ingest with `recpipe ingest {} --out DIR`",
        summary.oracle_rmse,
        summary.bias_only_rmse,
        out.display()
    );
    Ok(())
}
