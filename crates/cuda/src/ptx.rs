//! The kernels as PTX made ahead of time, so that a machine with only the NVIDIA driver (no
//! NVRTC, no CUDA toolkit) runs them: `ptx/<stem>.ptx` for each `kernels/<stem>.cu` in
//! [`SOURCES`](crate::SOURCES), embedded in the binary ([`embedded`], [`EMBEDDED`]).
//!
//! Pinned for the widest driver range: the files are written by NVRTC 12.0 (PyPI
//! `nvidia-cuda-nvrtc-cu12==12.0.140`) for [`ARCH`] = `compute_75` (Turing, the oldest
//! architecture CUDA 13 still supports). NVRTC 12.0 writes PTX ISA 8.0, which every driver
//! for CUDA 12.0 or newer loads (CUDA 13 drivers included) and JIT-compiles for its device;
//! NVRTC 13.0 would write ISA 9.0, which only drivers 580 and newer load.
//!
//! `just kernels` regenerates the files (`examples/kernels.rs`, with `RECPIPE_NVRTC_DIR`
//! from `bash scripts/nvrtc_env.sh 12.0`), including `ptx/embedded.rs`, the list this module
//! embeds; it refuses any other NVRTC version. `tests/ptx.rs` checks that the checked-in
//! files are exactly what the sources give. Nothing machine-dependent goes in: sources are
//! named by file name only and compiled without line info.
//!
//! Kernel development: with `RECPIPE_CUDA_RUNTIME_COMPILE=1`, [`module_ptx`] compiles the
//! `.cu` source (as built into the binary) with NVRTC at run time for the device's
//! architecture instead of returning the shipped PTX, so an edited kernel runs after a
//! `cargo build` without `just kernels`. NVRTC then comes from `RECPIPE_NVRTC_DIR` or the
//! dynamic loader, any version the driver can follow: NVRTC 13.0's PTX (ISA 9.0) needs a
//! driver for CUDA 13.0 (580 or newer), NVRTC 12.x's a driver for that 12.x or newer.

use crate::nvrtc::{self, Output};
use crate::{Error, HEADERS, SOURCES};
use std::borrow::Cow;

/// The virtual architecture of the shipped PTX.
pub const ARCH: &str = "compute_75";

/// The NVRTC (major, minor) that writes the shipped PTX.
pub const NVRTC: (i32, i32) = (12, 0);

/// Set to `1` to compile the kernels with NVRTC at run time instead of loading the shipped PTX.
pub const RUNTIME_COMPILE_VAR: &str = "RECPIPE_CUDA_RUNTIME_COMPILE";

/// The shipped PTX, (stem, PTX), in [`SOURCES`] order; `ptx/embedded.rs` is written by
/// `just kernels`.
pub const EMBEDDED: &[(&str, &str)] = include!("../ptx/embedded.rs");

/// The shipped PTX of module `stem` (`sgd` for `kernels/sgd.cu`).
pub fn embedded(stem: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(s, _)| *s == stem).map(|(_, p)| *p)
}

/// The module name of a source file: `sgd.cu` → `sgd`.
pub fn stem(file: &str) -> &str {
    file.strip_suffix(".cu").unwrap_or(file)
}

/// The (file name, CUDA C) of module `stem`.
pub fn source(stem: &str) -> Option<(&'static str, &'static str)> {
    SOURCES
        .iter()
        .find(|(file, _)| self::stem(file) == stem)
        .copied()
}

/// Whether `RECPIPE_CUDA_RUNTIME_COMPILE=1` is set.
pub fn runtime_compile() -> bool {
    std::env::var(RUNTIME_COMPILE_VAR).is_ok_and(|v| v == "1")
}

/// The PTX to load for module `stem` on a device of architecture `arch` (`sm_90`): the
/// shipped PTX, or with `RECPIPE_CUDA_RUNTIME_COMPILE=1` the source compiled now by NVRTC
/// for `arch`.
pub fn module_ptx(stem: &str, arch: &str) -> Result<Cow<'static, str>, Error> {
    if runtime_compile() {
        return compile_module(stem, arch).map(Cow::Owned);
    }
    embedded(stem)
        .map(Cow::Borrowed)
        .ok_or_else(|| unknown(stem))
}

/// Module `stem`'s source compiled now by NVRTC to PTX for `arch` (what [`module_ptx`]
/// returns under `RECPIPE_CUDA_RUNTIME_COMPILE=1`).
pub fn compile_module(stem: &str, arch: &str) -> Result<String, Error> {
    let (file, src) = source(stem).ok_or_else(|| unknown(stem))?;
    Ok(nvrtc::compile(file, src, HEADERS, arch, Output::Ptx, &[])?.ptx)
}

fn unknown(stem: &str) -> Error {
    let known: Vec<&str> = SOURCES.iter().map(|(f, _)| self::stem(f)).collect();
    Error::Driver(format!(
        "no kernel module `{stem}` in this build (modules: {})",
        known.join(", ")
    ))
}

