//! The run loop, validity, exit codes, the summary and compare, in process: `run::execute`
//! with the mock engine over its in-memory target. A mock run changes nothing on the
//! machine and needs no root, so none of these skip; the privileged tests keep what only
//! the kernel can show (folios, swap, zram, devices, tracing).
//!
//! Every run here is bounded by its operation count, not by time, and each mock operation
//! spins 1 µs, so a run takes milliseconds: no figure asserted below depends on how long
//! anything took.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use thpbench::compare::{compare, CompareOptions, Input};
use thpbench::result::{BenchResult, MockReport, RunRole};
use thpbench::run::{execute, Outcome, RunOptions};
use thpbench::workload::Workload;

/// One mock run at a time: a mock run forbids machine changes process-wide while it
/// lasts, and two at once would share the two CPUs this is tested on.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One worker on a 4 KiB-page buffer, no warm-up (so that operation N of the first
/// worker is its Nth measured one), `ops` operations of `rw`, and `extra` TOML lines.
fn workload(rw: &str, ops: u64, extra: &str) -> Workload {
    let text = format!(
        "name = \"inproc\"\nengine = \"dio\"\nthreads = 1\nbs = \"4k\"\nrw = \"{rw}\"\n\
         ops = {ops}\nwarmup = \"0s\"\nbuffer = \"4k\"\nverify = true\n{extra}"
    );
    Workload::from_toml(&text, "in_process.rs").expect("test workload parses")
}

fn mock(fault: impl FnOnce(&mut MockReport)) -> MockReport {
    let mut m = MockReport {
        op_ns: 1000,
        ..MockReport::default()
    };
    fault(&mut m);
    m
}

/// Runs `w` with `mock` in a fresh directory; the result as returned and as saved.
fn run_mock(w: &Workload, mock: MockReport, dir: &Path) -> anyhow::Result<Outcome> {
    let _one = one_at_a_time();
    let opts = RunOptions {
        results_dir: dir.to_path_buf(),
        output: Some(dir.join("r.json")),
        mock: Some(mock),
        ..RunOptions::default()
    };
    execute(w, &opts)
}

/// A run that must succeed: its outcome, after checking that the saved file is the result
/// returned. (Both through JSON: serde_json's float parsing may move a last bit.)
fn ok_run(w: &Workload, mock: MockReport) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let out = run_mock(w, mock, dir.path()).expect("mock run");
    let saved = BenchResult::load(&out.path).expect("saved result loads");
    let returned: BenchResult =
        serde_json::from_str(&serde_json::to_string(&out.result).unwrap()).unwrap();
    assert!(saved == returned, "the saved result is the one returned");
    out
}

/// A run that must fail before saving anything: its error, with its causes.
fn failed_run(w: &Workload, mock: MockReport) -> String {
    let dir = tempfile::tempdir().unwrap();
    let err = match run_mock(w, mock, dir.path()) {
        Ok(out) => panic!(
            "expected an error, got a result: {:?}",
            out.result.invalid_reasons
        ),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        !dir.path().join("r.json").exists(),
        "no result saved: {err}"
    );
    err
}

#[test]
fn a_clean_mock_run_is_valid_and_exits_0() {
    let out = ok_run(&workload("randread", 500, ""), mock(|_| {}));
    let r = &out.result;
    assert!(r.valid, "{:?}", r.invalid_reasons);
    assert!(r.invalid_reasons.is_empty());
    assert!(!r.interrupted);
    assert_eq!(out.exit_code(), 0);
    assert_eq!(r.mock.as_ref().map(|m| m.op_ns), Some(1000));
    assert!(!r.is_evidence(), "a mock result is never evidence");
    assert_eq!(r.runs.len(), 1);
    assert!(r.baseline_runs.is_empty() && r.sweep.is_empty());
    let run = &r.runs[0];
    assert_eq!(run.ops, 500);
    assert_eq!(run.bytes, 500 * 4096);
    assert_eq!(
        run.latency_ns.count, 500,
        "one latency sample per operation"
    );
    assert_eq!(run.threads.len(), 1);
    assert_eq!(run.threads[0].ops, 500);
    assert_eq!(
        run.target.as_ref().map(|t| t.kind.as_str()),
        Some("mock (in memory)")
    );
    assert_eq!(run.verify.mismatches, 0);
    // The default level compares the 16-byte header of each 4 KiB page read.
    assert_eq!(run.verify.bytes_checked, 500 * 16);
    // Tracing switches the kernel's tracing on: a mock run never starts it.
    assert!(
        !r.workload.lock_contention,
        "the result records tracing as off, though the workload asked for it"
    );
    assert!(
        run.lock_contention.is_none() && run.gup_slow_path.is_none(),
        "{:?} {:?}",
        run.lock_contention,
        run.gup_slow_path
    );
}

