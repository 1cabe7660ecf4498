//! The neural models (`mlp`, `hybrid`, `classifier`) on a device: the cpu NeuralTrainer's
//! step (train/src/cpu/neural.rs, net.rs, layers.rs) as launches of dense.cu, with the
//! embedding rows and the dense parameters stepped by embedding.cu's `emb_update` — the
//! same RowOpt arithmetic (lazy per-row catch-up for the embeddings, one always-touched
//! parameter row for the dense weights) as the cpu and as [`crate::minibatch`].
//!
//! The matrix products are dense.cu's own tiled SGEMM, not cuBLAS: cuBLAS ships with the
//! CUDA toolkit, not with the driver, and a user's machine usually has only the driver.
//! The layers are small (hidden 10 to 128, batches of 64 to 4096), where a plain
//! shared-memory tile is within a small factor of cuBLAS anyway.
//!
//! Layout: user and item tables `k` floats a row (optimizer state `n_state` rows of `k` per
//! row, a last-step counter per row, as minibatch.rs); the dense parameters in the cpu's
//! flat order (layers.rs `Layout`), padded to [`PARAM_ROW`]-float rows so `emb_update`
//! steps them a warp per row; the batch-norm running statistics in the cpu's order. Per
//! layer, buffers of `max_batch` rows: z, the output, the normalised z (batch norm) and the
//! gradient of its input. Dropout masks are bits, drawn on the host from the cpu's stream
//! in the cpu's order ([`NetShape::mask_sites`]) and uploaded for many batches at once.
//!
//! A step makes no copy: its ratings are rows of the stage's [`DeviceRatings`] through the
//! epoch's [`EpochPlan`] order, its masks a slice of the uploaded group.

use crate::Error;
use crate::accel::Accel;
use crate::buf::{Buf, Purpose, check_fits, size_of_n};
use crate::kernel::{Arg, Kernel, Launch};
use crate::mf::DeviceRatings;
use crate::minibatch::{EpochPlan, MAX_CATCH_UP, MbConfig};
use std::sync::{Arc, Mutex};

/// Blocks per multiprocessor of the grid-stride launches.
const WAVES: u32 = 4;
/// dense.cu `DENSE_TILE` and the GEMM's threads per block (`DENSE_GEMM_THREADS`).
pub const TILE: usize = 16;
pub const GEMM_THREADS: u32 = (TILE * TILE / 2) as u32;
/// Dense parameters per row of the padded parameter table (a warp steps a row).
pub const PARAM_ROW: usize = 256;
/// recpipe_core's BatchNorm eps and layers.rs's momentum.
const BN_EPS: f32 = 1e-5;
const BN_MOMENTUM: f32 = 0.1;

/// One linear layer's place in the flat parameter row (layers.rs `Linear`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseLayer {
    pub din: usize,
    pub dout: usize,
    /// Offsets of the weights (dout × din) and bias.
    pub w: usize,
    pub b: usize,
    /// (gamma, beta, running-statistics) offsets when batch-normalised.
    pub bn: Option<(usize, usize, usize)>,
    pub relu: bool,
    pub dropout: f32,
}

/// What the output layer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// One value, squashed into the range when there is one; squared error.
    Regression(Option<[f32; 2]>),
    /// One logit per class value; softmax cross-entropy.
    Classes(Vec<f32>),
}

/// A neural model's shape (train's cpu `Net`).
#[derive(Debug, Clone, PartialEq)]
pub struct NetShape {
    pub n_users: usize,
    pub n_items: usize,
    pub k: usize,
    /// The join: element-wise product (else concatenation).
    pub product: bool,
    /// hybrid's item-feature width (0: none) and tower layers.
    pub feat_width: usize,
    pub tower: Vec<DenseLayer>,
    pub layers: Vec<DenseLayer>,
    pub input_dropout: f32,
    pub n_params: usize,
    pub n_stats: usize,
    pub output: Output,
}

impl NetShape {
    /// Width of the joined embeddings.
    pub fn emb_width(&self) -> usize {
        if self.product { self.k } else { 2 * self.k }
    }

    /// Width of the first layer's input.
    pub fn d0(&self) -> usize {
        self.layers[0].din
    }

    pub fn n_out(&self) -> usize {
        self.layers.last().map_or(0, |l| l.dout)
    }

