//! `thpbench compare`, `export` and `plot` end to end: the built binary on results made
//! by real `thpbench run`s (THP and 4 KiB buffers) and on synthetic ones with known
//! distributions.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{MutexGuard, OnceLock};

use common::*;
use thpbench::result::{BenchResult, SweepCase};
use thpbench::test_support::{synthetic, synthetic_run};

/// Two real results, made once for all tests: THP buffers and 4 KiB buffers, two runs
/// each of 1 s.
struct RealRuns {
    thp: PathBuf,
    base: PathBuf,
}

/// The real runs, made by the first test that asks, with the machine lock held while a
/// test uses them. They need no root (a file target in the test's directory): as root
/// they carry the kernel's reports too.
fn real_runs() -> (MutexGuard<'static, ()>, &'static RealRuns) {
    static RUNS: OnceLock<RealRuns> = OnceLock::new();
    let lock = machine_lock();
    let runs = RUNS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-real-runs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let make = |buffer: &str| {
            let out = dir.join(format!("{buffer}.json"));
            let o = run(
                &[
                    "run",
                    "--duration",
                    "1s",
                    "--warmup",
                    "0s",
                    "--repeat",
                    "2",
                    "--buffer",
                    buffer,
                    "-q",
                    "-o",
                    out.to_str().unwrap(),
                ],
                &dir,
            );
            assert!(
                o.status.success(),
                "thpbench run --buffer {buffer}: {}",
                stderr(&o)
            );
            out
        };
        RealRuns {
            thp: make("thp"),
            base: make("4k"),
        }
    });
    (lock, runs)
}

