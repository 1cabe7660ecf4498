//! iALS: implicit alternating least squares with confidence weights (Hu, Koren & Volinsky
//! 2008), solved the way the `implicit` library does it.
//!
//! Every (user, item) cell has a preference p (1 where the user interacted, else 0) and a
//! confidence c = 1 + alpha·r (r = 1 for a plain interaction, or the rating; c = 1 for every
//! cell without one). The objective is
//!
//! ```text
//! Σ_u Σ_i c_ui (p_ui − x_u·y_i)² + reg (Σ_u |x_u|² + Σ_i |y_i|²)
//! ```
//!
//! and an epoch minimises it over every user row with the items fixed, then over every item
//! row with the users fixed. For one user the normal equations are
//! (YᵀY + Σ_{i∈u} (c_ui − 1) y_i y_iᵀ + reg·I) x_u = Σ_{i∈u} c_ui y_i: the dense YᵀY is the
//! same for every user, so it is computed once per half-sweep and only the user's own
//! interactions are added. Each row is solved by `cg_steps` conjugate-gradient steps
//! warm-started from the row's previous value (Takács et al. 2011; `implicit`'s
//! `least_squares_cg`): a step costs O(nnz_row·k + k²) and never forms the k×k matrix.
//! Rows are independent given the other side, so they run in parallel with no effect on the
//! result: the model is the same for a seed whatever the thread count.
//!
//! CG minimises the row's quadratic over a Krylov space that contains its starting point, so
//! no step raises the objective; the history's loss falls every epoch (tested).

use super::{Factors, Interactions, Iterative};
use crate::config::Config;
use crate::error::Result;
use crate::rng::Rng;
use ndarray::ArrayView2;
use rayon::prelude::*;
use recpipe_core::csr::Csr;
use recpipe_core::memory::{Need, check_need, product};

/// CG stops early on a row whose residual is this small (squared norm), as `implicit` does.
const RESIDUAL_EPS: f32 = 1e-20;
/// Starting factors: normal with this standard deviation (`implicit` draws uniform·0.01).
const INIT_STD: f32 = 0.01;

/// The settings of an iALS run, resolved from the train config.
#[derive(Debug, Clone, PartialEq)]
pub struct IalsParams {
    pub k: usize,
    /// Alternating sweeps (users, then items).
    pub epochs: usize,
    /// L2 weight on every factor row.
    pub reg: f32,
    /// Confidence slope: c = 1 + alpha·r.
    pub alpha: f32,
    /// Conjugate-gradient steps per row and half-sweep.
    pub cg_steps: usize,
    pub seed: u64,
}

impl IalsParams {
    /// The settings `cfg` asks for (its `k`, `epochs`, `reg`, `alpha`, `cg_steps`, `seed`).
    pub fn from_config(cfg: &Config) -> IalsParams {
        IalsParams {
            k: cfg.k(),
            epochs: cfg.epochs,
            reg: cfg.reg(),
            alpha: cfg.alpha(),
            cg_steps: cfg.cg_steps(),
            seed: cfg.seed,
        }
    }
}

/// One side's rows with each entry's extra confidence c − 1 = alpha·r.
#[derive(Debug)]
struct Side {
    rows: Csr<(u32, f32)>,
}

/// An iALS model being trained: call [`Ials::epoch`] `epochs` times, then
/// [`Ials::factors`].
#[derive(Debug)]
pub struct Ials {
    p: IalsParams,
    n_users: usize,
    users: Side,
    items: Side,
    /// n_users × k and n_items × k, row-major.
    x: Vec<f32>,
    y: Vec<f32>,
    /// Σ c over every cell, the loss's normaliser: n_users·n_items + Σ (c − 1).
    total_confidence: f64,
}

/// Bytes an iALS run holds besides the interactions themselves: both sides' (index,
/// confidence) entries, the factor tables and the copy handed out each epoch.
pub fn need(n_users: usize, n_items: usize, nnz: usize, k: usize) -> Need {
    let mut need = Need::new();
    need.add("iALS user and item rows", product(&[nnz, 2]), 8);
    need.add(
        "iALS factors and their copy",
        product(&[n_users.saturating_add(n_items), k, 2]),
        4,
    );
    need
}

