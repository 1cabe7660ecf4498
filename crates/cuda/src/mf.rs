//! `dot` / `dot_bias` on a device: the tables, the per-rating SGD / Adagrad chunks and the
//! scoring, as launches of sgd.cu and predict.cu on an [`Accel`].
//!
//! Layout (the kernels' contract): user rows `P` and item rows `Q`, `stride = k + bias`
//! floats a row, the `k` factors then (dot_bias) the row's bias at index `k`; the global bias
//! in a one-float buffer; Adagrad's squared-gradient sums one float a row. Ratings are three
//! columns uploaded once per stage; the epoch's order is uploaded once per epoch.

use crate::Error;
use crate::accel::Accel;
use crate::buf::{Buf, Purpose, check_fits, size_of_n};
use crate::kernel::{Arg, Kernel, Launch};
use std::ops::Range;
use std::sync::Arc;

/// The most factors the per-rating kernel holds in registers (common.cuh `RECPIPE_KMAX`).
pub const KMAX: usize = 256;

/// Blocks per multiprocessor for the grid-stride kernels.
const WAVES: u32 = 4;

/// A dot / dot_bias model's dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfShape {
    pub n_users: usize,
    pub n_items: usize,
    pub k: usize,
    pub bias: bool,
}

impl MfShape {
    /// Floats per row.
    pub fn stride(&self) -> usize {
        self.k + usize::from(self.bias)
    }

    /// Why the kernels cannot take this shape, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.k == 0 || self.k > KMAX {
            return Err(format!(
                "k = {} is outside the CUDA kernels' 1..={KMAX}; use k <= {KMAX} or device = \"cpu\"",
                self.k
            ));
        }
        if self.n_users.max(self.n_items) >= u32::MAX as usize {
            return Err("more than 2^32 - 1 users or items".to_string());
        }
        Ok(())
    }

    /// The most warps the Hogwild schedule runs at once: an eighth of the smaller table's
    /// rows (at least one warp). ml-latest-small's 610 users give 76 warps; ML-25M's
    /// 59k items give more than any GPU runs at once.
    pub fn hogwild_warps(&self) -> usize {
        (self.n_users.min(self.n_items) / 8).max(1)
    }

    /// Device bytes a model of this shape takes with `n_ratings` ratings uploaded (train and
    /// valid together) and the epoch order: the estimate checked before allocating.
    pub fn device_bytes(&self, n_train: usize, n_valid: usize, adagrad: bool) -> usize {
        let rows = self.n_users + self.n_items;
        let tables = size_of_n::<f32>(rows * self.stride());
        let sums = if adagrad { size_of_n::<f32>(rows) } else { 0 };
        let ratings = (n_train + n_valid) * (4 + 4 + 4);
        let order = size_of_n::<u32>(n_train);
        tables + sums + ratings + order + (1 << 20)
    }
}

/// A model's weights on the host, in the device layout.
#[derive(Debug, Clone, PartialEq)]
pub struct MfWeights {
    /// n_users × stride.
    pub p: Vec<f32>,
    /// n_items × stride.
    pub q: Vec<f32>,
    pub global: f32,
}

/// Ratings as three device columns.
#[derive(Debug)]
pub struct DeviceRatings {
    pub user: Buf<u32>,
    pub item: Buf<u32>,
    pub rating: Buf<f32>,
}

impl DeviceRatings {
    /// Uploads the three columns (equal lengths).
    pub fn upload(
        accel: &Arc<dyn Accel>,
        (user, item, rating): (&[u32], &[u32], &[f32]),
        purpose: Purpose,
    ) -> Result<Self, Error> {
        assert!(user.len() == item.len() && item.len() == rating.len());
        check_fits(accel.as_ref(), user.len() * 12, purpose)?;
        Ok(DeviceRatings {
            user: Buf::from_slice(accel, user, purpose)?,
            item: Buf::from_slice(accel, item, purpose)?,
            rating: Buf::from_slice(accel, rating, purpose)?,
        })
    }

    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }
}

/// One chunk's step constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdStep {
    pub lr: f32,
    /// 2·l2 + weight_decay.
    pub reg: f32,
    pub y_range: Option<[f32; 2]>,
}

pub(crate) fn squash_args(y_range: Option<[f32; 2]>) -> [Arg; 3] {
    match y_range {
        Some([lo, hi]) => [Arg::I32(1), Arg::F32(lo), Arg::F32(hi)],
        None => [Arg::I32(0), Arg::F32(0.0), Arg::F32(0.0)],
    }
}

