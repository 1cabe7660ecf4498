//! EASE on the CUDA backend: the users' item lists go to recpipe-cuda's `ease::fit` (Gram
//! matrix, sweep inverse and weights on the device, `ease.cu`), and B comes back in the
//! cpu's layout (n_items × n_items, row-major, zero diagonal), so the checkpoint is the
//! cpu's. The host keeps only B; the device's own n_items² matrix is refused up front when it
//! does not fit.

use super::Interactions;
use crate::backend::Device;
use crate::cuda::cuda_error;
use crate::error::{Result, TrainError};
use recpipe_core::memory::{Need, check_need, product};
use recpipe_cuda::Accel;
use std::sync::Arc;

/// Users whose co-occurrence counts f32 holds exactly (every integer up to 2^24).
const EXACT_COUNTS: usize = 1 << 24;

/// The EASE weights of `data` with L2 weight `lambda`, computed on `accel`.
pub(super) fn fit(
    accel: &Arc<dyn Accel>,
    device: Device,
    data: &Interactions,
    lambda: f32,
) -> Result<Vec<f32>> {
    if data.n_users >= EXACT_COUNTS || data.len() >= u32::MAX as usize {
        return Err(TrainError::Cuda {
            device: device.name(),
            message: format!(
                "{} users / {} interactions are past the EASE kernels' exact f32 counts and \
                 32-bit offsets; use device = \"cpu\"",
                data.n_users,
                data.len()
            ),
        });
    }
    // Host memory for the B that comes back, before anything is uploaded.
    let n = data.n_items;
    let mut need = Need::new();
    need.add("EASE item-item weights", product(&[n, n]), 4);
    check_need(
        "EASE",
        &need,
        &format!("the item count (now {n}): drop rare items with the ingest stage's `min_ratings`"),
    )?;
    let mut start = Vec::with_capacity(data.n_users + 1);
    let mut items = Vec::with_capacity(data.len());
    start.push(0u32);
    for u in 0..data.n_users as u32 {
        items.extend_from_slice(data.items.row(u));
        start.push(items.len() as u32);
    }
    recpipe_cuda::ease::fit(accel, data.n_items, &start, &items, lambda)
        .map_err(|e| cuda_error(device, e))
}
