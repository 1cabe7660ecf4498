//! The kernels of `recpipe-cuda` run on host threads (C++20 through `cuda_host.h`), behind
//! safe Rust calls, so tests can check them against plain Rust references with no GPU.
//!
//! Every call takes a launch shape (`grid` blocks of `block` threads); one block of 32
//! threads is the sequential schedule. Built with AddressSanitizer where the C++ compiler
//! supports it (`RECPIPE_HARNESS_ASAN=0` turns it off): an out-of-bounds index aborts with
//! the kernel's `.cu` line.

pub mod accel;
pub mod embedding;

pub use accel::HostAccel;

use std::os::raw::c_int;

/// Whether this build runs the kernels under AddressSanitizer.
pub const ASAN: bool = cfg!(harness_asan);

unsafe extern "C" {
    fn harness_sgd_epoch(
        grid: u32,
        block: u32,
        user: *const u32,
        item: *const u32,
        rating: *const f32,
        order: *const u32,
        n: u32,
        p: *mut f32,
        q: *mut f32,
        stride: u32,
        k: u32,
        bias: c_int,
        gu: *mut f32,
        gi: *mut f32,
        global: *const f32,
        lr: f32,
        reg: f32,
        squash: c_int,
        lo: f32,
        hi: f32,
        acc: *mut f64,
    );
    fn harness_planted_sgd_epoch(
        grid: u32,
        block: u32,
        user: *const u32,
        item: *const u32,
        rating: *const f32,
        order: *const u32,
        n: u32,
        p: *mut f32,
        q: *mut f32,
        stride: u32,
        k: u32,
        bias: c_int,
        gu: *mut f32,
        gi: *mut f32,
        global: *const f32,
        lr: f32,
        reg: f32,
        squash: c_int,
        lo: f32,
        hi: f32,
        acc: *mut f64,
    );
    fn harness_sgd_global_step(global: *mut f32, acc: *mut f64, lr: f32, n: u32);
    fn harness_predict(
        grid: u32,
        block: u32,
        user: *const u32,
        item: *const u32,
        n: u32,
        p: *const f32,
        q: *const f32,
        stride: u32,
        k: u32,
        bias: c_int,
        global: *const f32,
        squash: c_int,
        lo: f32,
        hi: f32,
        out: *mut f32,
    );
    fn harness_eval(
        grid: u32,
        block: u32,
        user: *const u32,
        item: *const u32,
        rating: *const f32,
        n: u32,
        p: *const f32,
        q: *const f32,
        stride: u32,
        k: u32,
        bias: c_int,
        global: *const f32,
        squash: c_int,
        lo: f32,
        hi: f32,
        out: *mut f32,
        partial: *mut f64,
        sums: *mut f64,
    );
}

/// Ratings as three parallel columns.
#[derive(Debug, Clone, Copy)]
pub struct Ratings<'a> {
    pub user: &'a [u32],
    pub item: &'a [u32],
    pub rating: &'a [f32],
}

/// A dot / dot_bias model: rows `stride` floats apart, `k` factors then (with `bias`) the
/// bias at index `k`; `global` is the global bias (unused without `bias`).
#[derive(Debug, Clone)]
pub struct Model {
    pub p: Vec<f32>,
    pub q: Vec<f32>,
    pub stride: usize,
    pub k: usize,
    pub bias: bool,
    pub global: f32,
}

/// One per-rating pass: learning rate, `reg` = 2·l2 + weight_decay, optional squash.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub lr: f32,
    pub reg: f32,
    pub y_range: Option<[f32; 2]>,
}

fn squash(y: Option<[f32; 2]>) -> (c_int, f32, f32) {
    y.map_or((0, 0.0, 0.0), |[lo, hi]| (1, lo, hi))
}

fn check(m: &Model, d: Ratings<'_>, order: Option<&[u32]>) -> usize {
    assert!(m.k <= 256 && m.stride >= m.k + usize::from(m.bias));
    assert!(d.user.len() == d.item.len() && d.item.len() == d.rating.len());
    assert!(order.is_none_or(|o| o.iter().all(|&r| (r as usize) < d.user.len())));
    let rows = |t: &[f32]| t.len() / m.stride;
    assert!(d.user.iter().all(|&u| (u as usize) < rows(&m.p)));
    assert!(d.item.iter().all(|&i| (i as usize) < rows(&m.q)));
    order.map_or(d.user.len(), <[u32]>::len)
}

