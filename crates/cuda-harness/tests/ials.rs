//! ials.cu on the host-thread device: with as many CG steps as factors, a half-sweep is the
//! exact solve of every row's normal equations, so one epoch (users, then items) must land
//! on a direct f64 solve of both. (That it is the cpu's CG step for step is
//! train/tests/cuda_ranking.rs.)

mod common;

use common::Rng;
use recpipe_cuda::Accel;
use recpipe_cuda::ials::{Ials, Rows};
use recpipe_cuda_harness::HostAccel;
use std::sync::Arc;

/// Solves the k × k system `a` x = `b` by Gauss-Jordan with partial pivoting, in f64.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, k: usize) -> Vec<f64> {
    for c in 0..k {
        let p = (c..k)
            .max_by(|&p, &q| a[p * k + c].abs().total_cmp(&a[q * k + c].abs()))
            .unwrap();
        for j in 0..k {
            a.swap(c * k + j, p * k + j);
        }
        b.swap(c, p);
        for r in 0..k {
            if r != c {
                let f = a[r * k + c] / a[c * k + c];
                for j in 0..k {
                    a[r * k + j] -= f * a[c * k + j];
                }
                b[r] -= f * b[c];
            }
        }
    }
    (0..k).map(|r| b[r] / a[r * k + r]).collect()
}

/// Every row of one side solved exactly against the fixed table `y`: (YᵀY + Σ w_j y_j y_jᵀ
/// + reg·I) x = Σ (1 + w_j) y_j.
fn exact_side(y: &[f64], k: usize, rows: &[Vec<(u32, f32)>], reg: f64) -> Vec<f64> {
    let n = y.len() / k;
    let mut g = vec![0.0; k * k];
    for j in 0..n {
        for r in 0..k {
            for c in 0..k {
                g[r * k + c] += y[j * k + r] * y[j * k + c];
            }
        }
    }
    rows.iter()
        .flat_map(|row| {
            let mut a = g.clone();
            let mut b = vec![0.0; k];
            for d in 0..k {
                a[d * k + d] += reg;
            }
            for &(j, w) in row {
                let (yj, w) = (&y[j as usize * k..(j as usize + 1) * k], f64::from(w));
                for r in 0..k {
                    b[r] += (1.0 + w) * yj[r];
                    for c in 0..k {
                        a[r * k + c] += w * yj[r] * yj[c];
                    }
                }
            }
            solve(a, b, k)
        })
        .collect()
}

/// (start, idx, w) of rows given as (index, weight) lists.
fn flat(rows: &[Vec<(u32, f32)>]) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let mut start = vec![0u32];
    let (mut idx, mut w) = (Vec::new(), Vec::new());
    for row in rows {
        for &(j, c) in row {
            idx.push(j);
            w.push(c);
        }
        start.push(idx.len() as u32);
    }
    (start, idx, w)
}

#[test]
fn an_epoch_with_k_steps_is_the_exact_solve_of_both_sides() {
    let (n_users, n_items, k, reg) = (9usize, 25usize, 12usize, 0.5f32);
    let mut rng = Rng(3);
    let mut users: Vec<Vec<(u32, f32)>> = Vec::new();
    for u in 0..n_users {
        // User 0 has no interactions: its solve is against YᵀY + reg·I alone.
        let mut items: Vec<u32> = (0..u * 2).map(|_| rng.below(n_items) as u32).collect();
        items.sort_unstable();
        items.dedup();
        users.push(items.into_iter().map(|i| (i, 4.0 * rng.unit())).collect());
    }
    let mut items: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_items];
    for (u, row) in users.iter().enumerate() {
        for &(i, w) in row {
            items[i as usize].push((u as u32, w));
        }
    }
    let x0: Vec<f32> = rng.vec(n_users * k);
    let y0: Vec<f32> = rng.vec(n_items * k).iter().map(|v| 0.5 * v).collect();
    let ((us, ui, uw), (is, ii, iw)) = (flat(&users), flat(&items));
    let run = |accel: Arc<dyn Accel>| {
        let mut m = Ials::new(
            &accel,
            (k, reg, k),
            Rows {
                start: &us,
                idx: &ui,
                w: &uw,
            },
            Rows {
                start: &is,
                idx: &ii,
                w: &iw,
            },
            &x0,
            &y0,
        )
        .unwrap();
        m.epoch().unwrap();
        m.factors().unwrap()
    };
    let (x, y) = run(Arc::new(HostAccel::new()));
    let y0d: Vec<f64> = y0.iter().map(|&v| f64::from(v)).collect();
    let want_x = exact_side(&y0d, k, &users, f64::from(reg));
    let want_y = exact_side(&want_x, k, &items, f64::from(reg));
    for (name, got, want) in [("X", &x, &want_x), ("Y", &y, &want_y)] {
        let d = got
            .iter()
            .zip(want)
            .map(|(&a, b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
        println!("{name}: max |Δ| / max |x| = {:e}", d / scale);
        // f32 CG over k steps on systems with condition numbers in the tens.
        assert!(
            d / scale < 1e-3,
            "{name}: max |Δ| / max |x| = {:e}",
            d / scale
        );
    }
}