    /// Why the kernels cannot take this shape, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.layers.is_empty() || self.k == 0 {
            return Err("a neural model needs k >= 1 and an output layer".to_string());
        }
        if self.tower.iter().any(|l| l.dropout > 0.0 || l.bn.is_some()) {
            return Err("the item tower has no dropout or batch norm".to_string());
        }
        let tower_out = self.tower.last().map_or(self.feat_width, |l| l.dout);
        if self.d0() != self.emb_width() + tower_out {
            return Err(format!(
                "first layer takes {} inputs, the join gives {}",
                self.d0(),
                self.emb_width() + tower_out
            ));
        }
        if let Output::Classes(c) = &self.output
            && c.len() != self.n_out()
        {
            return Err("one output per class".to_string());
        }
        if self.n_users.max(self.n_items) >= u32::MAX as usize {
            return Err("more than 2^32 - 1 users or items".to_string());
        }
        Ok(())
    }

    /// The dropout sites of a training pass in the order the cpu draws their masks: the
    /// joined input (when input dropout is on), then each layer with dropout, as (width, p).
    pub fn mask_sites(&self) -> Vec<(usize, f32)> {
        let mut s = Vec::new();
        if self.input_dropout > 0.0 {
            s.push((self.d0(), self.input_dropout));
        }
        s.extend(
            self.layers
                .iter()
                .filter(|l| l.dropout > 0.0)
                .map(|l| (l.dout, l.dropout)),
        );
        s
    }

    /// 32-bit mask words one batch takes (each site sized for `max_batch` rows).
    pub fn mask_words(&self, max_batch: usize) -> usize {
        self.mask_sites()
            .iter()
            .map(|(w, _)| (max_batch * w).div_ceil(32))
            .sum()
    }

    /// Rows of [`PARAM_ROW`] parameters.
    pub fn param_rows(&self) -> usize {
        self.n_params.div_ceil(PARAM_ROW).max(1)
    }

    /// Every layer, tower first (the order the parameters are laid out in).
    fn all_layers(&self) -> impl Iterator<Item = &DenseLayer> {
        self.tower.iter().chain(&self.layers)
    }

    /// Device bytes of the model with batches of `max_batch`, `max_steps` steps and
    /// `n_ratings` ratings uploaded (train and valid): the estimate checked first.
    pub fn device_bytes(
        &self,
        n_state: usize,
        max_batch: usize,
        max_steps: usize,
        n_ratings: usize,
    ) -> usize {
        let emb = (self.n_users + self.n_items) * (self.k * 4 * (1 + n_state) + 4);
        let params = self.param_rows() * PARAM_ROW * 4 * (2 + n_state) + self.n_stats * 4;
        let feats = self.n_items * self.feat_width * 4;
        let per_row: usize = self.all_layers().map(|l| 3 * l.dout + l.din).sum::<usize>()
            + self.d0()
            + self.feat_width
            + self.n_out()
            + 2 * self.k
            + 2;
        let steps = (max_steps + 1) * 16;
        // Ratings: three columns; the plan: the order and ~28 bytes of grouping.
        emb + params
            + feats
            + max_batch * per_row * 4
            + self.mask_words(max_batch) * 4 * MASK_GROUP
            + steps
            + n_ratings * (12 + 32)
    }
}

/// Batches whose masks one upload carries (at most).
pub const MASK_GROUP: usize = 256;

/// The starting weights, in the cpu's layouts.
#[derive(Debug, Clone, PartialEq)]
pub struct NetWeights {
    /// n_users × k, n_items × k.
    pub users: Vec<f32>,
    pub items: Vec<f32>,
    /// The flat dense parameters (n_params) and running statistics (n_stats).
    pub params: Vec<f32>,
    pub stats: Vec<f32>,
}

/// Packs one batch's masks (`rows` rows) for `shape`'s sites into `out` (appended:
/// `mask_words(max_batch)` words), drawing each value's keep/drop in the cpu's order with
/// `dropped(p)` (true: the value is dropped).
pub fn pack_masks(
    shape: &NetShape,
    max_batch: usize,
    rows: usize,
    mut dropped: impl FnMut(f32) -> bool,
    out: &mut Vec<u32>,
) {
    for (w, p) in shape.mask_sites() {
        let at = out.len();
        out.resize(at + (max_batch * w).div_ceil(32), 0);
        for e in 0..rows * w {
            if !dropped(p) {
                out[at + e / 32] |= 1 << (e % 32);
            }
        }
    }
}

const MODEL: Purpose = Purpose {
    what: "the neural model, its optimizer state and layer buffers",
    setting: "train.batch_size or train.hidden (or use device = \"cpu\")",
};
const PAIRS: Purpose = Purpose {
    what: "the pairs to score",
    setting: "the number of pairs (or use device = \"cpu\")",
};

/// One layer's buffers (max_batch rows).
#[derive(Debug)]
struct Cache {
    z: Buf<f32>,
    out: Buf<f32>,
    xhat: Option<Buf<f32>>,
    dx: Buf<f32>,
    mean: Buf<f32>,
    inv: Buf<f32>,
}

impl Cache {
    fn new(accel: &Arc<dyn Accel>, l: &DenseLayer, rows: usize) -> Result<Self, Error> {
        let z = |n: usize| Buf::<f32>::zeros(accel, n, MODEL);
        Ok(Cache {
            z: z(rows * l.dout)?,
            out: z(rows * l.dout)?,
            xhat: l.bn.map(|_| z(rows * l.dout)).transpose()?,
            dx: z(rows * l.din)?,
            mean: z(l.dout)?,
            inv: z(l.dout)?,
        })
    }
}

/// Where a pass reads its pairs: user and item columns, and the positions into them
/// (`idx`, null: the first n in order).
#[derive(Debug, Clone, Copy)]
struct Pairs {
    user: Arg,
    item: Arg,
    idx: Arg,
    n: usize,
}

/// A layer's input: a buffer argument and its width.
type Input = (Arg, usize);

