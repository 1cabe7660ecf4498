//! BPR on a CUDA device: the cpu's model (`ranking/bpr.rs`) with its steps on the device.
//!
//! The host keeps the cpu's FPSGD grid ([`Grid`]) and draws every triple from the cpu's
//! streams in the cpu's order — the negatives depend on the data and the seed, never on the
//! weights —, then uploads them a sub-epoch at a time to recpipe-cuda's [`BprModel`], which
//! steps them with bpr.cu; the host draws the next sub-epoch while the device steps the
//! last. The starting factors are the cpu's draws ([`initial`]).
//!
//! A sub-epoch's triples are spread over many warps racing on shared rows (Hogwild), the
//! fast path on a GPU. On a one-warp device (the harness with `Launch::SEQUENTIAL`) they
//! are stepped in order, which is the cpu's sequence of updates (its cells share no row, so
//! their order does not matter): the cpu's model, bit for bit.

use crate::backend::Device;
use crate::error::{Result, TrainError};
use crate::ranking::bpr::{BprParams, Grid, initial};
use crate::ranking::{Factors, Interactions, Iterative};
use recpipe_core::memory::{Need, check_need};
use recpipe_cuda::Accel;
use recpipe_cuda::bpr::{BprFactors, BprModel, BprShape};
use std::sync::Arc;

/// A BPR model training on a device.
pub struct CudaBpr<'a> {
    p: BprParams,
    grid: Grid<'a>,
    model: BprModel,
    device: Device,
    /// The smaller count of users and items that have interactions (caps Hogwild's warps).
    rows: usize,
    /// The factors as downloaded after the last epoch.
    last: Factors,
    /// The first device error; it ends training ([`Iterative::failure`]).
    failed: Option<recpipe_cuda::Error>,
}

/// Host bytes the CUDA path holds besides the interactions: the positives in grid order,
/// a sub-epoch's triples (drawn by cell, then joined) and the downloaded factors.
fn host_need(n_rows: usize, nnz: usize, triples: usize, k: usize) -> Need {
    let mut need = Need::new();
    need.add("BPR positives in grid order", nnz as u64, 8);
    need.add("BPR sub-epoch triples", triples as u64, 2 * 12);
    need.add(
        "BPR factors (downloaded)",
        recpipe_core::memory::product(&[n_rows, 2 * (k + 1)]),
        4,
    );
    need
}

impl<'a> CudaBpr<'a> {
    /// The model at the cpu's seeded start on `accel`, after checking that the host side and
    /// the device side fit.
    pub fn new(
        accel: &Arc<dyn Accel>,
        device: Device,
        data: &'a Interactions,
        p: BprParams,
    ) -> Result<CudaBpr<'a>> {
        let shape = BprShape {
            n_users: data.n_users,
            n_items: data.n_items,
            k: p.k,
        };
        shape.check().map_err(|message| TrainError::Cuda {
            device: device.name(),
            message,
        })?;
        let grid = Grid::new(data, &p);
        // A sub-epoch holds about 1/G of the epoch's triples; cells are uneven, so twice that.
        let per_sub = (data.len() * p.negatives).div_ceil(grid.blocks()) * 2;
        check_need(
            "BPR (CUDA)",
            &host_need(data.n_users + data.n_items, data.len(), per_sub, p.k),
            &format!("`negatives` (now {}) or `k` (now {})", p.negatives, p.k),
        )?;
        let start = initial(data.n_users, data.n_items, &p);
        let upload = BprFactors {
            user: start.user.clone(),
            item: start.item.clone(),
            item_bias: start
                .item_bias
                .clone()
                .unwrap_or_else(|| vec![0.0; data.n_items]),
        };
        let users = (0..data.n_users as u32)
            .filter(|&u| !data.items.row(u).is_empty())
            .count();
        let items = data.popularity().iter().filter(|&&n| n > 0).count();
        let model = BprModel::new(accel, shape, &upload, per_sub)
            .map_err(|e| super::cuda_error(device, e))?;
        Ok(CudaBpr {
            p,
            grid,
            model,
            device,
            rows: users.min(items),
            last: start,
            failed: None,
        })
    }

    /// One epoch on the device: its mean loss over the epoch's triples, and the factors
    /// after it.
    fn try_epoch(&mut self) -> std::result::Result<(f64, Factors), recpipe_cuda::Error> {
        let (_, plan) = self.grid.next_epoch();
        let mut triples = 0usize;
        let mut next = plan
            .order
            .first()
            .map(|&s| self.grid.sub_epoch_ids(&plan, s));
        for n in 1..=plan.order.len() {
            let ids = next.take().expect("drawn before");
            let launch = self.model.hogwild(ids.len() / 3, self.rows);
            self.model.steps(&ids, self.p.lr, self.p.reg, launch)?;
            triples += ids.len() / 3;
            // The launch runs while the host draws the next sub-epoch.
            next = plan
                .order
                .get(n)
                .map(|&s| self.grid.sub_epoch_ids(&plan, s));
        }
        let loss = self.model.take_loss()?;
        let f = self.model.factors()?;
        let factors = Factors {
            k: self.p.k,
            user: f.user,
            item: f.item,
            item_bias: Some(f.item_bias),
        };
        let mean = if triples == 0 {
            f64::NAN
        } else {
            loss / triples as f64
        };
        Ok((mean, factors))
    }
}

impl Iterative for CudaBpr<'_> {
    /// One epoch: the cpu's triples stepped on the device (NaN once a device call failed).
    fn epoch(&mut self) -> f64 {
        if self.failed.is_some() {
            return f64::NAN;
        }
        match self.try_epoch() {
            Ok((loss, f)) => {
                self.last = f;
                loss
            }
            Err(e) => {
                self.failed = Some(e);
                f64::NAN
            }
        }
    }

    /// The factors after the last epoch (downloaded by it).
    fn factors(&self) -> Factors {
        self.last.clone()
    }

    fn failure(&mut self) -> Option<TrainError> {
        let e = self.failed.take()?;
        Some(super::cuda_error(self.device, e))
    }
}
