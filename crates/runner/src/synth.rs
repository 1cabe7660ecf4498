//! `recpipe synth`: a synthetic MovieLens-style data set from command-line flags. Its errors
//! name the flags (`--users`), not the `ingest.synthetic.*` keys a pipeline would set.

use crate::out::outln;
use crate::stages::synthetic::{Config, Error, generate};
use anyhow::{Result, anyhow};
use std::path::Path;

/// Pipeline key → flag, for the keys the flags set.
const FLAGS: [(&str, &str); 3] = [
    ("n_ratings", "--ratings"),
    ("n_users", "--users"),
    ("n_items", "--items"),
];

pub struct Flags {
    pub users: Option<u64>,
    pub items: Option<u64>,
    pub ratings: Option<u64>,
    pub seed: Option<u64>,
}

fn config(f: &Flags) -> Result<Config> {
    let mut cfg = Config::default();
    let narrow = |v: u64, flag: &str| -> Result<u32> {
        u32::try_from(v).map_err(|_| anyhow!("{flag} {v} is too large (at most {})", u32::MAX))
    };
    if let Some(u) = f.users {
        cfg.n_users = narrow(u, "--users")?;
    }
    if let Some(i) = f.items {
        cfg.n_items = narrow(i, "--items")?;
    }
    if let Some(r) = f.ratings {
        cfg.n_ratings = r;
    }
    if let Some(s) = f.seed {
        cfg.seed = s;
    }
    Ok(cfg)
}

/// A config error of the generator in terms of the flags.
fn in_flags(e: Error) -> anyhow::Error {
    let Error::Config { message, .. } = &e else {
        return anyhow!(e);
    };
    let mut text = message.clone();
    for (key, flag) in FLAGS {
        text = text.replace(key, flag);
    }
    anyhow!("synth: {text}")
}

pub fn synth(out: &Path, flags: &Flags) -> Result<()> {
    let cfg = config(flags)?;
    let summary = generate(&cfg, out).map_err(|e| match e {
        Error::Config { .. } => in_flags(e),
        e => anyhow!(e).context(format!(
            "cannot generate synthetic data into {}",
            out.display()
        )),
    })?;
    outln!(
        "synth: wrote {} ratings of {} users on {} items to {} and {} in {:.2}s",
        summary.n_ratings,
        summary.n_users,
        summary.n_items,
        summary.ratings_file.display(),
        summary.movies_file.display(),
        summary.seconds
    );
    outln!(
        "  the planted model's RMSE is {:.4} (bias only {:.4}); ingest with `recpipe ingest {} --out DIR`",
        summary.oracle_rmse,
        summary.bias_only_rmse,
        out.display()
    );
    Ok(())
}
