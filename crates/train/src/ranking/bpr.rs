//! BPR: Bayesian personalised ranking (Rendle, Freudenthaler, Gantner & Schmidt-Thieme 2009),
//! pairwise SGD with sampled negatives, on the per-rating path's tables and schedule.
//!
//! The score is x_ui = p_u·q_i + b_i. For every positive (u, i) of an epoch, `negatives`
//! items j that u has not interacted with are drawn, and for each triple (u, i, j) one SGD
//! step of lr descends
//!
//! ```text
//! L(u, i, j) = −ln σ(x_ui − x_uj) + reg/2 · (|p_u|² + |q_i|² + |q_j|² + b_i² + b_j²)
//! ```
//!
//! from the weights as they were before the step (the test compares it with finite
//! differences). Rows are stored as in `cpu/grid.rs` (sixteen-float [`Lane`]s, the bias in
//! the slot after the k factors); a user row keeps 1 in that slot, so one [`dot`] gives
//! p_u·q_i + b_i and one update loop steps factors and bias alike.
//!
//! Threads: the FPSGD grid of the per-rating path. Users are dealt once and items every epoch
//! by seeded permutations into `G` blocks, and the positives into the `G × G` (user block,
//! item block) cells; a sub-epoch runs the `G` cells that share no user and no item in
//! parallel. A cell's negatives are drawn from its own item block, as LIBMF's BPR does, so
//! no two cells touch the same row; re-dealing the items every epoch makes every item a
//! candidate negative for every positive across epochs. `G` depends on the data's size only,
//! never on the thread count, so a seed gives the same model on any number of threads.

use super::{Factors, Interactions, Iterative};
use crate::config::Config;
use crate::cpu::grid::{AHEAD, GRID, Lane, dot};
use crate::cpu::rowopt::prefetch;
use crate::error::Result;
use crate::rng::Rng;
use rayon::prelude::*;
use recpipe_core::memory::{Need, check_need, product};

/// Fewest items per block: a cell draws its negatives from its block, so a block must offer
/// enough of them (smaller data trains on fewer blocks, down to one).
const MIN_BLOCK_ITEMS: usize = 256;
/// Fewest users per block, so the cells of a sub-epoch have work to share.
const MIN_BLOCK_USERS: usize = 8;
/// Draws before a positive's negative is given up (the user has most of its block).
const MAX_DRAWS: usize = 32;
/// Starting factors: normal(0, INIT_STD); item biases start at 0.
const INIT_STD: f32 = 0.1;

/// The settings of a BPR run, resolved from the train config.
#[derive(Debug, Clone, PartialEq)]
pub struct BprParams {
    pub k: usize,
    pub epochs: usize,
    pub lr: f32,
    /// L2 weight on the rows (and item biases) a triple touches.
    pub reg: f32,
    /// Negatives drawn per positive and epoch; each is one SGD step.
    pub negatives: usize,
    pub seed: u64,
}

impl BprParams {
    /// The settings `cfg` asks for (its `k`, `epochs`, `lr`, `reg`, `negatives`, `seed`).
    pub fn from_config(cfg: &Config) -> BprParams {
        BprParams {
            k: cfg.k(),
            epochs: cfg.epochs,
            lr: cfg.lr,
            reg: cfg.reg(),
            negatives: cfg.negatives(),
            seed: cfg.seed,
        }
    }
}

/// A positive with cell-local row indices.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cell {
    u: u32,
    i: u32,
}

/// The FPSGD grid of a run and its seeded streams: which (u, i, j) triples an epoch steps,
/// in which order. The cpu steps them on its dealt tables ([`Bpr`]); the CUDA backend
/// (`cuda/bpr.rs`) takes them as ids ([`Grid::sub_epoch_ids`]) and steps them on the
/// device, so a seed gives both the same triples in the same order. Negatives depend on
/// the data and the seed only, never on the weights.
#[derive(Debug)]
pub(crate) struct Grid<'a> {
    data: &'a Interactions,
    seed: u64,
    negatives: usize,
    /// Blocks per side.
    g: usize,
    /// Rows per block.
    cu: usize,
    ci: usize,
    /// User id → row (fixed) and row → user id (`u32::MAX` on padding rows).
    urow: Vec<u32>,
    uid: Vec<u32>,
    /// Item id → row and row → item id, re-dealt every epoch.
    irow: Vec<u32>,
    iid: Vec<u32>,
    epoch: u64,
    /// The epoch's positives in cell order, and the start of cell (s, b) at s·G + b.
    cells: Vec<Cell>,
    off: Vec<usize>,
}

