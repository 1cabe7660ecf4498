//! [`Gpu`]: the [`Accel`] of one CUDA device through the driver API (cudarc, loaded at run
//! time). Opening one checks for the driver and the device first (`probe`), and loads every
//! kernel module at once, so a driver too old for the shipped PTX is reported when the
//! device is opened, not in the middle of training. Launches go to the legacy default
//! stream, so the synchronous copies from the device wait for them.

use crate::accel::{Accel, DevPtr};
use crate::kernel::{Arg, Kernel, Launch};
use crate::probe::{DeviceInfo, guard};
use crate::{Error, ptx};
use cudarc::driver::sys;
use cudarc::driver::{CudaContext, DriverError, result};
use std::collections::BTreeMap;
use std::ffi::{CString, c_void};
use std::sync::Arc;

/// A loaded kernel function handle (valid while its module is loaded, i.e. for the life of
/// the `Gpu`).
#[derive(Debug, Clone, Copy)]
struct Function(sys::CUfunction);
// SAFETY: CUfunction handles may be used from any thread with the context current.
unsafe impl Send for Function {}
// SAFETY: as above; launching through a shared handle is thread-safe in the driver.
unsafe impl Sync for Function {}

/// One CUDA device with recpipe's kernels loaded.
#[derive(Debug)]
pub struct Gpu {
    info: DeviceInfo,
    ctx: Arc<CudaContext>,
    functions: BTreeMap<Kernel, Function>,
}

fn drv(e: DriverError) -> Error {
    Error::Driver(format!("{e:?}"))
}

impl Gpu {
    /// Opens device `ordinal` and loads the kernels, or says what is missing: no driver,
    /// no such device, or a driver that refuses the PTX.
    pub fn open(ordinal: usize) -> Result<Arc<Gpu>, Error> {
        let devices = crate::probe::devices()?;
        let info = devices.get(ordinal).cloned().ok_or_else(|| {
            Error::Driver(match devices.len() {
                0 => "the driver found no CUDA device".to_string(),
                n => format!(
                    "cuda:{ordinal} asked for, but this machine has {n} device(s): cuda:0..cuda:{}",
                    n - 1
                ),
            })
        })?;
        guard("opening the CUDA device", || {
            let ctx = CudaContext::new(ordinal).map_err(drv)?;
            let arch = info.arch();
            let mut functions = BTreeMap::new();
            for module in modules() {
                let image = ptx::module_ptx(module, &arch)?;
                let text = CString::new(image.as_bytes())
                    .map_err(|_| Error::Driver(format!("{module}.ptx holds a NUL byte")))?;
                // SAFETY: a NUL-terminated PTX text; the context is current (CudaContext::new
                // binds it).
                let m = unsafe { result::module::load_data(text.as_ptr().cast()) }
                    .map_err(|e| load_error(module, e))?;
                for &k in Kernel::ALL.iter().filter(|k| k.module() == module) {
                    let name = CString::new(k.name()).expect("kernel names have no NUL");
                    // SAFETY: `m` is a loaded module, never unloaded while the Gpu lives.
                    let f = unsafe { result::module::get_function(m, name) }.map_err(drv)?;
                    functions.insert(k, Function(f));
                }
            }
            Ok(Arc::new(Gpu {
                info: info.clone(),
                ctx,
                functions,
            }))
        })
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn bind(&self) -> Result<(), Error> {
        self.ctx.bind_to_thread().map_err(drv)
    }
}

/// The kernel modules, once each.
fn modules() -> Vec<&'static str> {
    let mut m: Vec<&'static str> = Kernel::ALL.iter().map(|k| k.module()).collect();
    m.dedup();
    m
}

fn load_error(module: &str, e: DriverError) -> Error {
    let text = format!("{e:?}");
    if text.contains("UNSUPPORTED_PTX_VERSION") || text.contains("INVALID_PTX") {
        Error::Driver(format!(
            "the NVIDIA driver cannot load the shipped {module}.ptx ({text}): it needs a driver \
             for CUDA 12.0 or newer (`nvidia-smi` shows the driver's CUDA version)"
        ))
    } else {
        Error::Driver(format!("loading {module}.ptx: {text}"))
    }
}

impl Accel for Gpu {
    fn name(&self) -> String {
        format!("cuda:{}", self.info.ordinal)
    }

    fn describe(&self) -> String {
        format!(
            "cuda:{}: {}, {}, {}",
            self.info.ordinal,
            self.info.name,
            self.info.arch(),
            crate::human(self.info.total_memory)
        )
    }

    fn multiprocessors(&self) -> u32 {
        self.info.multiprocessors.max(1) as u32
    }

    fn memory(&self) -> Option<(usize, usize)> {
        self.bind().ok()?;
        result::mem_get_info().ok()
    }

    fn alloc_zeroed(&self, bytes: usize) -> Result<DevPtr, Error> {
        self.bind()?;
        // SAFETY: the context is current; the memory is zeroed before use.
        unsafe {
            let p = result::malloc_sync(bytes.max(1)).map_err(drv)?;
            result::memset_d8_sync(p, 0, bytes.max(1)).map_err(drv)?;
            Ok(p)
        }
    }

    unsafe fn free(&self, ptr: DevPtr) {
        if self.bind().is_ok() {
            // SAFETY: the caller's contract (allocated here, freed once, not in use).
            let _ = unsafe { result::free_sync(ptr) };
        }
    }

    fn upload(&self, dst: DevPtr, src: &[u8]) -> Result<(), Error> {
        self.bind()?;
        // SAFETY: `dst` has room for `src` (Buf checks its bounds).
        unsafe { result::memcpy_htod_sync(dst, src) }.map_err(drv)
    }

    fn download(&self, src: DevPtr, dst: &mut [u8]) -> Result<(), Error> {
        self.bind()?;
        // SAFETY: `src` holds `dst.len()` bytes (Buf checks its bounds); a synchronous copy
        // on the legacy stream waits for the launches before it.
        unsafe { result::memcpy_dtoh_sync(dst, src) }.map_err(drv)
    }

    fn launch(&self, kernel: Kernel, shape: Launch, args: &[Arg]) -> Result<(), Error> {
        self.bind()?;
        let f = self.functions[&kernel];
        // Each parameter's value in its own 8-byte slot, little-endian: the driver reads
        // the parameter's size from the start of the slot.
        let mut slots: Vec<[u8; 8]> = args
            .iter()
            .map(|a| {
                let mut s = [0u8; 8];
                match *a {
                    Arg::Ptr(p) => s.copy_from_slice(&p.to_le_bytes()),
                    Arg::U32(v) => s[..4].copy_from_slice(&v.to_le_bytes()),
                    Arg::I32(v) => s[..4].copy_from_slice(&v.to_le_bytes()),
                    Arg::F32(v) => s[..4].copy_from_slice(&v.to_le_bytes()),
                }
                s
            })
            .collect();
        let mut params: Vec<*mut c_void> =
            slots.iter_mut().map(|s| s.as_mut_ptr().cast()).collect();
        // SAFETY: `f` is a loaded kernel whose parameter list is `args` (kernel.rs and the
        // harness tests check each call site against the signature); the slots outlive
        // the call, which copies them.
        unsafe {
            result::launch_kernel(
                f.0,
                (shape.grid, 1, 1),
                (shape.block, 1, 1),
                0,
                std::ptr::null_mut(),
                &mut params,
            )
        }
        .map_err(drv)
    }
}
