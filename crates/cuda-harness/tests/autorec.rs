//! autorec.cu against plain Rust references written from the cpu trainer's formulas
//! (train/src/cpu/autorec.rs): `ar_forward` (codes, dz, du per rating, Σ e² per item) on a
//! hand-made item-major CSR with empty items, k not a multiple of 32; one plain-SGD step
//! through recpipe-cuda's `AutoRec` (plan, `ar_begin_step`, `ar_forward`, `ar_update`) moves
//! every weight by −lr × the reference gradient, for k = 37 and k = 1030 (past the dot /
//! dot_bias kernels' 256); `ar_fold` writes the dot_bias form (W | b, codes | 0). The same
//! arithmetic in the same order: the harness build agrees bit for bit.

mod common;

use common::Rng;
use recpipe_cuda::accel::Accel;
use recpipe_cuda::autorec::{ArConfig, ArShape, ArWeights, AutoRec, ItemCsr, by_item};
use recpipe_cuda::buf::{Buf, Purpose};
use recpipe_cuda::kernel::{Arg, Kernel, Launch};
use recpipe_cuda::minibatch::MbOptimizer;
use recpipe_cuda_harness::HostAccel;
use std::sync::Arc;

const PURPOSE: Purpose = Purpose {
    what: "the test data",
    setting: "none",
};

/// A model and its ratings, item-major (items 2 and 5 have none).
struct Case {
    n_users: usize,
    n_items: usize,
    k: usize,
    start: Vec<u32>,
    user: Vec<u32>,
    rating: Vec<f32>,
    /// Original (file-order) columns.
    cols: (Vec<u32>, Vec<u32>, Vec<f32>),
    w: ArWeights,
}

impl Case {
    fn new(k: usize, seed: u64) -> Case {
        let (n_users, n_items) = (12usize, 9usize);
        let mut rng = Rng(seed);
        let mut pairs = std::collections::BTreeSet::new();
        while pairs.len() < 40 {
            let (u, i) = (rng.below(n_users) as u32, rng.below(n_items) as u32);
            if i != 2 && i != 5 {
                pairs.insert((rng.next() % 1000, u, i));
            }
        }
        // One rating per (user, item): drop repeats of a pair.
        let mut seen = std::collections::HashSet::new();
        let mut cols = (Vec::new(), Vec::new(), Vec::new());
        for &(_, u, i) in &pairs {
            if seen.insert((u, i)) {
                cols.0.push(u);
                cols.1.push(i);
                cols.2.push(0.5 + 0.5 * rng.below(10) as f32);
            }
        }
        let (start, user, rating) = by_item((&cols.0, &cols.1, &cols.2), n_items);
        let w = ArWeights {
            users: (0..n_users * 2 * k).map(|_| rng.sym(0.3)).collect(),
            bias: (0..n_users).map(|_| 3.0 + rng.sym(0.5)).collect(),
            mu: (0..k).map(|_| rng.sym(0.2)).collect(),
        };
        Case {
            n_users,
            n_items,
            k,
            start,
            user,
            rating,
            cols,
            w,
        }
    }

    fn ratings(&self, i: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let (a, b) = (self.start[i] as usize, self.start[i + 1] as usize);
        (a..b).map(|e| (self.user[e] as usize, self.rating[e]))
    }

    fn v(&self, u: usize) -> &[f32] {
        &self.w.users[u * 2 * self.k..u * 2 * self.k + self.k]
    }

    fn wrow(&self, u: usize) -> &[f32] {
        &self.w.users[u * 2 * self.k + self.k..(u + 1) * 2 * self.k]
    }

    /// The cpu's `encode`.
    fn encode(&self, i: usize) -> Vec<f32> {
        let mut h = self.w.mu.clone();
        for (u, r) in self.ratings(i) {
            h.iter_mut().zip(self.v(u)).for_each(|(z, &v)| *z += r * v);
        }
        h.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect()
    }

