//! embedding.cu (mini-batch `dot` / `dot_bias` with the cpu EmbeddingTrainer's optimizers) on
//! host threads: one safe call per kernel on host buffers, and [`EmbModel`], a model in the
//! kernels' layout that runs the per-batch host algorithm (group the batch by row, then
//! begin_step → forward → update → dense step, flush at the end of an epoch) the way the
//! device host code must.

use crate::Ratings;
use std::os::raw::c_int;

unsafe extern "C" {
    fn harness_emb_opt_init(
        kind: c_int,
        b1: f32,
        b2: f32,
        mom: f32,
        rho_pow: *mut f32,
        hist: *mut f32,
        window: *mut f32,
        log_decay: *mut f64,
    );
    fn harness_emb_begin_step(
        kind: c_int,
        b1: f32,
        b2: f32,
        mom: f32,
        wd: f32,
        lr: f32,
        t: u32,
        sc: *mut f32,
        hist: *mut f32,
        window: *mut f32,
        log_decay: *mut f64,
        rho_pow: *const f32,
    );
    fn harness_emb_forward(
        grid: u32,
        block: u32,
        user: *const u32,
        item: *const u32,
        rating: *const f32,
        idx: *const u32,
        n: u32,
        p: *const f32,
        q: *const f32,
        stride: u32,
        k: u32,
        bias: c_int,
        global: *const f32,
        squash: c_int,
        lo: f32,
        hi: f32,
        coef: *mut f32,
        err2: *mut f32,
        snap_u: *mut f32,
        snap_i: *mut f32,
    );
    fn harness_emb_update(
        grid: u32,
        block: u32,
        nu: u32,
        ni: u32,
        rows: *const u32,
        off: *const u32,
        ent: *const u32,
        coef: *const f32,
        err2: *const f32,
        snap_u: *const f32,
        snap_i: *const f32,
        n: u32,
        p: *mut f32,
        su: *mut f32,
        last_u: *mut u32,
        q: *mut f32,
        si: *mut f32,
        last_i: *mut u32,
        stride: u32,
        k: u32,
        bias: c_int,
        gw: *mut f32,
        gs: *mut f32,
        glast: *mut u32,
        acc: *mut f64,
        kind: c_int,
        b1: f32,
        b2: f32,
        eps: f32,
        mom: f32,
        wd: f32,
        l2: f32,
        t: u32,
        sc: *const f32,
        hist: *const f32,
        window: *const f32,
        log_decay: *const f64,
        rho_pow: *const f32,
    );
    fn harness_emb_dense_step(
        grid: u32,
        block: u32,
        n: u32,
        w: *mut f32,
        s: *mut f32,
        last: *mut u32,
        stride: u32,
        dim: u32,
        kind: c_int,
        b1: f32,
        b2: f32,
        eps: f32,
        mom: f32,
        wd: f32,
        t: u32,
        sc: *const f32,
        hist: *const f32,
        window: *const f32,
        log_decay: *const f64,
        rho_pow: *const f32,
    );
    fn harness_emb_flush(
        grid: u32,
        block: u32,
        n: u32,
        w: *mut f32,
        s: *mut f32,
        last: *mut u32,
        stride: u32,
        dim: u32,
        kind: c_int,
        b1: f32,
        b2: f32,
        eps: f32,
        mom: f32,
        wd: f32,
        t: u32,
        hist: *const f32,
        window: *const f32,
        log_decay: *const f64,
        rho_pow: *const f32,
    );
}

/// The kernels' optimizer kinds (embedding.cu `EMB_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    Adam = 0,
    AdamW = 1,
    Sgd = 2,
    SparseAdam = 3,
    /// RowOpt's arithmetic for `adagrad` on the batch path.
    Adagrad = 4,
}

impl OptKind {
    /// Optimizer state rows per table row.
    pub fn n_state(self) -> usize {
        if self == OptKind::Sgd { 1 } else { 2 }
    }
}

/// Optimizer hyperparameters as the kernels take them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Opt {
    pub kind: OptKind,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub l2: f32,
}

/// rowopt.rs MAX_CATCH_UP: ρ^j is kept for j = 0..=this.
pub const MAX_CATCH_UP: usize = 200;

