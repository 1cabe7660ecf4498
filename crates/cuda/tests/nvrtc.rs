//! Every kernel compiles with NVRTC for sm_80 and sm_90 with zero spill bytes. Any NVRTC
//! version does. `RECPIPE_REQUIRE_NVRTC` (see `recpipe_cuda::gate`): unset, a missing NVRTC
//! prints `skipped: ...`; `=1` (CI's `just test`) fails without NVRTC; `=12.0` fails unless
//! NVRTC 12.0 is the one loaded.

use recpipe_cuda::gate::{self, Gate};
use recpipe_cuda::{HEADERS, SOURCES, nvrtc};

#[test]
fn every_kernel_compiles_for_sm80_and_sm90_without_spills() {
    match gate::nvrtc(None) {
        Gate::Run(_) => {}
        Gate::Skip(why) => {
            println!("skipped: {why}");
            return;
        }
        Gate::Fail(why) => panic!("{why}"),
    }
    for arch in ["sm_80", "sm_90"] {
        for (file, src) in SOURCES {
            let c = nvrtc::compile(file, src, HEADERS, arch, nvrtc::Output::Cubin, &[])
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !c.kernels.is_empty(),
                "{file} {arch}: no entries in\n{}",
                c.log
            );
            for k in &c.kernels {
                println!(
                    "{arch} {file} {}: {} registers, {} B spill stores, {} B spill loads",
                    k.name, k.registers, k.spill_stores, k.spill_loads
                );
                assert_eq!(
                    (k.spill_stores, k.spill_loads),
                    (0, 0),
                    "{arch} {file} {} spills",
                    k.name
                );
            }
        }
    }
}