    /// The cpu's `pass`: (h, dz, du per rating, Σ e²).
    fn pass(&self, i: usize, y: Option<[f32; 2]>) -> (Vec<f32>, Vec<f32>, Vec<f32>, f64) {
        let h = self.encode(i);
        let mut dh = vec![0.0f32; self.k];
        let (mut d, mut sse) = (Vec::new(), 0.0f64);
        for (u, r) in self.ratings(i) {
            let raw = cpu_dot(self.wrow(u), &h) + self.w.bias[u];
            let (out, slope) = match y {
                Some([lo, hi]) => {
                    let out = lo + (hi - lo) * (1.0 / (1.0 + (-raw).exp()));
                    (out, (out - lo) * (hi - out) / (hi - lo))
                }
                None => (raw, 1.0),
            };
            let err = out - r;
            sse += (err * err) as f64;
            let du = 2.0 * err * slope;
            d.push(du);
            dh.iter_mut()
                .zip(self.wrow(u))
                .for_each(|(g, &w)| *g += du * w);
        }
        let dz = dh
            .iter()
            .zip(&h)
            .map(|(&g, &h)| g * h * (1.0 - h))
            .collect();
        (h, dz, d, sse)
    }
}

/// The cpu's `dot` (embedding.rs): eight partial sums, then the tail.
fn cpu_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

fn sgd(y_range: Option<[f32; 2]>) -> ArConfig {
    ArConfig {
        optimizer: MbOptimizer::Sgd,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        momentum: 0.0,
        weight_decay: 0.0,
        y_range,
    }
}

fn harness() -> Arc<dyn Accel> {
    Arc::new(HostAccel::with_shape(Launch { grid: 1, block: 64 }))
}

#[test]
fn forward_matches_the_reference() {
    let accel = harness();
    for y in [None, Some([0.5f32, 5.5])] {
        let c = Case::new(37, 11);
        let items: Vec<u32> = vec![4, 2, 0, 7, 1];
        let mut pos = vec![0u32];
        for &i in &items {
            let n = c.start[i as usize + 1] - c.start[i as usize];
            pos.push(pos.last().unwrap() + n);
        }
        let n_pos = *pos.last().unwrap() as usize;
        let b = |v: &[u32]| Buf::from_slice(&accel, v, PURPOSE).unwrap();
        let f = |v: &[f32]| Buf::from_slice(&accel, v, PURPOSE).unwrap();
        let z = |n: usize| Buf::<f32>::zeros(&accel, n, PURPOSE).unwrap();
        let (bi, bp, bs, bu, br) = (b(&items), b(&pos), b(&c.start), b(&c.user), f(&c.rating));
        let (bw, bb, bm) = (f(&c.w.users), f(&c.w.bias), f(&c.w.mu));
        let (h, dz, d, pr) = (
            z(items.len() * c.k),
            z(items.len() * c.k),
            z(n_pos),
            z(n_pos),
        );
        let sse = Buf::<f64>::zeros(&accel, items.len(), PURPOSE).unwrap();
        let pslot = Buf::<u32>::zeros(&accel, n_pos, PURPOSE).unwrap();
        let (squash, lo, hi) = match y {
            Some([lo, hi]) => (1, lo, hi),
            None => (0, 0.0, 0.0),
        };
        let args = [
            Arg::U32(items.len() as u32),
            bi.arg(),
            bp.arg(),
            bs.arg(),
            bu.arg(),
            br.arg(),
            bw.arg(),
            bb.arg(),
            bm.arg(),
            Arg::U32(c.k as u32),
            Arg::I32(squash),
            Arg::F32(lo),
            Arg::F32(hi),
            h.arg(),
            dz.arg(),
            sse.arg(),
            d.arg(),
            pr.arg(),
            pslot.arg(),
        ];
        let shape = Launch { grid: 1, block: 64 };
        accel.launch(Kernel::ArForward, shape, &args).unwrap();
        let (h, dz, d, pr) = (
            h.to_vec().unwrap(),
            dz.to_vec().unwrap(),
            d.to_vec().unwrap(),
            pr.to_vec().unwrap(),
        );
        let (sse, pslot) = (sse.to_vec().unwrap(), pslot.to_vec().unwrap());
        for (s, &i) in items.iter().enumerate() {
            let (rh, rdz, rd, rsse) = c.pass(i as usize, y);
            let k = c.k;
            assert_eq!(h[s * k..(s + 1) * k], rh[..], "{y:?} item {i}: h");
            assert_eq!(dz[s * k..(s + 1) * k], rdz[..], "{y:?} item {i}: dz");
            assert_eq!(sse[s], rsse, "{y:?} item {i}: sse");
            let p = pos[s] as usize..pos[s + 1] as usize;
            assert_eq!(d[p.clone()], rd[..], "{y:?} item {i}: du");
            let ratings: Vec<f32> = c.ratings(i as usize).map(|(_, r)| r).collect();
            assert_eq!(pr[p.clone()], ratings[..], "{y:?} item {i}: ratings");
            assert!(pslot[p].iter().all(|&q| q == s as u32));
            if i == 2 {
                // No ratings: the code is σ(μ), the loss zero.
                assert_eq!(rsse, 0.0);
                assert!(rdz.iter().all(|&g| g == 0.0));
            }
        }
        assert!(sse.iter().any(|&e| e > 0.0));
    }
}

