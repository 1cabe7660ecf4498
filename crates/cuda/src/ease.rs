//! EASE on a device: B = −P_ij / P_jj (zero diagonal) with P = (XᵀX + λI)⁻¹, as the cpu's
//! train/src/ranking/ease.rs computes it with faer, here with `ease.cu`'s own kernels (no
//! cuBLAS / cuSOLVER, which ship with the toolkit and not with the driver).
//!
//! [`fit`] uploads the users' item lists, counts XᵀX into an n_items² matrix on the device
//! (`ease_gram`, integer counts: exact), adds λ, and inverts it in place by the blocked
//! Gauss-Jordan sweep of `ease.cu` ([`invert_in_place`]: n_items / [`BLOCK`] steps of three
//! launches, n_items³ multiply-adds in all); `ease_weights` turns −P into B in place and B
//! comes back in one copy. The device holds the matrix once plus two b × n panels, so the
//! estimate refused up front ([`need`]) is about n_items² floats, a third of the cpu's.

use crate::Error;
use crate::accel::Accel;
use crate::buf::{Buf, Purpose, check_fits, size_of_n};
use crate::kernel::{Arg, Kernel, Launch};
use std::sync::Arc;

/// The sweep's diagonal block width: `EASE_MAX_BLOCK` of ease.cu.
pub const BLOCK: usize = 64;
/// Threads per block of every ease.cu launch.
const THREADS: u32 = 256;
/// Blocks per multiprocessor of the grid-stride launches.
const WAVES: u32 = 8;

const MATRIX: Purpose = Purpose {
    what: "the EASE item-item matrix",
    setting: "the number of items (the ingest stage's min_ratings drops rare ones; or use device = \"cpu\")",
};
const DATA: Purpose = Purpose {
    what: "the EASE interactions",
    setting: "the number of interactions (or use device = \"cpu\")",
};

/// Device bytes [`fit`] holds for `n_items` items and `nnz` interactions of `n_users` users:
/// the matrix, the sweep's two panels and block, the diagonal, the interactions.
pub fn need(n_users: usize, n_items: usize, nnz: usize) -> usize {
    let b = BLOCK.min(n_items.max(1));
    let square = n_items.saturating_mul(n_items);
    size_of_n::<f32>(square.saturating_add(2 * b * n_items + b * b + n_items))
        .saturating_add(size_of_n::<u32>(n_users + 1 + nnz))
}

/// The EASE weights B (n_items × n_items, row-major) of the interactions `items` (user u's
/// at `start[u]..start[u + 1]`, each item once) with L2 weight `lambda` > 0. Refuses, before
/// allocating, a matrix the device cannot hold.
pub fn fit(
    accel: &Arc<dyn Accel>,
    n_items: usize,
    start: &[u32],
    items: &[u32],
    lambda: f32,
) -> Result<Vec<f32>, Error> {
    let n_users = start.len().saturating_sub(1);
    check_fits(accel.as_ref(), need(n_users, n_items, items.len()), MATRIX)?;
    let g: Buf<f32> = Buf::zeros(accel, n_items * n_items, MATRIX)?;
    {
        let start_d = Buf::from_slice(accel, start, DATA)?;
        let items_d = Buf::from_slice(accel, items, DATA)?;
        let shape = Launch {
            grid: grid(accel.as_ref(), n_users),
            block: THREADS,
        };
        let args = [
            Arg::U32(n_users as u32),
            Arg::U32(n_items as u32),
            start_d.arg(),
            items_d.arg(),
            g.arg(),
        ];
        accel.launch(Kernel::EaseGram, shape, &args)?;
    }
    add_diag(accel, &g, n_items, lambda)?;
    invert_in_place(accel, &g, n_items, BLOCK)?;
    let d: Buf<f32> = Buf::zeros(accel, n_items, MATRIX)?;
    let n = Arg::U32(n_items as u32);
    let rows = stride(accel.as_ref(), n_items);
    accel.launch(Kernel::EaseDiag, rows, &[n, g.arg(), d.arg()])?;
    let cells = stride(accel.as_ref(), n_items * n_items);
    accel.launch(Kernel::EaseWeights, cells, &[n, g.arg(), d.arg()])?;
    g.to_vec()
}

