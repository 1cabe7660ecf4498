//! `just kernels`: writes the shipped PTX, `crates/cuda/ptx/<stem>.ptx` for every entry of
//! `recpipe_cuda::SOURCES` (compiled for compute_75), and `ptx/embedded.rs`, the list
//! `recpipe_cuda::ptx` embeds; removes the `.ptx` files of sources that are gone. Needs
//! NVRTC 12.0 (see `recpipe_cuda::ptx` for why) and refuses any other version:
//!
//!   RECPIPE_NVRTC_DIR="$(bash scripts/nvrtc_env.sh 12.0)" cargo run -p recpipe-cuda --example kernels

use recpipe_cuda::{SOURCES, ptx};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    ptx::check_generator_nvrtc()?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ptx");
    std::fs::create_dir_all(&dir)?;
    let mut stems = Vec::new();
    for (file, src) in SOURCES {
        let stem = ptx::stem(file);
        let text = ptx::generate(file, src)?;
        let path = dir.join(format!("{stem}.ptx"));
        let old = std::fs::read_to_string(&path).ok();
        let what = match old {
            Some(o) if o == text => "unchanged",
            Some(_) => "updated",
            None => "new",
        };
        if what != "unchanged" {
            std::fs::write(&path, &text)?;
        }
        println!(
            "ptx/{stem}.ptx: {what} (ISA {}, {})",
            ptx::isa_version(&text)
                .map(|(a, b)| format!("{a}.{b}"))
                .unwrap_or_else(|| "?".into()),
            ptx::target(&text).unwrap_or("?")
        );
        stems.push(stem);
    }
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(stem) = name.strip_suffix(".ptx")
            && !stems.contains(&stem)
        {
            std::fs::remove_file(&path)?;
            println!("ptx/{name}: removed (no kernels/{stem}.cu in SOURCES)");
        }
    }
    let list = ptx::embedded_rs(stems.iter().copied());
    if std::fs::read_to_string(dir.join("embedded.rs"))
        .ok()
        .as_deref()
        != Some(list.as_str())
    {
        std::fs::write(dir.join("embedded.rs"), list)?;
        println!("ptx/embedded.rs: updated");
    }
    Ok(())
}
