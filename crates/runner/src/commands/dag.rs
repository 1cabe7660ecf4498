//! `recpipe dag`: the pipeline's stages and edges as an indented tree, Mermaid or Graphviz dot.

use crate::cli::DagFormat;
use crate::out::outln;
use crate::pipeline::Pipeline;

pub fn dag(p: &Pipeline, format: DagFormat) {
    match format {
        DagFormat::Text => text(p),
        DagFormat::Mermaid => {
            outln!("graph TD");
            for s in &p.stages {
                outln!("  {}[\"{} ({})\"]", s.name, s.name, s.kind());
            }
            for (from, to) in edges(p) {
                outln!("  {from} --> {to}");
            }
        }
        DagFormat::Dot => {
            outln!("digraph \"{}\" {{", p.name);
            outln!("  rankdir=LR;");
            for s in &p.stages {
                outln!("  \"{}\" [label=\"{}\\n({})\"];", s.name, s.name, s.kind());
            }
            for (from, to) in edges(p) {
                outln!("  \"{from}\" -> \"{to}\";");
            }
            outln!("}}");
        }
    }
}

/// (input, reader) stage names, by reader in pipeline order.
fn edges(p: &Pipeline) -> impl Iterator<Item = (&str, &str)> {
    p.stages.iter().flat_map(move |s| {
        s.inputs
            .iter()
            .map(move |&j| (p.stages[j].name.as_str(), s.name.as_str()))
    })
}

/// The stages as a tree from each root; a stage reached again is shown once more, marked.
fn text(p: &Pipeline) {
    outln!("{} ({})", p.name, p.path.display());
    let mut shown = vec![false; p.stages.len()];
    let roots: Vec<usize> = (0..p.stages.len())
        .filter(|&i| p.stages[i].inputs.is_empty())
        .collect();
    for (n, &r) in roots.iter().enumerate() {
        walk(p, r, "", n + 1 == roots.len(), &mut shown);
    }
}

fn walk(p: &Pipeline, i: usize, prefix: &str, last: bool, shown: &mut [bool]) {
    let s = &p.stages[i];
    let branch = if last { "└── " } else { "├── " };
    let again = shown[i];
    outln!(
        "{prefix}{branch}{} [{}]{}",
        s.name,
        s.kind(),
        if again { " (see above)" } else { "" }
    );
    if again {
        return;
    }
    shown[i] = true;
    let kids: Vec<usize> = (0..p.stages.len())
        .filter(|&j| p.stages[j].inputs.contains(&i))
        .collect();
    let next = format!("{prefix}{}", if last { "    " } else { "│   " });
    for (n, &c) in kids.iter().enumerate() {
        walk(p, c, &next, n + 1 == kids.len(), shown);
    }
}
