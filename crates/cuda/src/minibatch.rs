//! Mini-batch `dot` / `dot_bias` on a device: the cpu EmbeddingTrainer's step (mean-of-batch
//! gradient, RowOpt's SGD / Adam / AdamW / SparseAdam with the lazy per-row catch-up, or
//! dense stepping) as launches of embedding.cu on an [`Accel`].
//!
//! Per epoch the host groups every batch by row ([`MiniBatch::plan`]: the distinct users and
//! items of each batch with their ratings' batch positions in batch order, uploaded in one
//! copy); per batch [`MiniBatch::step`] makes no copy, only launches, in stream order:
//! `emb_begin_step` (1 × 32), `emb_forward` (a warp per rating), `emb_update` (a warp per
//! touched row + one for the global bias and the loss) and, in dense mode, `emb_dense_step`
//! per table; [`MiniBatch::end_epoch`] flushes the lazy rows. Each batch's Σ e² lands in
//! its own slot of the plan ([`EpochPlan::batch_sse`]), so the host reads the losses when
//! it wants them (every report, or at the end of the epoch) and still finds the first
//! non-finite batch as the cpu's batch loop does.
//!
//! ## Small batches: R batches per launch
//!
//! At the notebooks' batch of 64 ratings a batch is a few microseconds of work and the
//! launches above cost more than that (ml-latest-small, 90% for training: 1,418 batches an
//! epoch, 4,254 launches). [`MiniBatch::step_group`] runs R consecutive batches as one launch of
//! `emb_steps`: a single block whose warps run each batch's begin-step, forward and update
//! (the same device functions as the separate kernels), with `__syncthreads` between the
//! phases and between batches, so the batches stay strictly sequential and the result is
//! the per-batch launches' bit for bit (crates/cuda-harness/tests/fused.rs). The trainer
//! takes R = 64 (the batches between its loss reads), so an epoch of ml-latest-small is
//! 23 launches. One block is one multiprocessor: it is the right tool only while a batch
//! fits one (the trainer fuses batches up to [`FUSE_MAX_BATCH`] ratings).
//!
//! Why not the alternatives: a grid-wide barrier (cooperative launch) would spread a batch
//! over every multiprocessor, but it needs every block resident at once, which the harness
//! (blocks run one after another) cannot give, so it could not be tested here; CUDA graphs
//! (through cudarc's stream capture) would cut the host's launch cost but keep one kernel
//! node — and its start-up on the device — per phase per batch, would have to be captured
//! again each epoch (each batch's plan offsets, step and rate are launch arguments), and sit
//! below the [`Accel`] seam where the harness cannot run them.
//!
//! Layout: the tables as in [`crate::mf`] (`stride = k + bias`, the bias at index `k`), the
//! optimizer state `n_state` rows of `stride` floats per table row, a last-step counter per
//! row, the global bias a one-row table; the catch-up tables (ρ^j, and per step the
//! momentum factor, its 200-step window and the log of the decoupled decay) sized for the
//! `max_steps` steps of the whole run.

use crate::Error;
use crate::accel::Accel;
use crate::buf::{Buf, Purpose};
use crate::kernel::{Arg, Kernel, Launch};
use crate::mf::{DeviceRatings, MfShape, MfWeights, Tables, squash_args};
use std::sync::Arc;

/// Blocks per multiprocessor for the warp-per-item launches.
const WAVES: u32 = 4;
/// rowopt.rs MAX_CATCH_UP: ρ^j is kept for j = 0..=this.
pub(crate) const MAX_CATCH_UP: usize = 200;
/// Threads of `emb_steps`' one block (embedding.cu `EMB_STEPS_THREADS`).
pub const FUSED_THREADS: u32 = 512;
/// The largest batch (ratings) worth running R to a launch on one block: about a warp's
/// forward pass and a few row updates per warp of the block. Larger batches take the
/// per-batch launches, spread over the whole device.
pub const FUSE_MAX_BATCH: usize = 256;
/// `u32`s per batch in the plan's `meta` (embedding.cu `EMB_META`).
const META: usize = 7;

/// The optimizers of the batch path (embedding.cu `EMB_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MbOptimizer {
    Adam,
    AdamW,
    Sgd,
    SparseAdam,
    /// RowOpt's arithmetic for `adagrad` (train's Config::validate keeps it off this path).
    Adagrad,
}