/// A⁻¹ of the symmetric positive definite `a` (n × n, row-major) by the sweep with blocks
/// of `block` (1..=[`BLOCK`]) rows: the inverse [`fit`] uses, for tests against a direct
/// solve.
pub fn inverse_spd(
    accel: &Arc<dyn Accel>,
    a: &[f32],
    n: usize,
    block: usize,
) -> Result<Vec<f32>, Error> {
    assert_eq!(a.len(), n * n, "an n × n matrix");
    check_fits(accel.as_ref(), need(0, n, 0), MATRIX)?;
    let g = Buf::from_slice(accel, a, MATRIX)?;
    invert_in_place(accel, &g, n, block)?;
    Ok(g.to_vec()?.into_iter().map(|v| -v).collect())
}

/// `g` (n × n, symmetric positive definite) swept on every diagonal block of `block` rows
/// in turn, which leaves −g⁻¹ in place.
fn invert_in_place(
    accel: &Arc<dyn Accel>,
    g: &Buf<f32>,
    n: usize,
    block: usize,
) -> Result<(), Error> {
    assert!(
        (1..=BLOCK).contains(&block),
        "block {block} outside 1..={BLOCK}"
    );
    let b = block.min(n.max(1));
    let p: Buf<f32> = Buf::zeros(accel, b * b, MATRIX)?;
    let c: Buf<f32> = Buf::zeros(accel, b * n, MATRIX)?;
    let r: Buf<f32> = Buf::zeros(accel, b * n, MATRIX)?;
    let one = Launch {
        grid: 1,
        block: THREADS,
    };
    let panel = stride(accel.as_ref(), b * n);
    let cells = stride(accel.as_ref(), n * n);
    let u = |v: usize| Arg::U32(v as u32);
    for k0 in (0..n).step_by(b) {
        let bs = b.min(n - k0);
        accel.launch(
            Kernel::EaseBlockInverse,
            one,
            &[u(n), g.arg(), u(k0), u(bs), p.arg()],
        )?;
        accel.launch(
            Kernel::EasePanel,
            panel,
            &[u(n), g.arg(), u(k0), u(bs), p.arg(), c.arg(), r.arg()],
        )?;
        accel.launch(
            Kernel::EaseUpdate,
            cells,
            &[u(n), g.arg(), u(k0), u(bs), p.arg(), c.arg(), r.arg()],
        )?;
    }
    Ok(())
}

/// λ on the diagonal of the n × n `g`.
fn add_diag(accel: &Arc<dyn Accel>, g: &Buf<f32>, n: usize, lambda: f32) -> Result<(), Error> {
    let shape = stride(accel.as_ref(), n);
    accel.launch(
        Kernel::EaseAddDiag,
        shape,
        &[Arg::U32(n as u32), g.arg(), Arg::F32(lambda)],
    )
}

/// Blocks for `items` blocks' worth of work, at most WAVES per multiprocessor, at least one.
fn grid(accel: &dyn Accel, items: usize) -> u32 {
    let cap = (accel.multiprocessors().max(1) * WAVES) as usize;
    items.clamp(1, cap) as u32
}

/// A grid-stride launch over `items` elements, a thread each.
fn stride(accel: &dyn Accel, items: usize) -> Launch {
    Launch {
        grid: grid(accel, items.div_ceil(THREADS as usize)),
        block: THREADS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_counts_the_matrix_the_panels_and_the_interactions() {
        let n = 10_000;
        let want = 4 * (n * n + 2 * 64 * n + 64 * 64 + n) + 4 * (501 + 30_000);
        assert_eq!(need(500, n, 30_000), want);
        // A catalogue smaller than a block sweeps it in one step.
        assert_eq!(need(0, 3, 0), 4 * (9 + 2 * 3 * 3 + 9 + 3) + 4);
    }
}
