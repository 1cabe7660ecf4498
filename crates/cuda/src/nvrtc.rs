//! CUDA C → PTX or CUBIN with NVRTC, and each kernel's registers and spills: compiling to
//! CUBIN passes `--ptxas-options=-v`, whose log ("Used N registers", "N bytes spill
//! stores") NVRTC returns as the program log; `parse_ptxas_log` reads it.
//!
//! Works with NVRTC 12.x and 13.x alike (the calls used exist since 11.1). Sources are named
//! by file name only and compiled without line info, so the PTX holds no local paths.

use crate::Error;
use cudarc::nvrtc::sys;
use std::ffi::{CStr, CString, c_char};

/// What to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// PTX for a virtual architecture (`compute_75`), JIT-compiled by the driver at load.
    Ptx,
    /// Machine code for one real architecture (`sm_90`), with ptxas resource usage.
    Cubin,
}

/// One kernel's resources as ptxas reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelResources {
    pub name: String,
    pub registers: u32,
    pub stack_frame: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
}

/// A compiled program.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub ptx: String,
    /// Present for `Output::Cubin`.
    pub cubin: Option<Vec<u8>>,
    pub log: String,
    /// Per entry function, for `Output::Cubin`.
    pub kernels: Vec<KernelResources>,
}

fn check(r: sys::nvrtcResult, what: &str) -> Result<(), Error> {
    if r == sys::nvrtcResult::NVRTC_SUCCESS {
        return Ok(());
    }
    // SAFETY: nvrtcGetErrorString returns a static C string for any result code.
    let msg = unsafe { CStr::from_ptr(sys::nvrtcGetErrorString(r)) };
    Err(Error::Nvrtc(format!("{what}: {}", msg.to_string_lossy())))
}

fn ready() -> Result<(), Error> {
    crate::loader::preload_nvrtc().map_err(Error::NoNvrtc)?;
    if !crate::loader::loadable("nvrtc") {
        return Err(Error::NoNvrtc(crate::NVRTC_HOWTO.to_string()));
    }
    Ok(())
}

/// The loaded NVRTC's (major, minor) version.
pub fn version() -> Result<(i32, i32), Error> {
    ready()?;
    crate::probe::guard("nvrtcVersion", || {
        let (mut a, mut b) = (0, 0);
        // SAFETY: two out-parameters; the library is present (checked).
        check(unsafe { sys::nvrtcVersion(&mut a, &mut b) }, "nvrtcVersion")?;
        Ok((a, b))
    })
}

/// Compiles `source` (called `name`, with `headers` as (include name, contents)) for
/// `arch`: a `compute_XY` for PTX, an `sm_XY` for CUBIN. `extra` options are appended.
pub fn compile(
    name: &str,
    source: &str,
    headers: &[(&str, &str)],
    arch: &str,
    output: Output,
    extra: &[&str],
) -> Result<Compiled, Error> {
    ready()?;
    crate::probe::guard("nvrtc", || {
        compile_loaded(name, source, headers, arch, output, extra)
    })
}

fn cstr(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Nvrtc(format!("NUL byte in {s:?}")))
}