/// One batch grouped by row: the host's part of a step. `rows[..nu]` are the distinct users
/// of the batch, `rows[nu..]` the distinct items (each in first-touch order), and row `w`'s
/// ratings are the batch positions `ent[off[w]..off[w + 1]]`, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grouped {
    pub nu: usize,
    pub ni: usize,
    pub rows: Vec<u32>,
    pub off: Vec<u32>,
    pub ent: Vec<u32>,
}

/// Groups a batch (`user[j]`, `item[j]` of its positions j) by user and by item.
pub fn group(user: &[u32], item: &[u32]) -> Grouped {
    assert_eq!(user.len(), item.len());
    let mut g = Grouped::default();
    fn side(ids: &[u32], g: &mut Grouped) -> usize {
        // Distinct rows in first-touch order, then each row's positions in batch order
        // (a counting sort by row slot: stable, so positions stay ascending).
        let mut slot_of = std::collections::HashMap::<u32, usize>::new();
        let mut slots = Vec::with_capacity(ids.len());
        let first = g.rows.len();
        for &r in ids {
            let s = *slot_of.entry(r).or_insert_with(|| {
                g.rows.push(r);
                g.rows.len() - 1 - first
            });
            slots.push(s);
        }
        let n_rows = g.rows.len() - first;
        let base = g.ent.len() as u32;
        let mut count = vec![0u32; n_rows + 1];
        for &s in &slots {
            count[s + 1] += 1;
        }
        for s in 0..n_rows {
            count[s + 1] += count[s];
        }
        g.off.extend(count[..n_rows].iter().map(|c| base + c));
        let mut fill = count;
        g.ent.resize(g.ent.len() + ids.len(), 0);
        for (j, &s) in slots.iter().enumerate() {
            g.ent[(base + fill[s]) as usize] = j as u32;
            fill[s] += 1;
        }
        n_rows
    }
    g.nu = side(user, &mut g);
    g.ni = side(item, &mut g);
    g.off.push(g.ent.len() as u32);
    g
}

/// A dot / dot_bias model in the kernels' layout with its optimizer state.
#[derive(Debug, Clone)]
pub struct EmbModel {
    pub n_users: usize,
    pub n_items: usize,
    pub k: usize,
    pub bias: bool,
    pub stride: usize,
    /// n_users × stride, n_items × stride.
    pub p: Vec<f32>,
    pub q: Vec<f32>,
    pub global: f32,
    pub opt: Opt,
    /// Dense mode: every row steps every batch (PyTorch's dense optimizers) instead of the
    /// lazy catch-up.
    pub dense: bool,
    su: Vec<f32>,
    si: Vec<f32>,
    last_u: Vec<u32>,
    last_i: Vec<u32>,
    gstate: [f32; 2],
    glast: u32,
    sc: [f32; 3],
    rho_pow: Vec<f32>,
    hist: Vec<f32>,
    window: Vec<f32>,
    log_decay: Vec<f64>,
    /// Steps begun.
    pub t: u32,
    /// Σ e² over every batch stepped.
    pub sse: f64,
}

fn squash(y: Option<[f32; 2]>) -> (c_int, f32, f32) {
    y.map_or((0, 0.0, 0.0), |[lo, hi]| (1, lo, hi))
}