/// One epoch of a [`Grid`]: its sub-epochs in run order and the seed of its cell streams.
#[derive(Debug, Clone)]
pub(crate) struct EpochPlan {
    pub(crate) order: Vec<usize>,
    seed: u64,
}

/// What one cell's walk needs besides the data: its positives, the row → id maps of its
/// user block and item block, and its stream.
struct Walk<'t> {
    cells: &'t mut [Cell],
    uid: &'t [u32],
    iid: &'t [u32],
    rng: Rng,
}

/// What a walk does with each triple it draws (cell-local rows).
trait Visit {
    /// The positive `AHEAD` places on (to prefetch its rows).
    fn ahead(&mut self, _c: Cell) {}
    /// One triple: the positive `c` and the negative at item row `j` of the cell's block.
    fn triple(&mut self, c: Cell, j: usize);
}

/// One cell: its positives in a fresh order, each with up to `negatives` negatives drawn
/// from the cell's item block (skipped after [`MAX_DRAWS`] draws that all hit the user's
/// own items).
fn walk(w: Walk<'_>, data: &Interactions, negatives: usize, v: &mut impl Visit) {
    let Walk {
        cells,
        uid,
        iid,
        mut rng,
    } = w;
    // Rows past the last id are padding, never drawn.
    let n_real = iid.iter().take_while(|&&x| x != u32::MAX).count();
    if n_real < 2 {
        return;
    }
    rng.shuffle(cells);
    for c in 0..cells.len() {
        if let Some(&a) = cells.get(c + AHEAD) {
            v.ahead(a);
        }
        let cell = cells[c];
        let seen = data.items.row(uid[cell.u as usize]);
        for _ in 0..negatives {
            let Some(j) = (0..MAX_DRAWS)
                .map(|_| rng.below(n_real as u64) as usize)
                .find(|&j| seen.binary_search(&iid[j]).is_err())
            else {
                continue;
            };
            v.triple(cell, j);
        }
    }
}