/// `pages` compares the 16-byte header of every base page read, `full` every byte; the
/// result and the summary name the level.
#[test]
fn the_verify_level_sets_what_each_read_compares() {
    for (level, per_op, said) in [
        ("pages", 2 * 16u64, "page headers"),
        ("full", 8192, "every byte"),
    ] {
        let mut w = workload("read", 100, &format!("verify_level = \"{level}\""));
        w.bs = "8k".parse().unwrap();
        let out = ok_run(&w, mock(|_| {}));
        let verify = &out.result.runs[0].verify;
        assert_eq!(verify.level.map(|l| l.name()), Some(level));
        assert_eq!(verify.bytes_checked, 100 * per_op, "{level}");
        let text = thpbench::report::summary::render(&out.result);
        assert!(text.contains(said), "{level}: {text}");
    }
}

#[test]
fn an_injected_mismatch_is_invalid_exits_3_and_names_its_offset() {
    // Sequential reads from block 0: the 3rd read is at 2 x 4096.
    let out = ok_run(&workload("read", 10, ""), mock(|m| m.mismatch_at = Some(3)));
    let r = &out.result;
    assert!(!r.valid);
    assert_eq!(out.exit_code(), thpbench::exit::MISMATCH.code);
    let verify = &r.runs[0].verify;
    assert_eq!(verify.mismatches, 1);
    assert!(verify.corrupted());
    assert_eq!(verify.first_mismatches[0].offset, 8192);
    assert!(
        r.invalid_reasons
            .iter()
            .any(|why| why.contains("target offset 8192")),
        "{:?}",
        r.invalid_reasons
    );
    // The summary says it too, for whoever reads only that.
    let text = thpbench::report::summary::render(r);
    let verdict = &text[text.find("\nINVALID:\n").expect("an INVALID section")..];
    assert!(verdict.contains("target offset 8192"), "{text}");
    assert!(text.contains("      offset 8192 (cpu 0, "), "{text}");
}

/// A read answered as done whose data never landed is caught in each state its buffer can
/// be in: holding the same block at the same generation (a one-block target, or the
/// read-back of a write: only the poison shows it), or holding another block (its headers
/// carry other offsets, which the check shows without poison). The hook (`--drop-read`)
/// counts reads, read-backs included; tests/uring.rs drives it through the queued loop.
#[test]
fn a_read_that_never_lands_is_caught_whatever_its_buffer_held() {
    let cases = [
        ("re-read of the one block", "read", "4k", 5),
        ("read-back of a write", "write", "8m", 1),
        ("read after another block", "read", "8m", 5),
        ("random read", "randread", "8m", 5),
    ];
    // Every wrong header counts: one page at `pages`, each of its 8 sectors at `full`.
    for (level, wrong) in [("pages", 1), ("full", 4096 / 512)] {
        for (case, rw, size, lost_at) in cases {
            let case = format!("{case}, verify_level {level}");
            let extra = format!("size = \"{size}\"\nverify_level = \"{level}\"");
            let out = run_with(
                &workload(rw, 10, &extra),
                RunOptions {
                    drop_read: Some(lost_at),
                    ..RunOptions::default()
                },
            );
            let r = &out.result;
            assert_eq!(r.runs[0].verify.mismatches, wrong, "{case}");
            assert!(!r.valid, "{case}");
            assert_eq!(out.exit_code(), thpbench::exit::MISMATCH.code, "{case}");
        }
    }
}

/// Runs `w` with the mock and `opts` on top (the test hooks).
fn run_with(w: &Workload, opts: RunOptions) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let _one = one_at_a_time();
    let opts = RunOptions {
        output: Some(dir.path().join("r.json")),
        mock: Some(mock(|_| {})),
        ..opts
    };
    execute(w, &opts).expect("mock run")
}