impl MbOptimizer {
    pub(crate) fn code(self) -> i32 {
        match self {
            MbOptimizer::Adam => 0,
            MbOptimizer::AdamW => 1,
            MbOptimizer::Sgd => 2,
            MbOptimizer::SparseAdam => 3,
            MbOptimizer::Adagrad => 4,
        }
    }

    /// Optimizer state rows per table row.
    pub fn n_state(self) -> usize {
        if self == MbOptimizer::Sgd { 1 } else { 2 }
    }
}

/// The optimizer settings (train's Config keys of the same names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MbConfig {
    pub optimizer: MbOptimizer,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub l2: f32,
    /// Step every row at every batch (PyTorch's dense optimizers) instead of the cpu's lazy
    /// per-row catch-up.
    pub dense: bool,
    pub y_range: Option<[f32; 2]>,
}

impl MbConfig {
    /// The optimizer arguments every optimizer kernel takes after its tables:
    /// kind, b1, b2, eps, mom, wd.
    pub(crate) fn opt_args(&self) -> [Arg; 6] {
        [
            Arg::I32(self.optimizer.code()),
            Arg::F32(self.beta1),
            Arg::F32(self.beta2),
            Arg::F32(self.eps),
            Arg::F32(self.momentum),
            Arg::F32(self.weight_decay),
        ]
    }
}

/// One batch of an [`EpochPlan`]: where its order slice and grouping start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlannedBatch {
    /// First position in the epoch order; the batch's size.
    pub(crate) start: usize,
    pub(crate) n: usize,
    /// Distinct users and items.
    pub(crate) nu: usize,
    pub(crate) ni: usize,
    /// Offsets of its rows, row offsets (nu + ni + 1, local to its entries) and entries.
    pub(crate) rows_at: usize,
    pub(crate) off_at: usize,
    pub(crate) ent_at: usize,
}

/// An epoch's order and every batch grouped by row, on the device, with one Σ e² slot per
/// batch (the step of batch b adds its ratings' squared errors to slot b).
#[derive(Debug)]
pub struct EpochPlan {
    pub(crate) order: Buf<u32>,
    pub(crate) rows: Buf<u32>,
    pub(crate) off: Buf<u32>,
    pub(crate) ent: Buf<u32>,
    pub(crate) sse: Buf<f64>,
    /// Per batch: start, n, nu, ni, rows_at, off_at, ent_at (for `emb_steps`).
    pub(crate) meta: Buf<u32>,
    /// Per batch: its learning rate, written before its `emb_steps` launch.
    pub(crate) lr: Buf<f32>,
    pub(crate) batches: Vec<PlannedBatch>,
}

impl EpochPlan {
    pub fn n_batches(&self) -> usize {
        self.batches.len()
    }

    /// Ratings in batch `b`.
    pub fn batch_len(&self, b: usize) -> usize {
        self.batches[b].n
    }

    /// Each batch's Σ e² (zero for batches not stepped yet), in batch order: the cpu batch
    /// loop's per-step losses, for its running mean and its divergence check (a copy from
    /// the device: it waits for the launches before it).
    pub fn batch_sse(&self) -> Result<Vec<f64>, Error> {
        self.sse.to_vec()
    }

