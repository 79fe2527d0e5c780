//! `thpbench bisect` through the binary: its exit code for every case `git bisect run`
//! tells apart, on synthetic results whose figures are known, and a real `git bisect
//! run` over a small repository whose commits carry result files. Runs as any user.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{stderr, stdout};
use thpbench::result::{BenchResult, DisturberReport, ForkFigures};
use thpbench::test_support::synthetic;

/// What `bisect --json` prints, as far as these tests read it. The crate only writes it
/// (for scripts), so these mirror its types under the names they serialise to: a key the
/// report lacks or renames fails to deserialise instead of reading as null.
#[derive(Debug, serde::Deserialize)]
struct BisectReport {
    /// good, bad, corrupted, not_evidence, not_built or undecided.
    outcome: String,
    reason: Option<String>,
    metrics: Vec<MetricVerdict>,
}

#[derive(Debug, serde::Deserialize)]
struct MetricVerdict {
    separation: Separation,
}

#[derive(Debug, serde::Deserialize)]
struct Separation {
    midpoint: f64,
}

fn bisect_report(out: &Output) -> BisectReport {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not a bisect report ({e}): {}{}", stdout(out), stderr(out)))
}

const GOOD: [f64; 4] = [1000.0, 1010.0, 990.0, 1005.0];
const BAD: [f64; 4] = [800.0, 810.0, 790.0, 805.0];

fn save(dir: &Path, name: &str, r: &BenchResult) -> PathBuf {
    let path = dir.join(name);
    r.save(&path).unwrap();
    path
}

/// A directory with good.json and bad.json references that separate on ops/s.
fn references() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "good.json", &synthetic("6.1.0", &GOOD));
    save(dir.path(), "bad.json", &synthetic("6.2.0", &BAD));
    dir
}