impl Ials {
    /// The model at its seeded starting point, after checking that it fits in memory.
    /// `rating`, when given, holds each interaction's r in `data`'s order (user by user,
    /// items ascending); without it every interaction has r = 1.
    pub fn new(data: &Interactions, rating: Option<&[f32]>, p: IalsParams) -> Result<Ials> {
        let (n_users, n_items, k) = (data.n_users, data.n_items, p.k);
        let nnz = data.len();
        check_need(
            "iALS",
            &need(n_users, n_items, nnz, k),
            &format!("`k` (now {k}), or the interactions with `positive_threshold`"),
        )?;
        // Where each user's interactions start in `rating`'s order.
        let mut start = Vec::with_capacity(n_users);
        let mut at = 0;
        for u in 0..n_users as u32 {
            start.push(at);
            at += data.items.row(u).len();
        }
        let alpha = p.alpha;
        let weight = |u: u32, o: usize| alpha * rating.map_or(1.0, |r| r[start[u as usize] + o]);
        let entries = |u: u32| {
            data.items
                .row(u)
                .iter()
                .enumerate()
                .map(move |(o, &i)| (u, i, weight(u, o)))
        };
        let all = (0..n_users as u32).flat_map(entries);
        let users = Side {
            rows: Csr::group(n_users, all.clone().map(|(u, i, w)| (u, (i, w)))),
        };
        let items = Side {
            rows: Csr::group(n_items, all.clone().map(|(u, i, w)| (i, (u, w)))),
        };
        let extra: f64 = all.map(|(_, _, w)| f64::from(w)).sum();
        let mut rng = Rng::stream(p.seed, 11);
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n * k).map(|_| rng.normal() * INIT_STD).collect() };
        let x = draw(n_users);
        let y = draw(n_items);
        Ok(Ials {
            total_confidence: n_users as f64 * n_items as f64 + extra,
            p,
            n_users,
            users,
            items,
            x,
            y,
        })
    }

    /// The objective at the current factors over Σ c: the dense part Σ_u x_uᵀ(YᵀY)x_u =
    /// ⟨XᵀX, YᵀY⟩, plus for each interaction the difference between c(1 − s)² and the s²
    /// the dense part counted, plus the regulariser.
    pub fn loss(&self) -> f64 {
        let k = self.p.k;
        let (gx, gy) = (gram(&self.x, k), gram(&self.y, k));
        let dense: f64 = gx
            .iter()
            .zip(&gy)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        let sparse: f64 = (0..self.n_users)
            .into_par_iter()
            .map(|u| {
                let xu = &self.x[u * k..(u + 1) * k];
                let mut acc = 0.0f64;
                for &(i, w) in self.users.rows.row(u as u32) {
                    let s = f64::from(dot(xu, &self.y[i as usize * k..(i as usize + 1) * k]));
                    let (w, c) = (f64::from(w), 1.0 + f64::from(w));
                    acc += w * s * s - 2.0 * c * s + c;
                }
                acc
            })
            .collect::<Vec<_>>()
            .iter()
            .sum();
        let sq = |t: &[f32]| t.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
        let reg = f64::from(self.p.reg) * (sq(&self.x) + sq(&self.y));
        (dense + sparse + reg) / self.total_confidence
    }

    /// Both sides' rows as the CUDA backend uploads them, users then items: each row's start
    /// in the flat lists, its other-side indices and its extra confidences c − 1.
    pub(super) fn sides(&self) -> [(Vec<u32>, Vec<u32>, Vec<f32>); 2] {
        [&self.users, &self.items].map(|side| {
            let rows = &side.rows;
            let mut start = Vec::with_capacity(rows.n_keys() + 1);
            let (mut idx, mut w) = (Vec::new(), Vec::new());
            start.push(0u32);
            for r in 0..rows.n_keys() as u32 {
                for &(j, c) in rows.row(r) {
                    idx.push(j);
                    w.push(c);
                }
                start.push(idx.len() as u32);
            }
            (start, idx, w)
        })
    }

    /// The factor tables (users, items), n × k row-major each.
    pub(super) fn tables(&self) -> (&[f32], &[f32]) {
        (&self.x, &self.y)
    }

    /// Replaces the factor tables (a device's half-sweeps computed them).
    pub(super) fn set_tables(&mut self, x: Vec<f32>, y: Vec<f32>) {
        assert_eq!((x.len(), y.len()), (self.x.len(), self.y.len()));
        self.x = x;
        self.y = y;
    }

    pub(super) fn params(&self) -> &IalsParams {
        &self.p
    }
}

