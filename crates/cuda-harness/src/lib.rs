//! The kernels of `recpipe-cuda` run on the cpu (C++20 through `cuda_host.h`, a block's
//! threads as fibers on the launching thread) behind
//! [`HostAccel`], an [`recpipe_cuda::Accel`], so tests run recpipe-cuda's host code (`mf`,
//! `minibatch`) and train's CUDA backend on it and check them against plain Rust references
//! with no GPU. Each kernel's parameter list is written once in C++ (its slot launcher in
//! `cpp/`) and once in Rust (the `Arg` list of the host code's launch).
//!
//! Built with AddressSanitizer where the C++ compiler supports it (`RECPIPE_HARNESS_ASAN=0`
//! turns it off): an out-of-bounds index aborts with the kernel's `.cu` line.

pub mod accel;

pub use accel::HostAccel;

/// Whether this build runs the kernels under AddressSanitizer.
pub const ASAN: bool = cfg!(harness_asan);