/// Fails unless the loaded NVRTC is [`NVRTC`] (the generator and its test need exactly it).
pub fn check_generator_nvrtc() -> Result<(), Error> {
    let v = nvrtc::version().map_err(|e| match e {
        Error::NoNvrtc(why) => Error::NoNvrtc(format!(
            "the shipped PTX is written by NVRTC 12.0, which was not found{}; run `just \
             kernels`, which sets {}=\"$(bash scripts/nvrtc_env.sh 12.0)\"",
            if why == crate::NVRTC_HOWTO {
                String::new()
            } else {
                format!(" ({why})")
            },
            crate::NVRTC_DIR_VAR
        )),
        e => e,
    })?;
    if v == NVRTC {
        return Ok(());
    }
    Err(Error::Nvrtc(format!(
        "the shipped PTX is written by NVRTC {}.{} (PTX ISA 8.0, loadable by drivers for \
         CUDA 12.0+), but NVRTC {}.{} is loaded{}; run `just kernels`, which sets {}=\"$(bash \
         scripts/nvrtc_env.sh 12.0)\"",
        NVRTC.0,
        NVRTC.1,
        v.0,
        v.1,
        std::env::var(crate::NVRTC_DIR_VAR)
            .map(|d| format!(" (from {}={d})", crate::NVRTC_DIR_VAR))
            .unwrap_or_default(),
        crate::NVRTC_DIR_VAR,
    )))
}

/// The shipped-PTX file for source `file`: a comment saying where it comes from, then
/// NVRTC's PTX for [`ARCH`]. Call [`check_generator_nvrtc`] first.
pub fn generate(file: &str, src: &str) -> Result<String, Error> {
    let c = nvrtc::compile(file, src, HEADERS, ARCH, Output::Ptx, &[])?;
    let mut out = format!(
        "// Generated by `just kernels` from kernels/{file} with NVRTC {}.{} for {ARCH}; do not edit.\n",
        NVRTC.0, NVRTC.1
    );
    out.push_str(c.ptx.trim_end_matches('\0').trim_end());
    out.push('\n');
    Ok(out)
}

/// `ptx/embedded.rs` for the given stems: the Rust list [`EMBEDDED`] is read from.
pub fn embedded_rs<'a>(stems: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(
        "// Generated by `just kernels` (crates/cuda/examples/kernels.rs); do not edit.\n&[\n",
    );
    for s in stems {
        out.push_str(&format!("    ({s:?}, include_str!(\"{s}.ptx\")),\n"));
    }
    out.push_str("]\n");
    out
}

/// The PTX ISA version of a module, from its `.version X.Y` line.
pub fn isa_version(ptx: &str) -> Option<(u32, u32)> {
    let v = directive(ptx, ".version")?;
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The architecture of a module, from its `.target` line: `sm_75` for PTX compiled for
/// `compute_75` (the oldest device it runs on).
pub fn target(ptx: &str) -> Option<&str> {
    directive(ptx, ".target")?.split(',').next().map(str::trim)
}

fn directive<'a>(ptx: &'a str, name: &str) -> Option<&'a str> {
    ptx.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(name)?.strip_prefix([' ', '\t']))
        .map(str::trim)
}

/// The oldest CUDA version (major, minor) whose driver loads PTX ISA `isa` (the PTX ISA
/// release notes' table), for the versions known here.
pub fn driver_cuda_for_isa(isa: (u32, u32)) -> Option<(i32, i32)> {
    Some(match isa {
        (7, 8) => (11, 8),
        (8, 0) => (12, 0),
        (8, 1) => (12, 1),
        (8, 2) => (12, 2),
        (8, 3) => (12, 3),
        (8, 4) => (12, 4),
        (8, 5) => (12, 5),
        (8, 7) => (12, 8),
        (8, 8) => (12, 9),
        (9, 0) => (13, 0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTX: &str = "//\n// Generated by NVIDIA NVVM Compiler\n//\n\n.version 8.0\n.target sm_75\n.address_size 64\n";

    #[test]
    fn version_and_target_come_from_the_directives() {
        assert_eq!(isa_version(PTX), Some((8, 0)));
        assert_eq!(target(PTX), Some("sm_75"));
        assert_eq!(target(".target sm_90a, debug\n"), Some("sm_90a"));
        assert_eq!(isa_version("no directives"), None);
        assert_eq!(driver_cuda_for_isa((8, 0)), Some((12, 0)));
        assert_eq!(driver_cuda_for_isa((9, 0)), Some((13, 0)));
    }

    #[test]
    fn module_ptx_is_the_shipped_one_without_the_variable() {
        if runtime_compile() {
            println!("skipped: {RUNTIME_COMPILE_VAR}=1 is set");
            return;
        }
        for (s, ptx) in EMBEDDED {
            assert!(matches!(module_ptx(s, "sm_90"), Ok(Cow::Borrowed(p)) if p == *ptx));
        }
        assert!(module_ptx("no_such_module", "sm_90").is_err());
    }

    #[test]
    fn the_list_file_names_each_stem_once() {
        let rs = embedded_rs(["a", "b_c"]);
        assert!(rs.contains("(\"a\", include_str!(\"a.ptx\")),\n"), "{rs}");
        assert!(
            rs.contains("(\"b_c\", include_str!(\"b_c.ptx\")),\n"),
            "{rs}"
        );
        assert!(rs.ends_with("]\n"));
    }
}