/// A sector overwritten between the fill and the reads is found, named and makes the
/// result invalid with exit 3.
#[test]
fn verify_catches_corruption_injected_between_fill_and_read() {
    // Sequential reads of every block from 0: the read of block 10 meets it.
    let w = workload("read", 64, "");
    let out = run_with(
        &w,
        RunOptions {
            inject_corruption_at: Some(40960),
            ..RunOptions::default()
        },
    );
    let r = &out.result;
    let verify = &r.runs[0].verify;
    assert!(verify.mismatches > 0);
    let first = &verify.first_mismatches[0];
    assert_eq!(first.offset, 40960, "{first:?}");
    assert_ne!(first.expected, first.actual);
    assert!(!r.valid);
    assert!(
        r.invalid_reasons.iter().any(|why| why
            .contains("mismatched sectors, the first at target offset 40960")
            && why.contains("corrupted data is not evidence")),
        "{:?}",
        r.invalid_reasons
    );
    assert_eq!(out.exit_code(), thpbench::exit::MISMATCH.code);
}

/// A write answered as done but never made leaves the block's previous generation in
/// place; its read-back sees the 8 sectors of the lost 4 KiB write as mismatches, the
/// generation in the header's tag (bytes 8..16 of the sector) differing first.
#[test]
fn verify_catches_a_lost_write() {
    let w = workload("randwrite", 64, "verify_level = \"full\"");
    let out = run_with(
        &w,
        RunOptions {
            drop_write: Some(5),
            ..RunOptions::default()
        },
    );
    let r = &out.result;
    let verify = &r.runs[0].verify;
    assert_eq!(verify.mismatches, 8, "{verify:?}");
    assert_eq!(verify.first_mismatches[0].offset % 512, 8, "{verify:?}");
    assert!(!r.valid);
    assert_eq!(out.exit_code(), thpbench::exit::MISMATCH.code);
}

/// A result is invalid (exit 4) when a condition was not met and no data went wrong;
/// mismatches (exit 3) outrank it; interrupted (130) outranks both.
#[test]
fn exit_codes_follow_the_saved_result() {
    let clean = ok_run(&workload("randread", 50, ""), mock(|_| {})).result;
    let exit = |r: &BenchResult| thpbench::run::exit_code(r, false);
    assert_eq!(exit(&clean), 0);

    let mut invalid = clean.clone();
    invalid.valid = false;
    invalid.invalid_reasons = vec!["a condition did not hold".into()];
    assert_eq!(exit(&invalid), thpbench::exit::INVALID.code);

    let mismatched = ok_run(&workload("read", 10, ""), mock(|m| m.mismatch_at = Some(3))).result;
    assert_eq!(exit(&mismatched), thpbench::exit::MISMATCH.code);

    let mut interrupted = mismatched.clone();
    interrupted.interrupted = true;
    assert_eq!(exit(&interrupted), thpbench::exit::INTERRUPTED.code);
}

