//! I-AutoRec on a device: the cpu AutoRecTrainer's step (train/src/cpu/autorec.rs: a batch of
//! items encoded through k sigmoid units, decoded at the observed users, the summed squared
//! error back-propagated; RowOpt with the lazy per-row catch-up on the touched users'
//! `[V | W]` rows with weight decay, and on their biases b and the hidden bias μ without) as
//! launches of autorec.cu, with embedding.cu's optimizer arithmetic (`rowopt.cuh`) and its
//! `emb_flush`.
//!
//! The training ratings are uploaded once, item-major ([`ItemCsr`]: item i's ratings
//! `start[i] .. start[i + 1]` in file order). Per epoch the host groups the shuffled items
//! into batches and each batch's ratings by user ([`AutoRec::plan`], one upload); per batch
//! [`AutoRec::step`] makes no copy: `ar_begin_step`, `ar_forward` (a warp per item),
//! `ar_update` (a warp per touched user + one for μ and the loss). [`AutoRec::end_epoch`]
//! flushes the lazy rows and folds the model into the `dot_bias` form every scorer reads
//! (user rows `[W_u | b_u]`, item codes `[h_i | 0]`, global bias 0), which [`AutoRec::tables`]
//! lends to [`Tables::errors`] / [`Tables::predict`].
//!
//! k has no upper bound here (the rows stay in global memory; lanes loop over k), unlike the
//! per-rating kernels' [`crate::mf::KMAX`].

use crate::Error;
use crate::accel::Accel;
use crate::buf::{Buf, Purpose, check_fits, size_of_n};
use crate::kernel::{Arg, Kernel, Launch};
use crate::mf::{MfShape, MfWeights, Tables, squash_args};
use crate::minibatch::{MAX_CATCH_UP, MbOptimizer};
use std::sync::Arc;

/// Blocks per multiprocessor for the warp-per-item launches.
const WAVES: u32 = 4;

const MODEL: Purpose = Purpose {
    what: "the autorec weights and optimizer state",
    setting: "train.k",
};
const DATA: Purpose = Purpose {
    what: "the training ratings by item",
    setting: "the number of ratings (or use device = \"cpu\")",
};
const PLAN: Purpose = Purpose {
    what: "the epoch's batch plan",
    setting: "train.batch_size",
};

/// An I-AutoRec model's dimensions: k hidden units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArShape {
    pub n_users: usize,
    pub n_items: usize,
    pub k: usize,
}

impl ArShape {
    /// Refuses shapes the kernels' 32-bit indices cannot address.
    pub fn check(&self) -> Result<(), String> {
        if self.k == 0 {
            return Err("k = 0 hidden units".to_string());
        }
        if self.n_users.max(self.n_items) >= u32::MAX as usize
            || (self.n_users + self.n_items) * (self.k + 1) >= u32::MAX as usize
        {
            return Err(format!(
                "{} users, {} items and k = {} are past the kernels' 32-bit indices",
                self.n_users, self.n_items, self.k
            ));
        }
        Ok(())
    }

    /// Device bytes for the model, its optimizer state, the catch-up tables of `max_steps`
    /// steps, `n_train` ratings (item-major, and the epoch plan), `n_valid` validation
    /// ratings and batches of `batch` items.
    pub fn device_bytes(
        &self,
        opt: MbOptimizer,
        max_steps: usize,
        (n_train, n_valid): (usize, usize),
        batch: usize,
    ) -> usize {
        let (u, k) = (self.n_users, self.k);
        let per = 1 + opt.n_state();
        let weights = size_of_n::<f32>((u * 2 * k + u + k) * per) + size_of_n::<u32>(u + 1);
        let tables = 2 * max_steps.saturating_add(1) * 16;
        // CSR (user, rating, start), the plan (items, positions, rows, offsets, entries).
        let data = n_train * 8 + (self.n_items + 1) * 4;
        let plan = n_train * 4 + self.n_items * 8 + 2 * (u + 1) * 4;
        let scratch = size_of_n::<f32>(2 * batch * k) + n_train.min(u * batch) * 12 + batch * 8;
        let folded = size_of_n::<f32>((u + self.n_items) * (k + 1));
        weights + tables + data + plan + scratch + folded + n_valid * 12 + (1 << 20)
    }

