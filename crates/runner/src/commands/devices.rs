//! `recpipe devices`: what this machine offers for training: the CPU (logical cores, SIMD),
//! the CUDA driver and its devices, NVRTC, and the PTX this binary ships; `--check-kernels`
//! compiles every kernel source with NVRTC and prints each kernel's registers and spills.

use crate::out::outln;
use anyhow::{Result, bail};
use recpipe_cuda::nvrtc::{self, Output};
use recpipe_cuda::probe::{self, DeviceInfo};
use recpipe_cuda::{Error, HEADERS, NVRTC_DIR_VAR, NVRTC_HOWTO, SOURCES, ptx};

pub const DEVICES_HELP: &str = "\
Prints the CPU (logical cores, SIMD level), the CUDA driver (found or not, the library names
searched through the dynamic loader, LD_LIBRARY_PATH, the CUDA version it supports), the CUDA
devices (ordinal, name, architecture, memory, multiprocessors) or why there are none, NVRTC
(found or not, RECPIPE_NVRTC_DIR, its version) and the PTX shipped in this binary (its PTX ISA
version, its target and the driver it needs).

Training on a GPU needs only the NVIDIA driver: the kernels ship as PTX that the driver
compiles for its device. NVRTC (the CUDA runtime compiler) is needed only for --check-kernels
and for RECPIPE_CUDA_RUNTIME_COMPILE=1 (kernel development); get it with
  export RECPIPE_NVRTC_DIR=\"$(bash scripts/nvrtc_env.sh)\"
(or pip install 'nvidia-cuda-nvrtc==13.0.*' and point RECPIPE_NVRTC_DIR at its nvidia/cu13/lib).

--check-kernels compiles every kernel source with NVRTC to machine code for --arch and prints
one line per kernel: file, kernel, registers per thread, spill stores and loads in bytes
(spills mean the kernel is slower than it should be). It fails on a compile error or when
NVRTC is missing; no GPU is needed.

Examples:
  recpipe devices
  recpipe devices --check-kernels
  recpipe devices --check-kernels --arch sm_80";

#[derive(clap::Args)]
pub struct DevicesArgs {
    /// Also compile every kernel with NVRTC and print its registers and spill bytes
    #[arg(long)]
    pub check_kernels: bool,
    /// The architecture --check-kernels compiles for [default: the first device's, else sm_90]
    #[arg(long, value_name = "sm_XY", requires = "check_kernels", value_parser = parse_arch)]
    pub arch: Option<String>,
}

/// `sm_` and a compute capability (`sm_90`, `sm_90a`, `sm_120`).
fn parse_arch(s: &str) -> Result<String, String> {
    let cc = s.strip_prefix("sm_").unwrap_or_default();
    let digits = cc.trim_end_matches(['a', 'f']);
    if digits.len() >= 2
        && digits.len() + 1 >= cc.len()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(s.to_string())
    } else {
        Err(format!("expected sm_XY such as sm_90, got {s:?}"))
    }
}

pub fn devices(a: &DevicesArgs) -> Result<()> {
    cpu();
    let driver = probe::driver();
    match (driver.found, driver.cuda_version) {
        (false, _) => outln!("CUDA driver: not found"),
        (true, Some((x, y))) => outln!("CUDA driver: found, CUDA {x}.{y}"),
        (true, None) => outln!("CUDA driver: found, CUDA version unknown"),
    }
    let mut searched: Vec<&str> = Vec::new();
    for name in &driver.searched {
        if !searched.contains(&name.as_str()) {
            searched.push(name);
        }
    }
    outln!(
        "  searched: {} (through the dynamic loader)",
        searched.join(", ")
    );
    outln!(
        "  LD_LIBRARY_PATH: {}",
        driver.ld_library_path.as_deref().unwrap_or("(unset)")
    );
    let devices = list_devices();
    let nvrtc = nvrtc_report();
    shipped_ptx(driver.cuda_version);
    if !a.check_kernels {
        return Ok(());
    }
    if let Some(problem) = nvrtc {
        if problem == NVRTC_HOWTO {
            bail!("--check-kernels: {problem}");
        }
        bail!("--check-kernels: {problem} ({NVRTC_HOWTO})");
    }
    let arch = a
        .arch
        .clone()
        .or_else(|| devices.first().map(DeviceInfo::arch))
        .unwrap_or_else(|| "sm_90".to_string());
    check_kernels(&arch)
}

fn cpu() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    outln!("CPU: {cores} logical cores, SIMD: {}", simd());
}

fn simd() -> &'static str {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if is_x86_feature_detected!("avx2") {
        return "avx2";
    }
    "baseline"
}

