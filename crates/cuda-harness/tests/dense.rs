//! dense.cu's kernels (the neural models' layers) on the host-thread device, each against a
//! plain Rust reference of the cpu trainer's arithmetic (train/src/cpu/layers.rs, net.rs,
//! neural.rs), bit for bit (the GEMM against a reference that fuses its multiply-adds in k
//! order as the kernel does), on several launch shapes.

mod common;

use common::Rng;
use recpipe_cuda::dense::{GEMM_THREADS, gemm_launch};
use recpipe_cuda::{Accel, Arg, Buf, Kernel, Launch, Purpose};
use recpipe_cuda_harness::HostAccel;
use std::sync::Arc;

const TEST: Purpose = Purpose {
    what: "the test data",
    setting: "none",
};

fn dev() -> Arc<dyn Accel> {
    Arc::new(HostAccel::new())
}

fn buf<T: recpipe_cuda::buf::Pod>(a: &Arc<dyn Accel>, v: &[T]) -> Buf<T> {
    Buf::from_slice(a, v, TEST).unwrap()
}

/// Small grid-stride shapes, including one that leaves work for a second pass.
const SHAPES: [Launch; 2] = [Launch { grid: 1, block: 32 }, Launch { grid: 2, block: 64 }];

/// op(X)[r, c] of a row-major X with leading dimension ld.
fn at(x: &[f32], ld: usize, t: bool, r: usize, c: usize) -> f32 {
    if t { x[c * ld + r] } else { x[r * ld + c] }
}

#[test]
fn gemm_matches_the_reference_in_every_transposition() {
    let a = dev();
    let mut rng = Rng(1);
    // Shapes across tile edges: 1 row, a partial tile, several tiles and a long k.
    for (m, n, k) in [
        (1, 1, 1),
        (5, 17, 3),
        (33, 10, 40),
        (64, 16, 129),
        (3, 18, 600),
    ] {
        for (ta, tb) in [(false, true), (true, false), (false, false)] {
            for (bias, acc) in [(true, false), (false, true), (false, false)] {
                let (lda, ldb) = (if ta { m } else { k }, if tb { k } else { n });
                let av = rng.vec(m * k);
                let bv = rng.vec(k * n);
                let cv = rng.vec(m * n);
                let biasv = rng.vec(n);
                let mut want = vec![0.0f32; m * n];
                for i in 0..m {
                    for j in 0..n {
                        // matrixmultiply's order: fused chains over blocks of 256, added.
                        let mut s = 0.0f32;
                        for k0 in (0..k).step_by(256) {
                            let mut part = 0.0f32;
                            for x in k0..k.min(k0 + 256) {
                                part = at(&av, lda, ta, i, x).mul_add(at(&bv, ldb, tb, x, j), part);
                            }
                            s += part;
                        }
                        if acc {
                            s += cv[i * n + j];
                        }
                        if bias {
                            s += biasv[j];
                        }
                        want[i * n + j] = s;
                    }
                }
                let (da, db, dc, dbias) =
                    (buf(&a, &av), buf(&a, &bv), buf(&a, &cv), buf(&a, &biasv));
                let u = |v: usize| Arg::U32(v as u32);
                let args = [
                    u(m),
                    u(n),
                    u(k),
                    da.arg(),
                    u(lda),
                    Arg::I32(ta as i32),
                    db.arg(),
                    u(ldb),
                    Arg::I32(tb as i32),
                    dc.arg(),
                    u(n),
                    if bias { dbias.arg() } else { Arg::NULL },
                    Arg::I32(acc as i32),
                ];
                // The host code's shape (blocks loop over tiles when capped), and one block.
                for shape in [
                    gemm_launch(m, n, 1),
                    Launch {
                        grid: 1,
                        block: GEMM_THREADS,
                    },
                ] {
                    dc.write(0, &cv).unwrap();
                    a.launch(Kernel::DenseGemm, shape, &args).unwrap();
                    let what = format!("{m}x{n}x{k} ta {ta} tb {tb} bias {bias} acc {acc}");
                    // Same fused order as the reference: equal bit for bit.
                    assert_eq!(dc.to_vec().unwrap(), want, "{what}");
                }
            }
        }
    }
}