/// Pairs kept on the device: the host slice they came from (pointer, length), users, items.
type Scored = ((usize, usize), Buf<u32>, Buf<u32>);

/// A neural model and its optimizer state resident on a device.
#[derive(Debug)]
pub struct DenseNet {
    accel: Arc<dyn Accel>,
    shape: NetShape,
    cfg: MbConfig,
    max_batch: usize,
    /// Steps begun (RowOpt's t).
    t: u32,
    p: Buf<f32>,
    q: Buf<f32>,
    su: Buf<f32>,
    si: Buf<f32>,
    last_u: Buf<u32>,
    last_i: Buf<u32>,
    params: Buf<f32>,
    pstate: Buf<f32>,
    plast: Buf<u32>,
    grad: Buf<f32>,
    /// The parameter rows as emb_update's plan: rows 0..R, one entry each.
    prows: Buf<u32>,
    poff: Buf<u32>,
    /// Ones (emb_update's per-position coefficient: the gradients are made whole here).
    ones: Buf<f32>,
    stats: Buf<f32>,
    feat: Option<Buf<f32>>,
    /// The classifier's class values.
    classes: Option<Buf<f32>>,
    sc: Buf<f32>,
    rho_pow: Buf<f32>,
    hist: Buf<f32>,
    window: Buf<f32>,
    log_decay: Buf<f64>,
    tower: Vec<Cache>,
    layers: Vec<Cache>,
    featbuf: Option<Buf<f32>>,
    x0: Buf<f32>,
    dz: Buf<f32>,
    loss: Buf<f32>,
    gu: Buf<f32>,
    gi: Buf<f32>,
    dtower: Option<Buf<f32>>,
    scratch: Buf<f64>,
    masks: Option<Buf<u32>>,
    slot_u: Vec<u32>,
    slot_i: Vec<u32>,
    /// The pairs last scored, kept on the device (validation scores the same set each
    /// epoch): (host pointer, length) and the two columns.
    scored: Mutex<Option<Scored>>,
}

impl DenseNet {
    /// Uploads `w` with fresh optimizer state for batches of at most `max_batch` and
    /// `max_steps` steps; `features` (n_items × feat_width) for hybrid.
    pub fn new(
        accel: &Arc<dyn Accel>,
        shape: NetShape,
        w: &NetWeights,
        features: Option<&[f32]>,
        cfg: MbConfig,
        max_batch: usize,
        max_steps: usize,
    ) -> Result<Self, Error> {
        shape.check().map_err(Error::Driver)?;
        assert!(max_batch > 0 && max_steps < u32::MAX as usize);
        let k = shape.k;
        assert_eq!(w.users.len(), shape.n_users * k, "user table length");
        assert_eq!(w.items.len(), shape.n_items * k, "item table length");
        assert_eq!(w.params.len(), shape.n_params, "parameter count");
        assert_eq!(w.stats.len(), shape.n_stats, "statistics count");
        let ns = cfg.optimizer.n_state();
        check_fits(
            accel.as_ref(),
            shape.device_bytes(ns, max_batch, max_steps, 0),
            MODEL,
        )?;
        let zeros = |n: usize| Buf::<f32>::zeros(accel, n, MODEL);
        let rows = shape.param_rows();
        let mut padded = w.params.clone();
        padded.resize(rows * PARAM_ROW, 0.0);
        let feat = match (shape.feat_width, features) {
            (0, _) => None,
            (fw, Some(f)) => {
                assert_eq!(f.len(), shape.n_items * fw, "item features length");
                Some(Buf::from_slice(accel, f, MODEL)?)
            }
            (_, None) => return Err(Error::Driver("hybrid needs its item features".into())),
        };
        let caches = |ls: &[DenseLayer]| -> Result<Vec<Cache>, Error> {
            ls.iter().map(|l| Cache::new(accel, l, max_batch)).collect()
        };
        let tower_out = shape.tower.last().map(|l| l.dout);
        let seq: Vec<u32> = (0..=rows as u32).collect();
        let m = DenseNet {
            accel: accel.clone(),
            cfg,
            max_batch,
            t: 0,
            p: Buf::from_slice(accel, &w.users, MODEL)?,
            q: Buf::from_slice(accel, &w.items, MODEL)?,
            su: zeros(shape.n_users * ns * k)?,
            si: zeros(shape.n_items * ns * k)?,
            last_u: Buf::zeros(accel, shape.n_users, MODEL)?,
            last_i: Buf::zeros(accel, shape.n_items, MODEL)?,
            params: Buf::from_slice(accel, &padded, MODEL)?,
            pstate: zeros(rows * ns * PARAM_ROW)?,
            plast: Buf::zeros(accel, rows, MODEL)?,
            grad: zeros(rows * PARAM_ROW)?,
            prows: Buf::from_slice(accel, &seq[..rows], MODEL)?,
            poff: Buf::from_slice(accel, &seq, MODEL)?,
            ones: Buf::from_slice(accel, &vec![1.0f32; max_batch.max(rows)], MODEL)?,
            stats: Buf::from_slice(accel, &w.stats, MODEL)?,
            feat,
            classes: match &shape.output {
                Output::Classes(c) => Some(Buf::from_slice(accel, c, MODEL)?),
                Output::Regression(_) => None,
            },
            sc: zeros(3)?,
            rho_pow: zeros(MAX_CATCH_UP + 1)?,
            hist: zeros(max_steps + 1)?,
            window: zeros(max_steps + 1)?,
            log_decay: Buf::zeros(accel, max_steps + 1, MODEL)?,
            tower: caches(&shape.tower)?,
            layers: caches(&shape.layers)?,
            featbuf: (!shape.tower.is_empty())
                .then(|| zeros(max_batch * shape.feat_width))
                .transpose()?,
            x0: zeros(max_batch * shape.d0())?,
            dz: zeros(max_batch * shape.n_out())?,
            loss: zeros(max_batch)?,
            gu: zeros(max_batch * k)?,
            gi: zeros(max_batch * k)?,
            dtower: tower_out.map(|w| zeros(max_batch * w)).transpose()?,
            scratch: Buf::zeros(accel, 1, MODEL)?,
            masks: None,
            slot_u: vec![u32::MAX; shape.n_users],
            slot_i: vec![u32::MAX; shape.n_items],
            scored: Mutex::new(None),
            shape,
        };
        let [kind, b1, b2, _, mom, _] = cfg.opt_args();
        let args = [
            kind,
            b1,
            b2,
            mom,
            m.rho_pow.arg(),
            m.hist.arg(),
            m.window.arg(),
            m.log_decay.arg(),
        ];
        m.accel
            .launch(Kernel::EmbOptInit, Launch::SEQUENTIAL, &args)?;
        Ok(m)
    }