/// Prints the devices (or why there are none) and returns them.
fn list_devices() -> Vec<DeviceInfo> {
    match probe::devices() {
        Ok(list) if list.is_empty() => outln!("Devices: none (the driver reports no CUDA device)"),
        Ok(list) => {
            outln!("Devices: {}", list.len());
            for d in &list {
                outln!(
                    "  {}: {}, {}, {:.1} GiB, {} SMs",
                    d.ordinal,
                    d.name,
                    d.arch(),
                    d.total_memory as f64 / (1u64 << 30) as f64,
                    d.multiprocessors
                );
            }
            return list;
        }
        Err(Error::NoDriver(_)) => outln!("Devices: none (no CUDA driver)"),
        Err(e) => outln!("Devices: none ({e})"),
    }
    Vec::new()
}

/// Prints what NVRTC offers; returns why it is unusable, if it is.
fn nvrtc_report() -> Option<String> {
    let n = probe::nvrtc();
    match n.version {
        Some((x, y)) => outln!("NVRTC: found, version {x}.{y}"),
        None => outln!("NVRTC: not found (only --check-kernels and kernel development need it)"),
    }
    outln!(
        "  {NVRTC_DIR_VAR}: {}",
        n.dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "(unset)".into())
    );
    if let Some(problem) = &n.problem {
        outln!("  {problem}");
    }
    n.problem
}

fn shipped_ptx(driver_cuda: Option<(i32, i32)>) {
    let mut isas: Vec<(u32, u32)> = ptx::EMBEDDED
        .iter()
        .filter_map(|(_, p)| ptx::isa_version(p))
        .collect();
    isas.sort();
    isas.dedup();
    let mut targets: Vec<&str> = ptx::EMBEDDED
        .iter()
        .filter_map(|(_, p)| ptx::target(p))
        .collect();
    targets.sort();
    targets.dedup();
    let stems: Vec<&str> = ptx::EMBEDDED.iter().map(|(s, _)| *s).collect();
    let isa = isas
        .iter()
        .map(|(a, b)| format!("{a}.{b}"))
        .collect::<Vec<_>>()
        .join(", ");
    outln!(
        "Shipped PTX: ISA {isa}, target {} ({}), {} modules ({})",
        targets.join(", "),
        ptx::ARCH,
        stems.len(),
        stems.join(", ")
    );
    // The newest ISA decides which drivers load every module.
    match isas.last().and_then(|&v| ptx::driver_cuda_for_isa(v)) {
        Some(need) => {
            let verdict = match driver_cuda {
                Some(have) if have >= need => {
                    format!("; this driver (CUDA {}.{}) loads it", have.0, have.1)
                }
                Some(have) => format!(
                    "; this driver (CUDA {}.{}) is too old: update the NVIDIA driver",
                    have.0, have.1
                ),
                None => String::new(),
            };
            outln!(
                "  needs a driver for CUDA {}.{} or newer{verdict}",
                need.0,
                need.1
            );
        }
        None => outln!("  needs a driver that loads PTX ISA {isa}"),
    }
    if ptx::runtime_compile() {
        outln!(
            "  {}=1: the kernels are compiled with NVRTC at run time instead",
            ptx::RUNTIME_COMPILE_VAR
        );
    }
}

fn check_kernels(arch: &str) -> Result<()> {
    let (x, y) = nvrtc::version()?;
    outln!("Kernels for {arch} (NVRTC {x}.{y}):");
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (file, src) in SOURCES {
        match nvrtc::compile(file, src, HEADERS, arch, Output::Cubin, &[]) {
            Ok(c) if c.kernels.is_empty() => {
                eprintln!("{file}: no kernels in NVRTC's ptxas log:\n{}", c.log);
                failed.push(*file);
            }
            Ok(c) => rows.extend(c.kernels.into_iter().map(|k| (*file, k))),
            Err(e) => {
                eprintln!("{e}");
                failed.push(*file);
            }
        }
    }
    let fw = rows.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
    let kw = rows.iter().map(|(_, k)| k.name.len()).max().unwrap_or(0);
    for (file, k) in &rows {
        outln!(
            "  {file:<fw$}  {:<kw$}  {:>3} registers/thread, {} bytes spill stores, {} bytes spill loads",
            k.name,
            k.registers,
            k.spill_stores,
            k.spill_loads
        );
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} kernel sources do not compile for {arch}: {} (NVRTC's log above)",
            failed.len(),
            SOURCES.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_is_sm_and_a_compute_capability() {
        for ok in ["sm_75", "sm_90", "sm_90a", "sm_120", "sm_100f"] {
            assert_eq!(parse_arch(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "90",
            "sm_",
            "sm_9",
            "compute_90",
            "sm_9x",
            "sm_90aa",
            "sm_a",
        ] {
            assert!(parse_arch(bad).is_err(), "{bad}");
        }
    }
}