    /// The scoring form's shape: `dot_bias` with k factors.
    pub fn folded(&self) -> MfShape {
        MfShape {
            n_users: self.n_users,
            n_items: self.n_items,
            k: self.k,
            bias: true,
        }
    }
}

/// The optimizer settings (train's Config keys of the same names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArConfig {
    pub optimizer: MbOptimizer,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub momentum: f32,
    /// λ on V and W.
    pub weight_decay: f32,
    pub y_range: Option<[f32; 2]>,
}

/// The trainable weights on the host: per user `[V_u | W_u]` (n_users × 2k), b, μ.
#[derive(Debug, Clone, PartialEq)]
pub struct ArWeights {
    pub users: Vec<f32>,
    pub bias: Vec<f32>,
    pub mu: Vec<f32>,
}

/// Ratings grouped by item on the device, and the host's copy of the grouping (to plan).
#[derive(Debug)]
pub struct ItemCsr {
    pub start: Buf<u32>,
    pub user: Buf<u32>,
    pub rating: Buf<f32>,
    host_start: Vec<u32>,
    host_user: Vec<u32>,
}

impl ItemCsr {
    /// Groups `(user, item, rating)` by item (file order within an item) and uploads it.
    pub fn upload(
        accel: &Arc<dyn Accel>,
        (user, item, rating): (&[u32], &[u32], &[f32]),
        n_items: usize,
    ) -> Result<Self, Error> {
        assert!(user.len() == item.len() && item.len() == rating.len());
        let (start, u, r) = by_item((user, item, rating), n_items);
        check_fits(accel.as_ref(), u.len() * 8 + start.len() * 4, DATA)?;
        Ok(ItemCsr {
            start: Buf::from_slice(accel, &start, DATA)?,
            user: Buf::from_slice(accel, &u, DATA)?,
            rating: Buf::from_slice(accel, &r, DATA)?,
            host_start: start,
            host_user: u,
        })
    }

    /// Items with at least one rating, ascending: the cpu's `rated_items` (an epoch's items
    /// before its shuffle).
    pub fn rated_items(&self) -> Vec<u32> {
        let s = &self.host_start;
        (0..s.len() - 1)
            .filter(|&i| s[i + 1] > s[i])
            .map(|i| i as u32)
            .collect()
    }

    /// Ratings of item `i` (a range of the CSR).
    fn range(&self, i: u32) -> std::ops::Range<usize> {
        self.host_start[i as usize] as usize..self.host_start[i as usize + 1] as usize
    }
}

/// The item-major grouping: (start, user, rating), file order within an item.
pub fn by_item(
    (user, item, rating): (&[u32], &[u32], &[f32]),
    n_items: usize,
) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let mut start = vec![0u32; n_items + 1];
    for &i in item {
        start[i as usize + 1] += 1;
    }
    for i in 0..n_items {
        start[i + 1] += start[i];
    }
    let mut cursor = start.clone();
    let (mut u, mut r) = (vec![0u32; user.len()], vec![0f32; user.len()]);
    for j in 0..user.len() {
        let c = &mut cursor[item[j] as usize];
        u[*c as usize] = user[j];
        r[*c as usize] = rating[j];
        *c += 1;
    }
    (start, u, r)
}

/// One batch of an [`ArPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArBatch {
    /// Its items: `items[item_at .. item_at + n_items]`.
    pub item_at: usize,
    pub n_items: usize,
    /// Its observed ratings (positions).
    pub n_pos: usize,
    /// Distinct users, and where their rows, offsets and entries start.
    pub nu: usize,
    pub rows_at: usize,
    pub off_at: usize,
    pub ent_at: usize,
}

/// An epoch's shuffled items in batches, each batch's ratings grouped by user, on the device,
/// with one Σ e² slot per batch.
#[derive(Debug)]
pub struct ArPlan {
    items: Buf<u32>,
    /// Per epoch item: its first position among the epoch's ratings (n + 1 entries).
    pos: Buf<u32>,
    rows: Buf<u32>,
    off: Buf<u32>,
    ent: Buf<u32>,
    sse: Buf<f64>,
    pub batches: Vec<ArBatch>,
    /// The most positions of any batch.
    pub max_pos: usize,
}

impl ArPlan {
    pub fn n_batches(&self) -> usize {
        self.batches.len()
    }

