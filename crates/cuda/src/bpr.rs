//! BPR on a device: the factor tables and the pairwise SGD steps of bpr.cu on an [`Accel`].
//!
//! Layout (the kernel's contract): user rows `P` and item rows `Q` of `stride = k + 1`
//! floats, the k factors then the bias slot: 1 in every user row, the item's bias in an item
//! row, so p_u·q_i + b_i is one dot product. The host uploads each sub-epoch's triples
//! (`[u, i, j]` ids, drawn on the host in the cpu's order) into one buffer, grown when a
//! larger sub-epoch comes; the launch that steps them is ordered on the stream before the
//! next upload, so one buffer suffices. The loss sum stays on the device until
//! [`BprModel::take_loss`] reads it, once an epoch.

use crate::Error;
use crate::accel::Accel;
use crate::buf::{Buf, Purpose, check_fits, size_of_n};
use crate::kernel::{Arg, Kernel, Launch};
use std::sync::Arc;

/// The most factors bpr.cu holds in registers (common.cuh `RECPIPE_KMAX`).
pub const KMAX: usize = crate::mf::KMAX;

/// Blocks per multiprocessor for the Hogwild launch.
const WAVES: u32 = 4;

/// A BPR model's dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BprShape {
    pub n_users: usize,
    pub n_items: usize,
    pub k: usize,
}

impl BprShape {
    /// Floats per row: k factors and the bias slot.
    pub fn stride(&self) -> usize {
        self.k + 1
    }

    /// Why the kernel cannot take this shape, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.k == 0 || self.k > KMAX {
            return Err(format!(
                "k = {} is outside the CUDA BPR kernel's 1..={KMAX}; use k <= {KMAX} or device = \"cpu\"",
                self.k
            ));
        }
        if self.n_users.max(self.n_items) >= u32::MAX as usize {
            return Err("more than 2^32 - 1 users or items".to_string());
        }
        Ok(())
    }

    /// Device bytes of the tables and a sub-epoch buffer of `triples` triples: the
    /// estimate checked before allocating.
    pub fn device_bytes(&self, triples: usize) -> usize {
        let rows = self.n_users + self.n_items;
        size_of_n::<f32>(rows * self.stride()) + size_of_n::<u32>(3 * triples) + (1 << 20)
    }
}

/// Trained factors back on the host, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct BprFactors {
    /// n_users × k.
    pub user: Vec<f32>,
    /// n_items × k.
    pub item: Vec<f32>,
    /// n_items.
    pub item_bias: Vec<f32>,
}

const TABLES: Purpose = Purpose {
    what: "the BPR factor tables",
    setting: "train.k",
};

const TRIPLES: Purpose = Purpose {
    what: "a sub-epoch's BPR triples",
    setting: "train.negatives",
};

/// A BPR model resident on a device.
#[derive(Debug)]
pub struct BprModel {
    accel: Arc<dyn Accel>,
    shape: BprShape,
    p: Buf<f32>,
    q: Buf<f32>,
    /// The current sub-epoch's triples (capacity: the largest so far).
    triples: Option<Buf<u32>>,
    /// Σ −ln σ(x) of the steps since the last [`BprModel::take_loss`].
    acc: Buf<f64>,
}

impl BprModel {
    /// Uploads the starting factors (`start`, id order), refusing first when the tables
    /// and a sub-epoch of `triples` triples do not fit in the device's free memory.
    pub fn new(
        accel: &Arc<dyn Accel>,
        shape: BprShape,
        start: &BprFactors,
        triples: usize,
    ) -> Result<Self, Error> {
        shape.check().map_err(Error::Driver)?;
        let (k, s) = (shape.k, shape.stride());
        assert_eq!(start.user.len(), shape.n_users * k, "user factors length");
        assert_eq!(start.item.len(), shape.n_items * k, "item factors length");
        assert_eq!(start.item_bias.len(), shape.n_items, "item bias length");
        check_fits(accel.as_ref(), shape.device_bytes(triples), TABLES)?;
        let rows = |f: &[f32], last: &dyn Fn(usize) -> f32| -> Vec<f32> {
            let n = f.len() / k;
            let mut t = vec![0.0f32; n * s];
            for r in 0..n {
                t[r * s..r * s + k].copy_from_slice(&f[r * k..(r + 1) * k]);
                t[r * s + k] = last(r);
            }
            t
        };
        let p = rows(&start.user, &|_| 1.0);
        let q = rows(&start.item, &|r| start.item_bias[r]);
        Ok(BprModel {
            accel: accel.clone(),
            shape,
            p: Buf::from_slice(accel, &p, TABLES)?,
            q: Buf::from_slice(accel, &q, TABLES)?,
            triples: None,
            acc: Buf::zeros(accel, 1, TABLES)?,
        })
    }