impl<'a> Grid<'a> {
    /// The grid of `data` at its seeded start: users and items dealt into blocks.
    pub(crate) fn new(data: &'a Interactions, p: &BprParams) -> Grid<'a> {
        let g = blocks(data.n_users, data.n_items);
        let (urow, uid, cu) = deal(data.n_users, g, &mut Rng::stream(p.seed, 21));
        let (irow, iid, ci) = deal(data.n_items, g, &mut Rng::stream(p.seed, 22));
        Grid {
            data,
            seed: p.seed,
            negatives: p.negatives,
            g,
            cu,
            ci,
            urow,
            uid,
            irow,
            iid,
            epoch: 0,
            cells: Vec::new(),
            off: Vec::new(),
        }
    }

    /// Blocks per side (sub-epochs per epoch).
    pub(crate) fn blocks(&self) -> usize {
        self.g
    }

    /// Starts the next epoch: re-deals the items into blocks and sorts the positives into
    /// the cells of the new grid. Returns the item rows of the last deal (id → row), for a
    /// caller whose tables follow the deal, and the epoch's plan.
    pub(crate) fn next_epoch(&mut self) -> (Vec<u32>, EpochPlan) {
        self.epoch += 1;
        let g = self.g;
        let mut rng = Rng::stream(self.seed ^ self.epoch.wrapping_mul(0x9E37_79B9), 24);
        let (irow, iid, ci) = deal(self.data.n_items, g, &mut rng);
        debug_assert_eq!(ci, self.ci);
        let old = std::mem::replace(&mut self.irow, irow);
        self.iid = iid;
        let (cu, ci) = (self.cu, self.ci);
        let data = self.data;
        let cell_of = |u: usize, i: u32| {
            let (ru, ri) = (self.urow[u] as usize, self.irow[i as usize] as usize);
            let (bu, bi) = (ru / cu, ri / ci);
            let s = (bi + g - bu) % g;
            let c = Cell {
                u: (ru - bu * cu) as u32,
                i: (ri - bi * ci) as u32,
            };
            (s * g + bu, c)
        };
        let mut off = vec![0usize; g * g + 1];
        for u in 0..data.n_users {
            for &i in data.items.row(u as u32) {
                off[cell_of(u, i).0 + 1] += 1;
            }
        }
        for c in 0..g * g {
            off[c + 1] += off[c];
        }
        let mut next = off.clone();
        let mut cells = std::mem::take(&mut self.cells);
        cells.clear();
        cells.resize(off[g * g], Cell::default());
        for u in 0..data.n_users {
            for &i in data.items.row(u as u32) {
                let (c, cell) = cell_of(u, i);
                cells[next[c]] = cell;
                next[c] += 1;
            }
        }
        self.cells = cells;
        self.off = off;
        let mut order: Vec<usize> = (0..g).collect();
        let seed = self.seed ^ self.epoch.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        Rng::stream(seed, 25).shuffle(&mut order);
        (old, EpochPlan { order, seed })
    }

    /// The walks of sub-epoch `s`: cell (s, b) for user block b and item block
    /// (b + s) mod G, in b order.
    fn walks(&mut self, plan: &EpochPlan, s: usize) -> Vec<Walk<'_>> {
        let (g, cu, ci) = (self.g, self.cu, self.ci);
        let (lo, hi) = (self.off[s * g], self.off[(s + 1) * g]);
        let mut rest = &mut self.cells[lo..hi];
        let (ia, ib) = self.iid.split_at(s * ci);
        let item_ids = ib.chunks(ci).chain(ia.chunks(ci));
        let off = &self.off;
        self.uid
            .chunks(cu)
            .zip(item_ids)
            .enumerate()
            .map(|(b, (uid, iid))| {
                let n = off[s * g + b + 1] - off[s * g + b];
                let (cells, tail) = std::mem::take(&mut rest).split_at_mut(n);
                rest = tail;
                Walk {
                    cells,
                    uid,
                    iid,
                    rng: Rng::stream(plan.seed, (s * g + b) as u64 + 32),
                }
            })
            .collect()
    }

    /// Sub-epoch `s`'s triples as ids, `[u, i, j]` each, in the order the cpu steps them
    /// (cell b before cell b + 1; the cells share no row, so their order is free); the
    /// cells are drawn in parallel.
    pub(crate) fn sub_epoch_ids(&mut self, plan: &EpochPlan, s: usize) -> Vec<u32> {
        struct Ids<'t> {
            uid: &'t [u32],
            iid: &'t [u32],
            out: Vec<u32>,
        }
        impl Visit for Ids<'_> {
            fn triple(&mut self, c: Cell, j: usize) {
                self.out.extend_from_slice(&[
                    self.uid[c.u as usize],
                    self.iid[c.i as usize],
                    self.iid[j],
                ]);
            }
        }
        let (data, negatives) = (self.data, self.negatives);
        let parts: Vec<Vec<u32>> = self
            .walks(plan, s)
            .into_par_iter()
            .map(|w| {
                let mut ids = Ids {
                    uid: w.uid,
                    iid: w.iid,
                    out: Vec::with_capacity(w.cells.len() * negatives * 3),
                };
                walk(w, data, negatives, &mut ids);
                ids.out
            })
            .collect();
        parts.concat()
    }
}

/// The seeded starting factors in id order: normal(0, [`INIT_STD`]) draws, users' rows
/// then items', k a row; item biases 0. The cpu lays them into its tables, the CUDA
/// backend uploads them.
pub(crate) fn initial(n_users: usize, n_items: usize, p: &BprParams) -> Factors {
    let mut rng = Rng::stream(p.seed, 23);
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n * p.k).map(|_| rng.normal() * INIT_STD).collect() };
    let user = draw(n_users);
    let item = draw(n_items);
    Factors {
        k: p.k,
        user,
        item,
        item_bias: Some(vec![0.0; n_items]),
    }
}

