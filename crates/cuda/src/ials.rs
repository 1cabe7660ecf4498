//! iALS on a device: the cpu's half-sweeps (train/src/ranking/ials.rs) as launches. Both
//! sides' interactions (each row's other-side indices and extra confidences c − 1) and both
//! factor tables are uploaded once; a half-sweep is one `dense_gemm` (G = YᵀY, k × k),
//! G + reg·I on the host (k² floats, added as the cpu adds it) and one `ials_cg` launch (a
//! block per row, its CG steps warm-started from the row's current value). The tables come
//! back with [`Ials::factors`].

use crate::Error;
use crate::accel::Accel;
use crate::buf::{Buf, Purpose, check_fits, size_of_n};
use crate::dense::gemm_launch;
use crate::kernel::{Arg, Kernel, Launch};
use std::sync::Arc;

/// The most factors `ials_cg` holds per row (`IALS_KMAX` of ials.cu).
pub const KMAX: usize = 256;
/// Blocks per multiprocessor of the row launches.
const WAVES: u32 = 8;

const MODEL: Purpose = Purpose {
    what: "the iALS factors and interactions",
    setting: "train.k (or use device = \"cpu\")",
};

/// One side's rows: row r's entries `start[r]..start[r + 1]` of `idx` (rows of the other
/// side's table) and `w` (c − 1 of each interaction).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    pub start: &'a [u32],
    pub idx: &'a [u32],
    pub w: &'a [f32],
}

impl Rows<'_> {
    fn n_rows(&self) -> usize {
        self.start.len().saturating_sub(1)
    }
}

/// A side's rows on the device, with the CG's per-entry scratch.
#[derive(Debug)]
struct Side {
    n_rows: usize,
    start: Buf<u32>,
    idx: Buf<u32>,
    w: Buf<f32>,
    coef: Buf<f32>,
}

/// An iALS model on a device: users' factors X and items' Y, k each.
#[derive(Debug)]
pub struct Ials {
    accel: Arc<dyn Accel>,
    k: usize,
    reg: f32,
    steps: usize,
    x: Buf<f32>,
    y: Buf<f32>,
    g: Buf<f32>,
    users: Side,
    items: Side,
}

/// Device bytes for `n_users` + `n_items` rows of k factors and `nnz` interactions (each
/// stored on both sides: index, weight, scratch).
pub fn need(n_users: usize, n_items: usize, nnz: usize, k: usize) -> usize {
    let rows = n_users.saturating_add(n_items);
    size_of_n::<f32>(rows.saturating_mul(k).saturating_add(k * k))
        .saturating_add(size_of_n::<u32>(rows.saturating_add(2)))
        .saturating_add(nnz.saturating_mul(2 * 12))
}

impl Ials {
    /// The model at `x0` (n_users × k) and `y0` (n_items × k), row-major, with the users'
    /// rows and the items' rows of the same interactions. Refuses k above [`KMAX`] (the
    /// caller checks) and, before allocating, a model the device cannot hold.
    pub fn new(
        accel: &Arc<dyn Accel>,
        (k, reg, steps): (usize, f32, usize),
        users: Rows<'_>,
        items: Rows<'_>,
        x0: &[f32],
        y0: &[f32],
    ) -> Result<Self, Error> {
        assert!((1..=KMAX).contains(&k), "k = {k} outside 1..={KMAX}");
        let (n_users, n_items) = (users.n_rows(), items.n_rows());
        assert_eq!(x0.len(), n_users * k, "x0 is n_users × k");
        assert_eq!(y0.len(), n_items * k, "y0 is n_items × k");
        assert_eq!(
            users.idx.len(),
            items.idx.len(),
            "both sides hold every interaction"
        );
        check_fits(
            accel.as_ref(),
            need(n_users, n_items, users.idx.len(), k),
            MODEL,
        )?;
        let side = |r: Rows<'_>| -> Result<Side, Error> {
            Ok(Side {
                n_rows: r.n_rows(),
                start: Buf::from_slice(accel, r.start, MODEL)?,
                idx: Buf::from_slice(accel, r.idx, MODEL)?,
                w: Buf::from_slice(accel, r.w, MODEL)?,
                coef: Buf::zeros(accel, r.idx.len(), MODEL)?,
            })
        };
        Ok(Ials {
            accel: accel.clone(),
            k,
            reg,
            steps,
            x: Buf::from_slice(accel, x0, MODEL)?,
            y: Buf::from_slice(accel, y0, MODEL)?,
            g: Buf::zeros(accel, k * k, MODEL)?,
            users: side(users)?,
            items: side(items)?,
        })
    }

    /// One alternating sweep: every user row against the items, then every item row
    /// against the new users.
    pub fn epoch(&mut self) -> Result<(), Error> {
        self.half_sweep(true)?;
        self.half_sweep(false)
    }

    /// (X, Y) on the host.
    pub fn factors(&self) -> Result<(Vec<f32>, Vec<f32>), Error> {
        Ok((self.x.to_vec()?, self.y.to_vec()?))
    }

    /// The threads of an `ials_cg` block: at least k (a thread per dimension), whole warps,
    /// never [`Launch::BLOCK`] (the harness's `with_shape` narrows launches of that width,
    /// and the kernel needs every dimension's thread).
    fn block(&self) -> u32 {
        let b = (self.k.div_ceil(32) * 32).max(64) as u32;
        if b == Launch::BLOCK { b + 32 } else { b }
    }

    /// Solves the users' rows (`users`) or the items' rows against the other table.
    fn half_sweep(&self, users: bool) -> Result<(), Error> {
        let k = self.k;
        let (x, y, side) = if users {
            (&self.x, &self.y, &self.users)
        } else {
            (&self.y, &self.x, &self.items)
        };
        let n_other = if users {
            self.items.n_rows
        } else {
            self.users.n_rows
        };
        let u = |v: usize| Arg::U32(v as u32);
        // G = YᵀY: op(A) = Yᵀ (k × n_other), op(B) = Y (n_other × k).
        let gemm = [
            u(k),
            u(k),
            u(n_other),
            y.arg(),
            u(k),
            Arg::I32(1),
            y.arg(),
            u(k),
            Arg::I32(0),
            self.g.arg(),
            u(k),
            Arg::NULL,
            Arg::I32(0),
        ];
        let shape = gemm_launch(k, k, self.accel.multiprocessors());
        self.accel.launch(Kernel::DenseGemm, shape, &gemm)?;
        let mut g = self.g.to_vec()?;
        for d in 0..k {
            g[d * k + d] += self.reg;
        }
        self.g.write(0, &g)?;
        let cap = (self.accel.multiprocessors().max(1) * WAVES) as usize;
        let shape = Launch {
            grid: side.n_rows.clamp(1, cap) as u32,
            block: self.block(),
        };
        let args = [
            u(side.n_rows),
            u(k),
            x.arg(),
            y.arg(),
            self.g.arg(),
            side.start.arg(),
            side.idx.arg(),
            side.w.arg(),
            side.coef.arg(),
            u(self.steps),
        ];
        self.accel.launch(Kernel::IalsCg, shape, &args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_counts_both_tables_the_gram_matrix_and_both_sides() {
        let want = 4 * ((10 + 20) * 8 + 64) + 4 * 32 + 5 * 24;
        assert_eq!(need(10, 20, 5, 8), want);
    }
}