    pub fn shape(&self) -> BprShape {
        self.shape
    }

    /// Uploads `triples` (`[u, i, j]` ids, flattened) and steps them with `lr` and `reg`
    /// on `launch` ([`Launch::SEQUENTIAL`]: in order; [`BprModel::hogwild`]: racing).
    pub fn steps(
        &mut self,
        triples: &[u32],
        lr: f32,
        reg: f32,
        launch: Launch,
    ) -> Result<(), Error> {
        assert!(triples.len().is_multiple_of(3), "triples come in threes");
        let n = triples.len() / 3;
        if n == 0 {
            return Ok(());
        }
        if self
            .triples
            .as_ref()
            .is_none_or(|b| b.len() < triples.len())
        {
            // Free the old buffer before making the larger one.
            self.triples = None;
            self.triples = Some(Buf::zeros(&self.accel, triples.len(), TRIPLES)?);
        }
        let buf = self.triples.as_ref().expect("allocated above");
        buf.write(0, triples)?;
        let args = [
            buf.arg(),
            Arg::U32(n as u32),
            self.p.arg(),
            self.q.arg(),
            Arg::U32(self.shape.stride() as u32),
            Arg::U32(self.shape.k as u32),
            Arg::F32(lr),
            Arg::F32(reg),
            self.acc.arg(),
        ];
        self.accel.launch(Kernel::BprSteps, launch, &args)
    }

    /// The Hogwild launch for `n` triples: a warp per triple up to the device's width and
    /// at most an eighth of `rows` warps, `rows` being the smaller count of user and item
    /// rows that train (as the per-rating kernel caps its warps), so that two warps rarely
    /// step one row together. Rows without interactions do not count: on a slice of a
    /// catalogue they would let many warps race on the few rows that train.
    pub fn hogwild(&self, n: usize, rows: usize) -> Launch {
        let warps = n.min((rows / 8).max(1));
        Launch::warps(warps, self.accel.multiprocessors(), WAVES)
    }

    /// Σ −ln σ(x_ui − x_uj) of the steps since the last call (before each step), cleared.
    pub fn take_loss(&self) -> Result<f64, Error> {
        let mut v = [0.0f64];
        self.acc.read(0, &mut v)?;
        self.acc.write(0, &[0.0])?;
        Ok(v[0])
    }

    /// The factors and item biases, back on the host in id order.
    pub fn factors(&self) -> Result<BprFactors, Error> {
        let (k, s) = (self.shape.k, self.shape.stride());
        let (p, q) = (self.p.to_vec()?, self.q.to_vec()?);
        let strip =
            |t: &[f32]| -> Vec<f32> { t.chunks(s).flat_map(|r| &r[..k]).copied().collect() };
        Ok(BprFactors {
            user: strip(&p),
            item: strip(&q),
            item_bias: q.chunks(s).map(|r| r[k]).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_outside_the_kernel_are_refused_with_the_fix() {
        let s = BprShape {
            n_users: 610,
            n_items: 9724,
            k: 300,
        };
        let e = s.check().unwrap_err();
        assert!(e.contains("k = 300") && e.contains("256"), "{e}");
        assert!(BprShape { k: 256, ..s }.check().is_ok());
        assert_eq!(BprShape { k: 128, ..s }.stride(), 129);
        // ML-25M's tables at k = 128 and a sub-epoch of 3.1M triples: ≈ 114 + 37 MB.
        let big = BprShape {
            n_users: 162_541,
            n_items: 59_047,
            k: 128,
        };
        let b = big.device_bytes(3_100_000);
        assert!(b > 150_000_000 && b < 153_000_000, "{b}");
    }
}
