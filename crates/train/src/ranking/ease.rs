//! EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): the item-item
//! weights B minimising ‖X − XB‖² + λ‖B‖² with diag(B) = 0, in closed form:
//!
//! ```text
//! G = XᵀX + λI,   P = G⁻¹,   B_ij = −P_ij / P_jj,   B_jj = 0
//! ```
//!
//! X is the binary user × item interaction matrix, so G is built from co-occurrence counts
//! (each user's item pairs), never from a dense X. G is symmetric positive definite (λ > 0),
//! so P comes from faer's Cholesky factorization and its inverse, computed in place in
//! n_items² f32 buffers: three of them at the peak (G and its factor, the inverse, faer's
//! workspace for L⁻¹). A catalogue too large for them is refused before anything is
//! allocated, with the size and the alternatives.

use super::Interactions;
use crate::error::Result;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::{MatMut, MatRef, Par};
use rayon::prelude::*;
use recpipe_core::memory::{Need, check_need, product};

/// Bytes per stored value.
const F32: u64 = 4;

/// What EASE holds at its peak for `n_items` items: the Gram matrix (factored in place), the
/// inverse and faer's workspace for the inverse of the factor, each n_items² f32.
pub fn need(n_items: usize) -> Need {
    let square = product(&[n_items, n_items]);
    let mut need = Need::new();
    need.add("EASE Gram matrix / Cholesky factor", square, F32);
    need.add("EASE inverse", square, F32);
    need.add("EASE inverse workspace", square, F32);
    need
}

/// Refuses an item count whose dense matrices do not fit, naming the size and what to do.
pub fn check(n_items: usize) -> Result<()> {
    let hint = format!(
        "the item count (now {n_items}: EASE holds three {n_items}×{n_items} f32 matrices): \
         drop rare items with the ingest stage's `min_ratings`, or train model = \"ials\" or \
         \"bpr\", whose memory grows with the interactions, not with items²"
    );
    check_need("EASE", &need(n_items), &hint)?;
    Ok(())
}

/// The (n_items × n_items, row-major) weights B of EASE with L2 weight `lambda`.
pub fn fit(data: &Interactions, lambda: f32) -> Result<Vec<f32>> {
    let n = data.n_items;
    check(n)?;
    let mut g = gram(data);
    for i in 0..n {
        g[i * n + i] += lambda;
    }
    let p = inverse_spd(g, n);
    Ok(weights(p, n))
}

/// XᵀX as a dense n_items² matrix (symmetric, so row- and column-major at once): row i
/// counts, for each user of item i, every item of that user.
fn gram(data: &Interactions) -> Vec<f32> {
    let n = data.n_items;
    let users_of = recpipe_core::csr::Csr::group(
        n,
        (0..data.n_users as u32).flat_map(|u| data.items.row(u).iter().map(move |&i| (i, u))),
    );
    let mut g = vec![0.0f32; n * n];
    if n == 0 {
        return g;
    }
    g.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for &u in users_of.row(i as u32) {
            for &j in data.items.row(u) {
                row[j as usize] += 1.0;
            }
        }
    });
    g
}

/// The inverse of the symmetric positive definite `g` (n × n), consumed: its lower triangle
/// in the returned buffer, stored column-major (so, read row-major, the upper triangle:
/// element (i, j) with i ≤ j sits at i·n + j). The other triangle is unspecified.
fn inverse_spd(mut g: Vec<f32>, n: usize) -> Vec<f32> {
    let par = Par::rayon(0);
    {
        let a = MatMut::from_column_major_slice_mut(&mut g, n, n);
        let mut mem = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f32>(
            n,
            par,
            Default::default(),
        ));
        // G = XᵀX + λI with λ > 0 is positive definite: a pivot ≤ 0 could only come from
        // rounding on a catastrophically ill-conditioned G, which λ > 0 rules out.
        llt::factor::cholesky_in_place(
            a,
            Default::default(),
            par,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .expect("XᵀX + λI with λ > 0 is positive definite");
    }
    let mut out = vec![0.0f32; n * n];
    {
        let l = MatRef::from_column_major_slice(&g, n, n);
        let mut mem = MemBuffer::new(llt::inverse::inverse_scratch::<f32>(n, par));
        llt::inverse::inverse(
            MatMut::from_column_major_slice_mut(&mut out, n, n),
            l,
            par,
            MemStack::new(&mut mem),
        );
    }
    out
}

