//! Recorded configs hold f32 settings widened to f64 (`lr = 1e-3` is recorded as
//! 0.0010000000474974513); [`tidy`] prints them as the shortest decimal that reads back as
//! the same f32.

use serde_json::{Number, Value};

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
