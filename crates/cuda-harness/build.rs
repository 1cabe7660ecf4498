//! Compiles the kernels' .cu sources as C++20 for host threads (g++ or the system C++
//! compiler, with AddressSanitizer where it links), for this crate's tests.

use std::path::Path;

fn main() {
    let kernels = Path::new("../cuda/kernels");
    println!("cargo:rerun-if-changed=cpp");
    println!("cargo:rerun-if-changed=../cuda/kernels");
    let asan = std::env::var("RECPIPE_HARNESS_ASAN").map_or(true, |v| v != "0") && asan_links();
    let mut b = cc::Build::new();
    b.cpp(true)
        .std("c++20")
        .include(kernels)
        .include(kernels.join("host"))
        .flag("-include")
        .flag("cuda_host.h")
        // Same float arithmetic as the Rust reference: no fused multiply-adds.
        .flag("-ffp-contract=off")
        .flag("-pthread")
        .debug(true)
        .opt_level(1)
        .warnings(false)
        .file("cpp/launchers.cpp")
        .file("cpp/planted.cpp")
        .file("cpp/embedding.cpp")
        .file("cpp/autorec.cpp")
        .file("cpp/dense.cpp")
        .file("cpp/ease.cpp")
        .file("cpp/ials.cpp")
        .file("cpp/bpr.cpp");
    if asan {
        b.flag("-fsanitize=address").flag("-fno-omit-frame-pointer");
        println!("cargo:rustc-cfg=harness_asan");
        // The ASan runtime must come first among the shared libraries (its malloc must win),
        // so it is named before the harness and libstdc++; rustc links std's libc after.
        println!("cargo:rustc-link-lib=dylib=asan");
    }
    println!("cargo:rustc-check-cfg=cfg(harness_asan)");
    b.compile("recpipe_cuda_harness");
    println!("cargo:rustc-link-lib=stdc++");
    println!("cargo:rustc-link-arg=-pthread");
}

/// Whether the C++ compiler can build and link an AddressSanitizer program here.
fn asan_links() -> bool {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let src = Path::new(&out).join("asan_probe.cpp");
    if std::fs::write(&src, "int main() { return 0; }\n").is_err() {
        return false;
    }
    let cxx = cc::Build::new().cpp(true).get_compiler();
    std::process::Command::new(cxx.path())
        .arg("-fsanitize=address")
        .arg(&src)
        .arg("-o")
        .arg(Path::new(&out).join("asan_probe"))
        .status()
        .is_ok_and(|s| s.success())
}