    pub fn shape(&self) -> &NetShape {
        &self.shape
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// The epoch's plan: `order` (rating ids into `user` / `item`) in batches of
    /// `batch_size`, each batch's rows grouped for the embedding update.
    pub fn plan(
        &mut self,
        user: &[u32],
        item: &[u32],
        order: &[u32],
        batch_size: usize,
    ) -> Result<EpochPlan, Error> {
        assert!(batch_size > 0 && batch_size <= self.max_batch, "batch size");
        let slots = (&mut self.slot_u[..], &mut self.slot_i[..]);
        EpochPlan::build(&self.accel, slots, (user, item), order, batch_size)
    }

    /// Uploads the masks of the next batches ([`pack_masks`] of each, in order), in one
    /// copy; [`DenseNet::step`]'s `mask` then names a batch of them.
    pub fn upload_masks(&mut self, words: &[u32]) -> Result<(), Error> {
        if self.masks.as_ref().is_none_or(|m| m.len() < words.len()) {
            self.masks = None;
            self.masks = Some(Buf::zeros(&self.accel, words.len(), MODEL)?);
        }
        self.masks
            .as_ref()
            .expect("allocated above")
            .write(0, words)
    }

    fn grid_stride(&self, items: usize) -> Launch {
        Launch::warps(items.div_ceil(32), self.accel.multiprocessors(), WAVES)
    }

    fn warps(&self, items: usize) -> Launch {
        Launch::warps(items, self.accel.multiprocessors(), WAVES)
    }

    /// C (m × n) = op(A)·op(B) (+ bias), A and B given with their leading dimensions.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        (m, n, k): (usize, usize, usize),
        (a, lda, ta): (Arg, usize, bool),
        (b, ldb, tb): (Arg, usize, bool),
        c: Arg,
        bias: Arg,
    ) -> Result<(), Error> {
        let shape = gemm_launch(m, n, self.accel.multiprocessors());
        let u = |v: usize| Arg::U32(v as u32);
        let args = [
            u(m),
            u(n),
            u(k),
            a,
            u(lda),
            Arg::I32(i32::from(ta)),
            b,
            u(ldb),
            Arg::I32(i32::from(tb)),
            c,
            u(n),
            bias,
            Arg::I32(0),
        ];
        self.accel.launch(Kernel::DenseGemm, shape, &args)
    }

    /// The mask argument of site `s` of batch `mb` in the uploaded group (null without).
    fn mask_arg(&self, mb: Option<usize>, site: usize) -> Arg {
        let (Some(mb), Some(masks)) = (mb, self.masks.as_ref()) else {
            return Arg::NULL;
        };
        let per = self.shape.mask_words(self.max_batch);
        let before: usize = self.shape.mask_sites()[..site]
            .iter()
            .map(|(w, _)| (self.max_batch * w).div_ceil(32))
            .sum();
        masks.arg_at(mb * per + before)
    }

