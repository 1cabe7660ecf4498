//! The commands that are not `run`, `status`, `gc` or a query: `show` (one stage's artifact),
//! `dag` (the pipeline's graph), `devices` (CPU, CUDA driver, GPUs, NVRTC, shipped kernels)
//! and the one-off stage commands (`recpipe ingest`, …).

mod dag;
mod devices;
mod oneoff;
mod show;

pub use dag::dag;
pub use devices::{DEVICES_HELP, DevicesArgs, devices};
pub use oneoff::oneoff;
pub use show::show;
