//! `dot` / `dot_bias` with per-rating SGD (`optimizer = "sgd"`, `batch_size = 1`,
//! `momentum = 0`) or per-rating row-wise Adagrad (`optimizer = "adagrad"`, libmf's: one
//! squared-gradient sum per row, starting at 1): the fast path for large data.
//!
//! Each rating is one fused pass: gather its user row and item row, predict, and step both
//! rows (and biases) in place, with no gradient buffers and no optimizer state. Batched
//! Adam spends most of its time on bookkeeping (gradient slots, moments, lazy catch-up);
//! plain SGD at batch 1 touches 2 rows per rating and nothing else.
//!
//! Threads (the FPSGD grid of libmf): users and items are each dealt by a seeded
//! permutation into `GRID` blocks of contiguous internal rows, and the ratings into the
//! `GRID × GRID` (user block, item block) cells. A sub-epoch processes the `GRID` cells
//! `(b, (b + s) mod GRID)`, which share no user and no item, so they run in parallel without
//! locks or races; each cell is walked sequentially in a seeded shuffled order. `GRID` is a
//! constant, not the thread count, so a seed gives bit-identical models for any thread
//! count. The global bias is stepped once per sub-epoch from the summed gradient of its
//! cells (in cell order), since every rating touches it.
//!
//! Regularisation acts on the rows a rating touches: `l2` as the gradient `2·l2·w` (Keras)
//! and `weight_decay` as `wd·w`. Unlike the batched path, rows no rating reaches are not
//! decayed: at one step per rating, dense decay would shrink every untouched row by
//! (1 - lr·wd)^n_ratings per epoch, which erases the model on large data.

use super::rowopt::prefetch;
use crate::backend::{EpochResult, EpochTask, ModelSpec, RatingsView, Report, Trainer};
use crate::batches::Batches;
use crate::config::{ModelKind, OptimizerKind};
use crate::init;
use crate::rng::Rng;
use rayon::prelude::*;
use recpipe_core::math::{squash_slope, unsquash};
use recpipe_core::model::{Tensor, tensor};
use std::collections::BTreeMap;

/// Blocks per side of the rating grid; cells per sub-epoch. Large enough that two to
/// sixteen threads balance the uneven cells, and that the rows of the cells running at
/// once stay in L3 (162k users × 65 floats / 32 ≈ 1.6 MiB a block).
pub(crate) const GRID: usize = 32;
/// Prefetch distance in ratings: row loads take ~100 ns, a rating's update ~10 ns.
pub(crate) const AHEAD: usize = 6;

/// Sixteen f32 on one cache line: rows start on a line and the loops vectorise.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
pub(crate) struct Lane(pub(crate) [f32; 16]);

/// A rating with cell-local row indices.
#[derive(Debug, Clone, Copy)]
struct Cell {
    u: u32,
    i: u32,
    r: f32,
}

/// Adagrad's starting squared-gradient sum, as in libmf: the first steps are plain SGD
/// steps of `lr`, not normalised jumps of `lr` per weight whatever the gradient.
const ADAGRAD_G0: f32 = 1.0;

/// The ratings in grid order, built once from the first epoch's data.
#[derive(Debug)]
struct Grid {
    cells: Vec<Cell>,
    /// Start of cell (s, b) at s·GRID + b, the cell of user block b and item block
    /// (b + s) mod GRID; GRID² + 1 entries.
    off: Vec<usize>,
    /// Which data it was built from (pointer, length), to rebuild if that changes; None
    /// for a grid streamed from a file ([`GridTrainer::load_grid`]), kept for every epoch.
    source: Option<(usize, usize)>,
}

