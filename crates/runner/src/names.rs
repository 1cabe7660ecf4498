//! Names that become path components under `.recpipe/` (pipeline and stage names): one
//! portable charset, checked when a pipeline is parsed so nothing is ever written outside the
//! folder meant for it.

/// Longest accepted name, in bytes (well under every file system's component limit).
pub const MAX_LEN: usize = 100;

/// Why `name` cannot be a path component, if it cannot: it must match
/// `[A-Za-z0-9_-][A-Za-z0-9_.-]*`, at most [`MAX_LEN`] bytes (so never empty, `.`, `..`, a
/// separator or a hidden name).
pub fn unsafe_reason(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > MAX_LEN {
        return Some(format!("is {} bytes long (at most {MAX_LEN})", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "_-.".contains(c)))
    {
        return Some(format!("contains {c:?}"));
    }
    if name.starts_with('.') {
        return Some("starts with `.`".into());
    }
    None
}

/// A name made safe: unsafe characters become `_`, a leading `.` too, cut to [`MAX_LEN`].
pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_LEN)
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_portable_component_names_pass() {
        for ok in ["ingest", "train_2", "a.b-c", "X", "9"] {
            assert_eq!(unsafe_reason(ok), None, "{ok}");
        }
        for bad in [
            "", ".", "..", "../../x", "a/b", "a\\b", ".hidden", "é", "a b", "a\0",
        ] {
            assert!(unsafe_reason(bad).is_some(), "{bad:?}");
        }
        assert!(unsafe_reason(&"a".repeat(MAX_LEN + 1)).is_some());
        assert_eq!(sanitize("my pipeline"), "my_pipeline");
        assert_eq!(sanitize(".."), "_.");
        assert_eq!(unsafe_reason(&sanitize("../../x")), None);
    }
}
