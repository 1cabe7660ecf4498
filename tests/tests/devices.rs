//! `recpipe devices`: the machine report works with or without a CUDA driver, and
//! `--check-kernels` prints one line per kernel with its registers and spills.
//!
//! `--check-kernels` needs NVRTC: `RECPIPE_NVRTC_DIR`, else the 13.0 venv that
//! `bash scripts/nvrtc_env.sh` makes (bench/.venv-nvrtc). Without either it prints
//! `skipped: ...`, unless `RECPIPE_REQUIRE_NVRTC` is set (CI; see recpipe_cuda::gate), then
//! it fails.

use recpipe_tests::{Test, wait_output, workspace_root};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The kernel functions of crates/cuda/kernels/*.cu, by their `__global__` declarations.
fn kernel_names() -> Vec<(String, String)> {
    let dir = workspace_root().join("crates/cuda/kernels");
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let file = f.file_name().unwrap().to_string_lossy().into_owned();
        for part in text.split("__global__").skip(1) {
            // `__global__ __launch_bounds__(N) void name(`: the name is before the `(` that
            // follows the launch bounds.
            let part = part.trim_start();
            let part = match part.strip_prefix("__launch_bounds__") {
                Some(rest) => rest.split_once(')').map_or(rest, |(_, after)| after),
                None => part,
            };
            let head = part.split('(').next().unwrap_or_default();
            if let Some(name) = head.split_whitespace().last() {
                out.push((file.clone(), name.to_string()));
            }
        }
    }
    out
}

/// `RECPIPE_NVRTC_DIR`, else bench/.venv-nvrtc's wheel folder when it holds NVRTC.
fn nvrtc_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("RECPIPE_NVRTC_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let lib = workspace_root().join("bench/.venv-nvrtc/lib");
    std::fs::read_dir(lib).ok()?.flatten().find_map(|py| {
        let d = py.path().join("site-packages/nvidia/cu13/lib");
        d.join("libnvrtc.so.13").exists().then_some(d)
    })
}

#[test]
fn devices_reports_cpu_driver_nvrtc_and_the_shipped_ptx() {
    let t = Test::new();
    let r = t.run(&["devices"]).ok();
    let out = &r.stdout;
    let line = |prefix: &str| -> &str {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line\n{r}"))
    };
    let cpu = line("CPU: ");
    assert!(cpu.contains("logical cores, SIMD: "), "{cpu}");
    assert!(
        cpu.ends_with("SIMD: avx2") || cpu.ends_with("SIMD: baseline"),
        "{cpu}"
    );
    // Either way round: this machine may or may not have the NVIDIA driver.
    let driver = line("CUDA driver: ");
    let devices = line("Devices: ");
    if driver == "CUDA driver: not found" {
        assert_eq!(devices, "Devices: none (no CUDA driver)", "{r}");
    } else {
        assert!(driver.starts_with("CUDA driver: found"), "{r}");
    }
    assert!(out.contains("  searched: libcuda.so"), "{r}");
    assert!(out.contains("  LD_LIBRARY_PATH: "), "{r}");
    assert!(line("NVRTC: ").starts_with("NVRTC: "), "{r}");
    let shipped = line("Shipped PTX: ");
    assert!(
        shipped.starts_with("Shipped PTX: ISA 8.0, target sm_75 (compute_75), "),
        "{r}"
    );
    assert!(
        out.contains("  needs a driver for CUDA 12.0 or newer"),
        "{r}"
    );
    // --arch only goes with --check-kernels.
    t.run(&["devices", "--arch", "sm_90"]).fails();

    // A reader that went away ends the output quietly.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = t
        .cmd(&["devices"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start recpipe");
    let r = wait_output(child, Duration::from_secs(60));
    assert_eq!(r.code, Some(0), "{r}");
    assert!(!r.stderr.contains("panicked"), "{r}");
    assert!(!r.stderr.contains("Broken pipe"), "{r}");
}

#[test]
fn check_kernels_prints_each_kernels_registers_and_spills() {
    let Some(dir) = nvrtc_dir() else {
        let why = "no NVRTC: RECPIPE_NVRTC_DIR unset and no bench/.venv-nvrtc \
                   (`bash scripts/nvrtc_env.sh` makes it)";
        assert!(
            std::env::var_os("RECPIPE_REQUIRE_NVRTC").is_none_or(|v| v.is_empty()),
            "RECPIPE_REQUIRE_NVRTC is set but {why}"
        );
        println!("skipped: {why}");
        return;
    };
    let t = Test::new();
    let out = t
        .cmd(&["devices", "--check-kernels", "--arch", "sm_90"])
        .env("RECPIPE_NVRTC_DIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("\nKernels for sm_90 (NVRTC "), "{stdout}");
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Kernels for "))
        .skip(1)
        .collect();
    let names = kernel_names();
    assert!(!names.is_empty());
    assert_eq!(rows.len(), names.len(), "{names:?}\n{stdout}");
    for (file, name) in &names {
        let row = rows
            .iter()
            .find(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&file.as_str()) && w.get(1) == Some(&name.as_str())
            })
            .unwrap_or_else(|| panic!("no line for {file} {name}\n{stdout}"));
        assert!(row.contains(" registers/thread, "), "{row}");
        assert!(
            row.ends_with(", 0 bytes spill stores, 0 bytes spill loads"),
            "{row}"
        );
    }

    // Without NVRTC: a one-line error saying how to get it, and a failing exit.
    let t = Test::new();
    let out = t
        .cmd(&["devices", "--check-kernels"])
        .env("RECPIPE_NVRTC_DIR", t.root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: --check-kernels: RECPIPE_NVRTC_DIR="),
        "{stderr}"
    );
    assert!(last.contains("scripts/nvrtc_env.sh"), "{stderr}");
}
