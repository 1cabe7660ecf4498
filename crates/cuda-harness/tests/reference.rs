//! Plain Rust references of the kernels' rules, summing in the kernels' order (per-lane
//! partial sums, then the xor butterfly of `warp_sum`), and small random test data.
#![allow(dead_code)]

use recpipe_cuda::mf::{MfShape, MfWeights};

/// A dot / dot_bias model on the host: rows `stride` floats apart, `k` factors then (with
/// `bias`) the bias at index `k`; `global` is the global bias (unused without `bias`).
#[derive(Debug, Clone)]
pub struct Model {
    pub p: Vec<f32>,
    pub q: Vec<f32>,
    pub stride: usize,
    pub k: usize,
    pub bias: bool,
    pub global: f32,
}

impl Model {
    /// Its shape for recpipe-cuda (whose rows are `k + bias` floats).
    pub fn shape(&self) -> MfShape {
        assert_eq!(self.stride, self.k + usize::from(self.bias));
        MfShape {
            n_users: self.p.len() / self.stride,
            n_items: self.q.len() / self.stride,
            k: self.k,
            bias: self.bias,
        }
    }

    pub fn weights(&self) -> MfWeights {
        MfWeights {
            p: self.p.clone(),
            q: self.q.clone(),
            global: self.global,
        }
    }

    /// The same shape with weights `w` (from a device).
    pub fn with(&self, w: MfWeights) -> Model {
        assert!(w.p.len() == self.p.len() && w.q.len() == self.q.len());
        Model {
            p: w.p,
            q: w.q,
            global: w.global,
            stride: self.stride,
            k: self.k,
            bias: self.bias,
        }
    }
}

/// A warp's lane-strided partial sums of `f(x)` for x < k, reduced as `warp_sum` does.
pub fn warp_sum(k: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut v = [0.0f32; 32];
    for (lane, s) in v.iter_mut().enumerate() {
        for t in 0..8 {
            let x = lane + 32 * t;
            *s += if x < k { f(x) } else { 0.0 * 0.0 };
        }
    }
    butterfly(v)
}

fn butterfly(mut v: [f32; 32]) -> f32 {
    let mut off = 16;
    while off > 0 {
        let w = v;
        for l in 0..32 {
            v[l] = w[l] + w[l ^ off];
        }
        off >>= 1;
    }
    v[0]
}