/// `sgd_epoch` over `order` (or all ratings) then `sgd_global_step`; `sums` are Adagrad's
/// per-row sums (user, item), None for sgd. Returns Σ e². `planted` runs the variant built
/// with `PLANT_OFF_BY_ONE`.
#[allow(clippy::too_many_arguments)]
pub fn sgd_epoch(
    (grid, block): (u32, u32),
    d: Ratings<'_>,
    order: Option<&[u32]>,
    m: &mut Model,
    sums: Option<(&mut [f32], &mut [f32])>,
    st: Step,
    planted: bool,
) -> f64 {
    let n = check(m, d, order);
    let (sq, lo, hi) = squash(st.y_range);
    let (gu, gi) = match sums {
        Some((gu, gi)) => {
            assert!(gu.len() * m.stride >= m.p.len() && gi.len() * m.stride >= m.q.len());
            (gu.as_mut_ptr(), gi.as_mut_ptr())
        }
        None => (std::ptr::null_mut(), std::ptr::null_mut()),
    };
    let mut acc = [0.0f64; 2];
    let global = [m.global];
    let f = if planted {
        harness_planted_sgd_epoch
    } else {
        harness_sgd_epoch
    };
    // SAFETY: every index the correct kernel reads is checked above (rows, order, lengths);
    // the planted variant reads one past a row on purpose, which ASan reports.
    unsafe {
        f(
            grid,
            block,
            d.user.as_ptr(),
            d.item.as_ptr(),
            d.rating.as_ptr(),
            order.map_or(std::ptr::null(), <[u32]>::as_ptr),
            n as u32,
            m.p.as_mut_ptr(),
            m.q.as_mut_ptr(),
            m.stride as u32,
            m.k as u32,
            c_int::from(m.bias),
            gu,
            gi,
            global.as_ptr(),
            st.lr,
            st.reg,
            sq,
            lo,
            hi,
            acc.as_mut_ptr(),
        );
    }
    if m.bias {
        let mut g = [m.global];
        // SAFETY: one float and two doubles, as the kernel reads and writes.
        unsafe { harness_sgd_global_step(g.as_mut_ptr(), acc.as_mut_ptr(), st.lr, n as u32) };
        m.global = g[0];
    }
    acc[0]
}

/// Predictions for (user, item) pairs.
pub fn predict(
    (grid, block): (u32, u32),
    d: Ratings<'_>,
    m: &Model,
    y: Option<[f32; 2]>,
) -> Vec<f32> {
    check(m, d, None);
    let (sq, lo, hi) = squash(y);
    let mut out = vec![0.0f32; d.user.len()];
    let global = [m.global];
    // SAFETY: rows and lengths checked above; `out` holds one float per pair.
    unsafe {
        harness_predict(
            grid,
            block,
            d.user.as_ptr(),
            d.item.as_ptr(),
            d.user.len() as u32,
            m.p.as_ptr(),
            m.q.as_ptr(),
            m.stride as u32,
            m.k as u32,
            c_int::from(m.bias),
            global.as_ptr(),
            sq,
            lo,
            hi,
            out.as_mut_ptr(),
        );
    }
    out
}

/// (Σ e², Σ |e|, predictions) through `eval_partials` + `eval_reduce`.
pub fn eval(
    (grid, block): (u32, u32),
    d: Ratings<'_>,
    m: &Model,
    y: Option<[f32; 2]>,
) -> (f64, f64, Vec<f32>) {
    check(m, d, None);
    let (sq, lo, hi) = squash(y);
    let mut out = vec![0.0f32; d.user.len()];
    let mut partial = vec![0.0f64; 2 * grid as usize];
    let mut sums = [0.0f64; 2];
    let global = [m.global];
    // SAFETY: rows and lengths checked above; two partials per block, two sums.
    unsafe {
        harness_eval(
            grid,
            block,
            d.user.as_ptr(),
            d.item.as_ptr(),
            d.rating.as_ptr(),
            d.user.len() as u32,
            m.p.as_ptr(),
            m.q.as_ptr(),
            m.stride as u32,
            m.k as u32,
            c_int::from(m.bias),
            global.as_ptr(),
            sq,
            lo,
            hi,
            out.as_mut_ptr(),
            partial.as_mut_ptr(),
            sums.as_mut_ptr(),
        );
    }
    (sums[0], sums[1], out)
}
