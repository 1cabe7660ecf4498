//! Everything recpipe prints on stdout goes through [`line`] (the `outln!` macro): when the
//! reader goes away (`recpipe run … | head -1`), output ends quietly and the command carries
//! on to completion instead of panicking half-way through a run.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Print one line on stdout; after the first failed write, print nothing more.
pub fn line(args: std::fmt::Arguments) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let written = recpipe_core::progress::suspend(|| {
        let mut out = std::io::stdout().lock();
        out.write_fmt(args).and_then(|()| out.write_all(b"\n"))
    });
    if let Err(e) = written {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::warn!("cannot write to stdout ({e}); printing nothing more");
        }
    }
}

/// `println!` that survives a closed stdout (see [`line`]).
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;
