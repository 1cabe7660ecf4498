//! What this machine offers, without panicking: the CUDA driver (found or not, where it
//! looked, its version), the devices (name, compute capability, memory), and NVRTC (found or
//! not, from where, its version). Libraries are checked for before cudarc touches them, and
//! every cudarc call runs under `catch_unwind`.

use crate::Error;
use crate::loader;
use std::path::PathBuf;

/// The CUDA driver library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverProbe {
    pub found: bool,
    /// The names tried, in order, through the dynamic loader.
    pub searched: Vec<String>,
    /// `LD_LIBRARY_PATH` as this process saw it.
    pub ld_library_path: Option<String>,
    /// The CUDA version the driver supports (13.0 for driver 580), when found.
    pub cuda_version: Option<(i32, i32)>,
}

/// NVRTC, the runtime compiler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvrtcProbe {
    pub found: bool,
    /// `RECPIPE_NVRTC_DIR` when set (loaded from there first).
    pub dir: Option<PathBuf>,
    pub searched: Vec<String>,
    pub version: Option<(i32, i32)>,
    /// Why it is missing or unusable, when it is.
    pub problem: Option<String>,
}

/// One CUDA device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub total_memory: usize,
    pub multiprocessors: i32,
}

impl DeviceInfo {
    /// The `sm_XY` architecture name of this device.
    pub fn arch(&self) -> String {
        let (a, b) = self.compute_capability;
        format!("sm_{a}{b}")
    }
}

/// Runs `f`, turning a panic into `Error::Panicked` (cudarc panics when a library or symbol
/// is missing).
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(Error::Panicked(format!("{what}: {msg}")))
    })
}

/// Looks for the driver library and asks it its CUDA version.
pub fn driver() -> DriverProbe {
    let searched = loader::candidates("cuda");
    let found = loader::loadable("cuda");
    let cuda_version = found
        .then(|| {
            guard("cuDriverGetVersion", || {
                let mut v = 0;
                // SAFETY: an out-parameter for one int; the library is present (checked).
                let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
                r.result().map_err(|e| Error::Driver(format!("{e:?}")))?;
                Ok((v / 1000, (v % 1000) / 10))
            })
            .ok()
        })
        .flatten();
    DriverProbe {
        found,
        searched,
        ld_library_path: std::env::var("LD_LIBRARY_PATH").ok(),
        cuda_version,
    }
}

/// The CUDA devices, or why there are none (no driver, no device, driver error).
pub fn devices() -> Result<Vec<DeviceInfo>, Error> {
    if !loader::loadable("cuda") {
        return Err(Error::NoDriver(loader::candidates("cuda")));
    }
    guard("listing devices", || {
        use cudarc::driver::result::device;
        use cudarc::driver::sys::CUdevice_attribute as A;
        let drv = |e: cudarc::driver::DriverError| Error::Driver(format!("{e:?}"));
        cudarc::driver::result::init().map_err(drv)?;
        let n = device::get_count().map_err(drv)?;
        let mut out = Vec::new();
        for ordinal in 0..n {
            let dev = device::get(ordinal).map_err(drv)?;
            // SAFETY: `dev` is a valid device handle from the initialised driver.
            let attr = |a| unsafe { device::get_attribute(dev, a) }.map_err(drv);
            out.push(DeviceInfo {
                ordinal: ordinal as usize,
                name: device::get_name(dev).map_err(drv)?,
                compute_capability: (
                    attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
                    attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
                ),
                // SAFETY: as above.
                total_memory: unsafe { device::total_mem(dev) }.map_err(drv)?,
                multiprocessors: attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
            });
        }
        Ok(out)
    })
}

/// Looks for NVRTC (after loading it from `RECPIPE_NVRTC_DIR` when set) and its version.
pub fn nvrtc() -> NvrtcProbe {
    let searched = loader::candidates("nvrtc");
    let pre = loader::preload_nvrtc();
    let dir = pre.as_ref().ok().cloned().flatten();
    if let Err(e) = pre {
        return NvrtcProbe {
            found: false,
            dir: std::env::var_os(loader::NVRTC_DIR_VAR).map(PathBuf::from),
            searched,
            version: None,
            problem: Some(e),
        };
    }
    if !loader::loadable("nvrtc") {
        return NvrtcProbe {
            found: false,
            dir,
            searched,
            version: None,
            problem: Some(crate::NVRTC_HOWTO.to_string()),
        };
    }
    match crate::nvrtc::version() {
        Ok(v) => NvrtcProbe {
            found: true,
            dir,
            searched,
            version: Some(v),
            problem: None,
        },
        Err(e) => NvrtcProbe {
            found: false,
            dir,
            searched,
            version: None,
            problem: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Never a panic: with or without a driver the probes return values.
    #[test]
    fn probes_return_values_without_panicking() {
        let d = driver();
        assert!(!d.searched.is_empty());
        match devices() {
            Ok(list) => println!("{} device(s): {list:?}", list.len()),
            Err(e) => println!("no devices: {e}"),
        }
        let n = nvrtc();
        assert_eq!(n.found, n.version.is_some(), "{n:?}");
    }

    #[test]
    fn arch_names_the_compute_capability() {
        let d = DeviceInfo {
            ordinal: 0,
            name: "x".into(),
            compute_capability: (9, 0),
            total_memory: 1,
            multiprocessors: 132,
        };
        assert_eq!(d.arch(), "sm_90");
    }

    #[test]
    fn a_panic_becomes_an_error() {
        let r: Result<(), Error> = guard("test", || panic!("boom"));
        assert!(matches!(r, Err(Error::Panicked(m)) if m.contains("boom")));
    }
}