/// A BPR model being trained: call [`Bpr::epoch`] `epochs` times, then [`Bpr::factors`].
#[derive(Debug)]
pub struct Bpr<'a> {
    p: BprParams,
    grid: Grid<'a>,
    /// Lanes per row.
    nl: usize,
    users: Vec<Lane>,
    items: Vec<Lane>,
}

/// Bytes BPR holds besides the interactions: both tables (rows padded to lanes), the
/// items' re-dealt copy and the epoch's positives in cell order.
pub fn need(n_users: usize, n_items: usize, nnz: usize, k: usize) -> Need {
    let dim = (k + 1).div_ceil(16) * 16;
    let mut need = Need::new();
    need.add("BPR user and item rows", product(&[n_users, dim]), 4);
    need.add(
        "BPR item rows (re-dealt copy)",
        product(&[n_items, dim, 2]),
        4,
    );
    need.add("BPR positives in grid order", nnz as u64, 8);
    need.add(
        "BPR checkpoint copy",
        product(&[n_users.saturating_add(n_items), k + 1]),
        4,
    );
    need
}

/// Blocks per side for this data: at most [`GRID`], fewer when blocks would be too small.
fn blocks(n_users: usize, n_items: usize) -> usize {
    GRID.min(n_items / MIN_BLOCK_ITEMS)
        .min(n_users / MIN_BLOCK_USERS)
        .max(1)
}

/// A seeded permutation of `0..n` as (id → row, row → id), padded to `g·per` rows.
fn deal(n: usize, g: usize, rng: &mut Rng) -> (Vec<u32>, Vec<u32>, usize) {
    let mut order: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut order);
    let per = n.div_ceil(g).max(1);
    let mut row = vec![0u32; n];
    let mut id = vec![u32::MAX; per * g];
    for (r, &x) in order.iter().enumerate() {
        row[x as usize] = r as u32;
        id[r] = x;
    }
    (row, id, per)
}

/// σ(−x) = 1 / (1 + eˣ), and −ln σ(x) = ln(1 + e⁻ˣ), both without overflow.
#[inline]
fn pair_terms(x: f32) -> (f32, f32) {
    let g = 1.0 / (1.0 + x.exp());
    let loss = if x > 0.0 {
        (-x).exp().ln_1p()
    } else {
        -x + x.exp().ln_1p()
    };
    (g, loss)
}

/// One triple's SGD step on the rows of u, i and j (`bias`: (lane, element) of the bias
/// slot, which the user row keeps at 1). Returns −ln σ(x_ui − x_uj) before the step.
#[inline]
fn step(
    pu: &mut [Lane],
    qi: &mut [Lane],
    qj: &mut [Lane],
    lr: f32,
    reg: f32,
    bias: (usize, usize),
) -> f32 {
    let x = dot(pu, qi) - dot(pu, qj);
    let (g, loss) = pair_terms(x);
    let (a, s) = (1.0 - lr * reg, lr * g);
    for ((xu, xi), xj) in pu.iter_mut().zip(qi.iter_mut()).zip(qj.iter_mut()) {
        for l in 0..16 {
            let (u, i, j) = (xu.0[l], xi.0[l], xj.0[l]);
            xu.0[l] = a * u + s * (i - j);
            xi.0[l] = a * i + s * u;
            xj.0[l] = a * j - s * u;
        }
    }
    pu[bias.0].0[bias.1] = 1.0;
    loss
}

/// Rows `a` and `b` (distinct) of a block, both mutable.
fn two_rows(block: &mut [Lane], nl: usize, a: usize, b: usize) -> (&mut [Lane], &mut [Lane]) {
    debug_assert_ne!(a, b);
    if a < b {
        let (lo, hi) = block.split_at_mut(b * nl);
        (&mut lo[a * nl..(a + 1) * nl], &mut hi[..nl])
    } else {
        let (lo, hi) = block.split_at_mut(a * nl);
        (&mut hi[..nl], &mut lo[b * nl..(b + 1) * nl])
    }
}