/// A short transfer or a failed one stops the run with an error naming the operation;
/// nothing is saved as a result.
#[test]
fn a_short_io_or_an_io_error_is_an_error_naming_the_offset() {
    type Fault = fn(&mut MockReport);
    let cases: [(Fault, &str); 2] = [
        (
            |m| m.short_at = Some(3),
            "short read of 2048 bytes instead of 4096 at offset 8192",
        ),
        (
            |m| m.error_at = Some(3),
            "read of 4096 bytes at offset 8192 failed: EIO",
        ),
    ];
    for (fault, says) in cases {
        let err = failed_run(&workload("read", 10, ""), mock(fault));
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn repeats_are_runs_numbered_from_0() {
    let out = ok_run(&workload("randread", 40, "repeat = 3"), mock(|_| {}));
    let r = &out.result;
    assert!(r.valid, "{:?}", r.invalid_reasons);
    let repeats: Vec<(usize, u64)> = r.runs.iter().map(|run| (run.repeat, run.ops)).collect();
    assert_eq!(repeats, [(0, 40), (1, 40), (2, 40)]);
    let names: Vec<String> = r.all_runs().map(|v| v.name()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("run ")), "{names:?}");
}

/// `--baseline` measures an undisturbed run beside each disturbed one; the disturbers run
/// only in the disturbed ones.
#[test]
fn a_baseline_run_is_measured_beside_each_disturbed_run() {
    let w = workload(
        "randread",
        200,
        "repeat = 2\n[[disturb]]\nkind = \"fork\"\nevery = \"1ms\"\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let _one = one_at_a_time();
    let opts = RunOptions {
        output: Some(dir.path().join("r.json")),
        mock: Some(mock(|_| {})),
        baseline: true,
        ..RunOptions::default()
    };
    let r = execute(&w, &opts).expect("mock run with a baseline").result;
    assert_eq!(r.runs.len(), 2, "{:?}", r.invalid_reasons);
    assert_eq!(r.baseline_runs.len(), 2);
    for (run, base) in r.runs.iter().zip(&r.baseline_runs) {
        assert_eq!(run.repeat, base.repeat);
        assert_eq!((run.ops, base.ops), (200, 200));
        assert!(
            !run.disturbers.is_empty(),
            "the disturbed run has its fork disturber"
        );
        assert!(base.disturbers.is_empty(), "the baseline runs undisturbed");
    }
    let roles: Vec<bool> = r.all_runs().map(|v| v.role == RunRole::Baseline).collect();
    assert_eq!(roles.iter().filter(|b| **b).count(), 2, "{roles:?}");
    let text = thpbench::report::summary::render(&r);
    assert!(text.contains("  baseline run 0: "), "{text}");
    assert!(text.contains("  disturbed vs baseline: ops/s x"), "{text}");
}

#[test]
fn a_sweep_measures_every_case_in_its_own_place() {
    let w = workload("randread", 100, "[sweep]\nbs = [\"4k\", \"8k\"]\n");
    let out = ok_run(&w, mock(|_| {}));
    let r = &out.result;
    assert!(r.valid, "{:?}", r.invalid_reasons);
    assert!(r.runs.is_empty(), "a sweep's figures live in its cases");
    let measured: Vec<(&str, u64, u64)> = r
        .sweep
        .iter()
        .map(|c| (c.label.as_str(), c.runs[0].ops, c.runs[0].bytes))
        .collect();
    assert_eq!(
        measured,
        [("bs=4k", 100, 100 * 4096), ("bs=8k", 100, 100 * 8192)]
    );
    let text = thpbench::report::summary::render(r);
    assert!(
        text.contains("case bs=4k:") && text.contains("case bs=8k:"),
        "{text}"
    );
}

/// A sweep over `threads` runs each case with its own worker count, and the result
/// records the count actually used.
#[test]
fn a_thread_sweep_runs_each_case_with_its_count() {
    let cpus = thpbench::system::cpu::allowed_cpus().len();
    if cpus < 2 {
        eprintln!("SKIP a_thread_sweep_runs_each_case_with_its_count: one CPU allowed");
        return;
    }
    let w = workload("randread", 100, "[sweep]\nthreads = [1, 2]\n");
    let r = ok_run(&w, mock(|_| {})).result;
    let workers: Vec<(&str, usize, u64)> = r
        .sweep
        .iter()
        .map(|c| (c.label.as_str(), c.runs[0].threads.len(), c.runs[0].ops))
        .collect();
    assert_eq!(workers, [("threads=1", 1, 100), ("threads=2", 2, 100)]);
}

/// A mock run refuses what would change the machine, before measuring anything.
#[test]
fn a_mock_run_refuses_swap_and_other_engines() {
    let mut w = workload("randread", 10, "swap = \"zram:64M\"");
    let err = failed_run(&w, mock(|_| {}));
    // Without root the check that zram needs root comes first; either way nothing is made.
    let refusal = if thpbench::system::is_root() {
        "--mock never changes the machine"
    } else {
        "a zram target or zram swap needs root"
    };
    assert!(err.contains(refusal), "{err}");
    w.swap = None;
    w.engine = thpbench::workload::Engine::Uring;
    let err = failed_run(&w, mock(|_| {}));
    assert!(err.contains("leave the engine at dio"), "{err}");
}

/// The summary gives each repeat its line with its operation count, the target it used
/// and what verify compared.
#[test]
fn the_summary_of_a_mock_run_gives_each_repeat_its_figures() {
    let r = ok_run(&workload("randread", 300, "repeat = 2"), mock(|_| {})).result;
    let text = thpbench::report::summary::render(&r);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("inproc: dio randread bs=4K 4k buffers (private), 1 threads on "),
        "{text}"
    );
    for repeat in 0..2 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("  run {repeat}: ")))
            .unwrap_or_else(|| panic!("no line for run {repeat}: {text}"));
        assert!(line.ends_with("(300 ops)"), "{line}");
    }
    assert_eq!(
        text.matches("target   mock (in memory)").count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches(
            "verify   4.7 KiB compared (the header of every base page read), 0 mismatched"
        )
        .count(),
        2,
        "{text}"
    );
    assert!(!text.contains("INVALID"), "{text}");
}