    /// Groups the epoch `order` (rating ids into `user` / `item`) into batches of
    /// `batch_size`, each batch's rows by first touch with their positions in batch order,
    /// and uploads the plan. `slots` (row → slot, all u32::MAX) are scratch, left all free.
    pub(crate) fn build(
        accel: &Arc<dyn Accel>,
        (slot_u, slot_i): (&mut [u32], &mut [u32]),
        (user, item): (&[u32], &[u32]),
        order: &[u32],
        batch_size: usize,
    ) -> Result<EpochPlan, Error> {
        let n_batches = order.len().div_ceil(batch_size);
        let (mut rows, mut off, mut ent) = (Vec::new(), Vec::new(), Vec::new());
        let mut batches = Vec::with_capacity(n_batches);
        for b in 0..n_batches {
            let idx = &order[b * batch_size..((b + 1) * batch_size).min(order.len())];
            let (rows_at, off_at, ent_at) = (rows.len(), off.len(), ent.len());
            let base = ent_at as u32;
            let users = idx.iter().map(|&r| user[r as usize]);
            let items = idx.iter().map(|&r| item[r as usize]);
            let nu = group_side(users, slot_u, &mut rows, &mut off, &mut ent, base);
            let ni = group_side(items, slot_i, &mut rows, &mut off, &mut ent, base);
            off.push((ent.len() - ent_at) as u32);
            batches.push(PlannedBatch {
                start: b * batch_size,
                n: idx.len(),
                nu,
                ni,
                rows_at,
                off_at,
                ent_at,
            });
        }
        let meta: Vec<u32> = batches
            .iter()
            .flat_map(|b| {
                [b.start, b.n, b.nu, b.ni, b.rows_at, b.off_at, b.ent_at].map(|x| x as u32)
            })
            .collect();
        debug_assert_eq!(meta.len(), n_batches * META);
        Ok(EpochPlan {
            order: Buf::from_slice(accel, order, PLAN)?,
            rows: Buf::from_slice(accel, &rows, PLAN)?,
            off: Buf::from_slice(accel, &off, PLAN)?,
            ent: Buf::from_slice(accel, &ent, PLAN)?,
            sse: Buf::zeros(accel, n_batches, PLAN)?,
            meta: Buf::from_slice(accel, &meta, PLAN)?,
            lr: Buf::zeros(accel, n_batches.max(1), PLAN)?,
            batches,
        })
    }
}

/// Groups one side of a batch (`ids[j]` the row of position j) onto the plan's lists:
/// distinct rows in first-touch order, then each row's positions ascending. `slot` maps a
/// row to its slot, u32::MAX when free, and is left all free.
fn group_side(
    ids: impl Iterator<Item = u32> + Clone,
    slot: &mut [u32],
    rows: &mut Vec<u32>,
    off: &mut Vec<u32>,
    ent: &mut Vec<u32>,
    ent_base: u32,
) -> usize {
    let first = rows.len();
    let mut count: Vec<u32> = Vec::new();
    for r in ids.clone() {
        let s = &mut slot[r as usize];
        if *s == u32::MAX {
            *s = (rows.len() - first) as u32;
            rows.push(r);
            count.push(0);
        }
        count[*s as usize] += 1;
    }
    let n_rows = rows.len() - first;
    let local0 = ent.len() as u32 - ent_base;
    let mut start = Vec::with_capacity(n_rows);
    let mut at = local0;
    for &c in &count {
        start.push(at);
        at += c;
    }
    off.extend_from_slice(&start);
    let e0 = ent.len();
    ent.resize(e0 + (at - local0) as usize, 0);
    for (j, r) in ids.enumerate() {
        let s = slot[r as usize] as usize;
        ent[ent_base as usize + start[s] as usize] = j as u32;
        start[s] += 1;
    }
    for &r in &rows[first..] {
        slot[r as usize] = u32::MAX;
    }
    n_rows
}

const MODEL: Purpose = Purpose {
    what: "the mini-batch tables and optimizer state",
    setting: "train.k",
};
const PLAN: Purpose = Purpose {
    what: "the epoch's batch plan",
    setting: "train.batch_size",
};

/// A dot / dot_bias model and its optimizer state resident on a device.
#[derive(Debug)]
pub struct MiniBatch {
    accel: Arc<dyn Accel>,
    shape: MfShape,
    cfg: MbConfig,
    p: Buf<f32>,
    q: Buf<f32>,
    global: Buf<f32>,
    su: Buf<f32>,
    si: Buf<f32>,
    gs: Buf<f32>,
    last_u: Buf<u32>,
    last_i: Buf<u32>,
    glast: Buf<u32>,
    /// lr, step size, 1/sqrt(bias correction 2) of the current step.
    sc: Buf<f32>,
    rho_pow: Buf<f32>,
    hist: Buf<f32>,
    window: Buf<f32>,
    log_decay: Buf<f64>,
    coef: Buf<f32>,
    err2: Buf<f32>,
    snap_u: Buf<f32>,
    snap_i: Buf<f32>,
    max_batch: usize,
    /// Threads of the `emb_steps` block.
    fused_threads: u32,
    /// Steps begun (the cpu RowOpt's `t`).
    t: u32,
    /// Host scratch for grouping: row → slot.
    slot_u: Vec<u32>,
    slot_i: Vec<u32>,
}