pub struct GridTrainer {
    k: usize,
    bias: bool,
    y_range: Option<[f32; 2]>,
    /// Lanes per row.
    nl: usize,
    /// Rows per block.
    cu: usize,
    ci: usize,
    /// Original id → internal row.
    urow: Vec<u32>,
    irow: Vec<u32>,
    users: Vec<Lane>,
    items: Vec<Lane>,
    /// Adagrad's per-row squared-gradient sums (empty for sgd), in internal row order. Kept
    /// apart from the rows: a cell's sums are a few KiB and stay in cache.
    ug: Vec<f32>,
    ig: Vec<f32>,
    adagrad: bool,
    global: f32,
    reg: f32,
    seed: u64,
    epoch: u64,
    parallel: bool,
    grid: Option<Grid>,
    /// Per-cell (sse, gradient sum) of the current sub-epoch.
    partial: Vec<(f64, f64)>,
}

/// (a·b, a·a, b·b) in one pass, for Adagrad's gradient norms.
#[inline]
fn dot3(a: &[Lane], b: &[Lane]) -> (f32, f32, f32) {
    let (mut ab, mut aa, mut bb) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
    for (x, y) in a.iter().zip(b) {
        for l in 0..16 {
            ab[l] += x.0[l] * y.0[l];
            aa[l] += x.0[l] * x.0[l];
            bb[l] += y.0[l] * y.0[l];
        }
    }
    (hsum(ab), hsum(aa), hsum(bb))
}

/// A tree sum: `iter().sum()` is a chain of 16 dependent adds, ~60 cycles a rating.
#[inline]
fn hsum(acc: [f32; 16]) -> f32 {
    let (lo, hi) = acc.split_at(8);
    let h: [f32; 8] = std::array::from_fn(|l| lo[l] + hi[l]);
    ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7]))
}

#[inline]
pub(crate) fn dot(a: &[Lane], b: &[Lane]) -> f32 {
    // Sixteen independent partial sums: vectorised without reassociating, and the same
    // summation order for every row (hence every thread count).
    let mut acc = [0.0f32; 16];
    for (x, y) in a.iter().zip(b) {
        for ((s, &u), &q) in acc.iter_mut().zip(&x.0).zip(&y.0) {
            *s += u * q;
        }
    }
    hsum(acc)
}

/// The per-rating constants of one cell's pass.
#[derive(Debug, Clone, Copy)]
struct Step {
    lr: f32,
    reg: f32,
    global: f32,
    y_range: Option<[f32; 2]>,
    /// (lane, element) of the bias inside a row.
    bias: Option<(usize, usize)>,
    adagrad: bool,
    /// Weights per row (k, plus the bias), to turn a row's squared gradient into a mean.
    dims: f32,
}

/// One rating: predict, then step both rows (`gu`, `gi`: their Adagrad sums). Returns
/// (squared error, dloss/draw).
#[inline]
fn rate(
    pu: &mut [Lane],
    qi: &mut [Lane],
    (gu, gi): (&mut f32, &mut f32),
    y: f32,
    st: &Step,
) -> (f32, f32) {
    let (d, uu, qq) = if st.adagrad {
        dot3(pu, qi)
    } else {
        (dot(pu, qi), 0.0, 0.0)
    };
    let mut raw = st.global + d;
    let saved = st.bias.map(|(l, e)| {
        let (bu, bi) = (pu[l].0[e], qi[l].0[e]);
        // dot() counted bu·bi; the model adds bu + bi instead.
        raw += bu + bi - bu * bi;
        (bu, bi)
    });
    let (p, dp) = squash_slope(raw, st.y_range);
    let e = p - y;
    // MSE of a batch of one: d(e²)/draw = 2·e·dp.
    let c = 2.0 * e * dp;
    let r = st.reg;
    let (mut lu, mut li) = (st.lr, st.lr);
    if st.adagrad {
        // |c·q + r·u|² expanded into the sums of the dot pass, so the gradient norms cost
        // no second pass; the bias (gradient c + r·b) is taken out and added back exactly.
        let (mut sd, mut su, mut sq) = (d, uu, qq);
        let (mut xu, mut xi) = (0.0, 0.0);
        if let Some((bu, bi)) = saved {
            sd -= bu * bi;
            su -= bu * bu;
            sq -= bi * bi;
            xu = (c + r * bu) * (c + r * bu);
            xi = (c + r * bi) * (c + r * bi);
        }
        let g2u = (c * c * sq + 2.0 * c * r * sd + r * r * su).max(0.0) + xu;
        let g2i = (c * c * su + 2.0 * c * r * sd + r * r * sq).max(0.0) + xi;
        *gu += g2u / st.dims;
        *gi += g2i / st.dims;
        lu = st.lr / gu.sqrt();
        li = st.lr / gi.sqrt();
    }
    let (au, su, ai, si) = (1.0 - lu * r, lu * c, 1.0 - li * r, li * c);
    for (x, z) in pu.iter_mut().zip(qi.iter_mut()) {
        for l in 0..16 {
            let (u, q) = (x.0[l], z.0[l]);
            x.0[l] = au * u - su * q;
            z.0[l] = ai * q - si * u;
        }
    }
    if let (Some((l, e)), Some((bu, bi))) = (st.bias, saved) {
        pu[l].0[e] = au * bu - su;
        qi[l].0[e] = ai * bi - si;
    }
    (e * e, c)
}