/// A dot / dot_bias model resident on a device.
#[derive(Debug)]
pub struct MfModel {
    accel: Arc<dyn Accel>,
    shape: MfShape,
    p: Buf<f32>,
    q: Buf<f32>,
    global: Buf<f32>,
    /// Adagrad's per-row sums (users, items).
    sums: Option<(Buf<f32>, Buf<f32>)>,
    /// sgd_epoch's (Σe², Σc) accumulator.
    acc: Buf<f64>,
}

const TABLES: Purpose = Purpose {
    what: "the embedding tables",
    setting: "train.k",
};

impl MfModel {
    /// Uploads `w` (Adagrad sums start at `adagrad_g0` when `adagrad` is set).
    pub fn new(
        accel: &Arc<dyn Accel>,
        shape: MfShape,
        w: &MfWeights,
        adagrad: Option<f32>,
    ) -> Result<Self, Error> {
        shape.check().map_err(Error::Driver)?;
        let s = shape.stride();
        assert_eq!(w.p.len(), shape.n_users * s, "user table length");
        assert_eq!(w.q.len(), shape.n_items * s, "item table length");
        let sums = match adagrad {
            Some(g0) => Some((
                Buf::from_slice(accel, &vec![g0; shape.n_users], TABLES)?,
                Buf::from_slice(accel, &vec![g0; shape.n_items], TABLES)?,
            )),
            None => None,
        };
        Ok(MfModel {
            accel: accel.clone(),
            shape,
            p: Buf::from_slice(accel, &w.p, TABLES)?,
            q: Buf::from_slice(accel, &w.q, TABLES)?,
            global: Buf::from_slice(accel, &[w.global], TABLES)?,
            sums,
            acc: Buf::zeros(accel, 2, TABLES)?,
        })
    }

    pub fn shape(&self) -> MfShape {
        self.shape
    }

    /// Per-rating steps over `order[range]` of `data` (the global bias fixed during the
    /// chunk, then stepped once by the chunk's mean gradient), with `shape` (a wide grid is
    /// Hogwild; [`Launch::SEQUENTIAL`] walks the chunk in order). Returns the chunk's summed
    /// squared error before each step.
    pub fn sgd_chunk(
        &self,
        data: &DeviceRatings,
        order: &Buf<u32>,
        range: Range<usize>,
        step: SgdStep,
        shape: Launch,
    ) -> Result<f64, Error> {
        let n = range.len() as u32;
        if n == 0 {
            return Ok(0.0);
        }
        let (gu, gi) = match &self.sums {
            Some((u, i)) => (u.arg(), i.arg()),
            None => (Arg::NULL, Arg::NULL),
        };
        let [p, q, stride, k] = self.tables().args();
        let [squash, lo, hi] = squash_args(step.y_range);
        let args = [
            data.user.arg(),
            data.item.arg(),
            data.rating.arg(),
            order.arg_at(range.start),
            Arg::U32(n),
            p,
            q,
            stride,
            k,
            Arg::I32(i32::from(self.shape.bias)),
            gu,
            gi,
            self.global.arg(),
            Arg::F32(step.lr),
            Arg::F32(step.reg),
            squash,
            lo,
            hi,
            self.acc.arg(),
        ];
        self.accel.launch(Kernel::SgdEpoch, shape, &args)?;
        if self.shape.bias {
            let args = [
                self.global.arg(),
                self.acc.arg(),
                Arg::F32(step.lr),
                Arg::U32(n),
            ];
            self.accel
                .launch(Kernel::SgdGlobalStep, Launch::SEQUENTIAL, &args)?;
        }
        let mut acc = [0.0f64; 2];
        self.acc.read(0, &mut acc)?;
        self.acc.write(0, &[0.0, 0.0])?;
        Ok(acc[0])
    }

    /// The Hogwild launch for `n` ratings on this device: a warp per rating up to the
    /// device's width, and at most [`MfShape::hogwild_warps`] warps at once, so that on a
    /// small table two warps rarely step the same row together.
    pub fn hogwild(&self, n: usize) -> Launch {
        let warps = n.min(self.shape.hogwild_warps());
        Launch::warps(warps, self.accel.multiprocessors(), WAVES)
    }

    /// The tables, for scoring.
    pub fn tables(&self) -> Tables<'_> {
        Tables {
            accel: &self.accel,
            shape: self.shape,
            p: &self.p,
            q: &self.q,
            global: &self.global,
        }
    }

    /// The weights, back on the host.
    pub fn weights(&self) -> Result<MfWeights, Error> {
        Ok(MfWeights {
            p: self.p.to_vec()?,
            q: self.q.to_vec()?,
            global: self.global.to_vec()?[0],
        })
    }

    /// Adagrad's per-row sums (users, items); None without Adagrad.
    pub fn adagrad_sums(&self) -> Option<(&Buf<f32>, &Buf<f32>)> {
        self.sums.as_ref().map(|(u, i)| (u, i))
    }
}

