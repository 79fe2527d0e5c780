//! Lock contention from lock:contention_begin/end, traced by thpbench itself.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;

fn contention(r: &serde_json::Value) -> &serde_json::Value {
    &r["runs"][0]["lock_contention"]
}

/// No task waits longer than the measured window: the run's own wait is at most the
/// window times the run's own tasks that waited, and those are its workers, its
/// disturbers, the main thread and the readers of the lock tracer and (when it ran) the
/// GUP slow-path tracer at most.
fn assert_own_wait_bounded_by_window(run: &serde_json::Value) {
    let lc = &run["lock_contention"];
    let window = run["duration_ns"].as_u64().unwrap();
    let tasks = lc["run_tasks"].as_u64().unwrap();
    let gup_slow_reader = usize::from(run["gup_slow_path"]["available"] == true);
    let own_threads = (run["threads"].as_array().unwrap().len()
        + run["disturbers"].as_array().unwrap().len()
        + 2
        + gup_slow_reader) as u64;
    assert!(
        tasks <= own_threads,
        "{tasks} of the run's tasks waited, it has {own_threads} threads"
    );
    let wait = lc["run_total_wait_ns"].as_u64().unwrap();
    assert!(
        wait <= window * tasks,
        "the run's own wait {wait} ns exceeds {window} ns x {tasks} tasks: {lc}"
    );
    if lc["lost_samples"].as_u64().unwrap() > 0 {
        assert_eq!(lc["totals_bound"], "lower", "{lc}");
    } else {
        assert!(lc.get("totals_bound").is_none(), "{lc}");
    }
}

fn assert_consistent(lc: &serde_json::Value) {
    assert_eq!(lc["available"], true, "{lc}");
    assert_eq!(lc["scope"], "system-wide");
    let (begin, end, lost) = (
        lc["events"].as_u64().unwrap(),
        lc["end_events"].as_u64().unwrap(),
        lc["lost_samples"].as_u64().unwrap(),
    );
    assert!(begin > 0, "no contention recorded: {lc}");
    assert!(lc["paired"].as_u64().unwrap() > 0);
    // Begins and ends match up to what was lost and what straddles the window's edges.
    assert!(
        begin.abs_diff(end) <= lost + 16,
        "begin {begin} vs end {end}, lost {lost}"
    );
    let total = lc["total_wait_ns"].as_u64().unwrap();
    assert!(lc["run_paired"].as_u64().unwrap() <= lc["paired"].as_u64().unwrap());
    assert!(lc["run_total_wait_ns"].as_u64().unwrap() <= total);
    for c in lc["by_caller"].as_array().unwrap() {
        let (count, sum, max, avg) = (
            c["count"].as_u64().unwrap(),
            c["total_wait_ns"].as_u64().unwrap(),
            c["max_wait_ns"].as_u64().unwrap(),
            c["avg_wait_ns"].as_u64().unwrap(),
        );
        assert!(count > 0 && max <= sum && avg <= max && sum <= total, "{c}");
        let (run_count, run_sum) = (
            c["run_count"].as_u64().unwrap(),
            c["run_total_wait_ns"].as_u64().unwrap(),
        );
        assert!(run_count <= count && run_sum <= sum, "{c}");
        assert!(!c["caller"].as_str().unwrap().is_empty());
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
    let (out, r) = run_output_and_result(
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
    let lc = contention(&r);
    assert_consistent(lc);
    assert_own_wait_bounded_by_window(&r["runs"][0]);
    // Collapse takes mmap_lock for writing while the I/O's GUP and the splits read it.
    let callers: Vec<&str> = lc["by_caller"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["caller"].as_str().unwrap())
        .collect();
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
        lc["run_paired"].as_u64().unwrap() > 0,
        "no contention attributed to thpbench's own threads: {lc}"
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
    let r = load_json(&dir.path().join("r.json"));
    let lc = contention(&r);
    assert_consistent(lc);
    assert_own_wait_bounded_by_window(&r["runs"][0]);
    let hit = lc["by_caller"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["caller"] == "do_mprotect_pkey" && c["type"] == "rwsem:W");
    assert!(
        hit.is_some_and(|c| c["count"].as_u64().unwrap() > 10),
        "do_mprotect_pkey rwsem:W missing: {}",
        lc["by_caller"]
    );
    // The hammers are this test's threads, not thpbench's: none of it is the run's own.
    assert_eq!(hit.unwrap()["run_count"], 0, "{}", lc["by_caller"]);
}

#[test]
fn unprivileged_runs_record_contention_as_unavailable() {
    let Some(_l) =
        privileged("unprivileged_runs_record_contention_as_unavailable (drops to nobody)")
    else {
        return;
    };
    let dir = world_writable_tempdir();
    let r = run_result(
        run_as_nobody,
        &["--duration", "1s", "--warmup", "0s", "--size", "8M"],
        dir.path(),
    );
    assert_eq!(contention(&r)["available"], false);
    let u = r["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["what"].as_str().unwrap().starts_with("lock contention"))
        .expect("unavailable entry");
    assert!(u["reason"].as_str().unwrap().contains("root"), "{u}");
}

#[test]
fn no_lock_contention_flag_turns_tracing_off() {
    let Some(_l) = privileged("no_lock_contention_flag_turns_tracing_off") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let r = run_result(
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
    assert!(contention(&r).is_null());
}
