//! Progress bars that are drawn only when a person is watching.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Bars on when stderr is a terminal and `RECPIPE_NO_PROGRESS` is unset.
    pub fn from_env() -> Self {
        let enabled =
            std::io::stderr().is_terminal() && std::env::var_os("RECPIPE_NO_PROGRESS").is_none();
        Progress { enabled }
    }

    pub fn hidden() -> Self {
        Progress { enabled: false }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn make(&self, len: u64, template: &str, msg: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(msg.to_string());
        bar
    }

    /// A bar over bytes (reading files).
    pub fn bytes(&self, total: u64, msg: &str) -> ProgressBar {
        self.make(
            total,
            "{msg:>12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            msg,
        )
    }

    /// A bar over items (batches, users, epochs).
    pub fn count(&self, total: u64, msg: &str) -> ProgressBar {
        self.make(
            total,
            "{msg:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
            msg,
        )
    }
}
