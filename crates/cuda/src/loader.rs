//! Where the CUDA libraries come from: the driver (`libcuda`) and NVRTC (`libnvrtc`) are
//! opened by cudarc by soname through the dynamic loader (`LD_LIBRARY_PATH`, the ld cache);
//! `RECPIPE_NVRTC_DIR` names a folder (a pip wheel's `nvidia/cu13/lib` or
//! `nvidia/cuda_nvrtc/lib`) whose `libnvrtc-builtins` and `libnvrtc` are loaded first by
//! absolute path, so cudarc's later lookup by soname finds them already in the process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The variable naming a folder with `libnvrtc.so.*` and `libnvrtc-builtins.so.*`.
pub const NVRTC_DIR_VAR: &str = "RECPIPE_NVRTC_DIR";

/// The library names cudarc tries for `lib` (`cuda`, `nvrtc`), in order.
pub fn candidates(lib: &str) -> Vec<String> {
    cudarc::get_lib_name_candidates(lib)
}

/// Whether the dynamic loader can open one of `lib`'s candidate names (nothing is kept
/// open; a library preloaded by path matches by soname).
pub fn loadable(lib: &str) -> bool {
    candidates(lib).iter().any(|name| {
        // SAFETY: opening a shared library runs its initialisers; the CUDA libraries' are
        // safe to run and this is how cudarc itself loads them.
        unsafe { libloading::Library::new(name) }.is_ok()
    })
}

/// The first file in `dir` whose name starts with `prefix` followed by `.so` (not the
/// `.alt` builds the wheels also ship), by name order.
fn find(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{prefix}.so")))
        })
        .collect();
    hits.sort();
    hits.into_iter().next()
}

/// Loads NVRTC from `RECPIPE_NVRTC_DIR` once per process (builtins first, then libnvrtc)
/// and keeps both open. Ok(None) when the variable is unset; Err says what was missing.
pub fn preload_nvrtc() -> Result<Option<PathBuf>, String> {
    static DONE: OnceLock<Result<Option<PathBuf>, String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let Some(dir) = std::env::var_os(NVRTC_DIR_VAR).filter(|d| !d.is_empty()) else {
            return Ok(None);
        };
        let dir = PathBuf::from(dir);
        let mut libs = Vec::new();
        for prefix in ["libnvrtc-builtins", "libnvrtc"] {
            let path = find(&dir, prefix).ok_or_else(|| {
                format!("{NVRTC_DIR_VAR}={}: no {prefix}.so* there", dir.display())
            })?;
            // SAFETY: as in `loadable`; the handle is kept for the life of the process.
            let lib = unsafe { libloading::Library::new(&path) }
                .map_err(|e| format!("{}: {e}", path.display()))?;
            libs.push(lib);
        }
        // Unloading NVRTC under cudarc's cached function pointers would be unsound.
        std::mem::forget(libs);
        Ok(Some(dir))
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_wheel_files_but_not_the_alt_builds() {
        let dir = std::env::temp_dir().join(format!("recpipe-cuda-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "libnvrtc.alt.so.13",
            "libnvrtc.so.13",
            "libnvrtc-builtins.alt.so.13.0",
            "libnvrtc-builtins.so.13.0",
        ] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        assert_eq!(find(&dir, "libnvrtc").unwrap(), dir.join("libnvrtc.so.13"));
        assert_eq!(
            find(&dir, "libnvrtc-builtins").unwrap(),
            dir.join("libnvrtc-builtins.so.13.0")
        );
        assert!(find(&dir, "libcuda").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn candidates_cover_cuda_12_and_13_sonames() {
        let c = candidates("nvrtc");
        assert!(c.iter().any(|n| n == "libnvrtc.so.13"), "{c:?}");
        assert!(c.iter().any(|n| n == "libnvrtc.so.12"), "{c:?}");
        assert!(candidates("cuda").iter().any(|n| n == "libcuda.so"));
    }
}