impl Iterative for Ials {
    /// One alternating sweep (users, then items); returns the objective after it, divided
    /// by the total confidence Σ c (as `implicit` reports it).
    fn epoch(&mut self) -> f64 {
        let (k, reg, steps) = (self.p.k, self.p.reg, self.p.cg_steps);
        half_sweep(&mut self.x, &self.y, &self.users.rows, k, reg, steps);
        half_sweep(&mut self.y, &self.x, &self.items.rows, k, reg, steps);
        self.loss()
    }

    /// The current factors (no biases: iALS has none).
    fn factors(&self) -> Factors {
        Factors {
            k: self.p.k,
            user: self.x.clone(),
            item: self.y.clone(),
            item_bias: None,
        }
    }
}

/// AᵀA of an n × k row-major table, as k × k row-major.
fn gram(a: &[f32], k: usize) -> Vec<f32> {
    let n = a.len() / k.max(1);
    let v = ArrayView2::from_shape((n, k), a).expect("n × k table");
    let g = v.t().dot(&v);
    g.iter().copied().collect()
}

/// Solves every row of `x` against the fixed table `y` (the rows' entries index it).
fn half_sweep(x: &mut [f32], y: &[f32], rows: &Csr<(u32, f32)>, k: usize, reg: f32, steps: usize) {
    let mut g = gram(y, k);
    for d in 0..k {
        g[d * k + d] += reg;
    }
    x.par_chunks_mut(k)
        .enumerate()
        .with_min_len(16)
        .for_each_init(
            || Scratch::new(k),
            |s, (u, xu)| cg_row(xu, &g, y, rows.row(u as u32), steps, s),
        );
}

/// CG's vectors for one row, reused across the rows a thread solves.
struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl Scratch {
    fn new(k: usize) -> Scratch {
        Scratch {
            r: vec![0.0; k],
            p: vec![0.0; k],
            ap: vec![0.0; k],
        }
    }
}

/// `steps` CG steps on (G + Σ w_j y_j y_jᵀ) x = Σ (1 + w_j) y_j from the current `x`, where
/// `g` = YᵀY + reg·I and `row` lists (j, w_j = c_j − 1).
fn cg_row(x: &mut [f32], g: &[f32], y: &[f32], row: &[(u32, f32)], steps: usize, s: &mut Scratch) {
    let k = x.len();
    let yr = |j: u32| &y[j as usize * k..(j as usize + 1) * k];
    // r = b − A x = −G x + Σ (c_j − w_j (y_j·x)) y_j.
    matvec(g, x, &mut s.r);
    s.r.iter_mut().for_each(|v| *v = -*v);
    for &(j, w) in row {
        let yj = yr(j);
        axpy(1.0 + w - w * dot(yj, x), yj, &mut s.r);
    }
    s.p.copy_from_slice(&s.r);
    let mut rs = dot(&s.r, &s.r);
    for _ in 0..steps {
        if rs < RESIDUAL_EPS {
            break;
        }
        // A p = G p + Σ w_j (y_j·p) y_j.
        matvec(g, &s.p, &mut s.ap);
        for &(j, w) in row {
            let yj = yr(j);
            axpy(w * dot(yj, &s.p), yj, &mut s.ap);
        }
        let pap = dot(&s.p, &s.ap);
        if pap.is_nan() || pap <= 0.0 {
            break;
        }
        let a = rs / pap;
        axpy(a, &s.p, x);
        axpy(-a, &s.ap, &mut s.r);
        let rs_new = dot(&s.r, &s.r);
        let beta = rs_new / rs;
        for (p, &r) in s.p.iter_mut().zip(&s.r) {
            *p = r + beta * *p;
        }
        rs = rs_new;
    }
}

/// out = M v for a k × k row-major M.
fn matvec(m: &[f32], v: &[f32], out: &mut [f32]) {
    let k = v.len();
    for (o, row) in out.iter_mut().zip(m.chunks_exact(k)) {
        *o = dot(row, v);
    }
}