/// compare pools two mock results of one kernel and workload into one column, and, as
/// they are not evidence, counts none of their runs, gives no verdict and fails no
/// regression gate; a result of another kernel is a column of its own.
#[test]
fn compare_of_mock_results_pools_them_and_never_judges() {
    let w = workload("randread", 200, "repeat = 2");
    let a = ok_run(&w, mock(|_| {}));
    let b = ok_run(&w, mock(|_| {}));
    let input = |o: &Outcome, name: &str| Input {
        path: name.into(),
        result: o.result.clone(),
    };
    let opts = CompareOptions {
        fail_on_regression_pct: Some(0.0),
        ..CompareOptions::default()
    };
    let pooled = compare(&[input(&a, "a.json"), input(&b, "b.json")], &opts).unwrap();
    assert_eq!(pooled.groups.len(), 1, "{:?}", pooled.groups);
    assert_eq!(pooled.groups[0].files, ["a.json", "b.json"]);
    assert!(!pooled.groups[0].evidence);
    assert_eq!(pooled.groups[0].runs_counted, 0, "no mock run is evidence");

    let mut other = input(&b, "b.json");
    other.result.system.kernel.release = "0.0.0-other".into();
    other.result.system.kernel.build_id = None;
    let two = compare(&[input(&a, "a.json"), other], &opts).unwrap();
    assert_eq!(two.groups.len(), 2);
    assert!(two.regressions.is_empty(), "{:?}", two.regressions);
    let ops = two
        .sections
        .iter()
        .flat_map(|s| &s.rows)
        .find(|row| row.metric.key == "ops_per_sec")
        .expect("an ops_per_sec row");
    let cell = ops.cells[1]
        .as_ref()
        .expect("the second column has ops_per_sec");
    assert_eq!(cell.values.len(), 2, "one value per repeat");
    assert_eq!(cell.verdict, thpbench::compare::Verdict::NotEvidence);
    let text = thpbench::report::compare::render_text(&two);
    assert!(text.contains("0.0.0-other"), "{text}");
}

/// `[[disturb]]` tables for `workload`'s `extra`.
fn disturbers(kinds: &[&str]) -> String {
    kinds
        .iter()
        .map(|k| match k.split_once(':') {
            Some((kind, method)) => {
                format!("[[disturb]]\nkind = \"{kind}\"\nmethod = \"{method}\"\nevery = \"1ms\"\n")
            }
            None => format!("[[disturb]]\nkind = \"{k}\"\nevery = \"1ms\"\n"),
        })
        .collect()
}

/// What cannot act on the buffer is refused up front with its reason and remedy, and the
/// run goes on with the disturbers that can: a split on base pages (no huge page to
/// split) and a collapse on folios smaller than a PMD (MADV_COLLAPSE makes PMD-sized
/// THPs only). The privileged tests in disturb.rs see the same refusals on mTHP and
/// hugetlb buffers, with the counters that only the kernel moves.
#[test]
fn a_disturber_that_cannot_act_on_the_buffer_is_refused_and_the_others_run() {
    let w = workload(
        "randread",
        200,
        &disturbers(&["split:cold", "collapse", "fork"]),
    );
    let r = ok_run(&w, mock(|_| {})).result;
    let refused = |label: &str| {
        let what = format!("disturber {label}");
        r.unavailable
            .iter()
            .find(|u| u.what == what)
            .unwrap_or_else(|| panic!("{what} not refused: {:?}", r.unavailable))
            .clone()
    };
    let split = refused("split:cold");
    assert!(split.reason.contains("base pages"), "{split:?}");
    assert!(split.remedy.contains("--buffer thp"), "{split:?}");
    let collapse = refused("collapse");
    assert!(collapse.reason.contains("PMD-sized"), "{collapse:?}");
    assert!(
        r.unavailable.iter().all(|u| u.what != "disturber fork"),
        "fork works on any buffer: {:?}",
        r.unavailable
    );
    let ran: Vec<&str> = r.runs[0]
        .disturbers
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(ran, ["fork"], "only the fork disturber ran");
    let text = thpbench::report::summary::render(&r);
    let listed = &text[text
        .find("\nunavailable:\n")
        .expect("an unavailable section")..];
    assert!(
        listed.contains("disturber split:cold: the buffer is base pages"),
        "{text}"
    );
}

