//! Lock contention from lock:contention_begin/end, traced by thpbench itself.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use thpbench::result::{BenchResult, LockReport, RunResult};

fn contention(r: &BenchResult) -> Option<&LockReport> {
    r.runs[0].lock_contention.as_ref()
}

/// The run's lock report, which a traced run must have.
fn traced(r: &BenchResult) -> &LockReport {
    contention(r).expect("a traced run reports lock_contention")
}

/// No task waits longer than the measured window: the run's own wait is at most the
/// window times the run's own tasks that waited, and those are its workers, its
/// disturbers, the main thread and the readers of the lock tracer and (when it ran) the
/// GUP slow-path tracer at most.
fn assert_own_wait_bounded_by_window(run: &RunResult) {
    let lc = run.lock_contention.as_ref().expect("lock_contention");
    let window = run.duration_ns;
    let tasks = lc.run_tasks;
    let gup_slow_reader = usize::from(run.gup_slow_path.as_ref().is_some_and(|g| g.available));
    let own_threads = (run.threads.len() + run.disturbers.len() + 2 + gup_slow_reader) as u64;
    assert!(
        tasks <= own_threads,
        "{tasks} of the run's tasks waited, it has {own_threads} threads"
    );
    let wait = lc.run_total_wait_ns.expect("run_total_wait_ns");
    assert!(
        wait <= window * tasks,
        "the run's own wait {wait} ns exceeds {window} ns x {tasks} tasks: {lc:?}"
    );
    if lc.lost_samples > 0 {
        assert_eq!(lc.totals_bound.as_deref(), Some("lower"), "{lc:?}");
    } else {
        assert!(lc.totals_bound.is_none(), "{lc:?}");
    }
}

fn assert_consistent(lc: &LockReport) {
    assert!(lc.available, "{lc:?}");
    assert_eq!(lc.scope, "system-wide");
    let (begin, end, lost) = (lc.events, lc.end_events, lc.lost_samples);
    assert!(begin > 0, "no contention recorded: {lc:?}");
    assert!(lc.paired > 0);
    // Begins and ends match up to what was lost and what straddles the window's edges.
    assert!(
        begin.abs_diff(end) <= lost + 16,
        "begin {begin} vs end {end}, lost {lost}"
    );
    let total = lc.total_wait_ns;
    assert!(lc.run_paired <= lc.paired);
    assert!(lc.run_total_wait_ns.expect("run_total_wait_ns") <= total);
    for c in &lc.by_caller {
        let (count, sum, max, avg) = (c.count, c.total_wait_ns, c.max_wait_ns, c.avg_wait_ns);
        assert!(
            count > 0 && max <= sum && avg <= max && sum <= total,
            "{c:?}"
        );
        assert!(c.run_count <= count && c.run_total_wait_ns <= sum, "{c:?}");
        assert!(!c.caller.is_empty());
    }
}

#[test]
fn disturbed_run_records_paired_contention_with_symbolized_callers() {
    let Some(_l) = privileged("disturbed_run_records_paired_contention_with_symbolized_callers")
    else {
        return;
    };
    let tracefs_before = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .contains(" /sys/kernel/tracing ");
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = output_and_result_of_run(
        run,
        &[
            "--bs",
            "2M",
            "--rw",
            "read",
            "--size",
            "64M",
            "--split",
            "cold",
            "--collapse",
            "--every",
            "1ms",
            "--duration",
            "2s",
            "--warmup",
            "0s",
        ],
        dir.path(),
    );
    let lc = traced(&r);
    assert_consistent(lc);
    assert_own_wait_bounded_by_window(&r.runs[0]);
    // Collapse takes mmap_lock for writing while the I/O's GUP and the splits read it.
    let callers: Vec<&str> = lc.by_caller.iter().map(|c| c.caller.as_str()).collect();
    assert!(
        !callers.iter().all(|c| *c == "[unknown]"),
        "callers were not symbolized: {callers:?}"
    );
    assert!(
        stdout(&out).contains("contentions"),
        "summary prints the top callers"
    );
    // The run's own threads are among the waiters: the workers' GUP and the disturber's
    // madvise read mmap_lock while MADV_COLLAPSE takes it for writing.
    assert!(
        lc.run_paired > 0,
        "no contention attributed to thpbench's own threads: {lc:?}"
    );
    let tracefs_after = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .contains(" /sys/kernel/tracing ");
    assert_eq!(tracefs_before, tracefs_after, "tracefs left as it was");
}

#[test]
fn a_lock_contended_on_purpose_shows_up_with_its_caller() {
    let Some(_l) = privileged("a_lock_contended_on_purpose_shows_up_with_its_caller") else {
        return;
    };
    // Four threads of this test process take one mm's mmap_lock for writing, as fast as
    // they can (mprotect of a page, back and forth); thpbench traces system-wide.
    let stop = Arc::new(AtomicBool::new(false));
    let len = 64 * 4096;
    // SAFETY: a private anonymous mapping only these threads use.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    } as usize;
    let hammers: Vec<_> = (0..4)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let page = (base + i * 4096) as *mut libc::c_void;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: the page belongs to the mapping above.
                    unsafe {
                        libc::mprotect(page, 4096, libc::PROT_READ);
                        libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_WRITE);
                    }
                }
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--size",
            "8M",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(base as *mut libc::c_void, len) };
    assert!(out.status.success(), "{}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    let lc = traced(&r);
    assert_consistent(lc);
    assert_own_wait_bounded_by_window(&r.runs[0]);
    let hit = lc
        .by_caller
        .iter()
        .find(|c| c.caller == "do_mprotect_pkey" && c.lock_type == "rwsem:W");
    assert!(
        hit.is_some_and(|c| c.count > 10),
        "do_mprotect_pkey rwsem:W missing: {:?}",
        lc.by_caller
    );
    // The hammers are this test's threads, not thpbench's: none of it is the run's own.
    assert_eq!(hit.unwrap().run_count, 0, "{:?}", lc.by_caller);
}

#[test]
fn unprivileged_runs_record_contention_as_unavailable() {
    let Some(_l) =
        privileged("unprivileged_runs_record_contention_as_unavailable (drops to nobody)")
    else {
        return;
    };
    let dir = world_writable_tempdir();
    let r = result_of_run(
        run_as_nobody,
        &["--duration", "1s", "--warmup", "0s", "--size", "8M"],
        dir.path(),
    );
    let lc = contention(&r).expect("an untraced run says why");
    assert!(!lc.available, "{lc:?}");
    let u = r
        .unavailable
        .iter()
        .find(|u| u.what.starts_with("lock contention"))
        .expect("unavailable entry");
    assert!(u.reason.contains("root"), "{u:?}");
}

#[test]
fn no_lock_contention_flag_turns_tracing_off() {
    let Some(_l) = privileged("no_lock_contention_flag_turns_tracing_off") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let r = result_of_run(
        run,
        &[
            "--no-lock-contention",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--size",
            "8M",
        ],
        dir.path(),
    );
    assert!(contention(&r).is_none());
}
