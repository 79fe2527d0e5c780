//! GUP fast-path fallbacks to the mmap_lock slow path, counted per run: they appear when
//! split and collapse work on the huge pages under direct I/O, and not without them.

mod common;

use common::*;

#[test]
fn gup_slow_path_moves_under_split_and_collapse_and_stays_near_zero_undisturbed() {
    let Some(_l) = privileged("gup_slow_path_moves_under_split_and_collapse") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--target",
            "zram:64M",
            "--size",
            "64M",
            "--bs",
            "2M",
            "--rw",
            "read",
            "--split",
            "cold",
            "--collapse",
            "--every",
            "2ms",
            "--duration",
            "1s",
            "--warmup",
            "100ms",
            "--cpus",
            "0",
            "--baseline",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    let r = load_json(&dir.path().join("r.json"));
    assert!(out.status.success(), "{}", stderr(&out));
    let disturbed = &r["runs"][0]["gup_slow_path"];
    let baseline = &r["baseline_runs"][0]["gup_slow_path"];
    assert_eq!(disturbed["available"], true, "{disturbed}");
    assert!(
        disturbed["count"].as_u64().unwrap() > 0,
        "split+collapse under direct I/O makes GUP-fast fall back: {disturbed}"
    );
    assert!(disturbed["wait_ns"].as_u64().unwrap() > 0, "{disturbed}");
    let ops = r["runs"][0]["ops"].as_f64().unwrap();
    let per_1000 = disturbed["per_1000_io"].as_f64().unwrap();
    assert!((per_1000 - disturbed["count"].as_f64().unwrap() * 1000.0 / ops).abs() < 1e-6);
    // Undisturbed, prefaulted huge pages: the fast path never needs the lock.
    assert!(
        baseline["per_1000_io"].as_f64().unwrap() < 1.0,
        "baseline: {baseline}"
    );
    assert!(
        stdout(&out).contains("fallbacks of GUP-fast"),
        "{}",
        stdout(&out)
    );
}