/// A run whose every disturber is refused measures nothing: it is an error naming each
/// refusal, and no result is saved.
#[test]
fn a_run_in_which_no_disturber_can_act_is_an_error_naming_each() {
    let w = workload("randread", 50, &disturbers(&["split:cold", "collapse"]));
    let err = failed_run(&w, mock(|_| {}));
    assert!(err.contains("no asked-for disturber can run here"), "{err}");
    assert!(
        err.contains("split:cold: the buffer is base pages"),
        "{err}"
    );
    assert!(
        err.contains("collapse: MADV_COLLAPSE builds PMD-sized"),
        "{err}"
    );
}

/// The fork disturber's report says what its verdict covers (a lower bound), whether or
/// not a child was forked in so short a run.
#[test]
fn the_fork_verdict_says_its_scope() {
    let w = workload("randread", 200, &disturbers(&["fork"]));
    let r = ok_run(&w, mock(|_| {})).result;
    let fork = r.runs[0]
        .disturbers
        .iter()
        .find(|d| d.name == "fork")
        .expect("the fork disturber's report");
    assert!(
        fork.verdict_scope
            .as_deref()
            .is_some_and(|s| s.starts_with("lower bound")),
        "{fork:?}"
    );
    let figures = fork.fork().expect("fork figures");
    assert_eq!(figures.saw_parent_data, 0, "{fork:?}");
    assert_eq!(figures.failures, 0, "{fork:?}");
}

/// Verify stays on, and judges, while disturbers act: corruption injected between the
/// fill and the reads is named by its offset and makes the result exit 3, on a THP
/// buffer split and collapsed under the I/O.
#[test]
fn corruption_injected_under_disturbance_is_caught() {
    let mut w = workload(
        "read",
        256,
        &disturbers(&["split:cold", "collapse", "fork"]),
    );
    w.buffer = thpbench::workload::Backing::Thp;
    let out = run_with(
        &w,
        RunOptions {
            inject_corruption_at: Some(8192),
            ..RunOptions::default()
        },
    );
    let r = &out.result;
    assert_eq!(r.runs[0].disturbers.len(), 3, "{:?}", r.unavailable);
    let verify = &r.runs[0].verify;
    assert!(verify.enabled && verify.mismatches > 0, "{verify:?}");
    assert_eq!(verify.first_mismatches[0].offset, 8192);
    assert!(!r.valid);
    assert_eq!(out.exit_code(), thpbench::exit::MISMATCH.code);
    let text = thpbench::report::summary::render(r);
    assert!(text.contains("mismatched"), "{text}");
}

/// A run's figures are one count seen several ways: the histogram, the latency summary,
/// the workers and the timeline each hold every measured operation once.
#[test]
fn a_runs_figures_count_every_operation_once() {
    let mut w = workload("readwrite", 600, "");
    w.threads = thpbench::system::cpu::allowed_cpus().len().min(2);
    let r = ok_run(&w, mock(|_| {})).result;
    let run = &r.runs[0];
    assert_eq!(run.ops, 600);
    let histogram = thpbench::measure::histogram::decode_compressed(&run.histogram)
        .expect("the histogram decodes");
    assert_eq!(histogram.len(), run.ops, "histogram");
    assert_eq!(run.latency_ns.count, run.ops, "latency summary");
    assert_eq!(run.threads.len(), w.threads);
    let per_worker: u64 = run.threads.iter().map(|t| t.ops).sum();
    assert_eq!(per_worker, run.ops, "per worker");
    let in_timeline: u64 = run.timeline.iter().map(|t| t.ops).sum();
    assert_eq!(in_timeline, run.ops, "timeline");
    assert_eq!(run.bytes, run.ops * 4096);
    assert!(run.latency_ns.min <= run.latency_ns.p50 && run.latency_ns.p50 <= run.latency_ns.max);
    assert_eq!(
        run.verify.level,
        Some(thpbench::workload::VerifyLevel::Pages),
        "the default level"
    );
    // Whatever could not be collected says why and what would make it work.
    for u in &r.unavailable {
        assert!(!u.reason.is_empty() && !u.remedy.is_empty(), "{u:?}");
    }
}

