//! Start order: a graph of "starts after" edges between sidecars, checked for cycles and cut into
//! stages of sidecars that can start together.

use std::collections::{BTreeMap, BTreeSet};

/// A cycle in the start-order graph, as the path that closes it (`a → b → a`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the start order has a cycle: {}", .0.join(" → "))]
pub struct Cycle(pub Vec<String>);

/// Cut `after` (sidecar → sidecars it starts after) into stages, each sorted by name. Every edge
/// target must be a key.
pub fn stages(after: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<Vec<String>>, Cycle> {
    let mut pending: BTreeMap<&str, BTreeSet<&str>> = after
        .iter()
        .map(|(name, deps)| (name.as_str(), deps.iter().map(String::as_str).collect()))
        .collect();
    let mut stages = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<&str> = pending
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(name, _)| *name)
            .collect();
        if ready.is_empty() {
            return Err(find_cycle(&pending));
        }
        for name in &ready {
            pending.remove(name);
        }
        for deps in pending.values_mut() {
            for name in &ready {
                deps.remove(name);
            }
        }
        stages.push(ready.into_iter().map(str::to_owned).collect());
    }
    Ok(stages)
}

/// Walk edges from any blocked node until a node repeats; the repeated stretch is a cycle.
fn find_cycle(pending: &BTreeMap<&str, BTreeSet<&str>>) -> Cycle {
    let mut path: Vec<&str> = vec![pending.keys().next().expect("pending is not empty")];
    loop {
        let last = path.last().expect("path is not empty");
        let next = pending[last]
            .iter()
            .find(|dep| pending.contains_key(*dep))
            .expect("a blocked node waits on another blocked node");
        if let Some(start) = path.iter().position(|n| n == next) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(next.to_string());
            return Cycle(cycle);
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(n, deps)| (n.to_string(), deps.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn independent_sidecars_share_a_stage() {
        let g = graph(&[("a", &[]), ("b", &[]), ("c", &["a"])]);
        assert_eq!(stages(&g).unwrap(), vec![vec!["a", "b"], vec!["c"]]);
    }

    #[test]
    fn cycle_is_named() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        let err = stages(&g).unwrap_err();
        assert_eq!(err.0, vec!["a", "b", "c", "a"]);
        assert_eq!(
            err.to_string(),
            "the start order has a cycle: a → b → c → a"
        );
    }
}
