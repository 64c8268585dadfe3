//! The dependency direction between the modules of `src/`: no import cycle, of any
//! length, between top-level modules.
//!
//! A module depends on another when its production code (test modules left out) names
//! it: `crate::other::…`. A cycle found is printed as the path that closes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn production_source(path: &Path) -> bool {
    let p = path.to_string_lossy();
    !(p.contains("/tests/") || p.ends_with("/tests.rs") || p.ends_with("conformance.rs"))
}

/// The text before the first `#[cfg(test)]` module of a file.
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The first path segment after each `prefix` (`crate::a::…` gives `a`; a group
/// `crate::{a::x, b}` gives `a` and `b`).
fn names_after(text: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        match rest.strip_prefix('{') {
            Some(group) => out.extend(group_heads(group)),
            None => out.push(ident(rest)),
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// The first identifier of each item of a `{…}` group (up to its closing brace).
fn group_heads(group: &str) -> Vec<String> {
    let (mut heads, mut depth, mut start) = (Vec::new(), 0, true);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && (c.is_alphanumeric() || c == '_') => {
                heads.push(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn top_level_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut graph = Graph::new();
    for file in files.iter().filter(|f| production_source(f)) {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let deps = graph.entry(top.clone()).or_default();
        for name in names_after(without_tests(&text), "crate::") {
            if name != top {
                deps.insert(name);
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// A cycle of `graph` as the path of modules that closes it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    // 0: not seen, 1: on the current path, 2: done.
    let mut mark: BTreeMap<&str, u8> = BTreeMap::new();
    let mut path: Vec<&str> = Vec::new();
    fn visit<'a>(
        graph: &'a Graph,
        node: &'a str,
        mark: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        mark.insert(node, 1);
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match mark.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|n| *n == next).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|n| n.to_string()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(graph, next, mark, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        mark.insert(node, 2);
        None
    }
    for node in graph.keys() {
        if mark.get(node.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(graph, node, &mut mark, &mut path) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = top_level_graph();
    assert!(graph.len() > 10, "the scan found the modules: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("an import cycle between modules: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_a_long_cycle_and_passes_a_chain() {
    let edges = |list: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in list {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    let chain = edges(&[("a", "b"), ("b", "c"), ("a", "c")]);
    assert_eq!(find_cycle(&chain), None);
    let ring = edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]);
    assert_eq!(find_cycle(&ring).unwrap(), ["a", "b", "c", "a"]);
}

#[test]
fn the_scan_sees_a_dependency_and_its_absence() {
    let names = names_after(
        "use crate::{store::X, task};\nuse crate::runtime::Y;",
        "crate::",
    );
    assert_eq!(names, ["store", "task", "runtime"]);
    let graph = top_level_graph();
    assert!(graph["store"].contains("task"), "store names task");
    assert!(
        !graph["task"].contains("http"),
        "the model knows nothing of HTTP"
    );
}