/// Two repeats on `buffer`, saved as `<buffer>.json` in `dir`: compare, export and plot
/// read it from there, as they read any result.
fn saved_mock_result(dir: &Path, buffer: &str) -> (std::path::PathBuf, BenchResult) {
    let mut w = workload("randread", 400, "repeat = 2");
    w.buffer = buffer.parse().expect("a buffer backing");
    let r = ok_run(&w, mock(|_| {})).result;
    let path = dir.join(format!("{buffer}.json"));
    std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
    (path, r)
}

/// compare refuses results of different buffers unless forced, naming the parameter and
/// the flag; forced, the table names what differs and gives each value its spread.
#[test]
fn compare_of_different_buffers_needs_force_and_then_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let (thp_path, thp) = saved_mock_result(dir.path(), "thp");
    let (base_path, base) = saved_mock_result(dir.path(), "4k");
    assert_eq!(thp.runs[0].buffer.backing, thpbench::workload::Backing::Thp);
    assert_eq!(
        base.runs[0].buffer.backing,
        thpbench::workload::Backing::Base
    );
    let inputs = [
        Input {
            path: thp_path,
            result: thp,
        },
        Input {
            path: base_path,
            result: base,
        },
    ];
    let err =
        compare(&inputs, &CompareOptions::default()).expect_err("different buffers are refused");
    let said = format!("{err:#}");
    assert!(said.contains("buffer: thp"), "{said}");
    assert!(said.contains("4k"), "{said}");
    assert!(said.contains("--force"), "{said}");

    let forced = CompareOptions {
        force: true,
        ..CompareOptions::default()
    };
    let cmp = compare(&inputs, &forced).expect("compared with --force");
    assert_eq!(cmp.groups.len(), 2);
    let md = thpbench::report::compare::render_markdown(&cmp);
    assert!(md.contains("- buffer: thp"), "{md}");
    let ops = md
        .lines()
        .find(|l| l.starts_with("| ops/s "))
        .unwrap_or_else(|| panic!("{md}"));
    assert_eq!(ops.matches(" ± ").count(), 2, "two runs a column: {ops}");
    assert!(md.contains("| latency p99.9 (us) "), "{md}");
}

/// What export writes holds every operation the result counted: hgrm's total and its
/// 100% line, hlog's intervals of one run, csv's rows of the timeline; a run that is not
/// there is an error naming those that are.
#[test]
fn exports_hold_every_operation_the_result_counted() {
    use thpbench::export::{exporter, select, ExportFormat};
    let dir = tempfile::tempdir().unwrap();
    let (path, result) = saved_mock_result(dir.path(), "4k");
    let export = |format: ExportFormat, run: Option<usize>| -> String {
        let sel = select(&result, &path, None, run).expect("a selection");
        let mut out = Vec::new();
        exporter(format)
            .export(&sel, &path, &mut out)
            .expect("exported");
        String::from_utf8(out).expect("text")
    };

    let total: u64 = result.runs.iter().map(|r| r.latency_ns.count).sum();
    assert_eq!(total, 800);
    thpbench::test_support::assert_hgrm_holds(&result, &export(ExportFormat::Hgrm, None));

    let hlog = export(ExportFormat::Hlog, Some(1));
    let (ops, intervals) = thpbench::test_support::hlog_totals(hlog.as_bytes());
    assert_eq!(intervals, result.runs[1].interval_histograms.len());
    assert_eq!(ops, result.runs[1].ops);

    let csv = export(ExportFormat::Csv, None);
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("case,run,t_ms,ops,bytes,p50_ns,p99_ns,max_ns"),
        "{csv}"
    );
    let timeline: usize = result.runs.iter().map(|r| r.timeline.len()).sum();
    assert_eq!(rows.len(), 1 + timeline);
    let csv_ops: u64 = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(csv_ops, total);
    assert!(export(ExportFormat::PercentilesCsv, None)
        .starts_with("\"Value\",\"Percentile\",\"TotalCount\",\"1/(1-Percentile)\"\n"));

    let err = select(&result, &path, None, Some(9)).expect_err("there is no run 9");
    assert!(
        format!("{err:#}").contains("no run 9; its runs are: 0, 1"),
        "{err:#}"
    );
}