/// One step of plain SGD (lr, no momentum, no decay) on a batch of items: every weight of
/// V, W, b and μ moves by −lr × the batch's summed gradient, accumulated in item order.
fn one_sgd_step(k: usize) {
    let accel = harness();
    let c = Case::new(k, 5 + k as u64);
    let y = Some([0.5f32, 5.5]);
    let shape = ArShape {
        n_users: c.n_users,
        n_items: c.n_items,
        k,
    };
    let mut m = AutoRec::new(&accel, shape, &c.w, sgd(y), 8, 4).unwrap();
    let csr = ItemCsr::upload(&accel, (&c.cols.0, &c.cols.1, &c.cols.2), c.n_items).unwrap();
    assert_eq!(csr.rated_items(), [0, 1, 3, 4, 6, 7, 8]);
    let items = [6u32, 1, 7, 0, 3];
    let plan = m.plan(&csr, &items, 8).unwrap();
    assert_eq!(plan.n_batches(), 1);
    let lr = 0.05f32;
    m.step(&csr, &plan, 0, lr).unwrap();
    // The reference gradient.
    let mut g = vec![0.0f32; c.n_users * 2 * k];
    let mut gb = vec![0.0f32; c.n_users];
    let mut gmu = vec![0.0f32; k];
    let mut sse = 0.0f64;
    for &i in &items {
        let (h, dz, d, s) = c.pass(i as usize, y);
        sse += s;
        gmu.iter_mut().zip(&dz).for_each(|(g, &d)| *g += d);
        for ((u, r), du) in c.ratings(i as usize).zip(d) {
            let row = &mut g[u * 2 * k..(u + 1) * 2 * k];
            let (gv, gw) = row.split_at_mut(k);
            gv.iter_mut().zip(&dz).for_each(|(g, &d)| *g += r * d);
            gw.iter_mut().zip(&h).for_each(|(g, &h)| *g += du * h);
            gb[u] += du;
        }
    }
    let step = |w: &[f32], g: &[f32]| -> Vec<f32> {
        w.iter()
            .zip(g)
            .map(|(&w, &g)| {
                let m = 0.0 * 0.0 + (g + 0.0 * w);
                w - lr * m
            })
            .collect()
    };
    let got = m.weights().unwrap();
    assert_eq!(plan.batch_sse().unwrap(), [sse]);
    assert_eq!(plan.batch_len(0), c.ratings_in(&items));
    // Users no item of the batch touched keep their rows (lazy: not stepped).
    let touched: std::collections::HashSet<usize> = items
        .iter()
        .flat_map(|&i| c.ratings(i as usize).map(|(u, _)| u))
        .collect();
    let want_users = step(&c.w.users, &g);
    for u in 0..c.n_users {
        let r = u * 2 * k..(u + 1) * 2 * k;
        if touched.contains(&u) {
            assert_eq!(
                got.users[r.clone()],
                want_users[r.clone()],
                "k {k} user {u}"
            );
            assert_ne!(got.users[r.clone()], c.w.users[r], "k {k} user {u} moved");
        } else {
            assert_eq!(
                got.users[r.clone()],
                c.w.users[r],
                "k {k} user {u} untouched"
            );
        }
    }
    let want_b = step(&c.w.bias, &gb);
    for (u, (&stepped, &before)) in want_b.iter().zip(&c.w.bias).enumerate() {
        let want = if touched.contains(&u) {
            stepped
        } else {
            before
        };
        assert_eq!(got.bias[u], want, "k {k} bias {u}");
    }
    assert_eq!(got.mu, step(&c.w.mu, &gmu), "k {k} mu");
    // The end of the epoch (nothing to catch up in plain SGD) folds the new weights.
    m.end_epoch(&csr).unwrap();
    let folded = m.folded().unwrap();
    let after = Case {
        w: got,
        ..Case::new(k, 5 + k as u64)
    };
    for u in 0..c.n_users {
        let row = &folded.p[u * (k + 1)..(u + 1) * (k + 1)];
        assert_eq!(row[..k], after.wrow(u)[..], "k {k} folded W {u}");
        assert_eq!(row[k], after.w.bias[u], "k {k} folded b {u}");
    }
    for i in 0..c.n_items {
        let row = &folded.q[i * (k + 1)..(i + 1) * (k + 1)];
        assert_eq!(row[..k], after.encode(i)[..], "k {k} code of item {i}");
        assert_eq!(row[k], 0.0);
    }
    assert_eq!(folded.global, 0.0);
}