    /// One layer forward on `x` (n rows); `mask` its dropout mask when training.
    fn layer_forward(
        &self,
        l: &DenseLayer,
        c: &Cache,
        x: Input,
        n: usize,
        train: bool,
        mask: Arg,
    ) -> Result<(), Error> {
        let u = |v: usize| Arg::U32(v as u32);
        self.gemm(
            (n, l.dout, l.din),
            (x.0, x.1, false),
            (self.params.arg_at(l.w), l.din, true),
            c.z.arg(),
            self.params.arg_at(l.b),
        )?;
        let (gamma, beta) = match l.bn {
            Some((g, be, st)) => {
                let args = [
                    u(n),
                    u(l.dout),
                    c.z.arg(),
                    c.mean.arg(),
                    c.inv.arg(),
                    self.stats.arg_at(st),
                    self.stats.arg_at(st + l.dout),
                    Arg::I32(i32::from(train)),
                    Arg::F32(BN_MOMENTUM),
                    Arg::F32(BN_EPS),
                ];
                self.accel
                    .launch(Kernel::DenseBnStats, self.grid_stride(l.dout), &args)?;
                (self.params.arg_at(g), self.params.arg_at(be))
            }
            None => (Arg::NULL, Arg::NULL),
        };
        let args = [
            u(n),
            u(l.dout),
            c.z.arg(),
            c.out.arg(),
            c.xhat.as_ref().map_or(Arg::NULL, Buf::arg),
            c.mean.arg(),
            c.inv.arg(),
            gamma,
            beta,
            Arg::I32(i32::from(l.relu)),
            if train && l.dropout > 0.0 {
                mask
            } else {
                Arg::NULL
            },
            Arg::F32(l.dropout),
            Arg::I32(i32::from(train)),
        ];
        self.accel
            .launch(Kernel::DenseActivate, self.grid_stride(n * l.dout), &args)
    }

    /// One layer backward: `d` (its output's gradient, overwritten) into the parameter
    /// gradients and, when `dx`, the gradient of its input `x`.
    #[allow(clippy::too_many_arguments)]
    fn layer_backward(
        &self,
        l: &DenseLayer,
        c: &Cache,
        x: Input,
        d: Arg,
        n: usize,
        mask: Arg,
        dx: bool,
    ) -> Result<(), Error> {
        let u = |v: usize| Arg::U32(v as u32);
        let wide = self.grid_stride(n * l.dout);
        let cols = self.grid_stride(l.dout);
        if l.relu || l.dropout > 0.0 {
            let mask = if l.dropout > 0.0 { mask } else { Arg::NULL };
            let args = [
                u(n),
                u(l.dout),
                d,
                c.out.arg(),
                mask,
                Arg::F32(l.dropout),
                Arg::I32(i32::from(l.relu)),
            ];
            self.accel.launch(Kernel::DenseActBack, wide, &args)?;
        }
        if let Some((g, be, _)) = l.bn {
            let xhat = c.xhat.as_ref().expect("batch-norm layers keep xhat");
            let args = [
                u(n),
                u(l.dout),
                d,
                xhat.arg(),
                self.params.arg_at(g),
                c.inv.arg(),
                self.grad.arg_at(g),
                self.grad.arg_at(be),
            ];
            self.accel.launch(Kernel::DenseBnBack, cols, &args)?;
        }
        let args = [u(n), u(l.dout), d, self.grad.arg_at(l.b)];
        self.accel.launch(Kernel::DenseColSum, cols, &args)?;
        // gW (dout × din) = dᵀ · x; dx (n × din) = d · W.
        self.gemm(
            (l.dout, l.din, n),
            (d, l.dout, true),
            (x.0, x.1, false),
            self.grad.arg_at(l.w),
            Arg::NULL,
        )?;
        if dx {
            self.gemm(
                (n, l.din, l.dout),
                (d, l.dout, false),
                (self.params.arg_at(l.w), l.din, false),
                c.dx.arg(),
                Arg::NULL,
            )?;
        }
        Ok(())
    }

    /// The layers' inputs: layer 0 reads `first`, layer i the output of layer i − 1.
    fn input(caches: &[Cache], ls: &[DenseLayer], i: usize, first: Input) -> Input {
        if i == 0 {
            first
        } else {
            (caches[i - 1].out.arg(), ls[i - 1].dout)
        }
    }

    /// The forward pass of `pairs`; `masks` the uploaded batch's masks when training.
    fn forward(&self, pairs: Pairs, train: bool, masks: Option<usize>) -> Result<(), Error> {
        let s = &self.shape;
        let (n, k, d0) = (pairs.n, s.k, s.d0());
        let u = |v: usize| Arg::U32(v as u32);
        let (fdst, fld, fcol) = match &self.featbuf {
            Some(f) => (f.arg(), s.feat_width, 0),
            None => (self.x0.arg(), d0, s.emb_width()),
        };
        let args = [
            u(n),
            pairs.user,
            pairs.item,
            pairs.idx,
            self.p.arg(),
            self.q.arg(),
            u(k),
            Arg::I32(i32::from(s.product)),
            self.feat.as_ref().map_or(Arg::NULL, Buf::arg),
            u(s.feat_width),
            self.x0.arg(),
            u(d0),
            fdst,
            u(fld),
            u(fcol),
        ];
        self.accel
            .launch(Kernel::DenseGather, self.warps(n), &args)?;
        if let Some(f) = &self.featbuf {
            let first = (f.arg(), s.feat_width);
            for (i, l) in s.tower.iter().enumerate() {
                let x = Self::input(&self.tower, &s.tower, i, first);
                self.layer_forward(l, &self.tower[i], x, n, train, Arg::NULL)?;
            }
            let last = s.tower.last().expect("a tower");
            let args = [
                u(n),
                u(last.dout),
                self.tower.last().expect("a tower").out.arg(),
                u(last.dout),
                u(0),
                self.x0.arg(),
                u(d0),
                u(s.emb_width()),
            ];
            self.accel.launch(
                Kernel::DenseCopyCols,
                self.grid_stride(n * last.dout),
                &args,
            )?;
        }
        let mut site = 0;
        if train && s.input_dropout > 0.0 {
            let args = [
                u(n),
                u(d0),
                self.x0.arg(),
                self.mask_arg(masks, 0),
                Arg::F32(s.input_dropout),
            ];
            self.accel
                .launch(Kernel::DenseDropout, self.grid_stride(n * d0), &args)?;
            site = 1;
        }
        let first = (self.x0.arg(), d0);
        for (i, l) in s.layers.iter().enumerate() {
            let mask = if l.dropout > 0.0 {
                site += 1;
                self.mask_arg(masks, site - 1)
            } else {
                Arg::NULL
            };
            let x = Self::input(&self.layers, &s.layers, i, first);
            self.layer_forward(l, &self.layers[i], x, n, train, mask)?;
        }
        Ok(())
    }

