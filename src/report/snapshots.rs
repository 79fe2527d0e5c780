//! Snapshot tests: what the renderers print for kept results, against the text under
//! tests/snapshots/. A change to a renderer shows here as a diff to review; when the new
//! text is the intended one, `UPDATE_SNAPSHOTS=1 cargo test --lib snapshots` rewrites
//! the files, and the diff goes into the commit.

use std::path::{Path, PathBuf};

use crate::compare::{compare, CompareOptions, Input};
use crate::result::BenchResult;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kept(name: &str) -> (PathBuf, BenchResult) {
    let path = root().join("results/reference").join(name);
    let r = BenchResult::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    (path, r)
}

/// Fails with the first line that differs, unless UPDATE_SNAPSHOTS is set (then writes).
fn assert_snapshot(name: &str, text: &str) {
    let path = root().join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; UPDATE_SNAPSHOTS=1 cargo test --lib snapshots writes it",
            path.display()
        )
    });
    if let Err(change) = difference(&want, text) {
        panic!(
            "{name} changed at {change}\nreview the change; UPDATE_SNAPSHOTS=1 cargo test --lib snapshots takes it"
        );
    }
}

/// The first line at which `text` differs from `want`, with both versions.
fn difference(want: &str, text: &str) -> Result<(), String> {
    if want == text {
        return Ok(());
    }
    // Both sides run on with "(end)" to the longer one's length: a line added or lost
    // at the end is found, and texts that differ only in a final newline end the search.
    let lines = want.lines().count().max(text.lines().count());
    let end = std::iter::repeat("(end)");
    let (n, (w, g)) = want
        .lines()
        .chain(end.clone())
        .zip(text.lines().chain(end))
        .take(lines)
        .enumerate()
        .find(|(_, (w, g))| w != g)
        .unwrap_or((lines, ("(a final newline)", "(none)")));
    Err(format!("line {}:\n  was: {w}\n  now: {g}", n + 1))
}

#[test]
fn the_summaries_of_kept_results_are_unchanged() {
    for name in [
        "seed-torture-baseline.json",
        "gup-cost.json",
        "shared-folio-contention.json",
    ] {
        let (_, r) = kept(name);
        assert_snapshot(
            &format!("{}.summary.txt", name.trim_end_matches(".json")),
            &super::summary::render(&r),
        );
    }
}

#[test]
fn the_comparison_of_two_kept_results_is_unchanged() {
    let inputs: Vec<Input> = [
        "seed-torture-1x5s-verify-2026-11-28-1.json",
        "seed-torture-1x5s-verify-2026-11-28-3.json",
    ]
    .into_iter()
    .map(|name| {
        let (_, result) = kept(name);
        Input {
            path: PathBuf::from(name),
            result,
        }
    })
    .collect();
    let cmp = compare(&inputs, &CompareOptions::default()).expect("same machine and build");
    assert_snapshot(
        "seed-torture-1x5s.compare.txt",
        &super::compare::render_text(&cmp),
    );
    assert_snapshot(
        "seed-torture-1x5s.compare.md",
        &super::compare::render_markdown(&cmp),
    );
}

#[test]
fn a_changed_line_is_named_with_its_number() {
    assert_eq!(difference("a\nb\n", "a\nb\n"), Ok(()));
    let err = difference("a\nb\nc\n", "a\nB\nc\n").unwrap_err();
    assert!(err.starts_with("line 2:"), "{err}");
    assert!(err.contains("was: b") && err.contains("now: B"), "{err}");
    let shorter = difference("a\nb\n", "a\n").unwrap_err();
    assert!(
        shorter.contains("line 2:") && shorter.contains("now: (end)"),
        "{shorter}"
    );
    assert!(
        difference("a\n", "a").is_err(),
        "a lost final newline is a change"
    );
}