/// A dot / dot_bias model's tables on a device, as the scoring kernels read them (the
/// per-rating [`MfModel`] and the mini-batch model both lend theirs).
#[derive(Debug, Clone, Copy)]
pub struct Tables<'a> {
    pub accel: &'a Arc<dyn Accel>,
    pub shape: MfShape,
    pub p: &'a Buf<f32>,
    pub q: &'a Buf<f32>,
    pub global: &'a Buf<f32>,
}

impl Tables<'_> {
    /// The table arguments every kernel takes: P, Q, stride, k.
    fn args(&self) -> [Arg; 4] {
        [
            self.p.arg(),
            self.q.arg(),
            Arg::U32(self.shape.stride() as u32),
            Arg::U32(self.shape.k as u32),
        ]
    }

    /// (Σe², Σ|e|) of the model's predictions on `data`.
    pub fn errors(
        &self,
        data: &DeviceRatings,
        y_range: Option<[f32; 2]>,
    ) -> Result<(f64, f64), Error> {
        if data.is_empty() {
            return Ok((0.0, 0.0));
        }
        let shape = Launch::warps(data.len(), self.accel.multiprocessors(), WAVES);
        let purpose = Purpose {
            what: "the validation sums",
            setting: "train.k",
        };
        let partial = Buf::<f64>::zeros(self.accel, 2 * shape.grid as usize, purpose)?;
        let sums = Buf::<f64>::zeros(self.accel, 2, purpose)?;
        let [p, q, stride, k] = self.args();
        let [squash, lo, hi] = squash_args(y_range);
        let args = [
            data.user.arg(),
            data.item.arg(),
            data.rating.arg(),
            Arg::U32(data.len() as u32),
            p,
            q,
            stride,
            k,
            Arg::I32(i32::from(self.shape.bias)),
            self.global.arg(),
            squash,
            lo,
            hi,
            Arg::NULL,
            partial.arg(),
        ];
        self.accel.launch(Kernel::EvalPartials, shape, &args)?;
        let args = [partial.arg(), Arg::U32(shape.grid), sums.arg()];
        self.accel
            .launch(Kernel::EvalReduce, Launch { grid: 1, block: 32 }, &args)?;
        let v = sums.to_vec()?;
        Ok((v[0], v[1]))
    }

    /// Predictions for (user, item) pairs.
    pub fn predict(
        &self,
        users: &[u32],
        items: &[u32],
        y_range: Option<[f32; 2]>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        if users.is_empty() {
            return Ok(());
        }
        let purpose = Purpose {
            what: "the pairs to predict",
            setting: "the number of pairs",
        };
        let u = Buf::from_slice(self.accel, users, purpose)?;
        let i = Buf::from_slice(self.accel, items, purpose)?;
        let o = Buf::<f32>::zeros(self.accel, users.len(), purpose)?;
        let [p, q, stride, k] = self.args();
        let [squash, lo, hi] = squash_args(y_range);
        let args = [
            u.arg(),
            i.arg(),
            Arg::U32(users.len() as u32),
            p,
            q,
            stride,
            k,
            Arg::I32(i32::from(self.shape.bias)),
            self.global.arg(),
            squash,
            lo,
            hi,
            o.arg(),
        ];
        self.accel.launch(
            Kernel::Predict,
            Launch::warps(users.len(), self.accel.multiprocessors(), WAVES),
            &args,
        )?;
        o.read(0, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_outside_the_kernels_are_refused_with_the_fix() {
        let s = MfShape {
            n_users: 10,
            n_items: 10,
            k: 300,
            bias: true,
        };
        let e = s.check().unwrap_err();
        assert!(e.contains("k = 300") && e.contains("256"), "{e}");
        assert!(MfShape { k: 256, ..s }.check().is_ok());
        assert_eq!(MfShape { k: 64, ..s }.stride(), 65);
        assert_eq!(
            MfShape {
                n_users: 610,
                n_items: 9724,
                ..s
            }
            .hogwild_warps(),
            76
        );
        assert_eq!(MfShape { n_users: 3, ..s }.hogwild_warps(), 1);
        assert_eq!(
            MfShape {
                k: 64,
                bias: false,
                ..s
            }
            .stride(),
            64
        );
    }

    #[test]
    fn the_estimate_counts_tables_ratings_and_order() {
        let s = MfShape {
            n_users: 162_541,
            n_items: 59_047,
            k: 64,
            bias: true,
        };
        let b = s.device_bytes(25_000_000, 0, false);
        // tables 221,588 rows × 65 × 4 B ≈ 57.6 MB, ratings 300 MB, order 100 MB.
        assert!(b > 457_000_000 && b < 460_000_000, "{b}");
        assert!(s.device_bytes(25_000_000, 0, true) > b);
    }
}