/// layers.rs batch_stats, normalize, ReLU and dropout; then the backward pass.
#[test]
fn batch_norm_activation_and_dropout_forward_and_back_match_the_cpu_rules() {
    let a = dev();
    let mut rng = Rng(2);
    let (b, n) = (37usize, 6usize);
    let z = rng.vec(b * n);
    let gamma: Vec<f32> = (0..n).map(|_| 1.0 + 0.5 * rng.sym(1.0)).collect();
    let beta = rng.vec(n);
    let rmean0 = rng.vec(n);
    let rvar0: Vec<f32> = (0..n).map(|_| 1.0 + 0.5 * rng.sym(1.0)).collect();
    let p = 0.3f32;
    let keep = 1.0 / (1.0 - p);
    let kept: Vec<bool> = (0..b * n).map(|_| rng.sym(1.0) > -0.4).collect();
    let mut mask = vec![0u32; (b * n).div_ceil(32)];
    for (e, &k) in kept.iter().enumerate() {
        if k {
            mask[e / 32] |= 1 << (e % 32);
        }
    }
    // Reference (layers.rs).
    let (mut mean, mut inv, mut rmean, mut rvar) = (
        vec![0.0f32; n],
        vec![0.0f32; n],
        rmean0.clone(),
        rvar0.clone(),
    );
    for j in 0..n {
        let s: f64 = (0..b).fold(0.0, |a, r| a + z[r * n + j] as f64) / b as f64;
        let q: f64 = (0..b)
            .map(|r| {
                let d = z[r * n + j] as f64 - s;
                d * d
            })
            .fold(0.0, |a, v| a + v);
        let var = q / b as f64;
        let unbiased = var * b as f64 / (b - 1) as f64;
        let mo = 0.1f32;
        rmean[j] = (1.0 - mo) * rmean[j] + mo * s as f32;
        rvar[j] = (1.0 - mo) * rvar[j] + mo * unbiased as f32;
        mean[j] = s as f32;
        inv[j] = 1.0 / (var as f32 + 1e-5).sqrt();
    }
    let mut xhat = vec![0.0f32; b * n];
    let mut out = vec![0.0f32; b * n];
    for e in 0..b * n {
        let j = e % n;
        xhat[e] = (z[e] - mean[j]) * inv[j];
        let v = (gamma[j] * xhat[e] + beta[j]).max(0.0);
        out[e] = v * if kept[e] { keep } else { 0.0 };
    }
    let dy = rng.vec(b * n);
    let mut d = dy.clone();
    for e in 0..b * n {
        d[e] *= if kept[e] { keep } else { 0.0 };
        if out[e] <= 0.0 {
            d[e] = 0.0;
        }
    }
    let (mut dg, mut db) = (vec![0.0f32; n], vec![0.0f32; n]);
    let mut dz = d.clone();
    for j in 0..n {
        let (mut sd, mut sdx) = (0.0f32, 0.0f32);
        for r in 0..b {
            let e = r * n + j;
            dg[j] += d[e] * xhat[e];
            db[j] += d[e];
            let dxh = d[e] * gamma[j];
            sd += dxh;
            sdx += dxh * xhat[e];
        }
        let bf = b as f32;
        for r in 0..b {
            let e = r * n + j;
            let dxh = d[e] * gamma[j];
            dz[e] = inv[j] / bf * (bf * dxh - sd - xhat[e] * sdx);
        }
    }
    let colsum: Vec<f32> = (0..n)
        .map(|j| (0..b).fold(0.0f32, |s, r| s + dz[r * n + j]))
        .collect();
    for shape in SHAPES {
        let u = |v: usize| Arg::U32(v as u32);
        let (dzb, dmean, dinv) = (
            buf(&a, &z),
            buf(&a, &vec![0.0f32; n]),
            buf(&a, &vec![0.0f32; n]),
        );
        let (drm, drv) = (buf(&a, &rmean0), buf(&a, &rvar0));
        let args = [
            u(b),
            u(n),
            dzb.arg(),
            dmean.arg(),
            dinv.arg(),
            drm.arg(),
            drv.arg(),
            Arg::I32(1),
            Arg::F32(0.1),
            Arg::F32(1e-5),
        ];
        a.launch(Kernel::DenseBnStats, shape, &args).unwrap();
        assert_eq!(dmean.to_vec().unwrap(), mean);
        assert_eq!(dinv.to_vec().unwrap(), inv);
        assert_eq!(drm.to_vec().unwrap(), rmean);
        assert_eq!(drv.to_vec().unwrap(), rvar);
        let (dout, dxhat, dg_b, dbeta, dmask) = (
            buf(&a, &vec![0.0f32; b * n]),
            buf(&a, &vec![0.0f32; b * n]),
            buf(&a, &gamma),
            buf(&a, &beta),
            buf(&a, &mask),
        );
        let args = [
            u(b),
            u(n),
            dzb.arg(),
            dout.arg(),
            dxhat.arg(),
            dmean.arg(),
            dinv.arg(),
            dg_b.arg(),
            dbeta.arg(),
            Arg::I32(1),
            dmask.arg(),
            Arg::F32(p),
            Arg::I32(1),
        ];
        a.launch(Kernel::DenseActivate, shape, &args).unwrap();
        assert_eq!(dxhat.to_vec().unwrap(), xhat);
        assert_eq!(dout.to_vec().unwrap(), out);
        let dd = buf(&a, &dy);
        let args = [
            u(b),
            u(n),
            dd.arg(),
            dout.arg(),
            dmask.arg(),
            Arg::F32(p),
            Arg::I32(1),
        ];
        a.launch(Kernel::DenseActBack, shape, &args).unwrap();
        assert_eq!(dd.to_vec().unwrap(), d);
        let (ggam, gbet) = (buf(&a, &vec![0.0f32; n]), buf(&a, &vec![0.0f32; n]));
        let args = [
            u(b),
            u(n),
            dd.arg(),
            dxhat.arg(),
            dg_b.arg(),
            dinv.arg(),
            ggam.arg(),
            gbet.arg(),
        ];
        a.launch(Kernel::DenseBnBack, shape, &args).unwrap();
        assert_eq!(ggam.to_vec().unwrap(), dg);
        assert_eq!(gbet.to_vec().unwrap(), db);
        assert_eq!(dd.to_vec().unwrap(), dz);
        let cs = buf(&a, &vec![0.0f32; n]);
        a.launch(
            Kernel::DenseColSum,
            shape,
            &[u(b), u(n), dd.arg(), cs.arg()],
        )
        .unwrap();
        assert_eq!(cs.to_vec().unwrap(), colsum);
        // One column (contiguous): ndarray sums it with its eightfold unrolled fold.
        let mut part = [0.0f32; 8];
        for r in 0..(b / 8) * 8 {
            part[r % 8] += dz[r];
        }
        let mut one = 0.0f32;
        for l in 0..4 {
            one += part[l] + part[l + 4];
        }
        for &v in &dz[(b / 8) * 8..b] {
            one += v;
        }
        let c1 = buf(&a, &[0.0f32]);
        let args = [u(b), u(1), dd.arg(), c1.arg()];
        a.launch(Kernel::DenseColSum, shape, &args).unwrap();
        assert_eq!(c1.to_vec().unwrap(), [one]);
        // Evaluation mode: the running statistics, no xhat, no mask.
        let args = [
            u(b),
            u(n),
            dzb.arg(),
            dmean.arg(),
            dinv.arg(),
            drm.arg(),
            drv.arg(),
            Arg::I32(0),
            Arg::F32(0.1),
            Arg::F32(1e-5),
        ];
        a.launch(Kernel::DenseBnStats, shape, &args).unwrap();
        let want: Vec<f32> = rvar.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
        assert_eq!(dinv.to_vec().unwrap(), want);
        assert_eq!(dmean.to_vec().unwrap(), rmean);
    }
}