/// A cell's share of the tables: (user rows, item rows, user sums, item sums).
type Shard<'a> = (&'a mut [Lane], &'a mut [Lane], &'a mut [f32], &'a mut [f32]);

/// One cell: reshuffle its ratings, then step through them. Returns (sse, Σ dloss/draw).
fn run_cell(
    (users, items, ug, ig): Shard<'_>,
    cells: &mut [Cell],
    nl: usize,
    st: &Step,
    rng: &mut Rng,
) -> (f64, f64) {
    // Sgd keeps no sums: point every rating at one scratch pair.
    let mut scratch = [0.0f32; 2];
    rng.shuffle(cells);
    let (mut sse, mut gsum) = (0.0f64, 0.0f64);
    for j in 0..cells.len() {
        if let Some(a) = cells.get(j + AHEAD) {
            for l in 0..nl {
                prefetch(&users[a.u as usize * nl + l]);
                prefetch(&items[a.i as usize * nl + l]);
            }
        }
        let c = cells[j];
        let (ru, ri) = (c.u as usize, c.i as usize);
        let (u, i) = (ru * nl, ri * nl);
        let sums = if st.adagrad {
            (&mut ug[ru], &mut ig[ri])
        } else {
            let [a, b] = &mut scratch;
            (a, b)
        };
        let (se, g) = rate(&mut users[u..u + nl], &mut items[i..i + nl], sums, c.r, st);
        sse += se as f64;
        gsum += g as f64;
    }
    (sse, gsum)
}

impl GridTrainer {
    pub fn new(spec: &ModelSpec, parallel: bool) -> Self {
        let cfg = &spec.cfg;
        let bias = spec.kind == ModelKind::DotBias;
        let k = spec.k;
        let nl = (k + usize::from(bias)).div_ceil(16);
        // Same init draws as the batched path, so the two start from the same model.
        let mut rng = Rng::stream(cfg.seed, 1);
        let mut table = |n: usize| init::table(cfg, n, k, bias, &mut rng);
        let (uw, ub) = table(spec.n_users);
        let (iw, ib) = table(spec.n_items);
        let mut perm_rng = Rng::stream(cfg.seed, 3);
        let mut place = |n: usize, w: &[f32], b: &[f32]| {
            // Dealing ids by a random permutation spreads popular ids over the blocks.
            let mut order: Vec<u32> = (0..n as u32).collect();
            perm_rng.shuffle(&mut order);
            let mut row = vec![0u32; n];
            for (r, &id) in order.iter().enumerate() {
                row[id as usize] = r as u32;
            }
            let per = n.div_ceil(GRID).max(1);
            let mut t = vec![Lane::default(); per * GRID * nl];
            for id in 0..n {
                let dst = &mut t[row[id] as usize * nl..(row[id] as usize + 1) * nl];
                for d in 0..k {
                    dst[d / 16].0[d % 16] = w[id * k + d];
                }
                if bias {
                    dst[k / 16].0[k % 16] = b[id];
                }
            }
            (row, t, per)
        };
        let (urow, users, cu) = place(spec.n_users, &uw, &ub);
        let (irow, items, ci) = place(spec.n_items, &iw, &ib);
        let adagrad = cfg.optimizer == OptimizerKind::Adagrad;
        let sums = |per: usize| {
            if adagrad {
                vec![ADAGRAD_G0; per * GRID]
            } else {
                Vec::new()
            }
        };
        let global = if bias {
            unsquash(spec.global_mean, spec.y_range)
        } else {
            0.0
        };
        GridTrainer {
            k,
            bias,
            y_range: spec.y_range,
            nl,
            cu,
            ci,
            urow,
            irow,
            users,
            items,
            ug: sums(cu),
            ig: sums(ci),
            adagrad,
            global,
            reg: 2.0 * cfg.l2 + cfg.weight_decay,
            seed: cfg.seed,
            epoch: 0,
            parallel,
            grid: None,
            partial: Vec::with_capacity(GRID),
        }
    }

