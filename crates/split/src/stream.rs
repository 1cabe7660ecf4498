//! The split of a ratings table too big for the in-memory path (issue #18): the table is
//! read row group by row group in several passes, and only one byte per row (its part
//! label) plus what the strategy itself needs stays in memory; the last pass writes each
//! row to train, valid or test as it goes.
//!
//! Every strategy but `predefined` (whose files are small and read whole) streams, and
//! gives the tables and split.json of the in-memory path exactly: the labels come from the
//! same functions or the same generator draws in the same order.
//!
//! - `random` (and `compat`): the draws only see the train-eligible row numbers (4 B a row).
//! - `chronological`: the timestamp column (8 B a row) orders the rows, as in memory.
//! - per-user strategies: a pass counts each user's eligible rows; each user's quota and
//!   draws are then made on the user's local positions 0..n (the generator draws depend
//!   only on n and the quota, not on the row numbers), by timestamp for the `Latest`
//!   ones (8 B a row, grouped by user); a last pass hands the labels back to the rows in
//!   file order.
//! - `min_ratings` needs per-user counts only; `drop_cold_start` and the summary need which
//!   users and items have a train rating, from one pass over the two id columns.

use crate::config::{Config, Strategy};
use crate::error::SplitError;
use crate::strategies::{self, DROPPED, Fractions, LastK, Quota, TEST, TRAIN, VALID};
use crate::summary::{PartSummary, Summary};
use indicatif::ProgressBar;
use recpipe_core::memory::{Need, check_need};
use recpipe_core::ratings_stream::{Chunk, Columns, RatingsFile, RatingsSink};
use recpipe_core::rng::SplitMix64;
use recpipe_core::{Progress, fsutil, layout};
use std::path::Path;

const USER: Columns = Columns {
    user: true,
    item: false,
    rating: false,
    timestamp: false,
};

