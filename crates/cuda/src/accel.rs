//! The device seam: what the host code needs from a device — memory, copies and kernel
//! launches by [`Kernel`] — as one trait, [`Accel`]. [`crate::gpu::Gpu`] implements it with
//! the CUDA driver; recpipe-cuda-harness implements it on host threads with the same `.cu`
//! sources compiled as C++, so every line of host code above this trait (buffer sizes,
//! launch shapes, data layout, the training loops) runs in tests on machines with no GPU.
//!
//! Device memory is addressed by [`DevPtr`] (a `CUdeviceptr`; the harness's are host
//! addresses). Copies are synchronous; launches are ordered on one stream, and a copy from
//! the device waits for the launches before it.

use crate::Error;
use crate::kernel::{Arg, Kernel, Launch};
use std::fmt::Debug;

/// A device address (`CUdeviceptr`).
pub type DevPtr = u64;

/// One device, as the host code uses it.
pub trait Accel: Send + Sync + Debug {
    /// How the device is named in logs and model.json (`cuda:0`, `harness`).
    fn name(&self) -> String;

    /// A longer description for logs (`cuda:0: NVIDIA H200, sm_90, 139.8 GiB`).
    fn describe(&self) -> String {
        self.name()
    }

    /// Streaming multiprocessors, to size grids.
    fn multiprocessors(&self) -> u32;

    /// (free, total) device memory in bytes, when the device can tell.
    fn memory(&self) -> Option<(usize, usize)>;

    /// `bytes` of zeroed device memory.
    fn alloc_zeroed(&self, bytes: usize) -> Result<DevPtr, Error>;

    /// Frees what [`Accel::alloc_zeroed`] gave.
    ///
    /// # Safety
    /// `ptr` came from this device's `alloc_zeroed`, is freed once, and no launch still
    /// running uses it.
    unsafe fn free(&self, ptr: DevPtr);

    /// Copies `src` to device address `dst`.
    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), Error>;

    /// Copies from device address `src` into `dst`, after every launch before it.
    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), Error>;

    /// Runs `kernel` over `shape` with `args` (the kernel's parameter list, in order).
    fn launch(&self, kernel: Kernel, shape: Launch, args: &[Arg]) -> Result<(), Error>;
}