    /// Ratings in batch `b` (the cpu's count for the batch's mean loss).
    pub fn batch_len(&self, b: usize) -> usize {
        self.batches[b].n_pos
    }

    /// Each batch's Σ e² (zero for batches not stepped yet), in batch order.
    pub fn batch_sse(&self) -> Result<Vec<f64>, Error> {
        self.sse.to_vec()
    }
}

/// A step's scalars and catch-up tables (embedding.cu's layout).
#[derive(Debug)]
struct OptTables {
    sc: Buf<f32>,
    hist: Buf<f32>,
    window: Buf<f32>,
    log_decay: Buf<f64>,
}

impl OptTables {
    fn new(accel: &Arc<dyn Accel>, max_steps: usize) -> Result<Self, Error> {
        Ok(OptTables {
            sc: Buf::zeros(accel, 3, MODEL)?,
            hist: Buf::zeros(accel, max_steps + 1, MODEL)?,
            window: Buf::zeros(accel, max_steps + 1, MODEL)?,
            log_decay: Buf::zeros(accel, max_steps + 1, MODEL)?,
        })
    }

    /// sc, hist, window, log_decay.
    fn args(&self) -> [Arg; 4] {
        [
            self.sc.arg(),
            self.hist.arg(),
            self.window.arg(),
            self.log_decay.arg(),
        ]
    }
}

/// A table's weights, optimizer state and last-step counters.
#[derive(Debug)]
struct Rows {
    w: Buf<f32>,
    s: Buf<f32>,
    last: Buf<u32>,
    n: usize,
    dim: usize,
}

impl Rows {
    fn new(accel: &Arc<dyn Accel>, w: &[f32], dim: usize, ns: usize) -> Result<Self, Error> {
        let n = w.len() / dim;
        Ok(Rows {
            w: Buf::from_slice(accel, w, MODEL)?,
            s: Buf::zeros(accel, n * ns * dim, MODEL)?,
            last: Buf::zeros(accel, n, MODEL)?,
            n,
            dim,
        })
    }
}

/// Per-batch scratch, grown as plans need.
#[derive(Debug)]
struct Scratch {
    h: Buf<f32>,
    dz: Buf<f32>,
    item_sse: Buf<f64>,
    d: Buf<f32>,
    pr: Buf<f32>,
    pslot: Buf<u32>,
}

/// An I-AutoRec model and its optimizer state resident on a device.
#[derive(Debug)]
pub struct AutoRec {
    accel: Arc<dyn Accel>,
    shape: ArShape,
    cfg: ArConfig,
    users: Rows,
    bias: Rows,
    mu: Rows,
    /// The user rows' tables (weight decay) and those of b and μ (none).
    tab: OptTables,
    tab_b: OptTables,
    rho_pow: Buf<f32>,
    scratch: Scratch,
    max_items: usize,
    /// The scoring form: [W_u | b_u], [h_i | 0], 0.
    p: Buf<f32>,
    q: Buf<f32>,
    global: Buf<f32>,
    /// Steps begun.
    t: u32,
    /// Host scratch for grouping: user → slot.
    slot: Vec<u32>,
}

