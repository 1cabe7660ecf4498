//! The scheduler: each needed stage starts, on a thread of its own, as soon as all of its
//! inputs are done; after the first failure no new stage starts.

use super::Outcome;
use super::stage::{Ctx, exec_stage};
use anyhow::Result;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum St {
    Skip,
    Pending,
    Running,
    Done,
    Failed,
}

/// Run the `needed` stages; `finished` hears of each one (with how long it took) as it ends.
/// Returns the needed stages that never started because a stage failed.
pub(super) fn run_needed(
    ctx: &Ctx,
    needed: &[bool],
    mut finished: impl FnMut(usize, Result<Outcome>, Duration),
) -> Vec<usize> {
    let p = ctx.p;
    let n = p.stages.len();
    let mut st: Vec<St> = needed
        .iter()
        .map(|&x| if x { St::Pending } else { St::Skip })
        .collect();
    let mut failed = false;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut running = 0;
        loop {
            let ready: Vec<usize> = (0..n)
                .filter(|_| !failed)
                .filter(|&i| st[i] == St::Pending)
                .filter(|&i| p.stages[i].inputs.iter().all(|&j| st[j] == St::Done))
                .collect();
            for i in ready {
                st[i] = St::Running;
                running += 1;
                let tx = tx.clone();
                scope.spawn(move || {
                    let t = Instant::now();
                    let r = exec_stage(ctx, i);
                    let _ = tx.send((i, r, t.elapsed()));
                });
            }
            if running == 0 {
                break;
            }
            let (i, result, took) = rx.recv().expect("workers send before exiting");
            running -= 1;
            st[i] = if result.is_ok() { St::Done } else { St::Failed };
            failed |= result.is_err();
            finished(i, result, took);
        }
    });
    (0..n).filter(|&i| st[i] == St::Pending).collect()
}