    /// The cell of user id `user` and item id `item`, and their rows inside it.
    #[inline]
    fn cell_of(&self, user: u32, item: u32) -> (usize, u32, u32) {
        let (cu, ci) = (self.cu, self.ci);
        let (u, i) = (
            self.urow[user as usize] as usize,
            self.irow[item as usize] as usize,
        );
        let (bu, bi) = (u / cu, i / ci);
        let s = (bi + GRID - bu) % GRID;
        (s * GRID + bu, (u - bu * cu) as u32, (i - bi * ci) as u32)
    }

    fn build_grid(&self, data: RatingsView<'_>) -> Grid {
        let mut off = vec![0usize; GRID * GRID + 1];
        for r in 0..data.len() {
            off[self.cell_of(data.user[r], data.item[r]).0 + 1] += 1;
        }
        for c in 0..GRID * GRID {
            off[c + 1] += off[c];
        }
        let mut next = off.clone();
        let mut cells = vec![Cell { u: 0, i: 0, r: 0.0 }; data.len()];
        for r in 0..data.len() {
            let (c, u, i) = self.cell_of(data.user[r], data.item[r]);
            cells[next[c]] = Cell {
                u,
                i,
                r: data.rating[r],
            };
            next[c] += 1;
        }
        Grid {
            cells,
            off,
            source: Some((data.user.as_ptr() as usize, data.len())),
        }
    }

    /// Builds the grid straight from the train table in `file`, two passes over its row
    /// groups (count the cells, then place the ratings), so the ratings are held once, as
    /// cells, never as columns too: the same cells in the same order as [`Self::build_grid`]
    /// of the table read whole. Epochs then train on it whatever data they are given.
    pub(crate) fn load_grid(
        &mut self,
        file: &recpipe_core::ratings_stream::RatingsFile,
        progress: &recpipe_core::Progress,
    ) -> crate::Result<()> {
        use recpipe_core::ratings_stream::Columns;
        let ids = Columns {
            user: true,
            item: true,
            ..Columns::default()
        };
        let mut off = vec![0usize; GRID * GRID + 1];
        let bar = progress.count(file.rows as u64, "train: cells");
        file.for_each(ids, |c| {
            for (&u, &i) in c.user.iter().zip(c.item) {
                off[self.cell_of(u, i).0 + 1] += 1;
            }
            bar.inc(c.user.len() as u64);
            Ok::<(), crate::TrainError>(())
        })?;
        bar.finish_and_clear();
        for c in 0..GRID * GRID {
            off[c + 1] += off[c];
        }
        let mut next = off.clone();
        let mut cells = vec![Cell { u: 0, i: 0, r: 0.0 }; off[GRID * GRID]];
        let bar = progress.count(file.rows as u64, "train: grid");
        let cols = Columns {
            rating: true,
            ..ids
        };
        file.for_each(cols, |c| {
            for ((&u, &i), &r) in c.user.iter().zip(c.item).zip(c.rating) {
                let (cell, u, i) = self.cell_of(u, i);
                // A file that changed between the passes must not write out of bounds.
                let slot = cells
                    .get_mut(next[cell])
                    .filter(|_| next[cell] < off[cell + 1]);
                let Some(slot) = slot else {
                    return Err(crate::TrainError::Data {
                        path: file.path.clone(),
                        message: "the table changed while it was read; run again".into(),
                    });
                };
                *slot = Cell { u, i, r };
                next[cell] += 1;
            }
            bar.inc(c.user.len() as u64);
            Ok(())
        })?;
        bar.finish_and_clear();
        self.grid = Some(Grid {
            cells,
            off,
            source: None,
        });
        Ok(())
    }

