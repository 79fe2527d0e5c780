//! The layering DESIGN.md describes, checked on the source: the leaves import nothing of
//! the crate, no two modules (nor two files of a folder) import each other round, and
//! the core does not reach up into the command line.

use std::path::Path;

/// The leaves: modules that import nothing of the crate but other leaves, so that no
/// loop can run through them and anything may use them.
const LEAVES: [&str; 8] = [
    "cli", "stats", "exit", "clock", "aligned", "safe_fs", "pages", "digest",
];

#[test]
fn the_leaves_import_nothing_of_the_crate() {
    let found: Vec<String> = edges()
        .into_iter()
        .filter(|(from, _)| from.len() == 1 && LEAVES.contains(&from[0].as_str()))
        .filter(|(_, to)| !LEAVES.contains(&to[0].as_str()))
        .map(|(a, b)| format!("{} -> {}", a.join("::"), b.join("::")))
        .collect();
    assert!(found.is_empty(), "leaves that import the crate: {found:?}");
}

#[test]
fn the_core_does_not_reach_up_into_the_command_line() {
    for dir in ["src/compare", "src/export", "src/report"] {
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(&full).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains("crate::cli") && !text.contains("crate::commands"),
                "{} imports the command line",
                path.display()
            );
        }
    }
}

/// A module of the crate: `["system", "journal"]` for src/system/journal.rs,
/// `["system"]` for src/system/mod.rs.
type Module = Vec<String>;

/// Every source file of the crate (unit-test files aside) as (module, text without its
/// `#[cfg(test)]` part).
fn modules() -> Vec<(Module, String)> {
    fn walk(dir: &Path, prefix: &[String], out: &mut Vec<(Module, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                if stem == "tests" || stem == "main" || stem == "test_support" {
                    continue;
                }
                let mut m = prefix.to_vec();
                if stem != "mod" && stem != "lib" {
                    m.push(stem.to_string());
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let body = text
                    .split("#[cfg(test)]")
                    .next()
                    .unwrap_or(&text)
                    .to_string();
                out.push((m, body));
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut out,
    );
    out
}

/// The paths a source text names through `crate::` or `super::`, with `use` groups
/// (`crate::{a::b, c}`) expanded; `super::` is resolved against `module`.
fn named_paths(module: &Module, text: &str) -> Vec<Vec<String>> {
    // Comments say `crate::x` in prose too; they are not imports.
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let boundary = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':');
        if boundary && (rest.starts_with(b"crate::") || rest.starts_with(b"super::")) {
            let mut base: Vec<String> = Vec::new();
            let mut j = i;
            if rest.starts_with(b"crate::") {
                j += "crate::".len();
            } else {
                // `super` of a folder's mod.rs is the folder's parent; of a file, its folder.
                let mut parent = module.clone();
                parent.pop();
                base = parent;
                j += "super::".len();
                while bytes[j..].starts_with(b"super::") {
                    base.pop();
                    j += "super::".len();
                }
            }
            let (paths, end) = parse_tree(&code, j);
            for p in paths {
                let mut full = base.clone();
                full.extend(p);
                out.push(full);
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Parses `a::b::{c, d::e}` at `at`: every path it names, and where it ends.
fn parse_tree(code: &str, at: usize) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let mut i = at;
    let mut prefix = Vec::new();
    loop {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i > start {
            prefix.push(code[start..i].to_string());
        }
        if bytes[i..].starts_with(b"::{") {
            i += 3;
            let mut all = Vec::new();
            loop {
                while i < bytes.len() && (bytes[i] as char).is_whitespace() {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    i += 1;
                    break;
                }
                let (sub, end) = parse_tree(code, i);
                for s in sub {
                    let mut p = prefix.clone();
                    p.extend(s.into_iter().filter(|x| x != "self"));
                    all.push(p);
                }
                i = end;
                while i < bytes.len() && (bytes[i] as char).is_whitespace() {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b',' {
                    i += 1;
                }
            }
            return (all, i);
        }
        if bytes[i..].starts_with(b"::") {
            i += 2;
            continue;
        }
        return (vec![prefix], i);
    }
}

/// Module-to-module edges: each named path cut at the longest prefix that is a module.
fn edges() -> Vec<(Module, Module)> {
    let mods = modules();
    let known: std::collections::BTreeSet<Module> = mods.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = std::collections::BTreeSet::new();
    for (m, text) in &mods {
        for path in named_paths(m, text) {
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| known.contains(p));
            if let Some(t) = target {
                if &t != m && !t.is_empty() {
                    edges.insert((m.clone(), t));
                }
            }
        }
    }
    edges.into_iter().collect()
}

/// The cycles of a graph: its strongly connected components of more than one node.
fn cycles(edges: &[(String, String)]) -> Vec<Vec<String>> {
    let nodes: std::collections::BTreeSet<&String> =
        edges.iter().flat_map(|(a, b)| [a, b]).collect();
    let reach = |from: &String| {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for (a, b) in edges {
                if *a == n && seen.insert(b.clone()) {
                    stack.push(b.clone());
                }
            }
        }
        seen
    };
    let reaches: std::collections::BTreeMap<&String, _> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) || !reaches[n].contains(*n) {
            continue;
        }
        let scc: Vec<String> = nodes
            .iter()
            .filter(|m| reaches[n].contains(**m) && reaches[*m].contains(*n))
            .map(|m| m.to_string())
            .collect();
        done.extend(scc.iter().cloned());
        out.push(scc);
    }
    out
}

#[test]
fn no_two_top_level_modules_import_each_other_round() {
    let top: Vec<(String, String)> = edges()
        .into_iter()
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && a[0] != b[0])
        .map(|(a, b)| (a[0].clone(), b[0].clone()))
        .collect();
    let found = cycles(&top);
    let witness: Vec<String> = edges()
        .into_iter()
        .filter(|(a, b)| {
            !a.is_empty()
                && a[0] != b[0]
                && found.iter().any(|c| c.contains(&a[0]) && c.contains(&b[0]))
        })
        .map(|(a, b)| format!("{} -> {}", a.join("::"), b.join("::")))
        .collect();
    assert!(
        found.is_empty(),
        "module loops: {found:?}\nthe edges inside them:\n  {}",
        witness.join("\n  ")
    );
}

#[test]
fn no_two_files_of_a_folder_import_each_other_round() {
    // Within each folder: its files (mod.rs as the folder itself) and its subfolders.
    let all = edges();
    let folders: std::collections::BTreeSet<Module> = modules()
        .into_iter()
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, _)| m[..m.len() - 1].to_vec())
        .collect();
    let mut problems = Vec::new();
    for folder in folders {
        let n = folder.len();
        let local = |m: &Module| -> Option<String> {
            (m.len() >= n && m[..n] == folder[..])
                .then(|| m.get(n).cloned().unwrap_or_else(|| "mod".into()))
        };
        let inside: Vec<(String, String)> = all
            .iter()
            .filter_map(|(a, b)| Some((local(a)?, local(b)?)))
            .filter(|(a, b)| a != b)
            .collect();
        for c in cycles(&inside) {
            problems.push(format!("src/{}: {c:?}", folder.join("/")));
        }
    }
    assert!(
        problems.is_empty(),
        "loops between files of a folder:\n  {}",
        problems.join("\n  ")
    );
}