impl AutoRec {
    /// Uploads `w` with fresh optimizer state, for batches of at most `max_items` items and
    /// `max_steps` steps in all; folds it (every item's code σ(μ): no ratings yet).
    pub fn new(
        accel: &Arc<dyn Accel>,
        shape: ArShape,
        w: &ArWeights,
        cfg: ArConfig,
        max_items: usize,
        max_steps: usize,
    ) -> Result<Self, Error> {
        shape.check().map_err(Error::Driver)?;
        let (u, k) = (shape.n_users, shape.k);
        assert_eq!(w.users.len(), u * 2 * k, "user rows length");
        assert_eq!((w.bias.len(), w.mu.len()), (u, k), "bias and mu lengths");
        assert!(max_items > 0 && max_steps < u32::MAX as usize);
        let ns = cfg.optimizer.n_state();
        let scratch = Scratch {
            h: Buf::zeros(accel, max_items * k, PLAN)?,
            dz: Buf::zeros(accel, max_items * k, PLAN)?,
            item_sse: Buf::zeros(accel, max_items, PLAN)?,
            d: Buf::zeros(accel, 1, PLAN)?,
            pr: Buf::zeros(accel, 1, PLAN)?,
            pslot: Buf::zeros(accel, 1, PLAN)?,
        };
        let m = AutoRec {
            accel: accel.clone(),
            shape,
            cfg,
            users: Rows::new(accel, &w.users, 2 * k, ns)?,
            bias: Rows::new(accel, &w.bias, 1, ns)?,
            mu: Rows::new(accel, &w.mu, k, ns)?,
            tab: OptTables::new(accel, max_steps)?,
            tab_b: OptTables::new(accel, max_steps)?,
            rho_pow: Buf::zeros(accel, MAX_CATCH_UP + 1, MODEL)?,
            scratch,
            max_items,
            p: Buf::zeros(accel, u * (k + 1), MODEL)?,
            q: Buf::zeros(accel, shape.n_items * (k + 1), MODEL)?,
            global: Buf::zeros(accel, 1, MODEL)?,
            t: 0,
            slot: vec![u32::MAX; u],
        };
        for tab in [&m.tab, &m.tab_b] {
            let args = [
                Arg::I32(cfg.optimizer.code()),
                Arg::F32(cfg.beta1),
                Arg::F32(cfg.beta2),
                Arg::F32(cfg.momentum),
                m.rho_pow.arg(),
                tab.hist.arg(),
                tab.window.arg(),
                tab.log_decay.arg(),
            ];
            m.accel
                .launch(Kernel::EmbOptInit, Launch::SEQUENTIAL, &args)?;
        }
        m.fold(None)?;
        Ok(m)
    }