    fn raw(&self, u: usize, i: usize) -> f32 {
        let nl = self.nl;
        let (u, i) = (self.urow[u] as usize * nl, self.irow[i] as usize * nl);
        let (pu, qi) = (&self.users[u..u + nl], &self.items[i..i + nl]);
        let mut raw = self.global + dot(pu, qi);
        if self.bias {
            let (l, e) = (self.k / 16, self.k % 16);
            let (bu, bi) = (pu[l].0[e], qi[l].0[e]);
            raw += bu + bi - bu * bi;
        }
        raw
    }

    /// The per-rating constants at rate `lr` (the global bias as it stands).
    fn step(&self, lr: f32) -> Step {
        Step {
            lr,
            reg: self.reg,
            global: self.global,
            y_range: self.y_range,
            bias: self.bias.then_some((self.k / 16, self.k % 16)),
            adagrad: self.adagrad,
            dims: (self.k + usize::from(self.bias)) as f32,
        }
    }

    /// Sub-epoch `s`: its `GRID` cells, which share no user and no item, in parallel; then
    /// the global bias steps once. Returns (summed squared error, ratings).
    fn sub_epoch(&mut self, grid: &mut Grid, s: usize, lr: f32) -> (f64, usize) {
        let (nl, cu, ci) = (self.nl, self.cu, self.ci);
        let st = self.step(lr);
        let (lo, hi) = (grid.off[s * GRID], grid.off[(s + 1) * GRID]);
        let mut rest = &mut grid.cells[lo..hi];
        let (a, b) = self.items.split_at_mut(s * ci * nl);
        let item_blocks = b.chunks_mut(ci * nl).chain(a.chunks_mut(ci * nl));
        // Sgd's sums are empty: every cell gets an empty slice.
        let none = || std::iter::repeat_with(|| &mut [][..]);
        let cut = (s * ci).min(self.ig.len());
        let (ga, gb) = self.ig.split_at_mut(cut);
        let item_sums = gb.chunks_mut(ci).chain(ga.chunks_mut(ci)).chain(none());
        let user_sums = self.ug.chunks_mut(cu).chain(none());
        let epoch_seed = self.seed ^ self.epoch.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let off = &grid.off;
        let work = self
            .users
            .chunks_mut(cu * nl)
            .zip(item_blocks)
            .zip(user_sums.zip(item_sums))
            .enumerate()
            .map(|(b, ((us, is), (gu, gi)))| {
                let n = off[s * GRID + b + 1] - off[s * GRID + b];
                let (cell, tail) = std::mem::take(&mut rest).split_at_mut(n);
                rest = tail;
                let rng = Rng::stream(epoch_seed, (s * GRID + b) as u64 + 16);
                ((us, is, gu, gi), cell, rng)
            });
        let one = |(shard, cell, mut rng): (Shard<'_>, &mut [Cell], Rng)| {
            run_cell(shard, cell, nl, &st, &mut rng)
        };
        self.partial.clear();
        if self.parallel {
            // Collected in cell order so the sums below do not depend on scheduling.
            let tasks: Vec<_> = work.collect();
            tasks
                .into_par_iter()
                .map(one)
                .collect_into_vec(&mut self.partial);
        } else {
            self.partial.extend(work.map(one));
        }
        let (sse, gsum) = self
            .partial
            .iter()
            .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x, b + y));
        let n = hi - lo;
        if self.bias && n > 0 && sse.is_finite() {
            self.global -= lr * (gsum / n as f64) as f32;
        }
        (sse, n)
    }

    fn row<'a>(&self, t: &'a [Lane], r: u32) -> impl Iterator<Item = f32> + 'a {
        let (nl, k) = (self.nl, self.k);
        let row = &t[r as usize * nl..(r as usize + 1) * nl];
        (0..k).map(move |d| row[d / 16].0[d % 16])
    }
}

