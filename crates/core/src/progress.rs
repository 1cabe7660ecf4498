//! Progress bars that are drawn only when a person is watching. Every bar of the process
//! lives in one [`MultiProgress`], so bars of stages running in parallel stack instead of
//! overwriting each other, and log lines and stdout are printed through [`suspend`] so they
//! never tear a bar.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

/// Whether bars are drawn: stderr is a terminal and `RECPIPE_NO_PROGRESS` is unset.
fn watching() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::io::stderr().is_terminal() && std::env::var_os("RECPIPE_NO_PROGRESS").is_none()
    })
}

/// The process's one set of bars (hidden when nobody watches).
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| {
        let target = if watching() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        MultiProgress::with_draw_target(target)
    })
}

/// Run `f` (which prints to a terminal) with the bars cleared, then draw them again.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    if watching() { multi().suspend(f) } else { f() }
}

/// A `std::io::Write` for log output: collects one record and writes it to stderr through
/// [`suspend`] when dropped (`tracing_subscriber`'s writer is made once per event).
#[derive(Default)]
pub struct LogWriter(Vec<u8>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            suspend(|| {
                let _ = std::io::stderr().lock().write_all(&self.0);
            });
        }
    }
}

/// `27.4k`, `2.26M`: three significant digits, SI suffix.
pub fn human_rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0".into();
    }
    let (v, suffix) = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(scale, _)| per_sec >= *scale)
        .map_or((per_sec, ""), |(scale, s)| (per_sec / scale, s));
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{suffix}")
}

/// `<1s`, `42s`, `3m05s`, `1h02m`.
pub fn human_eta(d: Duration) -> String {
    let s = d.as_secs();
    if d < Duration::from_secs(1) {
        "<1s".into()
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn style(template: &str) -> Option<ProgressStyle> {
    let style = ProgressStyle::with_template(template).ok()?;
    Some(
        style
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", human_rate(s.per_sec()));
            })
            // No estimate before the first step (indicatif would say `0s`).
            .with_key("eta", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = if s.pos() == 0 {
                    write!(w, "?")
                } else {
                    write!(w, "{}", human_eta(s.eta()))
                };
            })
            .progress_chars("=> "),
    )
}

impl Progress {
    /// Bars on when stderr is a terminal and `RECPIPE_NO_PROGRESS` is unset.
    pub fn from_env() -> Self {
        Progress {
            enabled: watching(),
        }
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
        let bar = multi().add(ProgressBar::new(len));
        if let Some(style) = style(template) {
            bar.set_style(style);
        }
        bar.set_message(msg.to_string());
        bar
    }

    /// A bar over bytes (reading files).
    pub fn bytes(&self, total: u64, msg: &str) -> ProgressBar {
        self.make(
            total,
            "{msg:>12} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            msg,
        )
    }

    /// A bar over items (batches, users, epochs).
    pub fn count(&self, total: u64, msg: &str) -> ProgressBar {
        self.make(
            total,
            "{msg:>12} [{wide_bar}] {human_pos}/{human_len} {rate} eta {eta}",
            msg,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_short() {
        assert_eq!(human_rate(27_371.198), "27.4k");
        assert_eq!(human_rate(2_261_000.0), "2.26M");
        assert_eq!(human_rate(512.4), "512");
        assert_eq!(human_rate(4.567), "4.57");
        assert_eq!(human_rate(0.0), "0");
    }

    #[test]
    fn etas_are_short() {
        assert_eq!(human_eta(Duration::from_millis(300)), "<1s");
        assert_eq!(human_eta(Duration::from_secs(42)), "42s");
        assert_eq!(human_eta(Duration::from_secs(185)), "3m05s");
        assert_eq!(human_eta(Duration::from_secs(3720)), "1h02m");
    }
}