    pub fn shape(&self) -> ArShape {
        self.shape
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    fn warps(&self, items: usize) -> Launch {
        Launch::warps(items, self.accel.multiprocessors(), WAVES)
    }

    /// kind, b1, b2, eps, mom, wd.
    fn opt_args(&self, wd: f32) -> [Arg; 6] {
        let c = self.cfg;
        [
            Arg::I32(c.optimizer.code()),
            Arg::F32(c.beta1),
            Arg::F32(c.beta2),
            Arg::F32(c.eps),
            Arg::F32(c.momentum),
            Arg::F32(wd),
        ]
    }

    /// Groups the epoch's `items` (shuffled; each with ratings in `csr`) into batches of
    /// `batch_size` items, each batch's ratings by user (first touch, positions in batch
    /// order), and uploads the plan; grows the per-position scratch to the largest batch.
    pub fn plan(
        &mut self,
        csr: &ItemCsr,
        items: &[u32],
        batch_size: usize,
    ) -> Result<ArPlan, Error> {
        assert!(batch_size > 0 && batch_size <= self.max_items, "batch size");
        let mut pos = Vec::with_capacity(items.len() + 1);
        let mut at = 0u32;
        for &i in items {
            pos.push(at);
            at += csr.range(i).len() as u32;
        }
        pos.push(at);
        let (mut rows, mut off, mut ent) = (Vec::new(), Vec::new(), Vec::new());
        let mut batches = Vec::new();
        let mut count: Vec<u32> = Vec::new();
        for (b, chunk) in items.chunks(batch_size).enumerate() {
            let item_at = b * batch_size;
            let (rows_at, off_at, ent_at) = (rows.len(), off.len(), ent.len());
            // Distinct users in first-touch order, then each user's positions ascending.
            let users = || chunk.iter().flat_map(|&i| &csr.host_user[csr.range(i)]);
            count.clear();
            for &u in users() {
                let s = &mut self.slot[u as usize];
                if *s == u32::MAX {
                    *s = (rows.len() - rows_at) as u32;
                    rows.push(u);
                    count.push(0);
                }
                count[*s as usize] += 1;
            }
            let mut start = Vec::with_capacity(count.len());
            let mut acc = 0u32;
            for &c in &count {
                start.push(acc);
                acc += c;
            }
            off.extend_from_slice(&start);
            off.push(acc);
            ent.resize(ent_at + acc as usize, 0);
            for (p, &u) in users().enumerate() {
                let s = self.slot[u as usize] as usize;
                ent[ent_at + start[s] as usize] = p as u32;
                start[s] += 1;
            }
            for &u in &rows[rows_at..] {
                self.slot[u as usize] = u32::MAX;
            }
            batches.push(ArBatch {
                item_at,
                n_items: chunk.len(),
                n_pos: acc as usize,
                nu: rows.len() - rows_at,
                rows_at,
                off_at,
                ent_at,
            });
        }
        let max_pos = batches.iter().map(|b| b.n_pos).max().unwrap_or(0);
        if self.scratch.d.len() < max_pos {
            check_fits(self.accel.as_ref(), max_pos * 12, PLAN)?;
            self.scratch.d = Buf::zeros(&self.accel, max_pos, PLAN)?;
            self.scratch.pr = Buf::zeros(&self.accel, max_pos, PLAN)?;
            self.scratch.pslot = Buf::zeros(&self.accel, max_pos, PLAN)?;
        }
        Ok(ArPlan {
            items: Buf::from_slice(&self.accel, items, PLAN)?,
            pos: Buf::from_slice(&self.accel, &pos, PLAN)?,
            rows: Buf::from_slice(&self.accel, &rows, PLAN)?,
            off: Buf::from_slice(&self.accel, &off, PLAN)?,
            ent: Buf::from_slice(&self.accel, &ent, PLAN)?,
            sse: Buf::zeros(&self.accel, batches.len().max(1), PLAN)?,
            batches,
            max_pos,
        })
    }

    /// One optimizer step on batch `b` of `plan` at rate `lr` (launches only; its Σ e² into
    /// the plan's slot b).
    pub fn step(&mut self, csr: &ItemCsr, plan: &ArPlan, b: usize, lr: f32) -> Result<(), Error> {
        let pb = plan.batches[b];
        if self.t as usize + 1 >= self.tab.hist.len() {
            return Err(Error::Driver(format!(
                "autorec step {} is past the {} steps the model was sized for",
                self.t + 1,
                self.tab.hist.len() - 1
            )));
        }
        self.t += 1;
        let t = Arg::U32(self.t);
        let c = self.cfg;
        let [kind, b1, b2, eps, mom, wd] = self.opt_args(c.weight_decay);
        let [sc, hist, window, log_decay] = self.tab.args();
        let [sc_b, hist_b, window_b, log_decay_b] = self.tab_b.args();
        let args = [
            kind,
            b1,
            b2,
            mom,
            wd,
            Arg::F32(lr),
            t,
            sc,
            hist,
            window,
            log_decay,
            sc_b,
            hist_b,
            window_b,
            log_decay_b,
            self.rho_pow.arg(),
        ];
        let two_warps = Launch { grid: 1, block: 64 };
        self.accel.launch(Kernel::ArBeginStep, two_warps, &args)?;
        let k = Arg::U32(self.shape.k as u32);
        let [squash, lo, hi] = squash_args(c.y_range);
        let s = &self.scratch;
        let args = [
            Arg::U32(pb.n_items as u32),
            plan.items.arg_at(pb.item_at),
            plan.pos.arg_at(pb.item_at),
            csr.start.arg(),
            csr.user.arg(),
            csr.rating.arg(),
            self.users.w.arg(),
            self.bias.w.arg(),
            self.mu.w.arg(),
            k,
            squash,
            lo,
            hi,
            s.h.arg(),
            s.dz.arg(),
            s.item_sse.arg(),
            s.d.arg(),
            s.pr.arg(),
            s.pslot.arg(),
        ];
        self.accel
            .launch(Kernel::ArForward, self.warps(pb.n_items), &args)?;
        let args = [
            Arg::U32(pb.nu as u32),
            plan.rows.arg_at(pb.rows_at),
            plan.off.arg_at(pb.off_at),
            plan.ent.arg_at(pb.ent_at),
            s.d.arg(),
            s.pr.arg(),
            s.pslot.arg(),
            s.h.arg(),
            s.dz.arg(),
            Arg::U32(pb.n_items as u32),
            s.item_sse.arg(),
            plan.sse.arg_at(b),
            self.users.w.arg(),
            self.users.s.arg(),
            self.users.last.arg(),
            self.bias.w.arg(),
            self.bias.s.arg(),
            self.bias.last.arg(),
            self.mu.w.arg(),
            self.mu.s.arg(),
            self.mu.last.arg(),
            k,
            kind,
            b1,
            b2,
            eps,
            mom,
            wd,
            t,
            sc,
            hist,
            window,
            log_decay,
            sc_b,
            hist_b,
            window_b,
            log_decay_b,
            self.rho_pow.arg(),
        ];
        self.accel
            .launch(Kernel::ArUpdate, self.warps(pb.nu + 1), &args)
    }

    /// The end of an epoch: every row catches up to the last step (Table::flush), then the
    /// scoring form is rebuilt from `csr`.
    pub fn end_epoch(&mut self, csr: &ItemCsr) -> Result<(), Error> {
        let wd = self.cfg.weight_decay;
        for (rows, tab, wd) in [
            (&self.users, &self.tab, wd),
            (&self.bias, &self.tab_b, 0.0),
            (&self.mu, &self.tab_b, 0.0),
        ] {
            let [kind, b1, b2, eps, mom, wd] = self.opt_args(wd);
            let dim = Arg::U32(rows.dim as u32);
            let args = [
                Arg::U32(rows.n as u32),
                rows.w.arg(),
                rows.s.arg(),
                rows.last.arg(),
                dim,
                dim,
                kind,
                b1,
                b2,
                eps,
                mom,
                wd,
                Arg::U32(self.t),
                tab.hist.arg(),
                tab.window.arg(),
                tab.log_decay.arg(),
                self.rho_pow.arg(),
            ];
            self.accel
                .launch(Kernel::EmbFlush, self.warps(rows.n), &args)?;
        }
        self.fold(Some(csr))
    }

    /// Rewrites the scoring form from the weights (items encoded from `csr`; σ(μ) without).
    fn fold(&self, csr: Option<&ItemCsr>) -> Result<(), Error> {
        let sh = self.shape;
        let (start, user, rating) = match csr {
            Some(c) => (c.start.arg(), c.user.arg(), c.rating.arg()),
            None => (Arg::NULL, Arg::NULL, Arg::NULL),
        };
        let args = [
            Arg::U32(sh.n_users as u32),
            Arg::U32(sh.n_items as u32),
            self.users.w.arg(),
            self.bias.w.arg(),
            self.mu.w.arg(),
            start,
            user,
            rating,
            Arg::U32(sh.k as u32),
            self.p.arg(),
            self.q.arg(),
        ];
        self.accel
            .launch(Kernel::ArFold, self.warps(sh.n_users + sh.n_items), &args)
    }

    /// The scoring form as of the last [`AutoRec::end_epoch`] (or construction).
    pub fn tables(&self) -> Tables<'_> {
        Tables {
            accel: &self.accel,
            shape: self.shape.folded(),
            p: &self.p,
            q: &self.q,
            global: &self.global,
        }
    }