/// The cpu's visitor: steps each triple on the cell's blocks of the tables and sums the
/// losses.
struct Stepper<'t> {
    users: &'t mut [Lane],
    items: &'t mut [Lane],
    nl: usize,
    lr: f32,
    reg: f32,
    bias: (usize, usize),
    loss: f64,
    n: u64,
}

impl Visit for Stepper<'_> {
    fn ahead(&mut self, a: Cell) {
        for l in 0..self.nl {
            prefetch(&self.users[a.u as usize * self.nl + l]);
            prefetch(&self.items[a.i as usize * self.nl + l]);
        }
    }

    fn triple(&mut self, c: Cell, j: usize) {
        let nl = self.nl;
        let pu = &mut self.users[c.u as usize * nl..(c.u as usize + 1) * nl];
        let (qi, qj) = two_rows(self.items, nl, c.i as usize, j);
        self.loss += f64::from(step(pu, qi, qj, self.lr, self.reg, self.bias));
        self.n += 1;
    }
}

impl<'a> Bpr<'a> {
    /// The model at its seeded starting point, after checking that it fits in memory.
    pub fn new(data: &'a Interactions, p: BprParams) -> Result<Bpr<'a>> {
        let (n_users, n_items, k) = (data.n_users, data.n_items, p.k);
        check_need(
            "BPR",
            &need(n_users, n_items, data.len(), k),
            &format!("`k` (now {k}), or the interactions with `positive_threshold`"),
        )?;
        let grid = Grid::new(data, &p);
        let nl = (k + 1).div_ceil(16);
        let bias = (k / 16, k % 16);
        let start = initial(n_users, n_items, &p);
        let table = |rows: &[u32], n_rows: usize, f: &[f32], user: bool| {
            let mut t = vec![Lane::default(); n_rows * nl];
            for (id, &r) in rows.iter().enumerate() {
                let row = &mut t[r as usize * nl..(r as usize + 1) * nl];
                for d in 0..k {
                    row[d / 16].0[d % 16] = f[id * k + d];
                }
                row[bias.0].0[bias.1] = if user { 1.0 } else { 0.0 };
            }
            t
        };
        let users = table(&grid.urow, grid.cu * grid.g, &start.user, true);
        let items = table(&grid.irow, grid.ci * grid.g, &start.item, false);
        Ok(Bpr {
            p,
            grid,
            nl,
            users,
            items,
        })
    }
}

impl Iterative for Bpr<'_> {
    /// One epoch: every positive once with `negatives` sampled triples each, the cells of a
    /// sub-epoch in parallel. Returns the mean −ln σ(x_ui − x_uj) over the epoch's triples
    /// (NaN when no triple could be drawn).
    fn epoch(&mut self) -> f64 {
        let (old, plan) = self.grid.next_epoch();
        let (g, nl, cu, ci) = (self.grid.g, self.nl, self.grid.cu, self.grid.ci);
        // The items' rows follow the new deal.
        let mut items = vec![Lane::default(); ci * g * nl];
        for (&o, &n) in old.iter().zip(&self.grid.irow) {
            let (o, n) = (o as usize * nl, n as usize * nl);
            items[n..n + nl].copy_from_slice(&self.items[o..o + nl]);
        }
        self.items = items;
        let (mut loss, mut triples) = (0.0f64, 0u64);
        let (lr, reg, k) = (self.p.lr, self.p.reg, self.p.k);
        let bias = (k / 16, k % 16);
        let (data, negatives) = (self.grid.data, self.p.negatives);
        for &s in &plan.order {
            let (a, b) = self.items.split_at_mut(s * ci * nl);
            let item_blocks = b.chunks_mut(ci * nl).chain(a.chunks_mut(ci * nl));
            let tasks: Vec<(Walk<'_>, Stepper<'_>)> = self
                .grid
                .walks(&plan, s)
                .into_iter()
                .zip(self.users.chunks_mut(cu * nl).zip(item_blocks))
                .map(|(w, (users, items))| {
                    let st = Stepper {
                        users,
                        items,
                        nl,
                        lr,
                        reg,
                        bias,
                        loss: 0.0,
                        n: 0,
                    };
                    (w, st)
                })
                .collect();
            // Collected in cell order, so the sums do not depend on the scheduling.
            let sums: Vec<(f64, u64)> = tasks
                .into_par_iter()
                .map(|(w, mut st)| {
                    walk(w, data, negatives, &mut st);
                    (st.loss, st.n)
                })
                .collect();
            for (l, n) in sums {
                loss += l;
                triples += n;
            }
        }
        if triples == 0 {
            f64::NAN
        } else {
            loss / triples as f64
        }
    }