/// plot names two results of one kernel and workload by their files (and mock results
/// as no evidence), and draws one panel when nothing was disturbed and nothing swept.
#[test]
fn plot_tells_two_results_apart_by_their_files() {
    if thpbench::plot::ensure_font().is_err() {
        assert!(!thpbench::test_support::in_ci(), "CI has a font");
        eprintln!("SKIP plot_tells_two_results_apart_by_their_files: no font to draw text");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<Input> = ["thp", "4k"]
        .into_iter()
        .map(|buffer| {
            let (path, result) = saved_mock_result(dir.path(), buffer);
            Input { path, result }
        })
        .collect();
    let data = thpbench::plot::collect(&inputs).expect("plot data");
    let label = inputs[0].result.label();
    // A mock result is never evidence, and its legend says so.
    assert_eq!(
        data.legend_names(),
        [
            format!("{label} (thp) (not evidence)"),
            format!("{label} (4k) (not evidence)")
        ]
    );
    assert!(data.timelines.is_empty() && data.scaling.is_empty() && data.pin_cost.is_empty());
    let svg = dir.path().join("p.svg");
    thpbench::plot::render(&data, &svg).expect("drawn as SVG");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(80)]);
    assert!(
        text.contains(&format!("{label} (4k)")),
        "the legend is drawn"
    );
    let png = dir.path().join("p.png");
    thpbench::plot::render(&data, &png).expect("drawn as PNG");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), (1200, 620), "one panel");
}

/// By default the workers go one per physical core, each with its part of a private
/// buffer on its node, and the result says so; a shared buffer, interleaved or left
/// anywhere, has no owner, so no worker gets a share of it. (topology.rs checks on root
/// runs where the kernel put the pages; tests/kernels.rs does it on guests with SMT and
/// two nodes.)
#[test]
fn placement_and_numa_policy_are_recorded_as_run() {
    let mut w = workload("randread", 200, "");
    w.threads = 0;
    let r = ok_run(&w, mock(|_| {})).result;
    let run = &r.runs[0];
    let placement = run.placement.as_ref().expect("the placement is recorded");
    assert!(
        placement.why.contains("one per physical core"),
        "{placement:?}"
    );
    assert_eq!(
        run.threads.len(),
        thpbench::run::resolve_cpus(&w).unwrap().len(),
        "threads = 0 is one worker per CPU chosen"
    );
    let cores: std::collections::BTreeSet<_> = run
        .threads
        .iter()
        .map(|t| (t.package.expect("package"), t.core.expect("core")))
        .collect();
    assert_eq!(cores.len(), run.threads.len(), "{:?}", run.threads);
    assert_eq!(run.buffer.numa, Some(thpbench::workload::Numa::Local));
    for t in &run.threads {
        assert!(t.numa_node.is_some(), "{t:?}");
        assert!(
            t.numa_local_before.is_some() && t.numa_local_after.is_some(),
            "{t:?}"
        );
    }
    let text = thpbench::report::summary::render(&r);
    assert!(text.contains("    cpus     workers on "), "{text}");

    for numa in ["interleave", "any"] {
        let w = workload(
            "randread",
            200,
            &format!("numa = \"{numa}\"\nshare = \"shared\""),
        );
        let r = ok_run(&w, mock(|_| {})).result;
        assert!(r.valid, "{numa}: {:?}", r.invalid_reasons);
        let run = &r.runs[0];
        assert_eq!(
            run.buffer.numa.map(|n| n.to_string()).as_deref(),
            Some(numa)
        );
        assert!(!run.buffer.numa_nodes_after.is_empty(), "{:?}", run.buffer);
        assert!(
            run.threads.iter().all(|t| t.numa_local_before.is_none()),
            "{numa}: {:?}",
            run.threads
        );
    }
}