/// a · b with eight independent partial sums, so the loop vectorises without reassociating
/// (the same order for every row, hence every thread count).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// y += a·x.
#[inline]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (t, &v) in y.iter_mut().zip(x) {
        *t += a * v;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn params(k: usize) -> IalsParams {
        IalsParams {
            k,
            epochs: 10,
            reg: 5.0,
            alpha: 10.0,
            cg_steps: 3,
            seed: 7,
        }
    }

    /// `n_comm` communities of users, each user consuming `per_user` seeded items of its own
    /// community's `items_per` and nothing else.
    pub(crate) fn planted(
        n_comm: u32,
        users_per: u32,
        items_per: u32,
        per_user: usize,
        seed: u64,
    ) -> Interactions {
        let mut rng = Rng::new(seed);
        let n_users = n_comm * users_per;
        let mut pairs = Vec::new();
        for u in 0..n_users {
            let c = u / users_per;
            let own: Vec<u32> = (c * items_per..(c + 1) * items_per).collect();
            pairs.extend(
                rng.sample_sorted(&own, per_user)
                    .into_iter()
                    .map(|i| (u, i)),
            );
        }
        let mut items = Csr::group(n_users as usize, pairs.iter().copied());
        items.sort_rows();
        Interactions {
            items,
            n_users: n_users as usize,
            n_items: (n_comm * items_per) as usize,
        }
    }

    /// The 5 best-scored items each user has not seen.
    pub(crate) fn top5_unseen(f: &Factors, data: &Interactions) -> Vec<Vec<u32>> {
        let k = f.k;
        (0..data.n_users)
            .map(|u| {
                let xu = &f.user[u * k..(u + 1) * k];
                let seen = data.items.row(u as u32);
                let mut s: Vec<(f32, u32)> = (0..data.n_items as u32)
                    .filter(|i| seen.binary_search(i).is_err())
                    .map(|i| {
                        let b = f.item_bias.as_ref().map_or(0.0, |b| b[i as usize]);
                        (
                            dot(xu, &f.item[i as usize * k..(i as usize + 1) * k]) + b,
                            i,
                        )
                    })
                    .collect();
                s.sort_by(|a, b| b.0.total_cmp(&a.0));
                s.iter().take(5).map(|p| p.1).collect()
            })
            .collect()
    }

    fn run(data: &Interactions, p: &IalsParams) -> (Factors, Vec<f64>) {
        let mut m = Ials::new(data, None, p.clone()).unwrap();
        let losses = (0..p.epochs).map(|_| m.epoch()).collect();
        let f = m.factors();
        assert!(f.finite());
        (f, losses)
    }

    #[test]
    fn recovers_planted_communities() {
        let (users_per, items_per) = (30, 20);
        let data = planted(3, users_per, items_per, 8, 1);
        let (f, losses) = run(&data, &params(8));
        for (u, top) in top5_unseen(&f, &data).iter().enumerate() {
            let c = u as u32 / users_per;
            assert!(
                top.iter().all(|&i| i / items_per == c),
                "user {u} (community {c}): top-5 unseen {top:?}"
            );
        }
        // The objective falls every epoch (CG from a warm start never raises a row's
        // quadratic), and by a real margin overall.
        for w in losses.windows(2) {
            assert!(w[1] <= w[0] * (1.0 + 1e-6), "{losses:?}");
        }
        assert!(losses[losses.len() - 1] < 0.8 * losses[0], "{losses:?}");
    }

    /// The normal equations of one row solved exactly: Cholesky (faer, f64) of
    /// YᵀY + Σ w_j y_j y_jᵀ + reg·I against Σ (1 + w_j) y_j.
    fn exact_row(y: &[f32], k: usize, row: &[(u32, f32)], reg: f32) -> Vec<f64> {
        use faer::linalg::solvers::Solve;
        let n = y.len() / k;
        let yv = |j: usize, d: usize| f64::from(y[j * k + d]);
        let mut a = faer::Mat::<f64>::from_fn(k, k, |r, c| {
            (0..n).map(|j| yv(j, r) * yv(j, c)).sum::<f64>()
                + if r == c { f64::from(reg) } else { 0.0 }
        });
        let mut b = faer::Mat::<f64>::zeros(k, 1);
        for &(j, w) in row {
            let (j, w) = (j as usize, f64::from(w));
            for r in 0..k {
                b[(r, 0)] += (1.0 + w) * yv(j, r);
                for c in 0..k {
                    a[(r, c)] += w * yv(j, r) * yv(j, c);
                }
            }
        }
        let llt = a.llt(faer::Side::Lower).expect("positive definite");
        let x = llt.solve(&b);
        (0..k).map(|r| x[(r, 0)]).collect()
    }

    /// Relative distance |a − b| / |b|.
    fn rel(a: &[f32], b: &[f64]) -> f64 {
        let d: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, y)| (f64::from(x) - y).powi(2))
            .sum();
        let n: f64 = b.iter().map(|y| y * y).sum();
        (d / n).sqrt()
    }

    /// With as many CG steps as factors, one row's CG solve is the exact solve of the same
    /// normal equations; fewer steps from a cold start are measurably short of it.
    #[test]
    fn cg_with_k_steps_matches_the_cholesky_solve() {
        let (k, n_items) = (12, 40);
        let mut rng = Rng::new(9);
        let y: Vec<f32> = (0..n_items * k).map(|_| rng.normal() * 0.5).collect();
        let row: Vec<(u32, f32)> = [1u32, 4, 5, 9, 17, 23, 30, 38]
            .iter()
            .map(|&j| (j, 1.0 + 9.0 * rng.f32()))
            .collect();
        let reg = 0.3;
        let want = exact_row(&y, k, &row, reg);
        let mut g = gram(&y, k);
        for d in 0..k {
            g[d * k + d] += reg;
        }
        let solve = |steps: usize, x0: &[f32]| {
            let mut x = x0.to_vec();
            cg_row(&mut x, &g, &y, &row, steps, &mut Scratch::new(k));
            x
        };
        let zero = vec![0.0f32; k];
        let warm: Vec<f32> = (0..k).map(|_| rng.normal()).collect();
        for x0 in [&zero, &warm] {
            let full = rel(&solve(k, x0), &want);
            assert!(
                full < 1e-3,
                "CG with k steps is {full} from the exact solve"
            );
        }
        let short = rel(&solve(1, &zero), &want);
        assert!(
            short > 1e-2,
            "one step should not already be exact ({short})"
        );
    }

    /// The bundled MovieLens ratings as (train, valid): every fifth of each user's ratings
    /// (in file order) held out.
    pub(crate) fn bundled_split() -> (recpipe_core::Ratings, recpipe_core::Ratings) {
        let r = recpipe_core::testutil::bundled_ratings();
        let mut seen = vec![0u32; r.n_users as usize];
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        for row in 0..r.len() {
            let n = &mut seen[r.user[row] as usize];
            *n += 1;
            if n.is_multiple_of(5) {
                valid.push(row)
            } else {
                train.push(row)
            }
        }
        (r.select(&train), r.select(&valid))
    }

    /// Through the train stage's ranking path on the bundled data: iALS ranks the held-out
    /// ratings well above most-popular.
    #[test]
    fn beats_most_popular_on_the_bundled_data() {
        let (train, valid) = bundled_split();
        let cfg = crate::Config {
            model: crate::ModelKind::Ials,
            k: Some(32),
            epochs: 6,
            reg: Some(30.0),
            ..crate::Config::default()
        };
        let res =
            super::super::train(&cfg, &train, &valid, &recpipe_core::Progress::hidden()).unwrap();
        let check = res.ranking.expect("a ranking model");
        assert_eq!(check.fold, "valid");
        assert!(
            check.precision > 1.4 * check.popular,
            "iALS precision@10 {} vs most-popular {}",
            check.precision,
            check.popular
        );
        assert_eq!(res.history.epochs.len(), 6);
    }

    #[test]
    fn same_seed_same_model_any_thread_count() {
        let data = planted(2, 15, 12, 5, 3);
        let p = params(6);
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let (a, la) = pool(1).install(|| run(&data, &p));
        let (b, lb) = pool(2).install(|| run(&data, &p));
        assert_eq!(a.user, b.user);
        assert_eq!(a.item, b.item);
        assert_eq!(la, lb);
        let (c, _) = run(&data, &IalsParams { seed: 8, ..p });
        assert_ne!(a.user, c.user, "another seed starts elsewhere");
    }
}