impl EmbModel {
    /// A model from its weights (`p`, `q` rows of `k` factors then the bias, `stride` =
    /// k + bias) that can take `max_steps` steps.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        (n_users, n_items, k, bias): (usize, usize, usize, bool),
        p: Vec<f32>,
        q: Vec<f32>,
        global: f32,
        opt: Opt,
        dense: bool,
        max_steps: usize,
    ) -> Self {
        let stride = k + usize::from(bias);
        assert_eq!(p.len(), n_users * stride);
        assert_eq!(q.len(), n_items * stride);
        let ns = opt.kind.n_state();
        let mut m = EmbModel {
            n_users,
            n_items,
            k,
            bias,
            stride,
            p,
            q,
            global,
            opt,
            dense,
            su: vec![0.0; n_users * ns * stride],
            si: vec![0.0; n_items * ns * stride],
            last_u: vec![0; n_users],
            last_i: vec![0; n_items],
            gstate: [0.0; 2],
            glast: 0,
            sc: [0.0; 3],
            rho_pow: vec![0.0; MAX_CATCH_UP + 1],
            hist: vec![0.0; max_steps + 1],
            window: vec![0.0; max_steps + 1],
            log_decay: vec![0.0; max_steps + 1],
            t: 0,
            sse: 0.0,
        };
        let o = m.opt;
        // SAFETY: rho_pow holds MAX_CATCH_UP + 1 floats, the tables at least one entry.
        unsafe {
            harness_emb_opt_init(
                o.kind as c_int,
                o.beta1,
                o.beta2,
                o.momentum,
                m.rho_pow.as_mut_ptr(),
                m.hist.as_mut_ptr(),
                m.window.as_mut_ptr(),
                m.log_decay.as_mut_ptr(),
            );
        }
        m
    }

    /// One optimizer step on the ratings `idx` of `d` (a batch, in batch order) at rate
    /// `lr`, with `shape` = (grid, block) for the forward, update and dense launches.
    pub fn step(
        &mut self,
        (grid, block): (u32, u32),
        d: Ratings<'_>,
        idx: &[u32],
        lr: f32,
        y_range: Option<[f32; 2]>,
    ) {
        let n = idx.len();
        assert!(
            n > 0 && (self.t as usize) + 1 < self.hist.len(),
            "out of steps"
        );
        assert!(idx.iter().all(|&r| (r as usize) < d.user.len()));
        assert!(d.user.len() == d.item.len() && d.item.len() == d.rating.len());
        let bu: Vec<u32> = idx.iter().map(|&r| d.user[r as usize]).collect();
        let bi: Vec<u32> = idx.iter().map(|&r| d.item[r as usize]).collect();
        assert!(bu.iter().all(|&u| (u as usize) < self.n_users));
        assert!(bi.iter().all(|&i| (i as usize) < self.n_items));
        let g = group(&bu, &bi);
        self.t += 1;
        let (o, t, k) = (self.opt, self.t, self.k);
        let kind = o.kind as c_int;
        // SAFETY: t < hist.len() (checked), rho_pow has MAX_CATCH_UP + 1 entries.
        unsafe {
            harness_emb_begin_step(
                kind,
                o.beta1,
                o.beta2,
                o.momentum,
                o.weight_decay,
                lr,
                t,
                self.sc.as_mut_ptr(),
                self.hist.as_mut_ptr(),
                self.window.as_mut_ptr(),
                self.log_decay.as_mut_ptr(),
                self.rho_pow.as_ptr(),
            );
        }
        let (sq, lo, hi) = squash(y_range);
        let (mut coef, mut err2) = (vec![0.0f32; n], vec![0.0f32; n]);
        let (mut snap_u, mut snap_i) = (vec![0.0f32; n * k], vec![0.0f32; n * k]);
        let global = [self.global];
        let (stride, bias) = (self.stride as u32, c_int::from(self.bias));
        // SAFETY: every rating index and row is checked above; the outputs hold n and n·k
        // floats.
        unsafe {
            harness_emb_forward(
                grid,
                block,
                d.user.as_ptr(),
                d.item.as_ptr(),
                d.rating.as_ptr(),
                idx.as_ptr(),
                n as u32,
                self.p.as_ptr(),
                self.q.as_ptr(),
                stride,
                k as u32,
                bias,
                global.as_ptr(),
                sq,
                lo,
                hi,
                coef.as_mut_ptr(),
                err2.as_mut_ptr(),
                snap_u.as_mut_ptr(),
                snap_i.as_mut_ptr(),
            );
        }
        let mut acc = [self.sse];
        // SAFETY: the grouping lists rows of the tables and positions < n (built above).
        unsafe {
            harness_emb_update(
                grid,
                block,
                g.nu as u32,
                g.ni as u32,
                g.rows.as_ptr(),
                g.off.as_ptr(),
                g.ent.as_ptr(),
                coef.as_ptr(),
                err2.as_ptr(),
                snap_u.as_ptr(),
                snap_i.as_ptr(),
                n as u32,
                self.p.as_mut_ptr(),
                self.su.as_mut_ptr(),
                self.last_u.as_mut_ptr(),
                self.q.as_mut_ptr(),
                self.si.as_mut_ptr(),
                self.last_i.as_mut_ptr(),
                stride,
                k as u32,
                bias,
                &mut self.global,
                self.gstate.as_mut_ptr(),
                &mut self.glast,
                acc.as_mut_ptr(),
                kind,
                o.beta1,
                o.beta2,
                o.eps,
                o.momentum,
                o.weight_decay,
                o.l2,
                t,
                self.sc.as_ptr(),
                self.hist.as_ptr(),
                self.window.as_ptr(),
                self.log_decay.as_ptr(),
                self.rho_pow.as_ptr(),
            );
        }
        self.sse = acc[0];
        if self.dense {
            for user_side in [true, false] {
                let (n, w, s, last) = self.table(user_side);
                // SAFETY: the table's buffers hold n rows (weights, state, last step).
                unsafe {
                    harness_emb_dense_step(
                        grid,
                        block,
                        n as u32,
                        w,
                        s,
                        last,
                        stride,
                        (k + usize::from(self.bias)) as u32,
                        kind,
                        o.beta1,
                        o.beta2,
                        o.eps,
                        o.momentum,
                        o.weight_decay,
                        t,
                        self.sc.as_ptr(),
                        self.hist.as_ptr(),
                        self.window.as_ptr(),
                        self.log_decay.as_ptr(),
                        self.rho_pow.as_ptr(),
                    );
                }
            }
        }
    }

    fn table(&mut self, users: bool) -> (usize, *mut f32, *mut f32, *mut u32) {
        if users {
            let n = self.n_users;
            (
                n,
                self.p.as_mut_ptr(),
                self.su.as_mut_ptr(),
                self.last_u.as_mut_ptr(),
            )
        } else {
            let n = self.n_items;
            (
                n,
                self.q.as_mut_ptr(),
                self.si.as_mut_ptr(),
                self.last_i.as_mut_ptr(),
            )
        }
    }

    /// The end of an epoch: every row catches up to the last step begun.
    pub fn flush(&mut self, (grid, block): (u32, u32)) {
        let (o, t, stride, dim) = (
            self.opt,
            self.t,
            self.stride as u32,
            (self.k + usize::from(self.bias)) as u32,
        );
        for user_side in [true, false] {
            let (n, w, s, last) = self.table(user_side);
            // SAFETY: the table's buffers hold n rows; the step tables hold t + 1 entries.
            unsafe {
                harness_emb_flush(
                    grid,
                    block,
                    n as u32,
                    w,
                    s,
                    last,
                    stride,
                    dim,
                    o.kind as c_int,
                    o.beta1,
                    o.beta2,
                    o.eps,
                    o.momentum,
                    o.weight_decay,
                    t,
                    self.hist.as_ptr(),
                    self.window.as_ptr(),
                    self.log_decay.as_ptr(),
                    self.rho_pow.as_ptr(),
                );
            }
        }
    }

    /// The (n, k) factors of the users' (`users`) or items' table.
    pub fn factors(&self, users: bool) -> Vec<f32> {
        let t = if users { &self.p } else { &self.q };
        t.chunks_exact(self.stride)
            .flat_map(|r| r[..self.k].iter().copied())
            .collect()
    }

    /// The biases of a table (dot_bias).
    pub fn biases(&self, users: bool) -> Vec<f32> {
        let t = if users { &self.p } else { &self.q };
        t.chunks_exact(self.stride).map(|r| r[self.k]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_keeps_batch_order_within_rows() {
        let g = group(&[3, 1, 3, 0, 1], &[2, 2, 5, 2, 7]);
        assert_eq!((g.nu, g.ni), (3, 3));
        assert_eq!(g.rows, vec![3, 1, 0, 2, 5, 7]);
        assert_eq!(g.off, vec![0, 2, 4, 5, 8, 9, 10]);
        assert_eq!(g.ent, vec![0, 2, 1, 4, 3, 0, 1, 3, 2, 4]);
    }
}
