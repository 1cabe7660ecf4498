//! PCA of the item factors: eigendecomposition of the k×k covariance of the centred factors
//! with cyclic Jacobi rotations (k is tens, so this is exact and instant), then projection.

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Principal axes of a factor table.
#[derive(Debug, Clone)]
pub struct Pca {
    /// (k, c): one unit column per component, variance-descending.
    pub components: Array2<f64>,
    /// Variance along each component.
    pub variance: Vec<f64>,
    /// Share of the total variance along each component.
    pub explained_ratio: Vec<f64>,
    /// (n, c): every row projected onto the components.
    pub projection: Array2<f32>,
}

/// The first `c` principal components of the rows of `x` (n, k), `c` capped at k.
/// Signs are fixed so each component's largest-magnitude loading is positive: the same
/// factors always give the same picture.
pub fn pca(x: ArrayView2<'_, f32>, c: usize) -> Pca {
    let (n, k) = x.dim();
    let c = c.min(k);
    let xf = x.mapv(f64::from);
    let mean = xf.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(k));
    let centred = &xf - &mean;
    let cov = centred.t().dot(&centred) / (n.max(2) - 1) as f64;
    let (values, vectors) = jacobi_eigen(cov);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let mut components = Array2::zeros((k, c));
    let mut variance = Vec::with_capacity(c);
    for (dst, &src) in order.iter().take(c).enumerate() {
        let mut col = vectors.column(src).to_owned();
        let lead = col
            .iter()
            .copied()
            .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        if lead < 0.0 {
            col.mapv_inplace(|v| -v);
        }
        components.column_mut(dst).assign(&col);
        variance.push(values[src].max(0.0));
    }
    let explained_ratio = variance
        .iter()
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect();
    let projection = centred.dot(&components).mapv(|v| v as f32);
    Pca {
        components,
        variance,
        explained_ratio,
        projection,
    }
}

/// Eigenvalues and eigenvectors (columns) of a symmetric matrix.
pub fn jacobi_eigen(mut a: Array2<f64>) -> (Vec<f64>, Array2<f64>) {
    let n = a.nrows();
    let mut v = Array2::eye(n);
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..64 {
        let off: f64 = (0..n)
            .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| a[[p, q]] * a[[p, q]])
            .sum();
        if off <= scale * 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[[p, q]];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let cos = 1.0 / (t * t + 1.0).sqrt();
                let sin = t * cos;
                for r in 0..n {
                    let (rp, rq) = (a[[r, p]], a[[r, q]]);
                    a[[r, p]] = cos * rp - sin * rq;
                    a[[r, q]] = sin * rp + cos * rq;
                }
                for r in 0..n {
                    let (pr, qr) = (a[[p, r]], a[[q, r]]);
                    a[[p, r]] = cos * pr - sin * qr;
                    a[[q, r]] = sin * pr + cos * qr;
                }
                for r in 0..n {
                    let (rp, rq) = (v[[r, p]], v[[r, q]]);
                    v[[r, p]] = cos * rp - sin * rq;
                    v[[r, q]] = sin * rp + cos * rq;
                }
            }
        }
    }
    ((0..n).map(|i| a[[i, i]]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_reconstructs_a_symmetric_matrix() {
        let a = ndarray::array![
            [4.0, 1.0, -2.0, 0.5],
            [1.0, 3.0, 0.0, 1.5],
            [-2.0, 0.0, 5.0, -1.0],
            [0.5, 1.5, -1.0, 2.0]
        ];
        let (values, v) = jacobi_eigen(a.clone());
        let rebuilt = v.dot(&Array2::from_diag(&Array1::from(values))).dot(&v.t());
        for (x, y) in rebuilt.iter().zip(a.iter()) {
            assert!((x - y).abs() < 1e-10, "{rebuilt:?}");
        }
        let vtv = v.t().dot(&v);
        for ((i, j), x) in vtv.indexed_iter() {
            assert!((x - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10);
        }
    }

    #[test]
    fn pca_finds_the_stretched_axis() {
        // Points along (1, 1, 0) with a little spread on (0, 0, 1): PC1 must be about (1,1,0)/√2.
        let rows: Vec<f32> = (0..50)
            .flat_map(|i| {
                let t = i as f32 - 25.0;
                [t, t, 0.1 * ((i % 5) as f32 - 2.0)]
            })
            .collect();
        let x = Array2::from_shape_vec((50, 3), rows).unwrap();
        let p = pca(x.view(), 5);
        assert_eq!(p.components.dim(), (3, 3), "capped at k");
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!(
            (p.components[[0, 0]] - s).abs() < 1e-3,
            "{:?}",
            p.components
        );
        assert!((p.components[[1, 0]] - s).abs() < 1e-3);
        assert!(p.explained_ratio[0] > 0.99);
        assert!(p.variance[0] >= p.variance[1] && p.variance[1] >= p.variance[2]);
    }
}