impl Case {
    fn ratings_in(&self, items: &[u32]) -> usize {
        items
            .iter()
            .map(|&i| self.ratings(i as usize).count())
            .sum()
    }
}

#[test]
fn one_sgd_step_moves_every_weight_by_the_reference_gradient() {
    one_sgd_step(37);
}

#[test]
fn k_past_the_dot_kernels_limit_steps_the_same_way() {
    one_sgd_step(1030);
}

/// Before any data, the folded codes are σ(μ) for every item (the cpu trainer's `codes`
/// with no ratings yet), and a plan's per-user grouping keeps the batch's order.
#[test]
fn a_new_model_folds_to_sigma_mu_and_plans_group_by_first_touch() {
    let accel = harness();
    let c = Case::new(5, 3);
    let shape = ArShape {
        n_users: c.n_users,
        n_items: c.n_items,
        k: 5,
    };
    let mut m = AutoRec::new(&accel, shape, &c.w, sgd(None), 4, 8).unwrap();
    let q = m.folded().unwrap().q;
    let s: Vec<f32> = c.w.mu.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect();
    for i in 0..c.n_items {
        assert_eq!(q[i * 6..i * 6 + 5], s[..], "item {i}");
    }
    let csr = ItemCsr::upload(&accel, (&c.cols.0, &c.cols.1, &c.cols.2), c.n_items).unwrap();
    let items = csr.rated_items();
    let plan = m.plan(&csr, &items, 3).unwrap();
    assert_eq!(plan.n_batches(), items.len().div_ceil(3));
    let total: usize = (0..plan.n_batches()).map(|b| plan.batch_len(b)).sum();
    assert_eq!(total, c.cols.0.len());
    assert_eq!(
        plan.max_pos,
        (0..plan.n_batches())
            .map(|b| plan.batch_len(b))
            .max()
            .unwrap()
    );
    for (b, pb) in plan.batches.iter().enumerate() {
        let chunk = &items[pb.item_at..pb.item_at + pb.n_items];
        let mut users: Vec<usize> = Vec::new();
        for &i in chunk {
            for (u, _) in c.ratings(i as usize) {
                if !users.contains(&u) {
                    users.push(u);
                }
            }
        }
        assert_eq!(pb.nu, users.len(), "batch {b}");
    }
}
