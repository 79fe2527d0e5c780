//! The uring engine run for real: O_DIRECT through io_uring with verify at queue depth
//! 1 and 16, with and without registered buffers, and corruption caught.

mod common;

use common::*;
use thpbench::workload::VerifyLevel;

/// Runs `thpbench run` with the uring engine on a file target in `dir` (1 s and 100 ms
/// of warm-up unless `extra` names them).
fn uring_run(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--engine", "uring", "--cpus", "0", "-o", "r.json"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--size") {
        args.extend(["--size", "8M"]);
    }
    if !extra.contains(&"--warmup") {
        args.extend(["--warmup", "100ms"]);
    }
    if !extra.contains(&"--duration") {
        args.extend(["--duration", "1s"]);
    }
    run(&args, dir)
}

#[test]
fn uring_reads_and_writes_verified_at_qd_1_and_16() {
    let Some(_l) = privileged("uring_reads_and_writes_verified_at_qd_1_and_16") else {
        return;
    };
    for (depth, fixed) in [("1", false), ("16", false), ("16", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut extra = vec!["--iodepth", depth, "--rw", "readwrite", "--bs", "64k"];
        if fixed {
            extra.push("--fixed-buffers");
        }
        let out = uring_run(dir.path(), &extra);
        assert!(
            out.status.success(),
            "qd {depth} fixed {fixed}: {}",
            stderr(&out)
        );
        let r = load_result(&dir.path().join("r.json"));
        let run = &r.runs[0];
        let ops = run.ops;
        assert!(ops > 0, "qd {depth}: no I/O measured");
        assert_eq!(run.latency_ns.count, ops);
        let v = &run.verify;
        assert_eq!(v.mismatches, 0, "qd {depth} fixed {fixed}: {v:?}");
        // Every read and every write's read-back is checked, at the default level a
        // 16-byte header per 4 KiB base page: at least 16 x 16 bytes per 64 KiB op.
        assert_eq!(v.level, Some(VerifyLevel::Pages), "{v:?}");
        assert!(
            v.bytes_checked >= ops * 16 * 16,
            "qd {depth}: {} bytes checked for {ops} ops",
            v.bytes_checked
        );
        let depth: u32 = depth.parse().unwrap();
        let u = run.io_uring.as_ref().expect("a uring run reports io_uring");
        assert_eq!(u.iodepth, depth, "{u:?}");
        assert_eq!(u.fixed_buffers, fixed, "{u:?}");
        // fio's ring setup, which this kernel (6.1 and later) takes in full; the ring
        // made disabled is enabled on the worker's thread, its single issuer.
        assert_eq!(
            u.setup_flags,
            ["COOP_TASKRUN", "SINGLE_ISSUER", "DEFER_TASKRUN"],
            "{u:?}"
        );
        // Submissions counted on the worker: every measured I/O, plus write read-backs.
        if let Some(sub) = u.submitted {
            assert!(sub >= ops, "{sub} submissions for {ops} ops: {u:?}");
        }
        assert_eq!(r.workload.iodepth, depth);
        assert!(
            stdout(&out).contains(&format!("io_uring qd {depth}")),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn uring_counts_each_measured_submission_once() {
    let Some(_l) = privileged("uring_counts_each_measured_submission_once") else {
        return;
    };
    // Reads only: no read-backs, so every request the worker's io_uring_enter calls
    // submitted in the measured loop is one measured I/O, the ones in flight at the
    // deadline included (they are drained and counted).
    let dir = tempfile::tempdir().unwrap();
    let out = uring_run(
        dir.path(),
        &["--iodepth", "16", "--rw", "randread", "--bs", "4k"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    let run = &r.runs[0];
    let u = run.io_uring.as_ref().expect("a uring run reports io_uring");
    assert_eq!(u.submitted, Some(run.ops), "{u:?}");
    let punted = u.punted_to_io_wq.expect("punts counted as root");
    assert!(punted <= run.ops, "{punted} punts for {} ops", run.ops);
}

#[test]
fn uring_catches_injected_corruption_at_qd_16() {
    let Some(_l) = privileged("uring_catches_injected_corruption_at_qd_16") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = uring_run(
        dir.path(),
        &[
            "--iodepth",
            "16",
            "--rw",
            "read",
            "--bs",
            "64k",
            "--inject-corruption-at",
            "1048576",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    let v = &r.runs[0].verify;
    assert!(v.mismatches > 0, "{v:?}");
    assert_eq!(v.first_mismatches[0].offset, 1048576, "{v:?}");
}

#[test]
fn uring_refuses_bad_queue_depths_and_fixed_buffers_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--engine",
            "uring",
            "--iodepth",
            "300",
            "--print-workload",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert_stderr_contains(&out, "1 to 256");
    let out = run(
        &[
            "run",
            "--engine",
            "dio",
            "--fixed-buffers",
            "--print-workload",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert_stderr_contains(&out, "fixed_buffers");
}

#[test]
fn a_fixed_buffers_sweep_yields_pin_cost_with_a_ci() {
    let Some(_l) = privileged("a_fixed_buffers_sweep_yields_pin_cost_with_a_ci") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = uring_run(
        dir.path(),
        &[
            "--bs",
            "1M",
            "--rw",
            "randread",
            "--duration",
            "300ms",
            "--repeat",
            "2",
            "--sweep",
            "fixed_buffers=false,true",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    assert_eq!(r.pin_cost.len(), 1, "{:?}", r.pin_cost);
    let p = &r.pin_cost[0];
    assert_eq!(p.bs_bytes, 1 << 20);
    assert_eq!(p.repeats, [2, 2]);
    let (pinned, fixed) = (p.pinned_ns_per_io, p.fixed_ns_per_io);
    let diff = p.ns_per_io;
    assert!((diff - (pinned - fixed)).abs() < 1e-6 * pinned, "{p:?}");
    assert!((p.ns_per_page - diff / 256.0).abs() < 1e-6 * pinned);
    let [lo, hi] = p.ci95_ns_per_io.expect("a CI from 2 repeats each");
    assert!(lo <= diff && diff <= hi, "{lo} <= {diff} <= {hi}");
    // The sweep's cases are the two pin modes, and each says which it was.
    let fixed_flags: Vec<_> = r
        .sweep
        .iter()
        .map(|c| c.runs[0].io_uring.as_ref().map(|u| u.fixed_buffers))
        .collect();
    assert_eq!(fixed_flags, [Some(false), Some(true)]);
    assert!(stdout(&out).contains("pin cost"), "{}", stdout(&out));
    // Time per I/O (I/O time over I/Os, the service time at any depth), not the mean
    // latency; the two cases alternated within each repeat, and the interval is paired.
    let per_io = |case: usize| {
        let runs = &r.sweep[case].runs;
        runs.iter()
            .map(|x| x.io_time_ns as f64 / x.ops as f64)
            .sum::<f64>()
            / runs.len() as f64
    };
    assert!((pinned - per_io(0)).abs() < 1e-6 * pinned, "{p:?}");
    assert!((fixed - per_io(1)).abs() < 1e-6 * fixed, "{p:?}");
    assert!(p.paired, "{p:?}");
    assert!(p.basis.contains("time per I/O"), "{p:?}");
    assert!(
        stderr(&out).contains("alternating within each repeat"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_split_against_registered_buffers_is_reported_as_defeated_by_the_pin() {
    let Some(_l) =
        privileged("a_split_against_registered_buffers_is_reported_as_defeated_by_the_pin")
    else {
        return;
    };
    for fixed in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut extra = vec![
            "--bs", "2M", "--rw", "read", "--split", "cold", "--every", "2ms",
        ];
        if fixed {
            extra.push("--fixed-buffers");
        }
        let out = uring_run(dir.path(), &extra);
        let r = load_result(&dir.path().join("r.json"));
        let d = &r.runs[0].disturbers[0];
        assert!(d.actions > 0, "{d:?}");
        if fixed {
            assert!(out.status.success(), "{}", stderr(&out));
            assert!(r.valid, "{:?}", r.invalid_reasons);
            assert!(d.defeated_by_pin, "{d:?}");
            assert!(!d.counters_moved, "not a success: {d:?}");
            let failed = d.pin_evidence.get("thp_split_page_failed");
            assert!(failed.is_some_and(|&n| n > 0), "{d:?}");
            assert!(
                stdout(&out).contains("defeated by the long-term pin"),
                "{}",
                stdout(&out)
            );
        } else {
            // Pinned per I/O only: the splits happen.
            assert!(d.counters_moved, "{d:?}");
            assert!(!d.defeated_by_pin, "{d:?}");
        }
    }
}

/// The hidden lost-write hook wraps the uring engine too: at queue depth 16 the 5th
/// write completes without reaching the ring, and its read-back sees the older block.
#[test]
fn uring_catches_a_lost_write_at_qd_16() {
    let Some(_l) = privileged("uring_catches_a_lost_write_at_qd_16") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = uring_run(
        dir.path(),
        &[
            "--iodepth",
            "16",
            "--rw",
            "randwrite",
            "--bs",
            "4k",
            "--warmup",
            "0s",
            "--drop-write",
            "5",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    let run = &r.runs[0];
    let v = &run.verify;
    // The default level checks the header of every base page: the lost 4 KiB write
    // shows as its one page header holding the older generation.
    assert_eq!(v.level, Some(VerifyLevel::Pages), "{v:?}");
    assert_eq!(v.mismatches, 1, "the lost 4 KiB write's page header: {v:?}");
    assert_eq!(
        v.first_mismatches[0].offset % 512,
        8,
        "the tag (generation) differs first: {v:?}"
    );
    // Still driven through the queue at depth 16.
    assert_eq!(
        run.io_uring.as_ref().map(|u| u.iodepth),
        Some(16),
        "{:?}",
        run.io_uring
    );
    assert!(!r.valid);
}

/// The hidden lost-read hook through the queued loop: a read answered as done whose data
/// never lands is caught whatever its slot's buffer held, at both verify levels. On a
/// 4 KiB target every read is of block 0 (one in flight at a time, since two slots never
/// take one block), so the buffer holds that very block at that very generation: only
/// the poison shows it; a write's read-back likewise; random reads of 8 MiB leave another
/// block's headers in the buffer. The first read lost at depth 1 is answered before the
/// ring ever had an I/O (the ring, made disabled, is enabled by the wait as well).
#[test]
fn uring_catches_a_lost_read() {
    let Some(_l) = privileged("uring_catches_a_lost_read") else {
        return;
    };
    let cases = [
        ("re-read of the one block", "16", "read", "4K", "40"),
        ("read-back of a write", "16", "randwrite", "8M", "5"),
        ("random read", "16", "randread", "8M", "40"),
        ("the very first read", "1", "randread", "8M", "1"),
    ];
    // Every wrong header counts: one page at `pages`, each of its 8 sectors at `full`.
    for (level, wrong) in [("pages", 1), ("full", 4096 / 512)] {
        for (case, depth, rw, size, nth) in cases {
            let case = format!("{case}, verify level {level}");
            let dir = tempfile::tempdir().unwrap();
            let out = uring_run(
                dir.path(),
                &[
                    "--iodepth",
                    depth,
                    "--rw",
                    rw,
                    "--bs",
                    "4k",
                    "--size",
                    size,
                    "--verify-level",
                    level,
                    "--warmup",
                    "0s",
                    "--drop-read",
                    nth,
                ],
            );
            assert_eq!(out.status.code(), Some(3), "{case}: {}", stderr(&out));
            let r = load_result(&dir.path().join("r.json"));
            let run = &r.runs[0];
            assert_eq!(run.verify.mismatches, wrong, "{case}: {:?}", run.verify);
            assert_eq!(
                run.io_uring
                    .as_ref()
                    .map(|u| u.iodepth.to_string())
                    .as_deref(),
                Some(depth),
                "{case}: driven through the queue"
            );
            assert!(!r.valid, "{case}");
        }
    }
}