    /// The step's scalars (emb_begin_step) for step t at rate lr.
    fn begin_step(&mut self, lr: f32) -> Result<(), Error> {
        if self.t as usize + 1 >= self.hist.len() {
            return Err(Error::Driver(format!(
                "neural step {} is past the {} steps the model was sized for",
                self.t + 1,
                self.hist.len() - 1
            )));
        }
        self.t += 1;
        let [kind, b1, b2, _, mom, wd] = self.cfg.opt_args();
        let args = [
            kind,
            b1,
            b2,
            mom,
            wd,
            Arg::F32(lr),
            Arg::U32(self.t),
            self.sc.arg(),
            self.hist.arg(),
            self.window.arg(),
            self.log_decay.arg(),
            self.rho_pow.arg(),
        ];
        self.accel
            .launch(Kernel::EmbBeginStep, Launch::SEQUENTIAL, &args)
    }

    /// emb_update over one table pair: rows `plan` (nu user rows then ni item rows), their
    /// per-position gradients `gu` / `gi` (coefficients all one), n positions' losses into
    /// `acc`.
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        (nu, ni, rows, off, ent): (usize, usize, Arg, Arg, Arg),
        (gu, gi, err2, n): (Arg, Arg, Arg, usize),
        user: (Arg, Arg, Arg),
        item: (Arg, Arg, Arg),
        width: usize,
        l2: f32,
        acc: Arg,
    ) -> Result<(), Error> {
        let [kind, b1, b2, eps, mom, wd] = self.cfg.opt_args();
        let w = Arg::U32(width as u32);
        let args = [
            Arg::U32(nu as u32),
            Arg::U32(ni as u32),
            rows,
            off,
            ent,
            self.ones.arg(),
            err2,
            gi,
            gu,
            Arg::U32(n as u32),
            user.0,
            user.1,
            user.2,
            item.0,
            item.1,
            item.2,
            w,
            w,
            Arg::I32(0),
            Arg::NULL,
            Arg::NULL,
            Arg::NULL,
            acc,
            kind,
            b1,
            b2,
            eps,
            mom,
            wd,
            Arg::F32(l2),
            Arg::U32(self.t),
            self.sc.arg(),
            self.hist.arg(),
            self.window.arg(),
            self.log_decay.arg(),
            self.rho_pow.arg(),
        ];
        self.accel
            .launch(Kernel::EmbUpdate, self.warps(nu + ni + 1), &args)
    }

    /// One optimizer step on batch `b` of `plan` at rate `lr` (launches only); `masks` the
    /// batch's index in the uploaded mask group (None: the model has no dropout). Its
    /// summed loss lands in the plan's slot b ([`EpochPlan::batch_sse`]).
    pub fn step(
        &mut self,
        data: &DeviceRatings,
        plan: &EpochPlan,
        b: usize,
        lr: f32,
        masks: Option<usize>,
    ) -> Result<(), Error> {
        let pb = plan.batches[b];
        self.begin_step(lr)?;
        let s = &self.shape;
        let (n, k, d0) = (pb.n, s.k, s.d0());
        let u = |v: usize| Arg::U32(v as u32);
        let idx = plan.order.arg_at(pb.start);
        let pairs = Pairs {
            user: data.user.arg(),
            item: data.item.arg(),
            idx,
            n,
        };
        self.forward(pairs, true, masks)?;
        let (classes, squash, lo, hi) = match &s.output {
            Output::Classes(_) => (
                self.classes.as_ref().map_or(Arg::NULL, Buf::arg),
                0,
                0.0,
                0.0,
            ),
            Output::Regression(Some([lo, hi])) => (Arg::NULL, 1, *lo, *hi),
            Output::Regression(None) => (Arg::NULL, 0, 0.0, 0.0),
        };
        let last = self.layers.last().expect("output layer");
        let args = [
            u(n),
            u(s.n_out()),
            last.z.arg(),
            data.rating.arg(),
            idx,
            classes,
            Arg::I32(squash),
            Arg::F32(lo),
            Arg::F32(hi),
            self.dz.arg(),
            self.loss.arg(),
        ];
        self.accel
            .launch(Kernel::DenseLoss, self.grid_stride(n), &args)?;
        // Back through the layers: layer i's output gradient is layer i + 1's dx.
        let n_sites = s.mask_sites().len();
        let mut site = n_sites;
        let first = (self.x0.arg(), d0);
        for i in (0..s.layers.len()).rev() {
            let l = &s.layers[i];
            let mask = if l.dropout > 0.0 {
                site -= 1;
                self.mask_arg(masks, site)
            } else {
                Arg::NULL
            };
            let d = match self.layers.get(i + 1) {
                Some(next) => next.dx.arg(),
                None => self.dz.arg(),
            };
            let x = Self::input(&self.layers, &s.layers, i, first);
            self.layer_backward(l, &self.layers[i], x, d, n, mask, true)?;
        }
        let dx0 = self.layers[0].dx.arg();
        if s.input_dropout > 0.0 {
            let args = [
                u(n),
                u(d0),
                dx0,
                Arg::NULL,
                self.mask_arg(masks, 0),
                Arg::F32(s.input_dropout),
                Arg::I32(0),
            ];
            self.accel
                .launch(Kernel::DenseActBack, self.grid_stride(n * d0), &args)?;
        }
        if let (Some(dt), Some(f)) = (&self.dtower, &self.featbuf) {
            let tw = s.tower.last().expect("a tower").dout;
            let args = [
                u(n),
                u(tw),
                dx0,
                u(d0),
                u(s.emb_width()),
                dt.arg(),
                u(tw),
                u(0),
            ];
            self.accel
                .launch(Kernel::DenseCopyCols, self.grid_stride(n * tw), &args)?;
            let first = (f.arg(), s.feat_width);
            for i in (0..s.tower.len()).rev() {
                let d = match self.tower.get(i + 1) {
                    Some(next) => next.dx.arg(),
                    None => dt.arg(),
                };
                let x = Self::input(&self.tower, &s.tower, i, first);
                self.layer_backward(&s.tower[i], &self.tower[i], x, d, n, Arg::NULL, i > 0)?;
            }
        }
        let args = [
            u(n),
            data.user.arg(),
            data.item.arg(),
            idx,
            self.p.arg(),
            self.q.arg(),
            u(k),
            Arg::I32(i32::from(s.product)),
            dx0,
            u(d0),
            self.gu.arg(),
            self.gi.arg(),
        ];
        self.accel
            .launch(Kernel::DenseEmbGrad, self.warps(n), &args)?;
        let grouping = (
            pb.nu,
            pb.ni,
            plan.rows.arg_at(pb.rows_at),
            plan.off.arg_at(pb.off_at),
            plan.ent.arg_at(pb.ent_at),
        );
        self.update(
            grouping,
            (self.gu.arg(), self.gi.arg(), self.loss.arg(), n),
            (self.p.arg(), self.su.arg(), self.last_u.arg()),
            (self.q.arg(), self.si.arg(), self.last_i.arg()),
            k,
            self.cfg.l2,
            plan.sse.arg_at(b),
        )?;
        // The dense parameters: rows 0..R, row r's one entry is position r of `grad`.
        let rows = s.param_rows();
        let dense = (rows, 0, self.prows.arg(), self.poff.arg(), self.prows.arg());
        let table = (self.params.arg(), self.pstate.arg(), self.plast.arg());
        self.update(
            dense,
            (self.grad.arg(), Arg::NULL, self.ones.arg(), 0),
            table,
            table,
            PARAM_ROW,
            0.0,
            self.scratch.arg(),
        )
    }

    /// The end of an epoch: every embedding row catches up to the last step.
    pub fn end_epoch(&mut self) -> Result<(), Error> {
        let [kind, b1, b2, eps, mom, wd] = self.cfg.opt_args();
        let k = Arg::U32(self.shape.k as u32);
        let sides = [
            (self.shape.n_users, &self.p, &self.su, &self.last_u),
            (self.shape.n_items, &self.q, &self.si, &self.last_i),
        ];
        for (n, w, s, last) in sides {
            let args = [
                Arg::U32(n as u32),
                w.arg(),
                s.arg(),
                last.arg(),
                k,
                k,
                kind,
                b1,
                b2,
                eps,
                mom,
                wd,
                Arg::U32(self.t),
                self.hist.arg(),
                self.window.arg(),
                self.log_decay.arg(),
                self.rho_pow.arg(),
            ];
            self.accel.launch(Kernel::EmbFlush, self.warps(n), &args)?;
        }
        Ok(())
    }

    /// The output layer's values (n × n_out, evaluation mode) for the pairs, in chunks of
    /// the batch size; the pairs stay on the device for the next call with the same slices.
    pub fn outputs(&self, users: &[u32], items: &[u32]) -> Result<Vec<f32>, Error> {
        assert_eq!(users.len(), items.len());
        let n_out = self.shape.n_out();
        let mut out = vec![0.0f32; users.len() * n_out];
        if users.is_empty() {
            return Ok(out);
        }
        let mut scored = self.scored.lock().unwrap();
        let key = (users.as_ptr() as usize, users.len());
        if scored.as_ref().is_none_or(|(s, _, _)| *s != key) {
            *scored = None;
            check_fits(
                self.accel.as_ref(),
                size_of_n::<u32>(2 * users.len()),
                PAIRS,
            )?;
            *scored = Some((
                key,
                Buf::from_slice(&self.accel, users, PAIRS)?,
                Buf::from_slice(&self.accel, items, PAIRS)?,
            ));
        }
        let (_, du, di) = scored.as_ref().expect("uploaded above");
        let z = &self.layers.last().expect("output layer").z;
        for start in (0..users.len()).step_by(self.max_batch) {
            let n = self.max_batch.min(users.len() - start);
            let pairs = Pairs {
                user: du.arg_at(start),
                item: di.arg_at(start),
                idx: Arg::NULL,
                n,
            };
            self.forward(pairs, false, None)?;
            z.read(0, &mut out[start * n_out..(start + n) * n_out])?;
        }
        Ok(out)
    }

    /// The weights back on the host (embedding rows as of their last step: call after
    /// `end_epoch` for the dense-equivalent weights), parameters without the padding.
    pub fn weights(&self) -> Result<NetWeights, Error> {
        let mut params = self.params.to_vec()?;
        params.truncate(self.shape.n_params);
        Ok(NetWeights {
            users: self.p.to_vec()?,
            items: self.q.to_vec()?,
            params,
            stats: self.stats.to_vec()?,
        })
    }
}

