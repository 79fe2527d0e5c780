//! The layering DESIGN.md describes, checked on the source: the leaves import nothing of
//! the crate, so that no import circle can run through them.

use std::path::Path;

fn source(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Lines that name a module of the crate, outside the file's unit tests.
fn crate_imports(text: &str) -> Vec<String> {
    let body = text.split("#[cfg(test)]").next().unwrap_or(text);
    body.lines()
        .filter(|l| l.contains("crate::") || l.contains("super::"))
        .map(str::to_string)
        .collect()
}

#[test]
fn cli_is_a_leaf() {
    let found = crate_imports(&source("src/cli.rs"));
    assert!(found.is_empty(), "src/cli.rs imports the crate: {found:?}");
}

#[test]
fn stats_is_a_leaf() {
    let found = crate_imports(&source("src/stats.rs"));
    assert!(
        found.is_empty(),
        "src/stats.rs imports the crate: {found:?}"
    );
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
