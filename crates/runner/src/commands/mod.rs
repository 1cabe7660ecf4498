//! The commands that are not `run`, `status`, `gc` or a query: `show` (one stage's artifact),
//! `dag` (the pipeline's graph) and the one-off stage commands (`recpipe ingest`, …).

mod dag;
mod oneoff;
mod show;

pub use dag::dag;
pub use oneoff::oneoff;
pub use show::show;