    /// The scoring form on the host (`dot_bias` layout: stride k + 1).
    pub fn folded(&self) -> Result<MfWeights, Error> {
        Ok(MfWeights {
            p: self.p.to_vec()?,
            q: self.q.to_vec()?,
            global: 0.0,
        })
    }

    /// The trainable weights on the host (lazy rows as of their last step: call after
    /// `end_epoch` for the dense-equivalent weights).
    pub fn weights(&self) -> Result<ArWeights, Error> {
        Ok(ArWeights {
            users: self.users.w.to_vec()?,
            bias: self.bias.w.to_vec()?,
            mu: self.mu.w.to_vec()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_group_by_item_in_file_order() {
        let user = [3u32, 0, 1, 3, 2];
        let item = [1u32, 0, 1, 3, 1];
        let rating = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let (start, u, r) = by_item((&user, &item, &rating), 4);
        assert_eq!(start, [0, 1, 4, 4, 5]);
        assert_eq!(u, [0, 3, 1, 2, 3]);
        assert_eq!(r, [2.0, 1.0, 3.0, 5.0, 4.0]);
    }

    #[test]
    fn the_estimate_counts_weights_ratings_and_scratch() {
        let s = ArShape {
            n_users: 610,
            n_items: 9724,
            k: 500,
        };
        let b = s.device_bytes(MbOptimizer::Adam, 300 * 142, (80_000, 20_000), 64);
        // [V|W] + state: 610 × 1000 × 4 B × 3 ≈ 7.3 MB; the folded form ≈ 20.7 MB.
        assert!(b > 28_000_000 && b < 40_000_000, "{b}");
        assert!(s.check().is_ok());
        assert!(ArShape { k: 0, ..s }.check().is_err());
        assert_eq!(s.folded().stride(), 501);
    }
}
