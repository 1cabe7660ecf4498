//! ease.cu on the host-thread device: the blocked sweep's inverse against a direct f64
//! solve of random SPD matrices (several block widths, a partial last block, two launch
//! shapes that must agree bit for bit), EASE's weights against the formula in f64, and the
//! refusal of a matrix the device cannot hold.

mod common;

use common::Rng;
use recpipe_cuda::{Accel, Launch, ease};
use recpipe_cuda_harness::HostAccel;
use std::sync::Arc;

/// The inverse of the n × n `a` by Gauss-Jordan with partial pivoting, in f64.
fn reference_inverse(a: &[f64], n: usize) -> Vec<f64> {
    let mut m: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let mut row = a[i * n..(i + 1) * n].to_vec();
            row.extend((0..n).map(|j| f64::from(u8::from(i == j))));
            row
        })
        .collect();
    for c in 0..n {
        let piv = (c..n)
            .max_by(|&p, &q| m[p][c].abs().total_cmp(&m[q][c].abs()))
            .unwrap();
        m.swap(c, piv);
        let d = m[c][c];
        m[c].iter_mut().for_each(|v| *v /= d);
        let pivot = m[c].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != c {
                let f = row[c];
                row.iter_mut().zip(&pivot).for_each(|(v, &q)| *v -= f * q);
            }
        }
    }
    m.into_iter().flat_map(|r| r[n..].to_vec()).collect()
}

/// A random SPD matrix MᵀM / n + I (condition number in the tens).
fn spd(n: usize, rng: &mut Rng) -> Vec<f32> {
    let m = rng.vec(n * n);
    let mut a = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            let s: f64 = (0..n)
                .map(|r| f64::from(m[r * n + i]) * f64::from(m[r * n + j]))
                .sum();
            a[i * n + j] = (s / n as f64) as f32 + f32::from(u8::from(i == j));
        }
    }
    a
}

/// max |x − want| / max |want|.
fn rel_max(x: &[f32], want: &[f64]) -> f64 {
    let d = x
        .iter()
        .zip(want)
        .map(|(&a, b)| (f64::from(a) - b).abs())
        .fold(0.0, f64::max);
    d / want.iter().map(|v| v.abs()).fold(0.0, f64::max)
}

#[test]
fn the_sweep_inverts_spd_matrices_as_a_direct_solve_does() {
    let mut rng = Rng(5);
    // 150 = 2 × 64 + 22: whole blocks and a partial last one; 40 < 64: a single block.
    for (n, blocks) in [(150usize, [64usize, 32, 1]), (40, [64, 7, 1])] {
        let a = spd(n, &mut rng);
        let want = reference_inverse(&a.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), n);
        for block in blocks {
            let dev: Arc<dyn Accel> = Arc::new(HostAccel::new());
            let got = ease::inverse_spd(&dev, &a, n, block).unwrap();
            let err = rel_max(&got, &want);
            // f32 with a condition number in the tens: a few ulps of the largest entry.
            assert!(err < 1e-5, "n {n}, block {block}: relative error {err:e}");
        }
    }
}

#[test]
fn the_sweep_does_not_depend_on_the_launch_shape() {
    let mut rng = Rng(6);
    let n = 70;
    let a = spd(n, &mut rng);
    let wide: Arc<dyn Accel> = Arc::new(HostAccel::new());
    let narrow: Arc<dyn Accel> = Arc::new(HostAccel::with_shape(Launch { grid: 1, block: 32 }));
    let x = ease::inverse_spd(&wide, &a, n, 16).unwrap();
    let y = ease::inverse_spd(&narrow, &a, n, 16).unwrap();
    assert_eq!(x, y, "no atomics and sums in a fixed order: bit for bit");
}

#[test]
fn the_weights_match_the_formula_in_f64() {
    // 50 users × 90 items, each user 3..20 distinct items; some items never seen (their
    // rows of G are λ on the diagonal only, B's rows and columns zero).
    let mut rng = Rng(7);
    let (n_users, n_items, lambda) = (50usize, 90usize, 4.0f32);
    let mut start = vec![0u32];
    let mut items = Vec::new();
    for _ in 0..n_users {
        let mut row: Vec<u32> = (0..3 + rng.below(18))
            .map(|_| rng.below(80) as u32)
            .collect();
        row.sort_unstable();
        row.dedup();
        items.extend(row);
        start.push(items.len() as u32);
    }
    let dev: Arc<dyn Accel> = Arc::new(HostAccel::new());
    let b = ease::fit(&dev, n_items, &start, &items, lambda).unwrap();
    let mut g = vec![0.0f64; n_items * n_items];
    for u in 0..n_users {
        let row = &items[start[u] as usize..start[u + 1] as usize];
        for &i in row {
            for &j in row {
                g[i as usize * n_items + j as usize] += 1.0;
            }
        }
    }
    for i in 0..n_items {
        g[i * n_items + i] += f64::from(lambda);
    }
    let p = reference_inverse(&g, n_items);
    let want: Vec<f64> = (0..n_items * n_items)
        .map(|e| {
            let (i, j) = (e / n_items, e % n_items);
            if i == j {
                0.0
            } else {
                -p[e] / p[j * n_items + j]
            }
        })
        .collect();
    let err = rel_max(&b, &want);
    assert!(err < 1e-5, "relative error {err:e}");
    for i in 0..n_items {
        assert_eq!(b[i * n_items + i], 0.0, "zero diagonal");
    }
    // Items 80.. were never seen: nothing predicts them and they predict nothing.
    assert!((80..n_items).all(|j| (0..n_items).all(|i| b[i * n_items + j] == 0.0)));
}

#[test]
fn a_matrix_the_device_cannot_hold_is_refused_with_its_size() {
    let dev: Arc<dyn Accel> = Arc::new(HostAccel::with_memory(1 << 20));
    let err = ease::fit(&dev, 2_000, &[0, 2], &[3, 9], 100.0)
        .unwrap_err()
        .to_string();
    for part in [
        "out of device memory for the EASE item-item matrix",
        "needs 16.3 MiB",
        "of 1.0 MiB is free",
        "min_ratings",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert_eq!(dev.memory().unwrap().0, 1 << 20, "nothing was allocated");
}
