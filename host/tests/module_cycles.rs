//! The host's top-level modules depend on each other one way (ARCHITECTURE.md, "The dependency
//! rule"): this reads every `crate::<module>` path in `host/src` and fails on a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The top-level module a file under `src` belongs to (`lib`/`main` for the roots).
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .expect("a path under src")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.strip_suffix(".rs").unwrap_or(&first).to_owned()
}

/// Every top-level module named by a `crate::` path in `source`, including the members of a
/// `crate::{a, b::{c, d}}` group, which may span lines.
fn referenced(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = &rest[..at];
        rest = &rest[at + "crate::".len()..];
        // `$crate::` (macros) and `other_crate::` are not paths into this crate.
        if before.ends_with(|c: char| c == '$' || c.is_alphanumeric() || c == '_') {
            continue;
        }
        match rest.strip_prefix('{') {
            Some(group) => out.extend(group_members(group)),
            None => out.extend(first_ident(rest)),
        }
    }
    out
}

/// The first identifier of each top-level member of a `{…}` group (`group` starts after `{`).
fn group_members(group: &str) -> Vec<String> {
    let mut members = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                members.extend(first_ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.extend(first_ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    members
}

fn first_ident(text: &str) -> Option<String> {
    let name: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// The module graph of the crate whose sources are under `src`.
fn graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let from = module_of(path.strip_prefix(src).expect("under src"));
                let text = std::fs::read_to_string(&path).expect("a source file");
                let to = graph.entry(from.clone()).or_default();
                to.extend(referenced(&text).into_iter().filter(|m| *m != from));
            }
        }
    }
    for roots in ["lib", "main"] {
        graph.remove(roots);
    }
    graph
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).expect("on the path");
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn the_host_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    // The probe sees real edges: the host's layers as ARCHITECTURE.md draws them.
    for (from, to) in [
        ("cli", "lifecycle"),
        ("supervise", "sidecars"),
        ("sidecars", "plan"),
    ] {
        assert!(
            graph.get(from).is_some_and(|e| e.contains(to)),
            "expected the edge {from} -> {to}; the parser is broken: {graph:#?}"
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "module cycle in host/src: {}; a module may only use modules below it \
             (ARCHITECTURE.md, \"The dependency rule\")",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn a_planted_cycle_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("plan")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod plan; pub mod sidecars;").unwrap();
    std::fs::write(src.join("plan/mod.rs"), "pub mod model;").unwrap();
    std::fs::write(src.join("plan/model.rs"), "pub struct Plan;").unwrap();
    std::fs::write(
        src.join("sidecars.rs"),
        "use crate::plan::model::Plan; // uses plan\nuse crate::{self as c};",
    )
    .unwrap();
    assert_eq!(find_cycle(&graph(src)), None, "{:#?}", graph(src));
    std::fs::write(
        src.join("plan/view.rs"),
        "use crate::{\n    sidecars::ALL,\n};",
    )
    .unwrap();
    // A group spanning lines is an edge.
    let cycle = find_cycle(&graph(src)).expect("the planted cycle");
    assert!(
        cycle == ["plan", "sidecars", "plan"] || cycle == ["sidecars", "plan", "sidecars"],
        "{cycle:?}"
    );
}

#[test]
fn groups_and_macros_are_read() {
    let names = referenced(
        "use crate::{home::Home, plan};\nlet x = $crate::foo;\n// crate::comment\nmy_crate::x",
    );
    assert_eq!(names, BTreeSet::from(["home".into(), "plan".into()]));
    let names = referenced("use crate::{\n    a::{b, c},\n    d::E, // crate::f\n    self,\n};");
    assert_eq!(names, BTreeSet::from(["a".into(), "d".into()]));
}