#[cfg(test)]
impl GridTrainer {
    /// The per-rating rule of [`rate`] applied to `data` in `order`, on one thread, in
    /// `chunks` consecutive slices with the global bias stepped after each by its mean
    /// gradient: the schedule the CUDA kernel runs in one warp (`cuda/per_rating.rs` tests
    /// that the two give the same updates).
    pub(crate) fn sequential_epoch(
        &mut self,
        data: RatingsView<'_>,
        order: &[u32],
        chunks: usize,
        lr: f32,
    ) {
        let nl = self.nl;
        let per = order.len().div_ceil(chunks).max(1);
        let mut scratch = [0.0f32; 2];
        for chunk in order.chunks(per) {
            let st = self.step(lr);
            let mut gsum = 0.0f64;
            for &r in chunk {
                let r = r as usize;
                let (u, i) = (
                    self.urow[data.user[r] as usize] as usize,
                    self.irow[data.item[r] as usize] as usize,
                );
                let [a, b] = &mut scratch;
                let sums = if self.adagrad {
                    (&mut self.ug[u], &mut self.ig[i])
                } else {
                    (a, b)
                };
                let (pu, qi) = (
                    &mut self.users[u * nl..(u + 1) * nl],
                    &mut self.items[i * nl..(i + 1) * nl],
                );
                gsum += rate(pu, qi, sums, data.rating[r], &st).1 as f64;
            }
            if self.bias {
                self.global -= lr * (gsum / chunk.len() as f64) as f32;
            }
        }
    }
}

impl Trainer for GridTrainer {
    /// An epoch is `GRID` sub-epochs in a fresh seeded order; the schedule counts ratings.
    fn train_epoch(&mut self, task: EpochTask<'_>, report: Report<'_>) -> EpochResult {
        // The grid fixes its own order (shuffled within cells), so `task.order` is unused.
        let data = task.data;
        let source = (data.user.as_ptr() as usize, data.len());
        let stale = |g: &Grid| g.source.is_some_and(|s| s != source);
        if self.grid.as_ref().is_none_or(stale) {
            self.grid = Some(self.build_grid(data));
        }
        self.epoch += 1;
        let mut grid = self.grid.take().expect("built above");
        let mut order_rng = Rng::stream(self.seed ^ self.epoch.wrapping_mul(0x9E37_79B9), 4);
        let mut subs = [0usize; GRID];
        subs.iter_mut().enumerate().for_each(|(j, s)| *s = j);
        order_rng.shuffle(&mut subs);
        let batches = Batches {
            n: GRID,
            schedule: task.schedule,
            step0: task.step0,
            every: 1,
            steps_are_examples: true,
        };
        let result = batches.run(report, |b, lr| self.sub_epoch(&mut grid, subs[b], lr));
        self.grid = Some(grid);
        result
    }

    fn predict(&self, users: &[u32], items: &[u32], out: &mut [f32]) {
        super::predict_pairs(self.parallel, self.y_range, users, items, out, |u, i| {
            self.raw(u, i)
        });
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        let k = self.k;
        let factors = |t: &[Lane], rows: &[u32]| {
            let data = rows.iter().flat_map(|&r| self.row(t, r)).collect();
            Tensor::new(vec![rows.len(), k], data)
        };
        let bias = |t: &[Lane], rows: &[u32]| {
            let (l, e) = (k / 16, k % 16);
            let data = rows
                .iter()
                .map(|&r| t[r as usize * self.nl + l].0[e])
                .collect();
            Tensor::new(vec![rows.len()], data)
        };
        let mut m = BTreeMap::new();
        m.insert(
            tensor::USER_FACTORS.to_string(),
            factors(&self.users, &self.urow),
        );
        m.insert(
            tensor::ITEM_FACTORS.to_string(),
            factors(&self.items, &self.irow),
        );
        if self.bias {
            m.insert(tensor::USER_BIAS.to_string(), bias(&self.users, &self.urow));
            m.insert(tensor::ITEM_BIAS.to_string(), bias(&self.items, &self.irow));
            m.insert(
                tensor::GLOBAL_BIAS.to_string(),
                Tensor::new(vec![1], vec![self.global]),
            );
        }
        m
    }

