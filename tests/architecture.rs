//! The dependency direction between the modules of `src/`: no import cycle may appear
//! that is not already known, and the known ones may only go away.
//!
//! A module depends on another when its production code (test modules left out) names
//! it: `crate::other::…` for top-level modules, `super::sibling::…` between siblings.
//! The known cycles are listed in [`KNOWN`]; when one is broken, delete it from the
//! list (the test says so), and it can never come back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Mutually dependent pairs of top-level modules still to untangle (see
/// docs/ARCHITECTURE.md, "Dependency direction"): none are left.
const KNOWN: &[(&str, &str)] = &[];

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

fn mutual_pairs(graph: &Graph) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (a, deps) in graph {
        for b in deps {
            if a < b && graph.get(b).is_some_and(|d| d.contains(a)) {
                pairs.insert((a.clone(), b.clone()));
            }
        }
    }
    pairs
}

#[test]
fn no_new_import_cycle_between_top_level_modules() {
    let graph = top_level_graph();
    assert!(graph.len() > 10, "the scan found the modules: {graph:?}");
    let found = mutual_pairs(&graph);
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    assert!(new.is_empty(), "new import cycles between modules: {new:?}");
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        gone.is_empty(),
        "these cycles are gone: delete them from KNOWN so they cannot come back: {gone:?}"
    );
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
