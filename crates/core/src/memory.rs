//! The memory guard: before a stage allocates its big tables it adds up what they will take
//! and compares that with what this process may still use, so a setting too large for the
//! machine fails at once with a one-line error naming the setting to lower, instead of
//! running for minutes and being killed by the kernel (or aborting on a failed allocation).
//!
//! What the process may use is the smallest of `MemAvailable` in /proc/meminfo and the room
//! left under its cgroup's limit (v2 `memory.max` − `memory.current`, v1
//! `memory.limit_in_bytes` − `memory.usage_in_bytes`). `RECPIPE_MEMORY_LIMIT` (`2G`, `512M`,
//! `1.5GiB`, plain bytes) replaces the detection, for tests and for sharing a machine.
//! Estimates are rough (within ~2× of the real peak), never exact.

use std::fmt;

/// The environment variable that sets the memory recpipe may use instead of detecting it.
pub const LIMIT_ENV: &str = "RECPIPE_MEMORY_LIMIT";

/// What a stage would need, part by part, in bytes. Sums saturate: a size too big for
/// `u64` reads as `u64::MAX` and is refused rather than wrapping around.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Need {
    pub parts: Vec<(String, u64)>,
}

impl Need {
    pub fn new() -> Self {
        Need::default()
    }

    /// Adds `count` values of `bytes_each` bytes under `what` (skipped when zero).
    pub fn add(&mut self, what: &str, count: u64, bytes_each: u64) -> &mut Self {
        let b = count.saturating_mul(bytes_each);
        if b > 0 {
            self.parts.push((what.to_string(), b));
        }
        self
    }

    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |a, (_, b)| a.saturating_add(*b))
    }
}

/// Product of sizes in `u64`, saturating (a giant `k` must not overflow into a small size).
pub fn product(factors: &[usize]) -> u64 {
    factors
        .iter()
        .fold(1u64, |a, &f| a.saturating_mul(f as u64))
}

/// A stage that would need more memory than the process may use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct MemoryError {
    pub what: String,
    pub needed: u64,
    pub parts: Vec<(String, u64)>,
    pub available: u64,
    pub source_of_limit: &'static str,
    pub hint: String,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<&(String, u64)> = self.parts.iter().collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.1));
        let shown: Vec<String> = parts
            .iter()
            .take(4)
            .map(|(w, b)| format!("{w} {}", human_bytes(*b)))
            .collect();
        let more = if parts.len() > 4 { ", …" } else { "" };
        write!(
            f,
            "{}: needs {} ({}{more}) but {} is available ({}{}); lower {}",
            self.what,
            human_bytes(self.needed),
            shown.join(", "),
            human_bytes(self.available),
            self.source_of_limit,
            if self.source_of_limit == LIMIT_ENV {
                ""
            } else {
                ", a tenth of it kept free"
            },
            self.hint
        )
    }
}

/// Refuses when `needed_bytes` exceed what the process may use. `setting_hint` names what
/// to lower, e.g. "k (now 100000) or batch_size".
pub fn check(what: &str, needed_bytes: u64, setting_hint: &str) -> Result<(), MemoryError> {
    let mut need = Need::new();
    need.add("total", needed_bytes, 1);
    check_need(what, &need, setting_hint)
}

/// [`check`] with the parts the estimate is made of, which the error lists largest first.
pub fn check_need(what: &str, need: &Need, setting_hint: &str) -> Result<(), MemoryError> {
    let needed = need.total();
    let Some((available, source_of_limit)) = available() else {
        return Ok(());
    };
    tracing::debug!(
        "{what}: memory estimate {} of {} available",
        human_bytes(needed),
        human_bytes(available)
    );
    // A detected figure is shared with the OS and every other process: keep a tenth free.
    let usable = if source_of_limit == LIMIT_ENV {
        available
    } else {
        available - available / 10
    };
    if needed <= usable {
        return Ok(());
    }
    Err(MemoryError {
        what: what.to_string(),
        needed,
        parts: need.parts.clone(),
        available,
        source_of_limit,
        hint: setting_hint.to_string(),
    })
}

/// The bytes this process may still allocate and where that figure comes from; `None`
/// when nothing can be read (not Linux, no /proc): then nothing is refused.
pub fn available() -> Option<(u64, &'static str)> {
    if let Ok(v) = std::env::var(LIMIT_ENV).map(|v| v.trim().to_string())
        && !v.is_empty()
    {
        // A malformed value must not silently disable the guard: treat it as no room.
        return Some((parse_size(&v).unwrap_or(0), LIMIT_ENV));
    }
    let mem = read("/proc/meminfo").and_then(|t| meminfo_available(&t));
    let cg = cgroup_room();
    match (mem, cg) {
        (Some(m), Some(c)) if c < m => Some((c, "cgroup memory limit")),
        (Some(m), _) => Some((m, "MemAvailable")),
        (None, Some(c)) => Some((c, "cgroup memory limit")),
        (None, None) => None,
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn number(text: Option<String>) -> Option<u64> {
    text?.trim().parse().ok()
}

/// `MemAvailable:  12345 kB` in bytes.
pub fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// Room left under the cgroup limit (v2, else v1); `None` when unlimited or unreadable.
fn cgroup_room() -> Option<u64> {
    let v2 = read("/sys/fs/cgroup/memory.max");
    if let Some(max) = v2.as_deref().map(str::trim) {
        let limit: u64 = max.parse().ok()?; // "max" = no limit
        let used = number(read("/sys/fs/cgroup/memory.current")).unwrap_or(0);
        return Some(limit.saturating_sub(used));
    }
    let limit = number(read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))?;
    // v1 reports "no limit" as a huge page-aligned number.
    if limit >= 1 << 60 {
        return None;
    }
    let used = number(read("/sys/fs/cgroup/memory/memory.usage_in_bytes")).unwrap_or(0);
    Some(limit.saturating_sub(used))
}

/// `2G`, `512M`, `1.5GiB`, `800k`, `1000000` (bytes). Units are powers of 1024.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        _ => return None,
    };
    (value.is_finite() && value >= 0.0).then(|| (value * scale).min(u64::MAX as f64) as u64)
}

/// `37.3 GiB`, `512.0 MiB`, `900 B`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_size("512 MB"), Some(512 << 20));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("2X"), None);
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn meminfo_and_saturating_sums() {
        let t = "MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(meminfo_available(t), Some(2 << 20));
        let mut n = Need::new();
        n.add("tables", product(&[usize::MAX, 3]), 4).add("x", 5, 1);
        assert_eq!(n.total(), u64::MAX);
        assert_eq!(product(&[1000, 1000, 4]), 4_000_000);
    }

    #[test]
    fn the_error_names_the_parts_the_room_and_the_setting() {
        let e = MemoryError {
            what: "train".into(),
            needed: 40 << 30,
            parts: vec![("Adam state".into(), 20 << 30), ("tables".into(), 20 << 30)],
            available: 22 << 30,
            source_of_limit: "MemAvailable",
            hint: "k (now 100000)".into(),
        };
        assert_eq!(
            e.to_string(),
            "train: needs 40.0 GiB (Adam state 20.0 GiB, tables 20.0 GiB) but 22.0 GiB is \
             available (MemAvailable, a tenth of it kept free); lower k (now 100000)"
        );
    }
}