    fn finite(&self) -> bool {
        let ok = |t: &[Lane]| t.iter().all(|l| l.0.iter().all(|x| x.is_finite()));
        ok(&self.users) && ok(&self.items) && self.global.is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, InitKind};
    use crate::schedule::Schedule;

    fn spec(kind: ModelKind, y_range: Option<[f32; 2]>, k: usize) -> ModelSpec {
        ModelSpec {
            cfg: Config {
                model: kind,
                optimizer: OptimizerKind::Sgd,
                momentum: 0.0,
                batch_size: 1,
                weight_decay: 0.01,
                l2: 0.02,
                lr: 0.1,
                init: InitKind::Normal,
                init_scale: Some(0.5),
                ..Config::default()
            },
            kind,
            n_users: 40,
            n_items: 50,
            k,
            global_mean: 3.0,
            y_range,
            classes: None,
            item_features: None,
            expected_steps: 1,
        }
    }

    /// One rating, stepped by a scalar transcription of the model's gradient: every
    /// weight it touches must move exactly as written out by hand, and nothing else.
    #[test]
    fn one_step_matches_a_scalar_reference() {
        for (kind, yr, k, adagrad) in [
            (ModelKind::DotBias, Some([0.0, 5.5]), 7, false),
            (ModelKind::DotBias, None, 16, false),
            (ModelKind::Dot, Some([0.5, 5.0]), 20, false),
            (ModelKind::Dot, None, 3, false),
            (ModelKind::DotBias, Some([0.0, 5.5]), 15, true),
            (ModelKind::Dot, None, 9, true),
        ] {
            let mut spec = spec(kind, yr, k);
            if adagrad {
                spec.cfg.optimizer = OptimizerKind::Adagrad;
            }
            assert_eq!(
                crate::backend::Family::of(&spec).unwrap(),
                crate::backend::Family::PerRating
            );
            check_one_step(&spec, adagrad);
        }
    }

    type Tensors = BTreeMap<String, Tensor>;

    /// One epoch of the single rating (user 13, item 29, 4.5): (its loss, the weights
    /// before, the weights after).
    fn one_step(spec: &ModelSpec) -> (f64, Tensors, Tensors) {
        let mut tr = GridTrainer::new(spec, false);
        let t0 = tr.tensors();
        let (user, item, rating) = ([13u32], [29u32], [4.5f32]);
        let d = RatingsView {
            user: &user,
            item: &item,
            rating: &rating,
        };
        let sched = Schedule::new(&spec.cfg, 1);
        let task = EpochTask::first(d, &[0], 1, &sched);
        let loss = tr.train_epoch(task, &mut |_, _| {}).unwrap();
        (loss, t0, tr.tensors())
    }

