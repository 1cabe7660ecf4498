//! The stages' order: inputs before the stages that read them, file order otherwise; or the
//! cycle that makes such an order impossible.

use std::collections::BTreeMap;
use std::ops::Range;

/// Kahn's algorithm with ties broken by file order; on a cycle, the stages on it and the span
/// of the `inputs` entry that closes it.
pub(super) fn topo_order(
    names: &[String],
    edges: &[Vec<(usize, Range<usize>)>],
) -> Result<Vec<usize>, (Vec<String>, Range<usize>)> {
    let n = names.len();
    let mut indegree: Vec<usize> = edges.iter().map(|e| e.len()).collect();
    let mut dependents: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, e) in edges.iter().enumerate() {
        for (j, _) in e {
            dependents.entry(*j).or_default().push(i);
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    while order.len() < n {
        let Some(next) = (0..n).find(|&i| !done[i] && indegree[i] == 0) else {
            break;
        };
        done[next] = true;
        order.push(next);
        for &d in dependents.get(&next).map(|v| v.as_slice()).unwrap_or(&[]) {
            indegree[d] -= 1;
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk input edges among the remaining stages until one repeats: that loop is the cycle.
    let start = (0..n).find(|&i| !done[i]).expect("some stage is left");
    let mut path = vec![start];
    let mut spans = Vec::new();
    loop {
        let cur = *path.last().expect("non-empty");
        let (next, span) = edges[cur]
            .iter()
            .find(|(j, _)| !done[*j])
            .cloned()
            .expect("a stage left over by Kahn's algorithm has an unfinished input");
        spans.push(span);
        if let Some(pos) = path.iter().position(|&p| p == next) {
            // Stage `cur` reads `next`; show it in data-flow order.
            let mut cycle: Vec<String> = path[pos..]
                .iter()
                .rev()
                .map(|&i| names[i].clone())
                .collect();
            cycle.push(names[path[path.len() - 1]].clone());
            return Err((cycle, spans.pop().expect("pushed above")));
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_is_reported_in_data_flow_order() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        // a reads c, b reads a, c reads b.
        let edges = vec![vec![(2, 10..11)], vec![(0, 20..21)], vec![(1, 30..31)]];
        let (cycle, _) = topo_order(&names, &edges).unwrap_err();
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle.first(), cycle.last());
        let ok = topo_order(
            &names,
            &[vec![], vec![(0, 0..1)], vec![(0, 0..1), (1, 0..1)]],
        )
        .unwrap();
        assert_eq!(ok, vec![0, 1, 2]);
    }
}