/// B from P (as [`inverse_spd`] leaves it), in place: B_ij = −P_ij / P_jj, zero diagonal,
/// row-major.
fn weights(mut p: Vec<f32>, n: usize) -> Vec<f32> {
    let diag: Vec<f32> = (0..n).map(|i| p[i * n + i]).collect();
    for i in 0..n {
        p[i * n + i] = 0.0;
        for j in i + 1..n {
            let pij = p[i * n + j];
            p[i * n + j] = -pij / diag[j];
            p[j * n + i] = -pij / diag[i];
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use recpipe_core::csr::Csr;

    fn interactions(n_users: usize, n_items: usize, pairs: &[(u32, u32)]) -> Interactions {
        let mut items = Csr::group(n_users, pairs.iter().copied());
        items.sort_rows();
        Interactions {
            items,
            n_users,
            n_items,
        }
    }

    /// B by the formula with a plain Gauss-Jordan inverse in f64 on a dense X.
    fn reference(x: &[Vec<f64>], lambda: f64) -> Vec<Vec<f64>> {
        let n = x[0].len();
        let mut a: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut row: Vec<f64> = (0..n)
                    .map(|j| x.iter().map(|r| r[i] * r[j]).sum::<f64>())
                    .collect();
                row[i] += lambda;
                row.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
                row
            })
            .collect();
        for c in 0..n {
            let piv = (c..n)
                .max_by(|&p, &q| a[p][c].abs().total_cmp(&a[q][c].abs()))
                .unwrap();
            a.swap(c, piv);
            let d = a[c][c];
            a[c].iter_mut().for_each(|v| *v /= d);
            let pivot = a[c].clone();
            for (r, row) in a.iter_mut().enumerate() {
                if r != c {
                    let f = row[c];
                    row.iter_mut().zip(&pivot).for_each(|(v, &q)| *v -= f * q);
                }
            }
        }
        let p: Vec<Vec<f64>> = a.iter().map(|r| r[n..].to_vec()).collect();
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| if i == j { 0.0 } else { -p[i][j] / p[j][j] })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn matches_a_direct_dense_solve_of_the_formula() {
        // 6 users × 5 items, every item used, overlapping tastes.
        let x: Vec<Vec<f64>> = [
            [1, 1, 0, 0, 1],
            [0, 1, 1, 0, 0],
            [1, 0, 1, 1, 0],
            [0, 0, 1, 1, 1],
            [1, 1, 1, 0, 0],
            [0, 1, 0, 1, 1],
        ]
        .iter()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
        let pairs: Vec<(u32, u32)> = (0..6)
            .flat_map(|u| (0..5).map(move |i| (u, i)))
            .filter(|&(u, i)| x[u as usize][i as usize] == 1.0)
            .collect();
        for lambda in [0.5f32, 3.0, 40.0] {
            let b = fit(&interactions(6, 5, &pairs), lambda).unwrap();
            let want = reference(&x, lambda as f64);
            for i in 0..5 {
                assert_eq!(b[i * 5 + i], 0.0, "zero diagonal");
                for j in 0..5 {
                    let got = b[i * 5 + j] as f64;
                    assert!(
                        (got - want[i][j]).abs() < 1e-5,
                        "λ={lambda} B[{i},{j}] = {got}, reference {}",
                        want[i][j]
                    );
                }
            }
        }
    }

    #[test]
    fn top_items_stay_in_the_users_community() {
        // Two disjoint communities of 20 items; each user has 6 items of its own community.
        let (n_users, per) = (60u32, 20u32);
        let mut rng = crate::rng::Rng::new(3);
        let mut pairs = Vec::new();
        for u in 0..n_users {
            let c = u % 2;
            let own: Vec<u32> = (c * per..(c + 1) * per).collect();
            pairs.extend(rng.sample_sorted(&own, 6).into_iter().map(|i| (u, i)));
        }
        let data = interactions(n_users as usize, 2 * per as usize, &pairs);
        let n = data.n_items;
        let b = fit(&data, 10.0).unwrap();
        for u in 0..n_users {
            let seen = data.items.row(u);
            let mut s: Vec<(f32, u32)> = (0..n as u32)
                .filter(|i| seen.binary_search(i).is_err())
                .map(|j| {
                    (
                        seen.iter().map(|&h| b[h as usize * n + j as usize]).sum(),
                        j,
                    )
                })
                .collect();
            s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let c = u % 2;
            for &(score, j) in &s[..10] {
                assert_eq!(j / per, c, "user {u}'s top-10 has item {j} ({score})");
            }
        }
        // Across communities the weights are exactly zero: G is block diagonal.
        assert_eq!(b[3 * n + (per as usize + 2)], 0.0);
    }

    #[test]
    fn a_catalogue_too_large_is_refused_with_its_size_and_the_alternatives() {
        let data = interactions(2, 2_000_000, &[(0, 5), (1, 1_999_999)]);
        let err = fit(&data, 100.0).unwrap_err().to_string();
        for part in [
            "EASE: needs 43.7 TiB",
            "2000000×2000000",
            "min_ratings",
            "\"ials\"",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
    }
}
