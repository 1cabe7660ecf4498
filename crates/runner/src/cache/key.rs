//! The cache key of a stage run: a hash of everything its outputs depend on (kind, format
//! version, config, the keys of its upstream entries, the content of its data files).

use super::entry::{ExternalRef, UpstreamRef};
use std::collections::BTreeMap;

/// JSON with object keys sorted at every level, whatever serde_json's map type is.
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: BTreeMap<&String, serde_json::Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    // A BTreeMap-backed or insertion-ordered map both serialize in the order built above.
    serde_json::to_string(&sort(v)).expect("JSON values always serialize")
}

/// The cache key of a stage run (32 hex digits of a blake3 hash); `environment` (the
/// stage's `Stage::environment`) joins the hash only when not null, so the keys of stages
/// that depend on nothing machine-specific are those they always had.
pub fn stage_key(
    kind: &str,
    format_version: u32,
    config: &serde_json::Value,
    upstream: &[UpstreamRef],
    external: &[ExternalRef],
    environment: &serde_json::Value,
) -> String {
    let mut material = serde_json::json!({
        "kind": kind,
        "format_version": format_version,
        "config": config,
        "upstream": upstream.iter().map(|u| &u.key).collect::<Vec<_>>(),
        "external": external
            .iter()
            .map(|e| serde_json::json!([e.path, e.blake3]))
            .collect::<Vec<_>>(),
    });
    if !environment.is_null() {
        material["environment"] = environment.clone();
    }
    let hash = blake3::hash(canonical_json(&material).as_bytes());
    hash.to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": 2}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":2,"d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn key_depends_on_every_part() {
        let cfg = serde_json::json!({"seed": 42});
        let up = vec![UpstreamRef {
            stage: "ingest".into(),
            kind: "ingest".into(),
            key: "k1".into(),
            dir: None,
        }];
        let base = stage_key("split", 1, &cfg, &up, &[], &serde_json::Value::Null);
        assert_eq!(
            base,
            stage_key("split", 1, &cfg, &up, &[], &serde_json::Value::Null)
        );
        assert_ne!(
            base,
            stage_key("split", 2, &cfg, &up, &[], &serde_json::Value::Null)
        );
        assert_ne!(
            base,
            stage_key("train", 1, &cfg, &up, &[], &serde_json::Value::Null)
        );
        assert_ne!(
            base,
            stage_key(
                "split",
                1,
                &serde_json::json!({"seed": 7}),
                &up,
                &[],
                &serde_json::Value::Null
            )
        );
        // A machine-specific environment (train's CUDA device) moves the key; null keeps it.
        let gpu = serde_json::json!({"device": "cuda:0", "gpu": "NVIDIA H200"});
        assert_ne!(base, stage_key("split", 1, &cfg, &up, &[], &gpu));
        assert_ne!(
            base,
            stage_key("split", 1, &cfg, &[], &[], &serde_json::Value::Null)
        );
        let ext = ExternalRef {
            path: "r.csv".into(),
            blake3: "ab".into(),
            bytes: 1,
        };
        assert_ne!(
            base,
            stage_key("split", 1, &cfg, &up, &[ext], &serde_json::Value::Null)
        );
    }
}