fn compile_loaded(
    name: &str,
    source: &str,
    headers: &[(&str, &str)],
    arch: &str,
    output: Output,
    extra: &[&str],
) -> Result<Compiled, Error> {
    let src = cstr(source)?;
    let cname = cstr(name)?;
    let hsrc = headers
        .iter()
        .map(|h| cstr(h.1))
        .collect::<Result<Vec<_>, _>>()?;
    let hname = headers
        .iter()
        .map(|h| cstr(h.0))
        .collect::<Result<Vec<_>, _>>()?;
    let hsrc_p: Vec<*const c_char> = hsrc.iter().map(|c| c.as_ptr()).collect();
    let hname_p: Vec<*const c_char> = hname.iter().map(|c| c.as_ptr()).collect();
    let mut opts = vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
    ];
    if output == Output::Cubin {
        opts.push("--ptxas-options=-v".to_string());
    }
    opts.extend(extra.iter().map(|s| s.to_string()));
    let copts = opts
        .iter()
        .map(|o| cstr(o))
        .collect::<Result<Vec<_>, _>>()?;
    let copts_p: Vec<*const c_char> = copts.iter().map(|c| c.as_ptr()).collect();
    let mut prog: sys::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the program, the
    // header arrays have `headers.len()` entries, and the program is destroyed below.
    unsafe {
        check(
            sys::nvrtcCreateProgram(
                &mut prog,
                src.as_ptr(),
                cname.as_ptr(),
                headers.len() as i32,
                hsrc_p.as_ptr(),
                hname_p.as_ptr(),
            ),
            "nvrtcCreateProgram",
        )?;
        let compiled = sys::nvrtcCompileProgram(prog, copts_p.len() as i32, copts_p.as_ptr());
        let result = (|| {
            let mut n = 0usize;
            check(sys::nvrtcGetProgramLogSize(prog, &mut n), "log size")?;
            let mut log = vec![0u8; n.max(1)];
            check(
                sys::nvrtcGetProgramLog(prog, log.as_mut_ptr().cast()),
                "log",
            )?;
            let log = String::from_utf8_lossy(&log[..n.saturating_sub(1)]).into_owned();
            if compiled != sys::nvrtcResult::NVRTC_SUCCESS {
                return Err(Error::Compile {
                    file: name.to_string(),
                    arch: arch.to_string(),
                    log,
                });
            }
            check(sys::nvrtcGetPTXSize(prog, &mut n), "PTX size")?;
            let mut ptx = vec![0u8; n.max(1)];
            check(sys::nvrtcGetPTX(prog, ptx.as_mut_ptr().cast()), "PTX")?;
            let ptx = String::from_utf8_lossy(&ptx[..n.saturating_sub(1)]).into_owned();
            let cubin = if output == Output::Cubin {
                check(sys::nvrtcGetCUBINSize(prog, &mut n), "CUBIN size")?;
                let mut c = vec![0u8; n];
                check(sys::nvrtcGetCUBIN(prog, c.as_mut_ptr().cast()), "CUBIN")?;
                Some(c)
            } else {
                None
            };
            let kernels = parse_ptxas_log(&log);
            Ok(Compiled {
                ptx,
                cubin,
                log,
                kernels,
            })
        })();
        sys::nvrtcDestroyProgram(&mut prog);
        result
    }
}

fn number_before(line: &str, unit: &str) -> Option<u32> {
    let at = line.find(unit)?;
    line[..at].split_whitespace().last()?.parse().ok()
}

/// Per entry function: registers, stack frame and spill bytes from ptxas's `-v` log.
pub fn parse_ptxas_log(log: &str) -> Vec<KernelResources> {
    let mut out: Vec<KernelResources> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default();
            out.push(KernelResources {
                name: name.to_string(),
                ..Default::default()
            });
        } else if let Some(k) = out.last_mut() {
            if line.contains("bytes stack frame") {
                k.stack_frame = number_before(line, "bytes stack frame").unwrap_or(0);
                k.spill_stores = number_before(line, "bytes spill stores").unwrap_or(0);
                k.spill_loads = number_before(line, "bytes spill loads").unwrap_or(0);
            } else if line.contains("Used ") && line.contains(" registers") {
                k.registers = number_before(line, "registers").unwrap_or(0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log NVRTC 13.0 returned for a kernel compiled with `--ptxas-options=-v`.
    const LOG: &str = "ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'sgd_epoch' for 'sm_90'
ptxas info    : Function properties for sgd_epoch
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 72 registers, used 0 barriers
ptxas info    : Compile time = 16.115 ms
ptxas info    : Compiling entry function 'predict' for 'sm_90'
ptxas info    : Function properties for predict
ptxas         .     16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 255 registers, 364 bytes cmem[0]
";

    #[test]
    fn ptxas_log_gives_registers_and_spills_per_kernel() {
        let k = parse_ptxas_log(LOG);
        assert_eq!(
            k,
            vec![
                KernelResources {
                    name: "sgd_epoch".into(),
                    registers: 72,
                    stack_frame: 0,
                    spill_stores: 0,
                    spill_loads: 0
                },
                KernelResources {
                    name: "predict".into(),
                    registers: 255,
                    stack_frame: 16,
                    spill_stores: 8,
                    spill_loads: 4
                },
            ]
        );
        assert!(parse_ptxas_log("").is_empty());
    }
}