/// The GEMM's launch: a block per 16 × 16 tile of the m × n output, at most WAVES blocks
/// per multiprocessor (blocks loop over the rest).
pub fn gemm_launch(m: usize, n: usize, multiprocessors: u32) -> Launch {
    let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
    let cap = (multiprocessors.max(1) * WAVES) as usize;
    Launch {
        grid: tiles.clamp(1, cap) as u32,
        block: GEMM_THREADS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(din: usize, dout: usize, at: usize, dropout: f32) -> DenseLayer {
        DenseLayer {
            din,
            dout,
            w: at,
            b: at + din * dout,
            bn: None,
            relu: true,
            dropout,
        }
    }

    fn shape(input_dropout: f32) -> NetShape {
        NetShape {
            n_users: 10,
            n_items: 7,
            k: 4,
            product: false,
            feat_width: 3,
            tower: vec![layer(3, 2, 0, 0.0)],
            layers: vec![layer(10, 5, 8, 0.5), layer(5, 1, 63, 0.0)],
            input_dropout,
            n_params: 69,
            n_stats: 0,
            output: Output::Regression(Some([0.0, 5.0])),
        }
    }

    #[test]
    fn shapes_are_checked() {
        let s = shape(0.1);
        assert_eq!((s.emb_width(), s.d0(), s.n_out()), (8, 10, 1));
        assert!(s.check().is_ok());
        let mut bad = s.clone();
        bad.layers[0].din = 9;
        assert!(bad.check().unwrap_err().contains("join gives 10"));
        let mut cls = s.clone();
        cls.output = Output::Classes(vec![1.0, 2.0]);
        assert!(cls.check().unwrap_err().contains("one output per class"));
    }

    #[test]
    fn masks_follow_the_cpu_draw_order() {
        let s = shape(0.2);
        assert_eq!(s.mask_sites(), vec![(10, 0.2), (5, 0.5)]);
        // 64 rows: 640 bits = 20 words for the input, 320 bits = 10 for layer 0.
        assert_eq!(s.mask_words(64), 30);
        assert_eq!(shape(0.0).mask_words(64), 10);
        // A short batch of 3 rows: draws 30 then 15 values; every third dropped.
        let mut i = 0;
        let mut out = Vec::new();
        pack_masks(
            &s,
            64,
            3,
            |_| {
                i += 1;
                i % 3 == 0
            },
            &mut out,
        );
        assert_eq!(out.len(), 30);
        assert_eq!(i, 45);
        // Input site: bits 0..30, dropped at draws 3, 6, ... (bits 2, 5, ...).
        assert_eq!(out[0] & 0b111, 0b011);
        assert_eq!(out[0] >> 30, 0, "bits past 3 rows stay clear");
        // Layer site starts at word 20 with draw 31: bits 0..15, dropped at draws 33, 36...
        assert_eq!(out[20] & 0b111, 0b011);
        assert_eq!(out[20] >> 15, 0);
    }

    #[test]
    fn gemm_launches_cover_the_tiles_and_stay_capped() {
        let l = gemm_launch(64, 10, 132);
        assert_eq!((l.grid, l.block), (4, 128));
        assert_eq!(gemm_launch(4096, 128, 132).grid, 528);
        assert_eq!(gemm_launch(0, 0, 2).grid, 1);
    }

    #[test]
    fn parameters_pad_to_whole_rows() {
        let mut s = shape(0.0);
        assert_eq!(s.param_rows(), 1);
        s.n_params = 257;
        assert_eq!(s.param_rows(), 2);
        let small = s.device_bytes(2, 64, 100, 1000);
        assert!(s.device_bytes(2, 4096, 100, 1000) > small);
        assert!(s.device_bytes(2, 64, 100, 100_000) > small);
    }
}
