//! The uring engine run for real: O_DIRECT through io_uring with verify at queue depth
//! 1 and 16, with and without registered buffers, and corruption caught.

mod common;

use common::*;

/// Runs `thpbench run` with the uring engine on a file target in `dir`.
fn uring_run(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "--engine",
        "uring",
        "--size",
        "8M",
        "--duration",
        "1s",
        "--warmup",
        "100ms",
        "--cpus",
        "0",
        "-o",
        "r.json",
    ];
    args.extend_from_slice(extra);
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
        let r = load_json(&dir.path().join("r.json"));
        let run = &r["runs"][0];
        let ops = run["ops"].as_u64().unwrap();
        assert!(ops > 0, "qd {depth}: no I/O measured");
        assert_eq!(run["latency_ns"]["count"].as_u64(), Some(ops));
        let v = &run["verify"];
        assert_eq!(v["mismatches"], 0, "qd {depth} fixed {fixed}: {v}");
        // Every read and every write's read-back is checked: at least bs per op.
        assert!(
            v["bytes_checked"].as_u64().unwrap() >= ops * 65536,
            "qd {depth}: {} bytes checked for {ops} ops",
            v["bytes_checked"]
        );
        let u = &run["io_uring"];
        assert_eq!(u["iodepth"].as_u64(), Some(depth.parse().unwrap()), "{u}");
        assert_eq!(u["fixed_buffers"].as_bool(), Some(fixed), "{u}");
        // Submissions counted on the worker: every measured I/O, plus write read-backs.
        if let Some(sub) = u["submitted"].as_u64() {
            assert!(sub >= ops, "{sub} submissions for {ops} ops: {u}");
        }
        assert_eq!(
            r["workload"]["iodepth"].as_u64(),
            Some(depth.parse().unwrap())
        );
        assert!(
            stdout(&out).contains(&format!("io_uring qd {depth}")),
            "{}",
            stdout(&out)
        );
    }
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
    let r = load_json(&dir.path().join("r.json"));
    let v = &r["runs"][0]["verify"];
    assert!(v["mismatches"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        v["first_mismatches"][0]["offset"].as_u64(),
        Some(1048576),
        "{v}"
    );
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
    assert!(stderr(&out).contains("1 to 256"), "{}", stderr(&out));
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
    assert!(stderr(&out).contains("fixed_buffers"), "{}", stderr(&out));
}
