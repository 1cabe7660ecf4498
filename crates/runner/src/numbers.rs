//! Numbers as recpipe prints and records them: durations ([`duration`]), byte counts
//! ([`human_bytes`]), UTC timestamps ([`rfc3339`]) and config values. Recorded configs hold
//! f32 settings widened to f64 (`lr = 1e-3` is recorded as 0.0010000000474974513); [`tidy`]
//! prints them as the shortest decimal that reads back as the same f32.

use serde_json::{Number, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `1.23s` under a minute, `4m05s` from there on.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.2}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// RFC 3339 UTC timestamp without pulling in a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `v` as the shortest decimal of the f32 it came from, when it came from one.
pub fn tidy_f64(v: f64) -> f64 {
    let f = v as f32;
    if f.is_finite() && f as f64 == v {
        format!("{f}").parse().unwrap_or(v)
    } else {
        v
    }
}

/// A copy of `v` with every f32-origin number shortened (integers are left alone).
pub fn tidy(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .and_then(|x| Number::from_f64(tidy_f64(x)))
            .map_or_else(|| v.clone(), Value::Number),
        Value::Array(a) => Value::Array(a.iter().map(tidy).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), tidy(v))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn durations_and_sizes_read_at_a_glance() {
        assert_eq!(duration(Duration::from_millis(1234)), "1.23s");
        assert_eq!(duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn f32_noise_is_shortened() {
        let recorded = 1e-3f32 as f64;
        assert_eq!(recorded.to_string(), "0.0010000000474974513");
        assert_eq!(tidy(&serde_json::json!(recorded)).to_string(), "0.001");
        assert_eq!(
            tidy(&serde_json::json!(0.003f32 as f64)).to_string(),
            "0.003"
        );
        // A genuine f64 keeps its digits; integers stay integers.
        assert_eq!(tidy(&serde_json::json!(0.1f64)).to_string(), "0.1");
        assert_eq!(
            tidy(&serde_json::json!(1.0f64 / 3.0)).to_string(),
            (1.0f64 / 3.0).to_string()
        );
        assert_eq!(
            tidy(&serde_json::json!({"k": 50, "l": [2.5f32 as f64]})).to_string(),
            r#"{"k":50,"l":[2.5]}"#
        );
    }
}
