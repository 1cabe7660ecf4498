//! recpipe's GPU code: CUDA driver and NVRTC probing (`probe`), CUDA C → PTX/CUBIN with
//! per-kernel registers and spills (`nvrtc`), and the kernels' CUDA C sources in
//! `kernels/*.cu` (tested on the cpu through `recpipe-cuda-harness`).
//!
//! Nothing here needs CUDA to build: cudarc loads `libcuda` and `libnvrtc` at run time, and
//! every entry point checks for them first and returns an `Error` instead of panicking.
//! NVRTC is found through the dynamic loader (`LD_LIBRARY_PATH`) or `RECPIPE_NVRTC_DIR`, a
//! folder such as a pip wheel's `nvidia/cu13/lib` (see `loader`).

pub mod accel;
pub mod autorec;
pub mod bpr;
pub mod buf;
pub mod dense;
pub mod ease;
pub mod gate;
pub mod gpu;
pub mod ials;
pub mod kernel;
mod loader;
pub mod mf;
pub mod minibatch;
pub mod nvrtc;
pub mod probe;
pub mod ptx;

pub use accel::{Accel, DevPtr};
pub use buf::{Buf, Purpose};
pub use kernel::{Arg, Kernel, Launch};
pub use loader::NVRTC_DIR_VAR;

/// How to get NVRTC, for messages.
pub const NVRTC_HOWTO: &str = "NVRTC not found: `bash scripts/nvrtc_env.sh` (or pip install \
     'nvidia-cuda-nvrtc==13.0.*') and set RECPIPE_NVRTC_DIR to the wheel's nvidia/cu13/lib";

/// The kernels' CUDA C sources, (file name, contents), and the header they share.
pub const SOURCES: &[(&str, &str)] = &[
    ("sgd.cu", include_str!("../kernels/sgd.cu")),
    ("predict.cu", include_str!("../kernels/predict.cu")),
    ("embedding.cu", include_str!("../kernels/embedding.cu")),
    ("autorec.cu", include_str!("../kernels/autorec.cu")),
    ("dense.cu", include_str!("../kernels/dense.cu")),
    ("ease.cu", include_str!("../kernels/ease.cu")),
    ("ials.cu", include_str!("../kernels/ials.cu")),
    ("bpr.cu", include_str!("../kernels/bpr.cu")),
];
pub const HEADERS: &[(&str, &str)] = &[
    ("common.cuh", include_str!("../kernels/common.cuh")),
    ("rowopt.cuh", include_str!("../kernels/rowopt.cuh")),
];

/// Everything that can go wrong, as values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CUDA driver not found (looked for {0:?} through the dynamic loader)")]
    NoDriver(Vec<String>),
    #[error("CUDA driver: {0}")]
    Driver(String),
    #[error("{0}")]
    NoNvrtc(String),
    #[error("NVRTC: {0}")]
    Nvrtc(String),
    #[error("{file} does not compile for {arch}:\n{log}")]
    Compile {
        file: String,
        arch: String,
        log: String,
    },
    #[error(
        "{device}: out of device memory for {what}: needs {} but {} of {} is free; lower `{setting}`",
        human(*bytes), human(*free), human(*total)
    )]
    OutOfMemory {
        device: String,
        what: &'static str,
        bytes: usize,
        free: usize,
        total: usize,
        setting: &'static str,
    },
    #[error("a CUDA library call panicked: {0}")]
    Panicked(String),
}

/// Bytes as MiB / GiB for messages.
pub fn human(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}