    /// The trained factors and item biases, in id order.
    fn factors(&self) -> Factors {
        let (k, nl) = (self.p.k, self.nl);
        let rows = |t: &[Lane], order: &[u32]| -> Vec<f32> {
            order
                .iter()
                .flat_map(|&r| {
                    let row = &t[r as usize * nl..(r as usize + 1) * nl];
                    (0..k).map(move |d| row[d / 16].0[d % 16])
                })
                .collect()
        };
        let bias = self
            .grid
            .irow
            .iter()
            .map(|&r| self.items[r as usize * nl + k / 16].0[k % 16])
            .collect();
        Factors {
            k,
            user: rows(&self.users, &self.grid.urow),
            item: rows(&self.items, &self.grid.irow),
            item_bias: Some(bias),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::ials::tests::{planted, top5_unseen};

    fn params(k: usize) -> BprParams {
        BprParams {
            k,
            epochs: 40,
            lr: 0.05,
            reg: 0.01,
            negatives: 4,
            seed: 5,
        }
    }

    /// A triple's loss in f64 from plain vectors: p_u, q_i, q_j, b_i, b_j.
    fn triple_loss(pu: &[f64], qi: &[f64], qj: &[f64], bi: f64, bj: f64, reg: f64) -> f64 {
        let d = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let x = d(pu, qi) + bi - d(pu, qj) - bj;
        let sq = |a: &[f64]| d(a, a);
        (1.0 + (-x).exp()).ln() + reg / 2.0 * (sq(pu) + sq(qi) + sq(qj) + bi * bi + bj * bj)
    }

    /// The update `step` applies to every weight of a triple equals −lr times the central
    /// finite difference of the triple's loss, within 1e-3 relative.
    #[test]
    fn step_is_minus_lr_times_the_numerical_gradient() {
        for (k, seed) in [(5usize, 1u64), (16, 2), (21, 3)] {
            let nl = (k + 1).div_ceil(16);
            let bias = (k / 16, k % 16);
            let mut rng = Rng::new(seed);
            let mut draw = |user: bool| {
                let mut r = vec![Lane::default(); nl];
                for d in 0..k {
                    r[d / 16].0[d % 16] = rng.normal() * 0.7;
                }
                r[bias.0].0[bias.1] = if user { 1.0 } else { rng.normal() };
                r
            };
            let (mut pu, mut qi, mut qj) = (draw(true), draw(false), draw(false));
            let flat = |r: &[Lane]| -> Vec<f64> {
                (0..=k).map(|d| f64::from(r[d / 16].0[d % 16])).collect()
            };
            let (u0, i0, j0) = (flat(&pu), flat(&qi), flat(&qj));
            let (lr, reg) = (0.1f32, 0.05f32);
            let loss = step(&mut pu, &mut qi, &mut qj, lr, reg, bias);
            let (u1, i1, j1) = (flat(&pu), flat(&qi), flat(&qj));
            let f = |u: &[f64], i: &[f64], j: &[f64]| {
                triple_loss(&u[..k], &i[..k], &j[..k], i[k], j[k], f64::from(reg))
            };
            // The loss it reports is the ranking term alone, before the step.
            let plain = triple_loss(&u0[..k], &i0[..k], &j0[..k], i0[k], j0[k], 0.0);
            assert!(
                (f64::from(loss) - plain).abs() < 1e-5 * (1.0 + plain),
                "k={k}"
            );
            let h = 1e-5;
            // (which table, how many weights: users' k factors; items' k factors and bias)
            for (t, dims) in [(0usize, k), (1, k + 1), (2, k + 1)] {
                for d in 0..dims {
                    let mut w = [u0.clone(), i0.clone(), j0.clone()];
                    w[t][d] += h;
                    let up = f(&w[0], &w[1], &w[2]);
                    w[t][d] -= 2.0 * h;
                    let down = f(&w[0], &w[1], &w[2]);
                    let grad = (up - down) / (2.0 * h);
                    let before = [&u0, &i0, &j0][t][d];
                    let after = [&u1, &i1, &j1][t][d];
                    let want = -f64::from(lr) * grad;
                    let got = after - before;
                    assert!(
                        (got - want).abs() <= 1e-3 * want.abs().max(1e-3),
                        "k={k} table {t} weight {d}: update {got} vs -lr·grad {want}"
                    );
                }
            }
            // The user row's bias slot is a constant 1, not a weight.
            assert_eq!(u1[k], 1.0);
        }
    }

    #[test]
    fn recovers_planted_communities() {
        let (users_per, items_per) = (30, 20);
        let data = planted(3, users_per, items_per, 8, 1);
        let p = params(8);
        let mut m = Bpr::new(&data, p.clone()).unwrap();
        let losses: Vec<f64> = (0..p.epochs).map(|_| m.epoch()).collect();
        let f = m.factors();
        assert!(f.finite());
        for (u, top) in top5_unseen(&f, &data).iter().enumerate() {
            let c = u as u32 / users_per;
            assert!(
                top.iter().all(|&i| i / items_per == c),
                "user {u} (community {c}): top-5 unseen {top:?}"
            );
        }
        let last = losses[losses.len() - 1];
        assert!(last < 0.5 * losses[0], "{losses:?}");
    }

    /// Through the train stage's ranking path on the bundled data: BPR ranks the held-out
    /// ratings above most-popular.
    #[test]
    fn beats_most_popular_on_the_bundled_data() {
        let (train, valid) = crate::ranking::ials::tests::bundled_split();
        let cfg = crate::Config {
            model: crate::ModelKind::Bpr,
            k: Some(32),
            epochs: 15,
            lr: 0.05,
            negatives: Some(4),
            ..crate::Config::default()
        };
        let res =
            super::super::train(&cfg, &train, &valid, &recpipe_core::Progress::hidden()).unwrap();
        let check = res.ranking.expect("a ranking model");
        assert!(
            check.precision > 1.2 * check.popular,
            "BPR precision@10 {} vs most-popular {}",
            check.precision,
            check.popular
        );
        let losses: Vec<f64> = res.history.epochs.iter().map(|e| e.train_loss).collect();
        assert!(losses[losses.len() - 1] < 0.5 * losses[0], "{losses:?}");
    }

    /// Two runs with a seed give the same model on one or two threads, on a grid of several
    /// blocks (so cells do run in parallel); another seed gives another.
    #[test]
    fn same_seed_same_model_any_thread_count() {
        let data = planted(4, 40, 600, 60, 2);
        assert!(blocks(data.n_users, data.n_items) > 1);
        let p = BprParams {
            epochs: 3,
            ..params(12)
        };
        let run = |p: &BprParams| {
            let mut m = Bpr::new(&data, p.clone()).unwrap();
            let l: Vec<f64> = (0..p.epochs).map(|_| m.epoch()).collect();
            (m.factors(), l)
        };
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let (a, la) = pool(1).install(|| run(&p));
        let (b, lb) = pool(2).install(|| run(&p));
        assert_eq!(a.user, b.user);
        assert_eq!(a.item, b.item);
        assert_eq!(a.item_bias, b.item_bias);
        assert_eq!(la, lb);
        let (c, _) = run(&BprParams { seed: 6, ..p });
        assert_ne!(a.item, c.item);
    }
}
