//! Fenced code blocks of a Markdown file: language, first line, text, and the
//! `<!-- output: COMMAND -->` marker that may precede a `text` block.

pub struct Block {
    /// The file, relative to the workspace root.
    pub file: String,
    pub lang: String,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// Lines between the fences.
    pub body: Vec<String>,
    /// The command of an `<!-- output: ... -->` marker on the line before the fence.
    pub output_of: Option<String>,
}

impl Block {
    pub fn text(&self) -> String {
        self.body.iter().map(|l| format!("{l}\n")).collect()
    }
    pub fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

pub const MARKER: &str = "<!-- output:";

pub fn parse(file: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            body.push(lines[i].to_string());
            i += 1;
        }
        i += 1;
        let output_of = start
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix(MARKER))
            .and_then(|m| m.strip_suffix("-->"))
            .map(|c| c.trim().to_string());
        out.push(Block {
            file: file.to_string(),
            lang: lang.trim().to_string(),
            line: start + 1,
            body,
            output_of,
        });
    }
    out
}

/// `text` with the body of the block at `line` (1-based fence line) replaced by `body`.
pub fn replace_body(text: &str, line: usize, body: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let close = (line..lines.len())
        .find(|&j| lines[j].trim_start().starts_with("```"))
        .expect("the block is closed");
    let mut out: Vec<String> = lines[..line].iter().map(|l| l.to_string()).collect();
    out.extend(body.lines().map(str::to_string));
    out.extend(lines[close..].iter().map(|l| l.to_string()));
    let mut s = out.join("\n");
    s.push('\n');
    s
}