/// A pass over `f` with a bar counting its rows.
fn pass(
    f: &RatingsFile,
    cols: Columns,
    progress: &Progress,
    msg: &str,
    mut each: impl FnMut(Chunk<'_>),
) -> Result<(), SplitError> {
    let bar: ProgressBar = progress.count(f.rows as u64, msg);
    f.for_each(cols, |c| {
        each(c);
        bar.inc(c.user.len().max(c.item.len()).max(c.timestamp.len()) as u64);
        Ok::<(), SplitError>(())
    })?;
    bar.finish_and_clear();
    Ok(())
}

/// What the streaming path holds at its peak, for the memory guard.
fn need(cfg: &Config, f: &RatingsFile) -> Need {
    let (rows, users) = (f.rows as u64, f.n_users as u64);
    let mut need = Need::new();
    need.add("labels", rows, 1);
    match cfg.strategy {
        Strategy::Random => {
            let perm = if cfg.compat.is_some() { 4 } else { 0 };
            need.add("shuffled rows", rows, 4 + perm);
        }
        Strategy::Chronological => {
            need.add("timestamps and order", rows, 8 + 4);
        }
        Strategy::UserRandom => {
            need.add("per-user labels", rows, 1);
        }
        _ => {
            need.add("per-user labels and timestamps", rows, 1 + 8);
        }
    }
    // One row group in flight per output file, never more rows than the table has.
    let buffered = rows.min(3 * recpipe_core::parquet_io::ROW_GROUP_ROWS as u64);
    need.add("per-user counts", users, 8 * 2)
        .add("write buffers", buffered, 20);
    need
}

/// Splits the ratings table at `path` into `out_dir` without holding it in memory.
pub(crate) fn split(
    cfg: &Config,
    path: &Path,
    out_dir: &Path,
    progress: &Progress,
) -> Result<Summary, SplitError> {
    let f = RatingsFile::open(path)?;
    if f.rows == 0 {
        return Err(SplitError::Empty {
            path: path.to_path_buf(),
            hint: "; check the ingest stage's input and filters".into(),
        });
    }
    if u32::try_from(f.rows).is_err() {
        return Err(SplitError::TooLarge {
            rows: f.rows,
            path: path.to_path_buf(),
        });
    }
    if !f.timestamps && cfg.strategy.needs_timestamps() {
        return Err(SplitError::NoTimestamps {
            strategy: cfg.strategy.name(),
            path: path.to_path_buf(),
        });
    }
    let hint = format!(
        "the data size: {} holds {} ratings; sample them or filter them in ingest",
        path.display(),
        f.rows
    );
    check_need("split (streaming)", &need(cfg, &f), &hint)?;
    tracing::debug!(rows = f.rows, "split streams {}", path.display());

    let (mut part, dropped_min_ratings) = crate::first_labels(cfg, path, f.rows, |min, part| {
        drop_sparse_users(&f, min, part, progress)
    })?;
    hold_out(cfg, &f, &mut part, progress)?;
    let (seen_users, seen_items) = train_support(&f, &part, progress)?;
    let (train, valid, test, dropped) = write(
        cfg,
        &f,
        &part,
        (&seen_users, &seen_items),
        out_dir,
        progress,
    )?;
    let summary = Summary {
        strategy: cfg.strategy.name().to_string(),
        seed: cfg.seed,
        fold: cfg.fold,
        n_users: f.n_users,
        n_items: f.n_items,
        input_rows: f.rows,
        dropped_min_ratings,
        train,
        valid,
        test,
    };
    debug_assert_eq!(
        dropped,
        (
            summary.valid.dropped_cold_start,
            summary.test.dropped_cold_start
        )
    );
    fsutil::write_json(out_dir.join(layout::split::SUMMARY), &summary)?;
    Ok(summary)
}

/// [`strategies::drop_sparse_users`] on the user column streamed twice.
fn drop_sparse_users(
    f: &RatingsFile,
    min: u32,
    part: &mut [u8],
    progress: &Progress,
) -> Result<usize, SplitError> {
    let mut count = vec![0u32; f.n_users as usize];
    pass(f, USER, progress, "split: users", |c| {
        for (&u, &p) in c.user.iter().zip(&part[c.start..]) {
            count[u as usize] += u32::from(p == TRAIN);
        }
    })?;
    let mut dropped = 0;
    pass(f, USER, progress, "split: min_ratings", |c| {
        for (&u, p) in c.user.iter().zip(&mut part[c.start..]) {
            if *p == TRAIN && count[u as usize] < min {
                *p = DROPPED;
                dropped += 1;
            }
        }
    })?;
    Ok(dropped)
}

/// The strategy's valid and test rows, as `hold_out` in lib.rs labels them.
fn hold_out(
    cfg: &Config,
    f: &RatingsFile,
    part: &mut [u8],
    progress: &Progress,
) -> Result<(), SplitError> {
    let (vf, tf) = (cfg.valid_fraction, cfg.test_fraction);
    match cfg.strategy {
        Strategy::Random => match cfg.compat {
            Some(c) => strategies::random_compat(part, vf, cfg.seed as u32, c),
            None => strategies::random(part, vf, tf, cfg.seed),
        },
        Strategy::Chronological => {
            let ts = timestamps(f, progress)?;
            strategies::chronological(part, &ts, vf, tf);
        }
        Strategy::UserRandom => {
            let rng = SplitMix64::new(cfg.seed);
            per_user(f, part, &mut Fractions::new(vf, tf), Some(rng), progress)?;
        }
        Strategy::UserChronological => {
            per_user(f, part, &mut Fractions::new(vf, tf), None, progress)?;
        }
        Strategy::LeaveLastK => {
            per_user(f, part, &mut LastK(cfg.k as usize), None, progress)?;
        }
        Strategy::Predefined => unreachable!("predefined files are split in memory"),
    }
    Ok(())
}

fn timestamps(f: &RatingsFile, progress: &Progress) -> Result<Vec<i64>, SplitError> {
    let mut ts = Vec::with_capacity(f.rows);
    let cols = Columns {
        timestamp: true,
        ..Columns::default()
    };
    pass(f, cols, progress, "split: timestamps", |c| {
        ts.extend_from_slice(c.timestamp)
    })?;
    Ok(ts)
}

/// [`strategies::per_user`] without the row numbers: `rng` Some draws each user's held-out
/// ratings (`Within::Random`), None takes the latest by timestamp (`Within::Latest`).
fn per_user(
    f: &RatingsFile,
    part: &mut [u8],
    quota: &mut impl Quota,
    mut rng: Option<SplitMix64>,
    progress: &Progress,
) -> Result<(), SplitError> {
    let n_users = f.n_users as usize;
    // off[u]..off[u + 1]: user u's eligible rows, in file order, in the by-user arrays.
    let mut off = vec![0usize; n_users + 1];
    pass(f, USER, progress, "split: users", |c| {
        for (&u, &p) in c.user.iter().zip(&part[c.start..]) {
            off[u as usize + 1] += usize::from(p == TRAIN);
        }
    })?;
    for u in 0..n_users {
        off[u + 1] += off[u];
    }
    let mut next = off.clone();
    let ts_by_user = match rng {
        Some(_) => Vec::new(),
        None => {
            let mut ts = vec![0i64; off[n_users]];
            let cols = Columns {
                user: true,
                timestamp: true,
                ..Columns::default()
            };
            pass(f, cols, progress, "split: timestamps", |c| {
                for ((&u, &t), &p) in c.user.iter().zip(c.timestamp).zip(&part[c.start..]) {
                    if p == TRAIN {
                        ts[next[u as usize]] = t;
                        next[u as usize] += 1;
                    }
                }
            })?;
            ts
        }
    };
    let mut labels = vec![TRAIN; off[n_users]];
    let mut local: Vec<u32> = Vec::new();
    let bar = progress.count(n_users as u64, "split: per user");
    for u in 0..n_users {
        let (lo, n) = (off[u], off[u + 1] - off[u]);
        let (n_valid, n_test) = quota.take(n);
        local.clear();
        local.extend(0..n as u32);
        let held: (&[u32], &[u32]) = match &mut rng {
            Some(rng) => {
                rng.partial_shuffle(&mut local, n_test + n_valid);
                (&local[n_test..n_test + n_valid], &local[..n_test])
            }
            None => {
                let ts = &ts_by_user[lo..lo + n];
                local.sort_by_key(|&j| ts[j as usize]);
                (
                    &local[n - n_test - n_valid..n - n_test],
                    &local[n - n_test..],
                )
            }
        };
        for &j in held.0 {
            labels[lo + j as usize] = VALID;
        }
        for &j in held.1 {
            labels[lo + j as usize] = TEST;
        }
        if u % 4096 == 0 {
            bar.set_position(u as u64);
        }
    }
    bar.finish_and_clear();
    drop(ts_by_user);
    next.copy_from_slice(&off);
    pass(f, USER, progress, "split: labels", |c| {
        for (&u, p) in c.user.iter().zip(&mut part[c.start..]) {
            if *p == TRAIN {
                *p = labels[next[u as usize]];
                next[u as usize] += 1;
            }
        }
    })?;
    Ok(())
}

/// Which users and items have a train rating.
fn train_support(
    f: &RatingsFile,
    part: &[u8],
    progress: &Progress,
) -> Result<(Vec<bool>, Vec<bool>), SplitError> {
    let mut seen_users = vec![false; f.n_users as usize];
    let mut seen_items = vec![false; f.n_items as usize];
    let cols = Columns {
        user: true,
        item: true,
        ..Columns::default()
    };
    pass(f, cols, progress, "split: support", |c| {
        for ((&u, &i), &p) in c.user.iter().zip(c.item).zip(&part[c.start..]) {
            if p == TRAIN {
                seen_users[u as usize] = true;
                seen_items[i as usize] = true;
            }
        }
    })?;
    Ok((seen_users, seen_items))
}

/// The last pass: drops cold-start rows when asked, writes every row to its part and
/// counts what split.json reports (as `summary::parts` does in memory). Returns the three
/// summaries and the (valid, test) rows dropped as cold start.
fn write(
    cfg: &Config,
    f: &RatingsFile,
    part: &[u8],
    (seen_users, seen_items): (&[bool], &[bool]),
    out_dir: &Path,
    progress: &Progress,
) -> Result<(PartSummary, PartSummary, PartSummary, (usize, usize)), SplitError> {
    let files = [
        layout::split::TRAIN,
        layout::split::VALID,
        layout::split::TEST,
    ];
    let mut sinks = Vec::with_capacity(3);
    for name in files {
        sinks.push(RatingsSink::create(
            out_dir.join(name),
            f.n_users,
            f.n_items,
            f.timestamps,
        )?);
    }
    let mut sums: [PartSummary; 3] = Default::default();
    let mut user_in = vec![[false; 3]; f.n_users as usize];
    let mut item_in = vec![[false; 3]; f.n_items as usize];
    let mut dropped = [0usize; 3];
    let bar = progress.count(f.rows as u64, "split: writing");
    f.for_each(Columns::ALL, |c| {
        for j in 0..c.user.len() {
            let p = part[c.start + j];
            if p > TEST {
                continue;
            }
            let (u, i) = (c.user[j] as usize, c.item[j] as usize);
            let cold = !(seen_users[u] && seen_items[i]);
            if cfg.drop_cold_start && p != TRAIN && cold {
                dropped[p as usize] += 1;
                continue;
            }
            let t = c.timestamp.get(j).copied().unwrap_or(0);
            sinks[p as usize].push(c.user[j], c.item[j], c.rating[j], t)?;
            let s = &mut sums[p as usize];
            s.rows += 1;
            if !user_in[u][p as usize] {
                user_in[u][p as usize] = true;
                s.users += 1;
                s.cold_users += usize::from(!seen_users[u]);
            }
            if !item_in[i][p as usize] {
                item_in[i][p as usize] = true;
                s.items += 1;
                s.cold_items += usize::from(!seen_items[i]);
            }
            s.cold_rows += usize::from(cold);
        }
        bar.inc(c.user.len() as u64);
        Ok::<(), SplitError>(())
    })?;
    bar.finish_and_clear();
    for sink in sinks {
        sink.finish()?;
    }
    // Rows dropped as cold start did enter the split: fractions stay those of the config.
    let entered = sums.iter().map(|s| s.rows).sum::<usize>() + dropped[1] + dropped[2];
    for s in &mut sums {
        s.fraction = s.rows as f64 / entered.max(1) as f64;
    }
    sums[1].dropped_cold_start = dropped[1];
    sums[2].dropped_cold_start = dropped[2];
    let [train, valid, test] = sums;
    Ok((train, valid, test, (dropped[1], dropped[2])))
}
