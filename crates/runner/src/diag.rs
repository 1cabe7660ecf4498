//! Turning byte spans into `file:line:column` messages with a source excerpt.
//!
//! Command-line overrides (`--set`, one-off flags) are parsed as TOML values too; their spans are
//! shifted past the end of the file so one error type can point at either place.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// The text spans refer to: a pipeline file plus the command-line snippets placed after it.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: &'static str,
    /// (offset in the virtual source, the argument as the user typed it, the value text)
    pub args: Vec<(usize, String, &'static str)>,
}

impl Source {
    pub fn new(path: PathBuf, text: String) -> Self {
        Source {
            path,
            // A CLI process parses a handful of pipeline files; leaking them keeps the spanned
            // TOML values `'static`, which keeps the parsed pipeline free of lifetimes.
            text: Box::leak(text.into_boxed_str()),
            args: Vec::new(),
        }
    }

    /// Register a command-line value; returns (its offset, its `'static` text).
    pub fn add_arg(&mut self, label: String, value: &str) -> (usize, &'static str) {
        let start = self
            .args
            .last()
            .map(|(o, _, v)| o + v.len() + 1)
            .unwrap_or(self.text.len() + 1);
        let value: &'static str = Box::leak(value.to_string().into_boxed_str());
        self.args.push((start, label, value));
        (start, value)
    }

    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> SourceError {
        SourceError {
            location: self.locate(&span),
            message: message.into(),
        }
    }

    fn locate(&self, span: &Range<usize>) -> Location {
        if span.start <= self.text.len() {
            let start = span.start.min(self.text.len());
            let before = &self.text[..start];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
            let col = self.text[line_start..start].chars().count() + 1;
            let line_end = self.text[line_start..]
                .find('\n')
                .map(|i| line_start + i)
                .unwrap_or(self.text.len());
            let line_text = self.text[line_start..line_end].trim_end_matches('\r');
            let end = span.end.clamp(start, line_end.max(start));
            let width = self.text[start..end].chars().count().max(1);
            Location::File {
                path: self.path.clone(),
                line,
                col,
                excerpt: line_text.to_string(),
                width,
            }
        } else {
            let arg = self
                .args
                .iter()
                .rev()
                .find(|(o, _, _)| *o <= span.start)
                .map(|(_, label, _)| label.clone())
                .unwrap_or_else(|| "the command line".to_string());
            Location::Arg(arg)
        }
    }
}

#[derive(Debug, Clone)]
enum Location {
    File {
        path: PathBuf,
        line: usize,
        col: usize,
        excerpt: String,
        width: usize,
    },
    Arg(String),
}

/// An error at a place the user wrote: a line of the pipeline file or a command-line argument.
#[derive(Debug, Clone)]
pub struct SourceError {
    location: Location,
    message: String,
}

impl SourceError {
    /// The excerpt with a caret under the span, for the terminal.
    pub fn excerpt(&self) -> Option<String> {
        match &self.location {
            Location::File {
                line,
                col,
                excerpt,
                width,
                ..
            } => {
                let num = line.to_string();
                let pad = " ".repeat(num.len());
                let lead: String = excerpt
                    .chars()
                    .take(col - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                Some(format!(
                    "{pad} |\n{num} | {excerpt}\n{pad} | {lead}{}",
                    "^".repeat(*width)
                ))
            }
            Location::Arg(_) => None,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File {
                path, line, col, ..
            } => write!(f, "{}:{line}:{col}: {}", path.display(), self.message),
            Location::Arg(arg) => write!(f, "in `{arg}`: {}", self.message),
        }
    }
}

impl std::error::Error for SourceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_map_to_line_and_column_or_argument() {
        let mut src = Source::new("p.toml".into(), "a = 1\nbé = 2\n".into());
        let e = src.error(10..11, "bad");
        assert_eq!(e.to_string(), "p.toml:2:4: bad");
        assert_eq!(e.excerpt().unwrap().lines().nth(2).unwrap(), "  |    ^");
        let (off, _) = src.add_arg("--set x.y=1".into(), "1");
        let (off2, _) = src.add_arg("--set x.z=2".into(), "2");
        assert!(off > src.text.len() && off2 > off);
        assert_eq!(
            src.error(off2..off2 + 1, "no").to_string(),
            "in `--set x.z=2`: no"
        );
        assert_eq!(
            src.error(off..off + 1, "no").to_string(),
            "in `--set x.y=1`: no"
        );
    }
}