impl MiniBatch {
    /// Uploads `w` with fresh optimizer state, for batches of at most `max_batch` ratings
    /// and `max_steps` steps in all.
    pub fn new(
        accel: &Arc<dyn Accel>,
        shape: MfShape,
        w: &MfWeights,
        cfg: MbConfig,
        max_batch: usize,
        max_steps: usize,
    ) -> Result<Self, Error> {
        shape.check().map_err(Error::Driver)?;
        let s = shape.stride();
        assert_eq!(w.p.len(), shape.n_users * s, "user table length");
        assert_eq!(w.q.len(), shape.n_items * s, "item table length");
        assert!(max_batch > 0 && max_steps < u32::MAX as usize);
        let ns = cfg.optimizer.n_state();
        let zeros = |n: usize| Buf::<f32>::zeros(accel, n, MODEL);
        let m = MiniBatch {
            accel: accel.clone(),
            shape,
            cfg,
            p: Buf::from_slice(accel, &w.p, MODEL)?,
            q: Buf::from_slice(accel, &w.q, MODEL)?,
            global: Buf::from_slice(accel, &[w.global], MODEL)?,
            su: zeros(shape.n_users * ns * s)?,
            si: zeros(shape.n_items * ns * s)?,
            gs: zeros(2)?,
            last_u: Buf::zeros(accel, shape.n_users, MODEL)?,
            last_i: Buf::zeros(accel, shape.n_items, MODEL)?,
            glast: Buf::zeros(accel, 1, MODEL)?,
            sc: zeros(3)?,
            rho_pow: zeros(MAX_CATCH_UP + 1)?,
            hist: zeros(max_steps + 1)?,
            window: zeros(max_steps + 1)?,
            log_decay: Buf::zeros(accel, max_steps + 1, MODEL)?,
            coef: zeros(max_batch)?,
            err2: zeros(max_batch)?,
            snap_u: zeros(max_batch * shape.k)?,
            snap_i: zeros(max_batch * shape.k)?,
            max_batch,
            fused_threads: FUSED_THREADS,
            t: 0,
            slot_u: vec![u32::MAX; shape.n_users],
            slot_i: vec![u32::MAX; shape.n_items],
        };
        let [kind, b1, b2, _, mom, _] = cfg.opt_args();
        let args = [
            kind,
            b1,
            b2,
            mom,
            m.rho_pow.arg(),
            m.hist.arg(),
            m.window.arg(),
            m.log_decay.arg(),
        ];
        m.accel
            .launch(Kernel::EmbOptInit, Launch::SEQUENTIAL, &args)?;
        Ok(m)
    }

    pub fn shape(&self) -> MfShape {
        self.shape
    }

