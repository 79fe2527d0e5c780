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
/// `#[cfg(test)]` items).
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
                out.push((m, without_test_items(&text)));
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

/// `text` without the items marked `#[cfg(test)]` (a `mod tests { ... }`, a `use`, a
/// function): tests may import anything, and only they are cut, so that code after a
/// test module still counts. Braces inside string and char literals are skipped.
fn without_test_items(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        let bytes = item.as_bytes();
        let (mut i, mut depth) = (0, 0usize);
        let end = loop {
            match bytes.get(i) {
                None => break bytes.len(),
                Some(b'"') => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
                Some(b'\'') if bytes.get(i + 2) == Some(&b'\'') => i += 2,
                Some(b'{') => depth += 1,
                Some(b'}') => {
                    depth -= 1;
                    if depth == 0 {
                        break i + 1;
                    }
                }
                Some(b';') if depth == 0 => break i + 1,
                _ => {}
            }
            i += 1;
        };
        rest = &item[end.min(item.len())..];
    }
    out.push_str(rest);
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

/// One shortest loop through the first node of `scc`, as the nodes it passes, back to
/// where it started.
fn a_loop(edges: &[(String, String)], scc: &[String]) -> Vec<String> {
    let start = &scc[0];
    let mut came_from: std::collections::BTreeMap<&String, &String> = Default::default();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for (a, b) in edges.iter().filter(|(a, _)| a == n) {
            if b == start {
                let mut path = vec![start.clone()];
                let mut at = a;
                while at != start {
                    path.push(at.clone());
                    at = came_from[at];
                }
                path.push(start.clone());
                path.reverse();
                return path;
            }
            if scc.contains(b) && !came_from.contains_key(b) {
                came_from.insert(b, a);
                queue.push_back(b);
            }
        }
    }
    unreachable!("a strongly connected component of more than one node has a loop")
}

/// The loops of `graph` (edges between the names `name` gives modules, `None` for those
/// outside it), each as one shortest loop with the file-level imports that close it.
fn loops_in(all: &[(Module, Module)], name: impl Fn(&Module) -> Option<String>) -> Vec<String> {
    let named: Vec<(String, String, &Module, &Module)> = all
        .iter()
        .filter_map(|(a, b)| Some((name(a)?, name(b)?, a, b)))
        .filter(|(a, b, _, _)| a != b)
        .collect();
    let graph: Vec<(String, String)> = named
        .iter()
        .map(|(a, b, _, _)| (a.clone(), b.clone()))
        .collect();
    cycles(&graph)
        .into_iter()
        .map(|scc| {
            let path = a_loop(&graph, &scc);
            let imports: Vec<String> = path
                .windows(2)
                .map(|step| {
                    let files: Vec<String> = named
                        .iter()
                        .filter(|(a, b, _, _)| *a == step[0] && *b == step[1])
                        .map(|(_, _, a, b)| format!("{} -> {}", show(a), show(b)))
                        .collect();
                    format!("{} -> {}: {}", step[0], step[1], files.join(", "))
                })
                .collect();
            format!(
                "loop {} (of the component {scc:?}), closed by:\n      {}",
                path.join(" -> "),
                imports.join("\n      ")
            )
        })
        .collect()
}

fn show(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_two_top_level_modules_import_each_other_round() {
    let found = loops_in(&edges(), |m| m.first().cloned());
    assert!(found.is_empty(), "module loops:\n  {}", found.join("\n  "));
}

#[test]
fn no_two_files_of_a_folder_import_each_other_round() {
    // Within each folder below src/ (src/ itself is the test above): its files, mod.rs
    // as the folder itself, and its subfolders, each as one node.
    let all = edges();
    let folders: std::collections::BTreeSet<Module> = modules()
        .into_iter()
        .filter(|(m, _)| m.len() > 1)
        .map(|(m, _)| m[..m.len() - 1].to_vec())
        .collect();
    let mut problems = Vec::new();
    for folder in folders {
        let n = folder.len();
        let local = |m: &Module| -> Option<String> {
            (m.len() >= n && m[..n] == folder[..])
                .then(|| m.get(n).cloned().unwrap_or_else(|| "mod".into()))
        };
        for found in loops_in(&all, local) {
            problems.push(format!("src/{}: {found}", folder.join("/")));
        }
    }
    assert!(
        problems.is_empty(),
        "loops between files of a folder:\n  {}",
        problems.join("\n  ")
    );
}

/// The checks above find loops: a graph with one, and the comment and test code that
/// must not count as imports.
#[test]
fn the_loop_finder_finds_a_loop_and_ignores_tests_and_comments() {
    let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
    let all = vec![
        (m("a::x"), m("b")),
        (m("b"), m("c::y")),
        (m("c::z"), m("a")),
        (m("c"), m("d")),
    ];
    let found = loops_in(&all, |m| m.first().cloned());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("loop a -> b -> c -> a"),
        "{}",
        found[0]
    );
    assert!(found[0].contains("c -> a: c::z -> a"), "{}", found[0]);
    assert!(loops_in(&all[..3], |m| Some(show(m))).is_empty());

    let text = "use crate::a::{b, c::d};\n// crate::e in prose\n#[cfg(test)]\nmod tests {\n    use crate::f;\n    const BRACE: char = '}';\n    fn g() { let _ = \"}\"; }\n}\nuse super::h;\n";
    let named = named_paths(&m("p::q"), &without_test_items(text));
    let expected: Vec<Module> = vec![m("a::b"), m("a::c::d"), m("p::h")];
    assert_eq!(named, expected);
}