/// neural.rs loss_and_grad: squared error of the squashed output, and softmax cross-entropy
/// against the nearest class.
#[test]
fn losses_and_output_gradients_match_the_cpu() {
    let a = dev();
    let mut rng = Rng(3);
    let n = 23usize;
    let ratings: Vec<f32> = (0..n).map(|i| [1.0, 2.5, 3.0, 4.5, 5.0][i % 5]).collect();
    let idx: Vec<u32> = (0..n as u32).rev().collect();
    let (dr, di) = (buf(&a, &ratings), buf(&a, &idx));
    let u = |v: usize| Arg::U32(v as u32);
    // Regression, squashed into (0, 5.5) and plain.
    for squash in [true, false] {
        let z: Vec<f32> = rng.vec(n).iter().map(|v| 3.0 * v).collect();
        let (mut loss, mut dz) = (vec![0.0f32; n], vec![0.0f32; n]);
        for j in 0..n {
            let y = ratings[idx[j] as usize];
            let (p, dp) = if squash {
                let s = 1.0 / (1.0 + (-z[j]).exp());
                (5.5 * s, 5.5 * s * (1.0 - s))
            } else {
                (z[j], 1.0)
            };
            let e = p - y;
            loss[j] = e * e;
            dz[j] = 2.0 * e * dp / n as f32;
        }
        let (dzin, dl, dd) = (
            buf(&a, &z),
            buf(&a, &vec![0.0f32; n]),
            buf(&a, &vec![0.0f32; n]),
        );
        let args = [
            u(n),
            u(1),
            dzin.arg(),
            dr.arg(),
            di.arg(),
            Arg::NULL,
            Arg::I32(squash as i32),
            Arg::F32(0.0),
            Arg::F32(5.5),
            dd.arg(),
            dl.arg(),
        ];
        a.launch(Kernel::DenseLoss, SHAPES[1], &args).unwrap();
        assert_eq!(dl.to_vec().unwrap(), loss);
        assert_eq!(dd.to_vec().unwrap(), dz);
    }
    let classes = [1.0f32, 2.0, 3.0, 4.0, 5.0];
    let c = classes.len();
    let z = rng.vec(n * c);
    let (mut loss, mut dz) = (vec![0.0f32; n], vec![0.0f32; n * c]);
    for j in 0..n {
        let y = ratings[idx[j] as usize];
        let t = recpipe_core_nearest(&classes, y);
        let row = &z[j * c..(j + 1) * c];
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        loss[j] = sum.ln() - (row[t] - max);
        for (k, &v) in row.iter().enumerate() {
            dz[j * c + k] = ((v - max).exp() / sum - f32::from(k == t)) / n as f32;
        }
    }
    let (dzin, dl, dd, dc) = (
        buf(&a, &z),
        buf(&a, &vec![0.0f32; n]),
        buf(&a, &vec![0.0f32; n * c]),
        buf(&a, &classes),
    );
    let args = [
        u(n),
        u(c),
        dzin.arg(),
        dr.arg(),
        di.arg(),
        dc.arg(),
        Arg::I32(0),
        Arg::F32(0.0),
        Arg::F32(0.0),
        dd.arg(),
        dl.arg(),
    ];
    a.launch(Kernel::DenseLoss, SHAPES[0], &args).unwrap();
    assert_eq!(dl.to_vec().unwrap(), loss);
    assert_eq!(dd.to_vec().unwrap(), dz);
}

