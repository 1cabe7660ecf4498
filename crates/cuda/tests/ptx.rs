//! The shipped PTX (`ptx/*.ptx`, see `recpipe_cuda::ptx`) is exactly what `just kernels`
//! writes for the sources as they are, there is one module per `SOURCES` entry, and the
//! run-time compilation of `RECPIPE_CUDA_RUNTIME_COMPILE=1` gives the same entry points.
//!
//! Regenerating needs NVRTC 12.0 (`RECPIPE_NVRTC_DIR="$(bash scripts/nvrtc_env.sh 12.0)"`);
//! the run-time compilation any NVRTC. `RECPIPE_REQUIRE_NVRTC` (see `recpipe_cuda::gate`):
//! unset, a missing NVRTC or another version prints `skipped: ...`; `=1` (some NVRTC
//! required, CI's `just test`) fails when none is found, but the 12.0 test skips under 13.0;
//! `=12.0` (CI's PTX step) fails unless NVRTC 12.0 is loaded.

use recpipe_cuda::gate::{self, Gate};
use recpipe_cuda::{SOURCES, ptx};
use std::path::Path;

#[test]
fn every_source_has_shipped_ptx_and_every_shipped_ptx_a_source() {
    let sources: Vec<&str> = SOURCES.iter().map(|(f, _)| ptx::stem(f)).collect();
    let shipped: Vec<&str> = ptx::EMBEDDED.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        sources, shipped,
        "SOURCES and the shipped PTX differ: run `just kernels`"
    );
    for (stem, text) in ptx::EMBEDDED {
        assert_eq!(ptx::embedded(stem), Some(*text));
        assert_eq!(ptx::isa_version(text), Some((8, 0)), "ptx/{stem}.ptx");
        assert_eq!(ptx::target(text), Some("sm_75"), "ptx/{stem}.ptx");
    }
}

#[test]
fn regenerating_gives_the_checked_in_ptx() {
    let v = match gate::nvrtc(Some(ptx::NVRTC)) {
        Gate::Run(v) => v,
        Gate::Skip(why) => {
            println!("skipped: {why}");
            return;
        }
        Gate::Fail(why) => panic!("{why}"),
    };
    println!("NVRTC {}.{}", v.0, v.1);
    ptx::check_generator_nvrtc().unwrap();
    // RECPIPE_WORKSPACE_ROOT: test binaries carried to another machine (`just gpu-bundle`).
    let dir = match std::env::var_os("RECPIPE_WORKSPACE_ROOT").filter(|r| !r.is_empty()) {
        Some(root) => Path::new(&root).join("crates/cuda/ptx"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("ptx"),
    };
    let mut stale = Vec::new();
    for (file, src) in SOURCES {
        let stem = ptx::stem(file);
        let fresh = ptx::generate(file, src).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join(format!("{stem}.ptx"));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != fresh {
            stale.push(format!("ptx/{stem}.ptx"));
        }
        // The checked-in file is also the one this build embeds.
        assert_eq!(
            ptx::embedded(stem).map(str::to_string).unwrap_or_default(),
            on_disk,
            "ptx/{stem}.ptx changed since this test was built"
        );
        // The same input twice gives the same bytes.
        assert_eq!(ptx::generate(file, src).unwrap(), fresh, "{file}");
    }
    let list = ptx::embedded_rs(SOURCES.iter().map(|(f, _)| ptx::stem(f)));
    if std::fs::read_to_string(dir.join("embedded.rs")).unwrap_or_default() != list {
        stale.push("ptx/embedded.rs".to_string());
    }
    assert!(
        stale.is_empty(),
        "the shipped PTX is not what the sources give ({}): run `just kernels`",
        stale.join(", ")
    );
}

#[test]
fn runtime_compilation_gives_ptx_for_the_devices_architecture() {
    match gate::nvrtc(None) {
        Gate::Run(_) => {}
        Gate::Skip(why) => {
            println!("skipped: {why}");
            return;
        }
        Gate::Fail(why) => panic!("{why}"),
    }
    for (file, _) in SOURCES {
        let stem = ptx::stem(file);
        let text = ptx::compile_module(stem, "sm_90").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ptx::target(&text), Some("sm_90"), "{file}");
        let shipped = ptx::embedded(stem).unwrap_or_default();
        for entry in shipped
            .lines()
            .filter(|l| l.starts_with(".visible .entry "))
        {
            assert!(
                text.contains(entry),
                "{file}: no `{entry}` in the runtime PTX"
            );
        }
    }
    assert!(ptx::compile_module("no_such_module", "sm_90").is_err());
}
