//! Command-line values in a stage's config: `--set a.b.c=value` overrides ([`Override`]) and
//! one-off flags, read as TOML (or as plain strings) with spans placed after the file's text,
//! and set into a stage's table by dotted path ([`set_path`]).

use super::PipelineError;
use crate::diag::Source;
use toml::Spanned;
use toml::de::{DeArray, DeString, DeTable, DeValue};

/// One `--set a.b.c=value` override.
#[derive(Debug, Clone)]
pub struct Override {
    pub raw: String,
    pub path: Vec<String>,
    pub value: String,
}

impl Override {
    /// `stage.key=value` (pipeline runs) or `key=value` (one-off stage commands).
    pub fn parse(raw: &str) -> Result<Self, PipelineError> {
        let (k, v) = raw
            .split_once('=')
            .ok_or_else(|| PipelineError::BadSet(raw.to_string()))?;
        let path: Vec<String> = k.trim().split('.').map(|s| s.trim().to_string()).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(PipelineError::BadSet(raw.to_string()));
        }
        Ok(Override {
            raw: raw.to_string(),
            path,
            value: v.to_string(),
        })
    }
}

/// A command-line value as TOML (`7`, `true`, `[1, 2]`, `{ a = 1 }`), or else the plain string
/// (`random`, `data/ml-1m`), with spans placed in the command-line part of the source.
pub fn arg_value(source: &mut Source, label: String, value: &str) -> Spanned<DeValue<'static>> {
    let (off, text) = source.add_arg(label, value);
    match DeValue::parse(text) {
        Ok(v) => shift(v, off),
        Err(_) => Spanned::new(
            off..off + text.len(),
            DeValue::String(DeString::Borrowed(text)),
        ),
    }
}

/// A command-line string value, never reinterpreted as TOML (`--format csv`).
pub fn arg_string(source: &mut Source, label: String, value: &str) -> Spanned<DeValue<'static>> {
    let (off, text) = source.add_arg(label, value);
    Spanned::new(
        off..off + text.len(),
        DeValue::String(DeString::Borrowed(text)),
    )
}

fn shift(v: Spanned<DeValue<'static>>, off: usize) -> Spanned<DeValue<'static>> {
    let span = v.span();
    let inner = match v.into_inner() {
        DeValue::Array(a) => {
            let mut out = DeArray::new();
            for e in a.iter() {
                out.push(shift(e.clone(), off));
            }
            DeValue::Array(out)
        }
        DeValue::Table(t) => {
            let mut out = DeTable::new();
            for (k, v) in t.iter() {
                let ks = k.span();
                out.insert(
                    Spanned::new(ks.start + off..ks.end + off, k.get_ref().clone()),
                    shift(v.clone(), off),
                );
            }
            DeValue::Table(out)
        }
        other => other,
    };
    Spanned::new(span.start + off..span.end + off, inner)
}

/// Set `path` (dotted keys) in a table, creating intermediate tables.
pub fn set_path(table: &mut DeTable<'static>, path: &[String], value: Spanned<DeValue<'static>>) {
    let span = value.span();
    let key = Spanned::new(span.clone(), DeString::Owned(path[0].clone()));
    if path.len() == 1 {
        table.remove(path[0].as_str());
        table.insert(key, value);
        return;
    }
    let exists_as_table = matches!(
        table.get(path[0].as_str()).map(|v| v.get_ref()),
        Some(DeValue::Table(_))
    );
    if !exists_as_table {
        table.remove(path[0].as_str());
        table.insert(
            key,
            Spanned::new(span.clone(), DeValue::Table(DeTable::new())),
        );
    }
    let inner = table
        .get_mut(path[0].as_str())
        .expect("inserted above")
        .get_mut();
    if let DeValue::Table(t) = inner {
        set_path(t, &path[1..], value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_as_toml_or_string() {
        let o = Override::parse("split.seed=7").unwrap();
        assert_eq!(o.path, ["split", "seed"]);
        assert!(Override::parse("split.seed").is_err());
        assert!(Override::parse("split..seed=1").is_err());
        let mut src = Source::new("p.toml".into(), String::new());
        let v = arg_value(&mut src, "x".into(), "7");
        assert!(matches!(v.get_ref(), DeValue::Integer(_)));
        let v = arg_value(&mut src, "x".into(), "data/ml-1m");
        assert!(matches!(v.get_ref(), DeValue::String(s) if s == "data/ml-1m"));
        let v = arg_value(&mut src, "x".into(), "{ a = 1 }");
        assert!(v.span().start > 0);
    }
}