/// Like `warp_sum` but for the prediction kernels' loop (`x = lane; x < k; x += 32`).
pub fn warp_dot(k: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut v = [0.0f32; 32];
    for (lane, s) in v.iter_mut().enumerate() {
        let mut x = lane;
        while x < k {
            *s += f(x);
            x += 32;
        }
    }
    butterfly(v)
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The cpu grid path's per-rating rule (train's `cpu/grid.rs` `rate`), sequentially over
/// `order`, then the global bias step of the chunk. Returns Σ e².
#[allow(clippy::too_many_arguments)]
pub fn sgd_epoch(
    user: &[u32],
    item: &[u32],
    rating: &[f32],
    order: &[u32],
    m: &mut Model,
    mut sums: Option<(&mut [f32], &mut [f32])>,
    lr: f32,
    reg: f32,
    y_range: Option<[f32; 2]>,
) -> f64 {
    let (k, s) = (m.k, m.stride);
    let dims = (k + usize::from(m.bias)) as f32;
    let g0 = if m.bias { m.global } else { 0.0 };
    let (mut sse, mut gsum) = (0.0f64, 0.0f64);
    for &r in order {
        let r = r as usize;
        let (uo, io) = (user[r] as usize * s, item[r] as usize * s);
        let u: Vec<f32> = m.p[uo..uo + k].to_vec();
        let q: Vec<f32> = m.q[io..io + k].to_vec();
        let mut raw = g0 + warp_sum(k, |x| u[x] * q[x]);
        let (mut bu, mut bi) = (0.0, 0.0);
        if m.bias {
            bu = m.p[uo + k];
            bi = m.q[io + k];
            raw += bu + bi;
        }
        let (p, dp) = match y_range {
            Some([lo, hi]) => {
                let sg = sigmoid(raw);
                (lo + (hi - lo) * sg, (hi - lo) * sg * (1.0 - sg))
            }
            None => (raw, 1.0),
        };
        let e = p - rating[r];
        let c = 2.0 * e * dp;
        let (mut lu, mut li) = (lr, lr);
        if let Some((gu, gi)) = sums.as_mut() {
            let mut g2u = warp_sum(k, |x| (c * q[x] + reg * u[x]) * (c * q[x] + reg * u[x]));
            let mut g2i = warp_sum(k, |x| (c * u[x] + reg * q[x]) * (c * u[x] + reg * q[x]));
            if m.bias {
                g2u += (c + reg * bu) * (c + reg * bu);
                g2i += (c + reg * bi) * (c + reg * bi);
            }
            let (a, b) = (&mut gu[user[r] as usize], &mut gi[item[r] as usize]);
            *a += g2u / dims;
            *b += g2i / dims;
            lu = lr / a.sqrt();
            li = lr / b.sqrt();
        }
        let (au, su, ai, si) = (1.0 - lu * reg, lu * c, 1.0 - li * reg, li * c);
        for x in 0..k {
            m.p[uo + x] = au * u[x] - su * q[x];
            m.q[io + x] = ai * q[x] - si * u[x];
        }
        if m.bias {
            m.p[uo + k] = au * bu - su;
            m.q[io + k] = ai * bi - si;
        }
        sse += (e * e) as f64;
        gsum += c as f64;
    }
    if m.bias && !order.is_empty() {
        m.global -= lr * (gsum / order.len() as f64) as f32;
    }
    sse
}

/// The prediction kernels' score of one pair.
pub fn score(m: &Model, u: u32, i: u32, y: Option<[f32; 2]>) -> f32 {
    let (k, s) = (m.k, m.stride);
    let (uo, io) = (u as usize * s, i as usize * s);
    let mut raw = if m.bias { m.global } else { 0.0 } + warp_dot(k, |x| m.p[uo + x] * m.q[io + x]);
    if m.bias {
        raw += m.p[uo + k] + m.q[io + k];
    }
    match y {
        Some([lo, hi]) => lo + (hi - lo) * sigmoid(raw),
        None => raw,
    }
}

/// xorshift64*: small, seeded, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() >> 33) as usize % n
    }
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn shuffle(&mut self, v: &mut [u32]) {
        for j in (1..v.len()).rev() {
            v.swap(j, self.below(j + 1));
        }
    }
}

/// Random ratings over `nu` users and `ni` items (the last user and item always rated).
pub fn ratings(rng: &mut Rng, n: usize, nu: usize, ni: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let mut user: Vec<u32> = (0..n).map(|_| rng.below(nu) as u32).collect();
    let mut item: Vec<u32> = (0..n).map(|_| rng.below(ni) as u32).collect();
    user[n - 1] = nu as u32 - 1;
    item[n - 1] = ni as u32 - 1;
    let rating = (0..n).map(|_| 0.5 + 0.5 * rng.below(10) as f32).collect();
    (user, item, rating)
}

/// A model with factors of scale `scale`, biases too when `bias`; exact-length tables.
pub fn model(rng: &mut Rng, nu: usize, ni: usize, k: usize, bias: bool, scale: f32) -> Model {
    let stride = k + usize::from(bias);
    let mut table = |n: usize| {
        (0..n * stride)
            .map(|_| scale * (2.0 * rng.unit() - 1.0))
            .collect()
    };
    Model {
        p: table(nu),
        q: table(ni),
        stride,
        k,
        bias,
        global: if bias { 3.2 } else { 0.0 },
    }
}
