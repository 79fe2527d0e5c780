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
            "--repeat",
            "3",
            "--baseline",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    let r = load_result(&dir.path().join("r.json"));
    // This test is about the GUP slow-path figures. A collapse whose actions all landed
    // on folios that were already huge (a race with the split under load) makes the run
    // invalid, rightly, and is tested in disturb.rs; here it does not void the figures.
    let unconfirmed_only = !r.invalid_reasons.is_empty()
        && r.invalid_reasons
            .iter()
            .all(|s| s.contains("none of its actions changed the folio"));
    if unconfirmed_only {
        eprintln!(
            "note: a disturber's actions were unconfirmed in a run: {:?}",
            r.invalid_reasons
        );
    }
    assert!(
        out.status.success() || unconfirmed_only,
        "{}",
        failure(&out)
    );
    // The fallbacks are races between the I/O's GUP and the page-table changes: counted
    // over three disturbed repeats, each alternated with an undisturbed one.
    let slow_path = |run: &thpbench::result::RunResult| {
        run.gup_slow_path
            .clone()
            .unwrap_or_else(|| panic!("run {} has no gup_slow_path", run.repeat))
    };
    let (mut count, mut wait) = (0, 0);
    for run in &r.runs {
        let g = slow_path(run);
        assert!(g.available, "{g:?}");
        let per_1000 = g.per_1000_io;
        let ops = run.ops as f64;
        assert!((per_1000 - g.count as f64 * 1000.0 / ops).abs() < 1e-6);
        count += g.count;
        wait += g.wait_ns;
    }
    assert!(
        count > 0,
        "split+collapse under direct I/O makes GUP-fast fall back"
    );
    assert!(wait > 0);
    // Undisturbed, prefaulted huge pages: the fast path never needs the lock.
    for run in &r.baseline_runs {
        let g = slow_path(run);
        assert!(g.per_1000_io < 1.0, "baseline: {g:?}");
    }
    assert!(
        stdout(&out).contains("fallbacks of GUP-fast"),
        "{}",
        stdout(&out)
    );
}
