//! bpr.cu against a plain Rust statement of the cpu's BPR step (train/src/ranking/bpr.rs
//! `step`: sixteen partial sums and their tree for each dot product, then the update from
//! the old values): one warp over a sequence of triples that revisit rows must give the
//! same rows bit for bit and the same loss sum, for k at the edges of the kernel's register
//! slots (1, 15, 16, 100, 256), through recpipe-cuda's `BprModel`.

mod common;

use common::Rng;
use recpipe_cuda::Accel;
use recpipe_cuda::bpr::{BprFactors, BprModel, BprShape};
use recpipe_cuda::kernel::Launch;
use recpipe_cuda_harness::HostAccel;
use std::sync::Arc;

/// The cpu's dot product of two rows of `stride` floats: element x into partial sum x % 16,
/// then ((h0+h4)+(h1+h5)) + ((h2+h6)+(h3+h7)) with h_l = s_l + s_(l+8).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0.0f32; 16];
    for (x, (u, q)) in a.iter().zip(b).enumerate() {
        s[x % 16] += u * q;
    }
    let h: [f32; 8] = std::array::from_fn(|l| s[l] + s[l + 8]);
    ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7]))
}

/// One triple's step on rows of `k + 1` floats (the user's last one stays 1); its loss.
fn step(
    p: &mut [f32],
    q: &mut [f32],
    (u, i, j): (usize, usize, usize),
    k: usize,
    lr: f32,
    reg: f32,
) -> f32 {
    let s = k + 1;
    let (pu, qi, qj) = (
        p[u * s..(u + 1) * s].to_vec(),
        q[i * s..(i + 1) * s].to_vec(),
        q[j * s..(j + 1) * s].to_vec(),
    );
    let x = dot(&pu, &qi) - dot(&pu, &qj);
    let g = 1.0 / (1.0 + x.exp());
    let loss = if x > 0.0 {
        (-x).exp().ln_1p()
    } else {
        -x + x.exp().ln_1p()
    };
    let (a, sg) = (1.0 - lr * reg, lr * g);
    for d in 0..s {
        if d < k {
            p[u * s + d] = a * pu[d] + sg * (qi[d] - qj[d]);
        }
        q[i * s + d] = a * qi[d] + sg * pu[d];
        q[j * s + d] = a * qj[d] - sg * pu[d];
    }
    loss
}

#[test]
fn one_warp_steps_as_the_cpu_rule_bit_for_bit() {
    let (n_users, n_items, n) = (7usize, 11usize, 120usize);
    for (k, seed) in [(1usize, 1u64), (15, 2), (16, 3), (100, 4), (256, 5)] {
        let mut rng = Rng(seed);
        let start = BprFactors {
            user: rng.vec(n_users * k),
            item: rng.vec(n_items * k),
            item_bias: rng.vec(n_items),
        };
        let triples: Vec<u32> = (0..n)
            .flat_map(|_| {
                let (u, i) = (rng.below(n_users), rng.below(n_items));
                let j = (i + 1 + rng.below(n_items - 1)) % n_items;
                [u as u32, i as u32, j as u32]
            })
            .collect();
        let (lr, reg) = (0.3f32, 0.05f32);
        // The reference, on the kernel's layout.
        let s = k + 1;
        let mut p: Vec<f32> = start
            .user
            .chunks(k)
            .flat_map(|r| r.iter().copied().chain([1.0]))
            .collect();
        let mut q: Vec<f32> = start
            .item
            .chunks(k)
            .zip(&start.item_bias)
            .flat_map(|(r, &b)| r.iter().copied().chain([b]))
            .collect();
        let mut loss = 0.0f64;
        for t in triples.chunks(3) {
            let ids = (t[0] as usize, t[1] as usize, t[2] as usize);
            loss += f64::from(step(&mut p, &mut q, ids, k, lr, reg));
        }
        let accel: Arc<dyn Accel> = Arc::new(HostAccel::new());
        let shape = BprShape {
            n_users,
            n_items,
            k,
        };
        let mut m = BprModel::new(&accel, shape, &start, n).unwrap();
        // Two launches: the model carries over between sub-epochs.
        let cut = 3 * (n / 3);
        m.steps(&triples[..cut], lr, reg, Launch::SEQUENTIAL)
            .unwrap();
        m.steps(&triples[cut..], lr, reg, Launch::SEQUENTIAL)
            .unwrap();
        let got = m.factors().unwrap();
        let want_user: Vec<f32> = p.chunks(s).flat_map(|r| r[..k].to_vec()).collect();
        let want_item: Vec<f32> = q.chunks(s).flat_map(|r| r[..k].to_vec()).collect();
        let want_bias: Vec<f32> = q.chunks(s).map(|r| r[k]).collect();
        assert_eq!(got.user, want_user, "k={k}: user rows");
        assert_eq!(got.item, want_item, "k={k}: item rows");
        assert_eq!(got.item_bias, want_bias, "k={k}: item biases");
        assert_ne!(got.item, start.item, "k={k}: the steps moved the rows");
        let l = m.take_loss().unwrap();
        assert!(
            (l - loss).abs() <= 1e-12 * loss,
            "k={k}: loss {l} vs {loss}"
        );
        assert_eq!(m.take_loss().unwrap(), 0.0, "take_loss clears the sum");
    }
}