#[test]
fn compare_finds_a_known_regression_and_calls_zero_difference_noise() {
    let dir = tempfile::tempdir().unwrap();
    let old = save(
        dir.path(),
        "old.json",
        &synthetic("6.12.0", &[120.0, 119.0, 121.0, 122.0, 118.0]),
    );
    let new = save(
        dir.path(),
        "new.json",
        &synthetic("6.13.0", &[100.0, 101.0, 99.0, 100.0, 102.0]),
    );
    let same = save(
        dir.path(),
        "same.json",
        &synthetic("6.14.0", &[121.0, 118.0, 120.0, 122.0, 119.0]),
    );
    let o = run(&["compare", &old, &new, &same], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let ops = out.lines().find(|l| l.starts_with("ops/s")).expect(&out);
    assert!(ops.contains("-16.33% worse"), "{ops}");
    assert!(ops.contains("+0.00% noise"), "{ops}");

    // The gate: -16% is beyond 5%, exit 1 and say what regressed.
    let o = run(
        &["compare", &old, &new, "--fail-on-regression", "5"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_stderr_contains(&o, "regression beyond 5%: 6.13.0 quick ops/s -16.33%");
    // ... and not beyond 20%; no regression at all against an equal kernel.
    let o = run(
        &["compare", &old, &new, "--fail-on-regression", "20"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(
        &["compare", &old, &same, "--fail-on-regression", "0"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // JSON carries the test itself.
    let o = run(&["compare", &old, &new, "--format", "json"], dir.path());
    let v = compare_json::of(&o);
    let row = &v.sections[0].rows[0];
    assert_eq!(row.metric.key, "ops_per_sec");
    let cell = row.cells[1].as_ref().expect("the new group's cell");
    assert_eq!(cell.verdict, "worse");
    assert!(
        cell.test.as_ref().expect("a test").p_value < 1e-6,
        "{cell:?}"
    );
}

#[test]
fn compare_baseline_can_be_a_release_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(
        dir.path(),
        "a.json",
        &synthetic("6.1.0", &[100.0, 101.0, 99.0]),
    );
    let b = save(
        dir.path(),
        "b.json",
        &synthetic("6.12.0", &[110.0, 111.0, 109.0]),
    );
    for baseline in ["6.12.0", b.as_str()] {
        let o = run(&["compare", &a, &b, "--baseline", baseline], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).starts_with("thpbench compare, baseline 6.12.0 quick"),
            "{}",
            stdout(&o)
        );
    }
    let o = run(&["compare", &a, &b, "--baseline", "4.4.0"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert_stderr_contains(&o, "6.1.0, 6.12.0");
}

#[test]
fn compare_shows_invalid_results_but_never_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(
        dir.path(),
        "a.json",
        &synthetic("6.1.0", &[100.0, 101.0, 99.0]),
    );
    let mut bad = synthetic("6.12.0", &[10.0, 11.0, 9.0]);
    bad.valid = false;
    bad.invalid_reasons = vec!["buffer 12% THP-backed, 100% asked".into()];
    let b = save(dir.path(), "bad.json", &bad);
    let o = run(
        &["compare", &a, &b, "--fail-on-regression", "1"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("(not evidence)"), "{out}");
    assert!(out.contains("buffer 12% THP-backed, 100% asked"), "{out}");
}

#[test]
fn compare_sweeps_case_by_case_with_scaling_efficiency() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (release, per_thread) in [("6.1.0", 100.0), ("6.12.0", 100.0)] {
        let mut r = synthetic(release, &[]);
        for threads in [1usize, 2, 4] {
            // 6.12.0 scales perfectly, 6.1.0 loses 30% at each doubling.
            let eff = if release == "6.1.0" {
                0.7f64.powi(threads.trailing_zeros() as i32)
            } else {
                1.0
            };
            let ops = per_thread * threads as f64 * eff;
            r.sweep.push(SweepCase {
                label: format!("threads={threads}"),
                params: [("threads".to_string(), threads.to_string())].into(),
                runs: (0..3)
                    .map(|i| synthetic_run(i, ops + i as f64 - 1.0))
                    .collect(),
            });
        }
        paths.push(save(dir.path(), &format!("{release}.json"), &r));
    }
    let o = run(
        &["compare", &paths[0], &paths[1], "--format", "markdown"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for case in ["**threads=1**", "**threads=2**", "**threads=4**"] {
        assert!(out.contains(case), "{out}");
    }
    let row4 = out
        .lines()
        .find(|l| l.starts_with("| 4 "))
        .unwrap_or_else(|| panic!("no scaling row for 4 threads:\n{out}"));
    // 6.1.0: 196 ops/s at 4 threads = 49% of 4 x 100; 6.12.0: 100%.
    assert!(row4.contains("49.0%"), "{row4}");
    assert!(row4.contains("100.0%"), "{row4}");
}

#[test]
fn non_result_files_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, r#"{"hello": "world"}"#).unwrap();
    let junk = junk.to_str().unwrap();
    for args in [
        vec!["compare", junk],
        vec!["export", junk, "--format", "hgrm"],
        vec!["plot", junk, "-o", "x.svg"],
    ] {
        let o = run(&args, dir.path());
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains("junk.json is not a thpbench result"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = run(&["compare", "missing.json"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert_stderr_contains(&o, "missing.json");
}

#[test]
fn real_runs_of_different_buffers_are_refused_without_force() {
    let (_lock, r) = real_runs();
    let (thp, base) = (r.thp.to_str().unwrap(), r.base.to_str().unwrap());
    let o = run(&["compare", thp, base], Path::new("."));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("buffer: thp"), "{err}");
    assert!(err.contains("4k"), "{err}");
    assert!(err.contains("--force"), "{err}");

    let o = run(
        &["compare", thp, base, "--force", "--format", "markdown"],
        Path::new("."),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("- buffer: thp"), "{out}");
    let ops = out
        .lines()
        .find(|l| l.starts_with("| ops/s "))
        .unwrap_or_else(|| panic!("{out}"));
    // Two runs each: every value has a spread, and the 4k column a verdict.
    assert_eq!(ops.matches(" ± ").count(), 2, "{ops}");
    assert!(
        ["better", "worse", "noise"].iter().any(|v| ops.contains(v)),
        "{ops}"
    );
    assert!(out.contains("| latency p99.9 (us) "), "{out}");
}

#[test]
fn real_run_exports_hgrm_hlog_and_csv() {
    let (_lock, r) = real_runs();
    let result = BenchResult::load(&r.thp).unwrap();
    let path = r.thp.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // hgrm of all runs merged: every op counted.
    let hgrm = dir.path().join("x.hgrm");
    let o = run(
        &[
            "export",
            path,
            "--format",
            "hgrm",
            "-o",
            hgrm.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&hgrm).unwrap();
    thpbench::test_support::assert_hgrm_holds(&result, &text);

    // hlog of run 1: the reader sees every interval and every op of that run.
    let o = run(
        &["export", path, "--format", "hlog", "--run", "1"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (ops, intervals) = thpbench::test_support::hlog_totals(&o.stdout);
    assert_eq!(intervals, result.runs[1].interval_histograms.len());
    assert_eq!(ops, result.runs[1].ops);

    // csv: a header and one row per 100 ms interval of both runs.
    let o = run(&["export", path, "--format", "csv"], dir.path());
    let csv = stdout(&o);
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("case,run,t_ms,ops,bytes,p50_ns,p99_ns,max_ns"));
    let timeline: usize = result.runs.iter().map(|r| r.timeline.len()).sum();
    assert_eq!(rows.len(), 1 + timeline);
    let csv_ops: u64 = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(csv_ops, result.runs.iter().map(|r| r.ops).sum::<u64>());

    let o = run(&["export", path, "--format", "percentiles-csv"], dir.path());
    assert!(
        stdout(&o).starts_with("\"Value\",\"Percentile\",\"TotalCount\",\"1/(1-Percentile)\"\n")
    );

    let o = run(
        &["export", path, "--format", "hgrm", "--run", "9"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no run 9; its runs are: 0, 1"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn real_runs_plot_to_svg_and_png_with_legends() {
    let (_lock, r) = real_runs();
    let result = BenchResult::load(&r.thp).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (thp, base) = (r.thp.to_str().unwrap(), r.base.to_str().unwrap());
    let svg = dir.path().join("p.svg");
    let o = run(
        &["plot", thp, base, "-o", svg.to_str().unwrap()],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"));
    // Same kernel and workload name: the file names tell the curves apart.
    let label = result.label();
    for name in [format!("{label} (thp)"), format!("{label} (4k)")] {
        assert!(text.contains(&name), "legend {name} missing");
    }
    let png = dir.path().join("p.png");
    let o = run(
        &["plot", thp, base, "-o", png.to_str().unwrap()],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), (1200, 620), "one panel: no disturbers, no sweep");
    assert!(bytes.len() > 10_000, "a picture, not an empty canvas");

    let o = run(&["plot", thp, "-o", "p.gif"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert_stderr_contains(&o, "must end in .svg or .png");
}

#[test]
fn a_file_given_twice_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = save(
        dir.path(),
        "a.json",
        &synthetic("6.1.0", &[100.0, 101.0, 99.0]),
    );
    let o = run(&["compare", &a, &a, "--format", "json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_stderr_contains(&o, "more than once");
    assert_eq!(compare_json::of(&o).groups[0].runs_counted, 3);
}

/// Every result kept under results/ (made by older versions, some before fields were
/// added) still reads, and the parts the reader holds typed (sweep parameters, the
/// buffer's backing, share and placement, the disturbers' figures) are written back as
/// the same strings the file holds.
#[test]
fn every_kept_result_still_reads_and_its_typed_parts_write_back_the_same() {
    let files = thpbench::test_support::kept_results();
    assert!(
        files.len() >= 10,
        "results/ holds {} JSON files",
        files.len()
    );
    let mut sweeps = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let written: serde_json::Value = serde_json::from_str(&text).unwrap();
        let read = BenchResult::load(file).unwrap_or_else(|e| panic!("{e:#}"));
        let again = serde_json::to_value(&read).unwrap();
        let runs = |v: &serde_json::Value| -> Vec<serde_json::Value> {
            let mut all: Vec<serde_json::Value> = Vec::new();
            for key in ["runs", "baseline_runs"] {
                all.extend(v[key].as_array().cloned().unwrap_or_default());
            }
            for case in v["sweep"].as_array().cloned().unwrap_or_default() {
                all.extend(case["runs"].as_array().cloned().unwrap_or_default());
            }
            all
        };
        let cases = |v: &serde_json::Value| -> Vec<serde_json::Value> {
            v["sweep"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    // Sizes are written back in canonical form (64k reads as 64K).
                    let mut p = c["params"].clone();
                    if let Some(bs) = p["bs"].as_str() {
                        p["bs"] = bs.to_uppercase().into();
                    }
                    p
                })
                .collect()
        };
        assert_eq!(cases(&written), cases(&again), "{}", file.display());
        sweeps += usize::from(!cases(&written).is_empty());
        let (w, a) = (runs(&written), runs(&again));
        assert_eq!(w.len(), a.len(), "{}", file.display());
        for (w, a) in w.iter().zip(&a) {
            for key in ["backing", "share", "numa"] {
                assert_eq!(
                    w["buffer"][key],
                    a["buffer"][key],
                    "{}: buffer.{key}",
                    file.display()
                );
            }
            let extras = |v: &serde_json::Value| -> Vec<serde_json::Value> {
                v["disturbers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| d["extra"].clone())
                    .collect()
            };
            assert_eq!(
                extras(w),
                extras(a),
                "{}: disturbers' extra",
                file.display()
            );
        }
    }
    assert!(sweeps >= 2, "no kept result has a sweep to read");
    // The typed view of a sweep case: gup-cost sweeps buffer, share and threads.
    let gup = BenchResult::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("results/reference/gup-cost.json"),
    )
    .unwrap();
    let case = &gup.sweep[0].params;
    assert_eq!(case.threads, Some(1));
    assert_eq!(case.share, Some(thpbench::workload::Share::Private));
    assert_eq!(case.other.get("buffer").map(String::as_str), Some("4k"));
}
