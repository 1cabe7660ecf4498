//! Whether a test that needs NVRTC runs, skips or fails, from what is loaded and from
//! `RECPIPE_REQUIRE_NVRTC`, which says what the environment must provide:
//!
//! - unset (or empty): nothing; a test whose NVRTC is missing prints `skipped: <why>`.
//! - `1`: some NVRTC, any version (CI's `just test`, with NVRTC 13.0). A test that needs
//!   another version than the one loaded (tests/ptx.rs needs exactly 12.0) still skips.
//! - `X.Y` (`12.0`): exactly NVRTC X.Y (CI's shipped-PTX check); anything else loaded fails.
//!
//! So `RECPIPE_REQUIRE_NVRTC=1` with 13.0 runs the 13.0-or-any tests and skips the 12.0 one,
//! and `RECPIPE_REQUIRE_NVRTC=12.0` with 12.0 runs both kinds.

/// The variable naming what the tests require.
pub const REQUIRE_VAR: &str = "RECPIPE_REQUIRE_NVRTC";

/// What a test should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Run, with this NVRTC (major, minor) loaded.
    Run((i32, i32)),
    /// Print `skipped: <reason>` and return.
    Skip(String),
    /// Fail with this message: the environment lacks what `RECPIPE_REQUIRE_NVRTC` requires.
    Fail(String),
}

/// What `RECPIPE_REQUIRE_NVRTC` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requirement {
    Nothing,
    Any,
    Exactly((i32, i32)),
}

fn requirement(value: Option<&str>) -> Result<Requirement, String> {
    let v = value.map(str::trim).unwrap_or_default();
    if v.is_empty() {
        return Ok(Requirement::Nothing);
    }
    if v == "1" {
        return Ok(Requirement::Any);
    }
    v.split_once('.')
        .and_then(|(a, b)| Some(Requirement::Exactly((a.parse().ok()?, b.parse().ok()?))))
        .ok_or_else(|| {
            format!("{REQUIRE_VAR}={v}: expected 1 (some NVRTC) or a version such as 12.0")
        })
}

/// The decision for a test that needs NVRTC `need` (None: any version), given what loading
/// NVRTC gave and the value of `RECPIPE_REQUIRE_NVRTC`.
pub fn decide(
    need: Option<(i32, i32)>,
    loaded: Result<(i32, i32), String>,
    require: Option<&str>,
) -> Gate {
    let req = match requirement(require) {
        Ok(r) => r,
        Err(e) => return Gate::Fail(e),
    };
    let shown = require.unwrap_or_default().trim();
    let v = match loaded {
        Ok(v) => v,
        Err(e) if req == Requirement::Nothing => return Gate::Skip(e),
        Err(e) => return Gate::Fail(format!("{REQUIRE_VAR}={shown} but {e}")),
    };
    if let Requirement::Exactly(r) = req
        && r != v
    {
        return Gate::Fail(format!(
            "{REQUIRE_VAR}={shown} but NVRTC {}.{} is loaded",
            v.0, v.1
        ));
    }
    match need {
        Some(n) if n != v => Gate::Skip(format!(
            "needs NVRTC {}.{}, NVRTC {}.{} is loaded (`bash scripts/nvrtc_env.sh {}.{}` gives it)",
            n.0, n.1, v.0, v.1, n.0, n.1
        )),
        _ => Gate::Run(v),
    }
}

/// [`decide`] for this process: loads NVRTC (from `RECPIPE_NVRTC_DIR` when set) and reads
/// `RECPIPE_REQUIRE_NVRTC`.
pub fn nvrtc(need: Option<(i32, i32)>) -> Gate {
    let loaded = crate::nvrtc::version().map_err(|e| e.to_string());
    decide(need, loaded, std::env::var(REQUIRE_VAR).ok().as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V12: (i32, i32) = (12, 0);
    const V13: (i32, i32) = (13, 0);

    fn none() -> Result<(i32, i32), String> {
        Err("NVRTC not found".into())
    }

    #[test]
    fn without_the_variable_a_missing_or_other_nvrtc_skips() {
        assert!(matches!(decide(None, none(), None), Gate::Skip(_)));
        assert!(matches!(decide(Some(V12), none(), Some("")), Gate::Skip(_)));
        assert!(matches!(decide(Some(V12), Ok(V13), None), Gate::Skip(_)));
        assert_eq!(decide(None, Ok(V13), None), Gate::Run(V13));
        assert_eq!(decide(Some(V12), Ok(V12), None), Gate::Run(V12));
    }

    #[test]
    fn one_requires_some_nvrtc_and_still_skips_a_version_test() {
        assert!(matches!(decide(None, none(), Some("1")), Gate::Fail(_)));
        assert!(matches!(
            decide(Some(V12), none(), Some("1")),
            Gate::Fail(_)
        ));
        assert_eq!(decide(None, Ok(V13), Some("1")), Gate::Run(V13));
        assert!(matches!(
            decide(Some(V12), Ok(V13), Some("1")),
            Gate::Skip(_)
        ));
    }

    #[test]
    fn a_version_requires_exactly_it() {
        assert_eq!(decide(Some(V12), Ok(V12), Some("12.0")), Gate::Run(V12));
        assert_eq!(decide(None, Ok(V12), Some("12.0")), Gate::Run(V12));
        assert!(
            matches!(decide(Some(V12), Ok(V13), Some("12.0")), Gate::Fail(m) if m.contains("13.0 is loaded"))
        );
        assert!(matches!(decide(None, none(), Some("12.0")), Gate::Fail(_)));
        assert!(
            matches!(decide(None, Ok(V13), Some("yes")), Gate::Fail(m) if m.contains("expected 1"))
        );
    }
}