fn bisect(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["bisect", "--good", "good.json", "--bad", "bad.json"];
    args.extend_from_slice(extra);
    common::run(&args, dir)
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn a_result_like_the_good_reference_exits_0_and_like_the_bad_one_1() {
    let dir = references();
    save(
        dir.path(),
        "c.json",
        &synthetic("6.3.0", &[1002.0, 996.0, 1004.0]),
    );
    let out = bisect(dir.path(), &["--", "c.json"]);
    assert_eq!(code(&out), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("verdict: good (exit 0)"),
        "{}",
        stdout(&out)
    );

    save(
        dir.path(),
        "c.json",
        &synthetic("6.3.0", &[801.0, 797.0, 806.0]),
    );
    let out = bisect(dir.path(), &["--json", "--", "c.json"]);
    assert_eq!(code(&out), Some(1), "{}{}", stdout(&out), stderr(&out));
    let report = bisect_report(&out);
    assert_eq!(report.outcome, "bad");
    assert_eq!(report.metrics[0].separation.midpoint, 901.25);
}

#[test]
fn corrupted_data_exits_1_even_when_the_figures_look_good() {
    let dir = references();
    let mut r = synthetic("6.3.0", &GOOD);
    r.runs[2].verify.enabled = true;
    r.runs[2].verify.mismatches = 3;
    save(dir.path(), "verify.json", &r);
    let out = bisect(dir.path(), &["--", "verify.json"]);
    assert_eq!(code(&out), Some(1), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("run 2: verify found 3 mismatched sectors"));

    // A fork child that saw its copy change, in an otherwise invalid result: still bad.
    let mut r = synthetic("6.3.0", &GOOD);
    r.valid = false;
    r.invalid_reasons = vec!["fork children saw the parent's data".into()];
    r.runs[0].disturbers = vec![DisturberReport {
        name: "fork".into(),
        extra: ForkFigures {
            saw_parent_data: 1,
            ..Default::default()
        }
        .to_extra(),
        ..Default::default()
    }];
    save(dir.path(), "fork.json", &r);
    let out = bisect(dir.path(), &["--", "fork.json"]);
    assert_eq!(code(&out), Some(1), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("data was corrupted"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_invalid_or_interrupted_result_exits_125() {
    let dir = references();
    let mut r = synthetic("6.3.0", &GOOD);
    r.valid = false;
    r.invalid_reasons = vec!["only 40.0% of the thp buffer is backed as asked".into()];
    save(dir.path(), "invalid.json", &r);
    let out = bisect(dir.path(), &["--", "invalid.json"]);
    assert_eq!(code(&out), Some(125), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("40.0%"), "{}", stdout(&out));

    let mut r = synthetic("6.3.0", &GOOD);
    r.interrupted = true;
    save(dir.path(), "interrupted.json", &r);
    let out = bisect(dir.path(), &["--", "interrupted.json"]);
    assert_eq!(code(&out), Some(125), "{}{}", stdout(&out), stderr(&out));

    // A mock result is not evidence unless the testing aid says so.
    let mut r = synthetic("6.3.0", &GOOD);
    r.mock = Some(Default::default());
    save(dir.path(), "mock.json", &r);
    assert_eq!(code(&bisect(dir.path(), &["--", "mock.json"])), Some(125));
    let out = bisect(dir.path(), &["--allow-mock", "--", "mock.json"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

#[test]
fn an_undecided_result_exits_125() {
    let dir = references();
    // On the good side on average, but spread across the midpoint (901.25).
    save(
        dir.path(),
        "wide.json",
        &synthetic("6.3.0", &[1000.0, 850.0, 950.0]),
    );
    let out = bisect(dir.path(), &["--", "wide.json"]);
    assert_eq!(code(&out), Some(125), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("holds the midpoint 901.2"),
        "{}",
        stdout(&out)
    );
    // Too few samples to judge.
    save(
        dir.path(),
        "two.json",
        &synthetic("6.3.0", &[1000.0, 1001.0]),
    );
    assert_eq!(code(&bisect(dir.path(), &["--", "two.json"])), Some(125));
}

#[test]
fn machinery_failures_exit_128() {
    let dir = references();
    save(dir.path(), "c.json", &synthetic("6.3.0", &GOOD));
    std::fs::write(dir.path().join("garbage.json"), "{not json").unwrap();
    for (what, args) in [
        ("missing candidate", vec!["--", "missing.json"]),
        ("unparsable candidate", vec!["--", "garbage.json"]),
        ("no candidate (all went to --bad)", vec!["c.json"]),
        (
            "an unknown flag (clap would say 2)",
            vec!["--no-such-flag", "--", "c.json"],
        ),
        (
            "an unknown metric",
            vec!["--metric", "opps", "--", "c.json"],
        ),
        (
            "--kernel naming a directory that is no kernel tree",
            vec!["--kernel", ".", "quick"],
        ),
        (
            "--repeat-until with nothing to run",
            vec!["--repeat-until", "5", "--", "c.json"],
        ),
    ] {
        let out = bisect(dir.path(), &args);
        assert_eq!(
            code(&out),
            Some(128),
            "{what}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(!stderr(&out).is_empty(), "{what}: no message");
    }
    let out = common::run(&["bisect", "--good", "good.json"], dir.path());
    assert_eq!(code(&out), Some(128), "a missing --bad: {}", stderr(&out));
    let out = common::run(
        &[
            "bisect",
            "--good",
            "garbage.json",
            "--bad",
            "bad.json",
            "--",
            "c.json",
        ],
        dir.path(),
    );
    assert_eq!(code(&out), Some(128), "{}", stderr(&out));
    assert!(stderr(&out).contains("garbage.json"), "{}", stderr(&out));
    // --help is no failure.
    assert_eq!(
        code(&common::run(&["bisect", "--help"], dir.path())),
        Some(0)
    );
}

#[test]
fn references_that_do_not_separate_exit_128_with_their_figures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(d, "c.json", &synthetic("6.3.0", &GOOD));
    save(d, "good.json", &synthetic("6.1.0", &GOOD));
    for (name, bad, why) in [
        ("overlap", vec![1000.0, 900.0, 950.0], "overlap"),
        ("few", vec![800.0, 810.0], "3 a side"),
        ("close", vec![1030.0, 1031.0, 1032.0], "floor"),
    ] {
        save(d, "bad.json", &synthetic("6.2.0", &bad));
        let out = bisect(d, &["--", "c.json"]);
        assert_eq!(code(&out), Some(128), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("do not separate") && err.contains(why),
            "{name}: {err}"
        );
        assert!(err.contains("good: n = 4, mean 1001.2"), "{name}: {err}");
    }
    // The floor is the user's to set.
    let out = bisect(d, &["--min-change", "2", "--", "c.json"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

/// `--run` adds repeats on this machine (here the mock engine) until decided. The
/// references are synthetic and a million times apart in p50 latency (1 us against
/// 0.5 to 1 s), so the verdict cannot hinge on this machine's speed.
#[test]
fn run_mode_adds_repeats_until_the_verdict_is_decided() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    save(d, "good.json", &synthetic("6.1.0", &[1e6, 0.99e6, 1.01e6]));
    save(d, "bad.json", &synthetic("6.2.0", &[1.0, 1.5, 2.0]));
    let mock = [
        "--mock",
        "2us",
        "--buffer",
        "4k",
        "--threads",
        "1",
        "--warmup",
        "0",
        "--ops",
        "500",
    ];
    let mut args = vec![
        "--metric",
        "latency_ns.p50",
        "--allow-mock",
        "--force",
        "--repeat-until",
        "5",
        "--run",
    ];
    args.extend_from_slice(&mock);
    args.extend_from_slice(&["--results-dir", "out"]);
    let out = bisect(d, &args);
    assert_eq!(code(&out), Some(0), "{}{}", stdout(&out), stderr(&out));
    let written = std::fs::read_dir(d.join("out")).unwrap().count();
    assert_eq!(written, 3, "decided at the 3 samples the rule needs");
    assert!(stderr(&out).contains("repeat 3/5"), "{}", stderr(&out));

    // A repeat that corrupts data ends it at once: bad.
    let mut args = vec!["--allow-mock", "--force", "--run"];
    args.extend_from_slice(&mock);
    args.extend_from_slice(&["--results-dir", "out2", "--mock-mismatch-at", "3"]);
    let out = bisect(d, &args);
    assert_eq!(code(&out), Some(1), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(std::fs::read_dir(d.join("out2")).unwrap().count(), 1);

    // Flags that make no sense one repeat at a time, and run's own usage errors: 128.
    let out = bisect(d, &["--run", "--mock", "2us", "-o", "x.json"]);
    assert_eq!(code(&out), Some(128), "{}", stderr(&out));
    let out = bisect(d, &["--run", "--bs", "3q"]);
    assert_eq!(code(&out), Some(128), "{}", stderr(&out));
    let out = bisect(d, &["--run", "--mock", "2us", "--repeat-until", "4"]);
    assert_eq!(code(&out), Some(128), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("give --repeat-until before --run"),
        "{}",
        stderr(&out)
    );
}

fn git(repo: &Path, args: &[&str]) -> Output {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=thpbench",
            "-c",
            "user.email=thpbench@localhost",
        ])
        .args(args)
        .current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo)
        .output()
        .expect("running git");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    out
}

/// Eight commits carry a result each: like the good reference before commit 5, like
/// the bad one from it on, one invalid result (skipped) and one corrupted. `git bisect
/// run thpbench bisect` must name commit 5.
#[test]
fn git_bisect_run_names_the_planted_commit() {
    if Command::new("git").arg("--version").output().is_err() {
        assert!(!common::in_ci(), "CI must have git");
        eprintln!("SKIP git_bisect_run_names_the_planted_commit: git is not installed");
        return;
    }
    let refs = references();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    git(r, &["init", "-q"]);
    const PLANTED: usize = 5;
    let mut commits = Vec::new();
    for k in 0..8 {
        let wobble = k as f64;
        let mut result = if k < PLANTED {
            synthetic("6.13.0", &[1000.0 + wobble, 995.0, 1004.0 - wobble])
        } else {
            synthetic("6.13.0", &[800.0 - wobble, 805.0, 797.0 + wobble])
        };
        if k == 2 {
            result.valid = false;
            result.invalid_reasons = vec!["the swap disturber never acted".into()];
        }
        if k == 7 {
            result.runs[0].verify.enabled = true;
            result.runs[0].verify.mismatches = 1;
        }
        save(r, "result.json", &result);
        std::fs::write(r.join("series"), format!("commit {k}\n")).unwrap();
        git(r, &["add", "."]);
        git(r, &["commit", "-q", "-m", &format!("commit {k}")]);
        let sha = git(r, &["rev-parse", "HEAD"]);
        commits.push(String::from_utf8_lossy(&sha.stdout).trim().to_string());
    }
    git(r, &["bisect", "start", &commits[7], &commits[0]]);
    let good = refs.path().join("good.json");
    let bad = refs.path().join("bad.json");
    let out = git(
        r,
        &[
            "bisect",
            "run",
            common::bin(),
            "bisect",
            "--good",
            good.to_str().unwrap(),
            "--bad",
            bad.to_str().unwrap(),
            "--",
            "result.json",
        ],
    );
    let log = stdout(&out);
    assert!(
        log.contains(&format!("{} is the first bad commit", commits[PLANTED])),
        "{log}"
    );
    git(r, &["bisect", "reset"]);
}

/// `--kernel` with a source tree that does not build: git bisect's skip (125), decided
/// from the builder's typed error, before any host tool for booting is looked for. The
/// tree is a stand-in (a Kconfig and a Makefile whose targets fail), not a git tree, so
/// it builds in place.
#[test]
fn a_kernel_tree_that_does_not_build_is_skipped() {
    if Command::new("make").arg("--version").output().is_err() {
        assert!(!common::in_ci(), "make is missing in CI");
        eprintln!("SKIP a_kernel_tree_that_does_not_build_is_skipped: no make");
        return;
    }
    let dir = references();
    let tree = dir.path().join("linux");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("Kconfig"), "").unwrap();
    std::fs::write(
        tree.join("Makefile"),
        "%:\n\t@echo 'error: this commit does not compile' >&2; false\n",
    )
    .unwrap();
    let out = bisect(
        dir.path(),
        &[
            "--kernel",
            "linux",
            "--cache-dir",
            "cache",
            "--json",
            "--run",
            "--duration",
            "1s",
        ],
    );
    assert_eq!(code(&out), Some(125), "{}{}", stdout(&out), stderr(&out));
    let v = bisect_report(&out);
    assert_eq!(v.outcome, "not_built", "{v:?}");
    let reason = v.reason.as_deref().expect("a reason");
    assert!(reason.contains("does not compile"), "{v:?}");
}