    /// The tables, for scoring ([`Tables::errors`], [`Tables::predict`]).
    pub fn tables(&self) -> Tables<'_> {
        Tables {
            accel: &self.accel,
            shape: self.shape,
            p: &self.p,
            q: &self.q,
            global: &self.global,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// Runs [`MiniBatch::step_group`]'s block with `threads` threads (a multiple of 32, at
    /// most [`FUSED_THREADS`]) instead of `FUSED_THREADS`; the result does not depend on it.
    /// The harness runs each thread of a block as a fiber, so its tests can use fewer.
    pub fn set_fused_threads(&mut self, threads: u32) {
        assert!(threads > 0 && threads.is_multiple_of(32) && threads <= FUSED_THREADS);
        self.fused_threads = threads;
    }

    /// Groups the epoch `order` (rating ids into `user` / `item`, the host copies of the
    /// device ratings) into batches of `batch_size` and uploads the plan.
    pub fn plan(
        &mut self,
        user: &[u32],
        item: &[u32],
        order: &[u32],
        batch_size: usize,
    ) -> Result<EpochPlan, Error> {
        assert!(batch_size > 0 && batch_size <= self.max_batch, "batch size");
        let slots = (&mut self.slot_u[..], &mut self.slot_i[..]);
        EpochPlan::build(&self.accel, slots, (user, item), order, batch_size)
    }

    fn warps(&self, items: usize) -> Launch {
        Launch::warps(items, self.accel.multiprocessors(), WAVES)
    }

    /// The step tables' arguments: hist, window, log_decay, rho_pow.
    fn catch_up_tables(&self) -> [Arg; 4] {
        [
            self.hist.arg(),
            self.window.arg(),
            self.log_decay.arg(),
            self.rho_pow.arg(),
        ]
    }

    /// An error unless `n` more steps fit the catch-up tables.
    fn check_room(&self, n: usize) -> Result<(), Error> {
        if self.t as usize + n >= self.hist.len() {
            return Err(Error::Driver(format!(
                "mini-batch step {} is past the {} steps the model was sized for",
                self.t as usize + n,
                self.hist.len() - 1
            )));
        }
        Ok(())
    }

    /// Batches `b0 .. b0 + lrs.len()` of `plan`, batch `b0 + i` at rate `lrs[i]`, in one
    /// launch of `emb_steps` (one block): the same steps as [`MiniBatch::step`] on each in
    /// turn, bit for bit. Writes the rates, then launches; no other copy.
    pub fn step_group(
        &mut self,
        data: &DeviceRatings,
        plan: &EpochPlan,
        b0: usize,
        lrs: &[f32],
    ) -> Result<(), Error> {
        let nb = lrs.len();
        assert!(b0 + nb <= plan.n_batches(), "batches past the plan");
        if nb == 0 {
            return Ok(());
        }
        self.check_room(nb)?;
        plan.lr.write(b0, lrs)?;
        let cfg = self.cfg;
        let [kind, b1, b2, eps, mom, wd] = cfg.opt_args();
        let [hist, window, log_decay, rho_pow] = self.catch_up_tables();
        let [squash, lo, hi] = squash_args(cfg.y_range);
        let stride = Arg::U32(self.shape.stride() as u32);
        let args = [
            Arg::U32(b0 as u32),
            Arg::U32(nb as u32),
            plan.meta.arg(),
            plan.lr.arg(),
            Arg::U32(self.t),
            data.user.arg(),
            data.item.arg(),
            data.rating.arg(),
            plan.order.arg(),
            plan.rows.arg(),
            plan.off.arg(),
            plan.ent.arg(),
            plan.sse.arg(),
            self.p.arg(),
            self.su.arg(),
            self.last_u.arg(),
            self.q.arg(),
            self.si.arg(),
            self.last_i.arg(),
            stride,
            Arg::U32(self.shape.k as u32),
            Arg::I32(i32::from(self.shape.bias)),
            self.global.arg(),
            self.gs.arg(),
            self.glast.arg(),
            squash,
            lo,
            hi,
            self.coef.arg(),
            self.err2.arg(),
            self.snap_u.arg(),
            self.snap_i.arg(),
            kind,
            b1,
            b2,
            eps,
            mom,
            wd,
            Arg::F32(cfg.l2),
            Arg::I32(i32::from(cfg.dense)),
            Arg::U32(self.shape.n_users as u32),
            Arg::U32(self.shape.n_items as u32),
            self.sc.arg(),
            hist,
            window,
            log_decay,
            rho_pow,
        ];
        let shape = Launch {
            grid: 1,
            block: self.fused_threads,
        };
        self.accel.launch(Kernel::EmbSteps, shape, &args)?;
        self.t += nb as u32;
        Ok(())
    }

    /// One optimizer step on batch `b` of `plan` at rate `lr` (launches only).
    pub fn step(
        &mut self,
        data: &DeviceRatings,
        plan: &EpochPlan,
        b: usize,
        lr: f32,
    ) -> Result<(), Error> {
        let pb = plan.batches[b];
        self.check_room(1)?;
        self.t += 1;
        let t = Arg::U32(self.t);
        let cfg = self.cfg;
        let [kind, b1, b2, eps, mom, wd] = cfg.opt_args();
        let [hist, window, log_decay, rho_pow] = self.catch_up_tables();
        let args = [
            kind,
            b1,
            b2,
            mom,
            wd,
            Arg::F32(lr),
            t,
            self.sc.arg(),
            hist,
            window,
            log_decay,
            rho_pow,
        ];
        self.accel
            .launch(Kernel::EmbBeginStep, Launch::SEQUENTIAL, &args)?;
        let [squash, lo, hi] = squash_args(cfg.y_range);
        let (stride, k) = (
            Arg::U32(self.shape.stride() as u32),
            Arg::U32(self.shape.k as u32),
        );
        let bias = Arg::I32(i32::from(self.shape.bias));
        let args = [
            data.user.arg(),
            data.item.arg(),
            data.rating.arg(),
            plan.order.arg_at(pb.start),
            Arg::U32(pb.n as u32),
            self.p.arg(),
            self.q.arg(),
            stride,
            k,
            bias,
            self.global.arg(),
            squash,
            lo,
            hi,
            self.coef.arg(),
            self.err2.arg(),
            self.snap_u.arg(),
            self.snap_i.arg(),
        ];
        self.accel
            .launch(Kernel::EmbForward, self.warps(pb.n), &args)?;
        let args = [
            Arg::U32(pb.nu as u32),
            Arg::U32(pb.ni as u32),
            plan.rows.arg_at(pb.rows_at),
            plan.off.arg_at(pb.off_at),
            plan.ent.arg_at(pb.ent_at),
            self.coef.arg(),
            self.err2.arg(),
            self.snap_u.arg(),
            self.snap_i.arg(),
            Arg::U32(pb.n as u32),
            self.p.arg(),
            self.su.arg(),
            self.last_u.arg(),
            self.q.arg(),
            self.si.arg(),
            self.last_i.arg(),
            stride,
            k,
            bias,
            self.global.arg(),
            self.gs.arg(),
            self.glast.arg(),
            plan.sse.arg_at(b),
            kind,
            b1,
            b2,
            eps,
            mom,
            wd,
            Arg::F32(cfg.l2),
            t,
            self.sc.arg(),
            hist,
            window,
            log_decay,
            rho_pow,
        ];
        self.accel
            .launch(Kernel::EmbUpdate, self.warps(pb.nu + pb.ni + 1), &args)?;
        if cfg.dense {
            for (n, w, s, last) in self.sides() {
                let args = [
                    Arg::U32(n as u32),
                    w,
                    s,
                    last,
                    stride,
                    Arg::U32(self.shape.stride() as u32),
                    kind,
                    b1,
                    b2,
                    eps,
                    mom,
                    wd,
                    t,
                    self.sc.arg(),
                    hist,
                    window,
                    log_decay,
                    rho_pow,
                ];
                self.accel
                    .launch(Kernel::EmbDenseStep, self.warps(n), &args)?;
            }
        }
        Ok(())
    }

    /// (rows, weights, state, last step) of the user and the item table.
    fn sides(&self) -> [(usize, Arg, Arg, Arg); 2] {
        [
            (
                self.shape.n_users,
                self.p.arg(),
                self.su.arg(),
                self.last_u.arg(),
            ),
            (
                self.shape.n_items,
                self.q.arg(),
                self.si.arg(),
                self.last_i.arg(),
            ),
        ]
    }

    /// The end of an epoch: every row catches up to the last step (Table::flush).
    pub fn end_epoch(&mut self) -> Result<(), Error> {
        let [kind, b1, b2, eps, mom, wd] = self.cfg.opt_args();
        let [hist, window, log_decay, rho_pow] = self.catch_up_tables();
        let stride = Arg::U32(self.shape.stride() as u32);
        for (n, w, s, last) in self.sides() {
            let args = [
                Arg::U32(n as u32),
                w,
                s,
                last,
                stride,
                stride,
                kind,
                b1,
                b2,
                eps,
                mom,
                wd,
                Arg::U32(self.t),
                hist,
                window,
                log_decay,
                rho_pow,
            ];
            self.accel.launch(Kernel::EmbFlush, self.warps(n), &args)?;
        }
        Ok(())
    }

    /// The weights, back on the host (lazy rows as of their last step: call after
    /// `end_epoch` for the dense-equivalent weights).
    pub fn weights(&self) -> Result<MfWeights, Error> {
        Ok(MfWeights {
            p: self.p.to_vec()?,
            q: self.q.to_vec()?,
            global: self.global.to_vec()?[0],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_keeps_batch_order_within_rows() {
        let (mut rows, mut off, mut ent) = (vec![9], vec![0, 1], vec![0, 0]);
        let mut slot = vec![u32::MAX; 4];
        let base = ent.len() as u32;
        let users = [3u32, 1, 3, 0, 1];
        let n = group_side(
            users.iter().copied(),
            &mut slot,
            &mut rows,
            &mut off,
            &mut ent,
            base,
        );
        assert_eq!(n, 3);
        assert_eq!(rows, vec![9, 3, 1, 0]);
        assert_eq!(off, vec![0, 1, 0, 2, 4]);
        assert_eq!(ent, vec![0, 0, 0, 2, 1, 4, 3]);
        assert!(slot.iter().all(|&s| s == u32::MAX));
    }
}