    /// [`one_step`] against the gradient written out by hand in f64.
    fn check_one_step(spec: &ModelSpec, adagrad: bool) {
        let (kind, yr, k) = (spec.kind, spec.y_range, spec.k);
        let (loss, t0, t1) = one_step(spec);
        let (u, i) = (13usize, 29usize);
        let pu = &t0[tensor::USER_FACTORS].data[u * k..(u + 1) * k];
        let qi = &t0[tensor::ITEM_FACTORS].data[i * k..(i + 1) * k];
        let b = |name: &str, j: usize| t0.get(name).map_or(0.0, |t| t.data[j] as f64);
        let (bu, bi, g) = (
            b(tensor::USER_BIAS, u),
            b(tensor::ITEM_BIAS, i),
            b(tensor::GLOBAL_BIAS, 0),
        );
        let mut raw = g + bu + bi;
        for d in 0..k {
            raw += pu[d] as f64 * qi[d] as f64;
        }
        let (p, dp) = match yr {
            Some([lo, hi]) => {
                let s = 1.0 / (1.0 + (-raw).exp());
                let w = (hi - lo) as f64;
                (lo as f64 + w * s, w * s * (1.0 - s))
            }
            None => (raw, 1.0),
        };
        let e = p - 4.5;
        assert!((loss - e * e).abs() < 1e-4 * (1.0 + e * e), "{kind:?} loss");
        let c = 2.0 * e * dp;
        let (lr, reg) = (0.1f64, 2.0 * 0.02 + 0.01);
        let close = |got: f32, want: f64, what: &str| {
            assert!(
                (got as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{kind:?} {yr:?} {what}: {got} vs {want}"
            );
        };
        let has_bias = kind == ModelKind::DotBias;
        // The gradients written out, factors then bias.
        let mut gu: Vec<f64> = (0..k)
            .map(|d| c * qi[d] as f64 + reg * pu[d] as f64)
            .collect();
        let mut gi: Vec<f64> = (0..k)
            .map(|d| c * pu[d] as f64 + reg * qi[d] as f64)
            .collect();
        if has_bias {
            gu.push(c + reg * bu);
            gi.push(c + reg * bi);
        }
        let step = |g: &[f64]| {
            if adagrad {
                let mean = g.iter().map(|x| x * x).sum::<f64>() / g.len() as f64;
                lr / (ADAGRAD_G0 as f64 + mean).sqrt()
            } else {
                lr
            }
        };
        let (lu, li) = (step(&gu), step(&gi));
        for d in 0..k {
            let (x, y) = (pu[d] as f64, qi[d] as f64);
            close(
                t1[tensor::USER_FACTORS].data[u * k + d],
                x - lu * gu[d],
                "pu",
            );
            close(
                t1[tensor::ITEM_FACTORS].data[i * k + d],
                y - li * gi[d],
                "qi",
            );
        }
        if has_bias {
            close(t1[tensor::USER_BIAS].data[u], bu - lu * gu[k], "bu");
            close(t1[tensor::ITEM_BIAS].data[i], bi - li * gi[k], "bi");
            close(t1[tensor::GLOBAL_BIAS].data[0], g - lr * c, "global");
        }
        // Every other row is untouched: no decay of rows a rating does not reach.
        for (name, t) in &t0 {
            let changed = t.data.iter().zip(&t1[name].data).filter(|(a, b)| a != b);
            let touched = if name.ends_with("bias") { 1 } else { k };
            assert!(changed.count() <= touched, "{kind:?} {name}");
        }
    }

    #[test]
    fn cells_partition_the_ratings_and_share_no_rows() {
        let mut spec = spec(ModelKind::DotBias, None, 4);
        spec.n_users = 1000;
        spec.n_items = 300;
        let tr = GridTrainer::new(&spec, false);
        let mut g = Rng::new(5);
        let n = 20_000;
        let user: Vec<u32> = (0..n).map(|_| g.below(1000) as u32).collect();
        let item: Vec<u32> = (0..n).map(|_| g.below(300) as u32).collect();
        let rating = vec![3.0f32; n];
        let d = RatingsView {
            user: &user,
            item: &item,
            rating: &rating,
        };
        let grid = tr.build_grid(d);
        assert_eq!(grid.cells.len(), n);
        assert_eq!(grid.off[GRID * GRID], n);
        // Within a cell every rating's local rows lie inside the cell's blocks, so the
        // cells of a sub-epoch (distinct user and item blocks) cannot collide.
        for c in &grid.cells {
            assert!((c.u as usize) < tr.cu && (c.i as usize) < tr.ci);
        }
        // The permutation is a bijection onto rows.
        let mut rows = tr.urow.clone();
        rows.sort_unstable();
        rows.dedup();
        assert_eq!(rows.len(), 1000);
    }
}