/// math.rs nearest_class: the first class at the least distance (2.5 → 2.0).
fn recpipe_core_nearest(classes: &[f32], v: f32) -> usize {
    let mut best = 0;
    for (c, &x) in classes.iter().enumerate() {
        if (x - v).abs() < (classes[best] - v).abs() {
            best = c;
        }
    }
    best
}

/// net.rs join (concat / product, features into x0 or the tower's input), its way back to
/// the embedding rows, the tower's columns and input dropout.
#[test]
fn gather_scatter_and_column_copies_match_the_cpu_join() {
    let a = dev();
    let mut rng = Rng(4);
    let (nu, ni, k, fw, n) = (5usize, 7usize, 37usize, 3usize, 11usize);
    let (p, q, f) = (rng.vec(nu * k), rng.vec(ni * k), rng.vec(ni * fw));
    let user: Vec<u32> = (0..20).map(|i| (i * 3 % nu) as u32).collect();
    let item: Vec<u32> = (0..20).map(|i| (i * 5 % ni) as u32).collect();
    let idx: Vec<u32> = (0..n as u32).map(|j| (j * 7) % 20).collect();
    let (du, dit, dix, dp, dq, df) = (
        buf(&a, &user),
        buf(&a, &item),
        buf(&a, &idx),
        buf(&a, &p),
        buf(&a, &q),
        buf(&a, &f),
    );
    let u = |v: usize| Arg::U32(v as u32);
    for product in [false, true] {
        let ew = if product { k } else { 2 * k };
        let d0 = ew + fw;
        let mut want = vec![0.0f32; n * d0];
        for j in 0..n {
            let r = idx[j] as usize;
            let (wu, wi) = (
                &p[user[r] as usize * k..][..k],
                &q[item[r] as usize * k..][..k],
            );
            let row = &mut want[j * d0..(j + 1) * d0];
            for x in 0..k {
                if product {
                    row[x] = wu[x] * wi[x];
                } else {
                    row[x] = wu[x];
                    row[k + x] = wi[x];
                }
            }
            row[ew..].copy_from_slice(&f[item[r] as usize * fw..][..fw]);
        }
        for shape in SHAPES {
            let x0 = buf(&a, &vec![0.0f32; n * d0]);
            let args = [
                u(n),
                du.arg(),
                dit.arg(),
                dix.arg(),
                dp.arg(),
                dq.arg(),
                u(k),
                Arg::I32(product as i32),
                df.arg(),
                u(fw),
                x0.arg(),
                u(d0),
                x0.arg(),
                u(d0),
                u(ew),
            ];
            a.launch(Kernel::DenseGather, shape, &args).unwrap();
            assert_eq!(x0.to_vec().unwrap(), want, "product {product}");
            // The feature columns out and back in (the tower's input / output route).
            let cols = buf(&a, &vec![0.0f32; n * fw]);
            a.launch(
                Kernel::DenseCopyCols,
                shape,
                &[u(n), u(fw), x0.arg(), u(d0), u(ew), cols.arg(), u(fw), u(0)],
            )
            .unwrap();
            let want_cols: Vec<f32> = (0..n)
                .flat_map(|j| want[j * d0 + ew..(j + 1) * d0].to_vec())
                .collect();
            assert_eq!(cols.to_vec().unwrap(), want_cols);
            // Gradients back to the rows: dx0 random.
            let dx0 = rng.vec(n * d0);
            let (ddx, gu, gi) = (
                buf(&a, &dx0),
                buf(&a, &vec![0.0f32; n * k]),
                buf(&a, &vec![0.0f32; n * k]),
            );
            let args = [
                u(n),
                du.arg(),
                dit.arg(),
                dix.arg(),
                dp.arg(),
                dq.arg(),
                u(k),
                Arg::I32(product as i32),
                ddx.arg(),
                u(d0),
                gu.arg(),
                gi.arg(),
            ];
            a.launch(Kernel::DenseEmbGrad, shape, &args).unwrap();
            let (mut wgu, mut wgi) = (vec![0.0f32; n * k], vec![0.0f32; n * k]);
            for j in 0..n {
                let r = idx[j] as usize;
                let (wu, wi) = (
                    &p[user[r] as usize * k..][..k],
                    &q[item[r] as usize * k..][..k],
                );
                for x in 0..k {
                    let d = dx0[j * d0 + x];
                    if product {
                        wgu[j * k + x] = d * wi[x];
                        wgi[j * k + x] = d * wu[x];
                    } else {
                        wgu[j * k + x] = d;
                        wgi[j * k + x] = dx0[j * d0 + k + x];
                    }
                }
            }
            assert_eq!(gu.to_vec().unwrap(), wgu);
            assert_eq!(gi.to_vec().unwrap(), wgi);
            // Input dropout in place: every third value dropped.
            let mut mask = vec![0u32; (n * d0).div_ceil(32)];
            for e in (0..n * d0).filter(|e| e % 3 != 0) {
                mask[e / 32] |= 1 << (e % 32);
            }
            let dm = buf(&a, &mask);
            a.launch(
                Kernel::DenseDropout,
                shape,
                &[u(n), u(d0), x0.arg(), dm.arg(), Arg::F32(0.25)],
            )
            .unwrap();
            let dropped: Vec<f32> = want
                .iter()
                .enumerate()
                .map(|(e, v)| v * if e % 3 != 0 { 1.0 / 0.75 } else { 0.0 })
                .collect();
            assert_eq!(x0.to_vec().unwrap(), dropped);
        }
    }
}
