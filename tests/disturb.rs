//! Disturbers on this machine's kernel: each moves the vmstat counters that prove it,
//! what cannot run says why, swap made for a run is gone after it (also after Ctrl-C),
//! and data stays intact under all of it — or, when corrupted on purpose, is caught.

mod common;

use std::process::Command;

use common::*;
use thpbench::result::{BenchResult, DisturberReport, ForkFigures, RunRole};

/// `thpbench run ARGS` on a 16 MiB file for 1.5 s, in a fresh directory.
fn disturbed(args: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        "run",
        "--duration",
        "1500ms",
        "--warmup",
        "100ms",
        "--size",
        "16M",
        "-o",
        "r.json",
    ];
    all.extend_from_slice(args);
    let out = run(&all, dir.path());
    (out, dir)
}

/// `disturbed`, with the result it saved (which it must have).
fn disturbed_run(args: &[&str]) -> (std::process::Output, BenchResult, tempfile::TempDir) {
    let (out, dir) = disturbed(args);
    let path = dir.path().join("r.json");
    assert!(path.exists(), "no result saved: {}", failure(&out));
    (out, load_result(&path), dir)
}

fn disturber<'a>(r: &'a BenchResult, name: &str) -> &'a DisturberReport {
    let all = &r.runs[0].disturbers;
    all.iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no disturber {name} in {all:?}"))
}

/// The fork disturber's figures.
fn fork_figures(r: &BenchResult) -> (ForkFigures, &DisturberReport) {
    let d = disturber(r, "fork");
    (
        d.fork().unwrap_or_else(|| panic!("no fork figures: {d:?}")),
        d,
    )
}

/// The reason a disturber was refused up front (its `unavailable` entry).
fn refused_because<'a>(r: &'a BenchResult, label: &str) -> &'a str {
    let what = format!("disturber {label}");
    &r.unavailable
        .iter()
        .find(|u| u.what == what)
        .unwrap_or_else(|| panic!("{what} not refused: {:?}", r.unavailable))
        .reason
}

fn delta(r: &BenchResult, counter: &str) -> i64 {
    r.runs[0].vmstat_delta.get(counter).copied().unwrap_or(0)
}

fn assert_moved(r: &BenchResult, name: &str, counters: &[&str]) {
    let d = disturber(r, name);
    assert!(d.actions > 0, "{name} never acted: {d:?}");
    assert!(d.counters_moved, "{name}: {d:?}");
    // Confirmed on the buffer itself (pagemap + kpageflags, root) for every disturber
    // that changes folios one action at a time.
    if !["split:mprotect", "pressure"].contains(&name) {
        let confirmed = d.confirmed.unwrap_or(0);
        assert!(
            confirmed > 0,
            "{name}: no action confirmed on the buffer: {d:?}"
        );
        assert!(confirmed <= d.actions);
    } else {
        assert!(d.confirmed.is_none(), "{name}: {d:?}");
    }
    assert!(
        counters.iter().any(|c| delta(r, c) > 0),
        "{name}: none of {counters:?} moved: {:?}",
        r.runs[0].vmstat_delta
    );
    assert_eq!(r.runs[0].verify.mismatches, 0);
    assert!(r.valid, "{:?}", r.invalid_reasons);
    // The actions appear in the timeline.
    let in_timeline: u64 = r.runs[0]
        .timeline
        .iter()
        .filter_map(|t| t.disturb_actions.get(name))
        .sum();
    assert!(in_timeline > 0, "{name} actions missing from the timeline");
}

#[test]
fn each_madvise_split_method_moves_its_counter() {
    let Some(_l) = privileged("each_madvise_split_method_moves_its_counter") else {
        return;
    };
    for (method, counters) in [
        ("cold", &["thp_split_page"][..]),
        ("pageout", &["thp_split_page"][..]),
        (
            "dontneed",
            &["thp_split_pmd", "thp_deferred_split_page"][..],
        ),
        ("mprotect", &["thp_split_pmd"][..]),
    ] {
        let (out, r, _dir) = disturbed_run(&["--split", method]);
        assert!(out.status.success(), "split {method}: {}", stderr(&out));
        assert_moved(&r, &format!("split:{method}"), counters);
        assert!(r.runs[0].buffer.thp_coverage_before >= 0.99);
    }
}

#[test]
fn splitting_mthp_folios_is_proven_by_the_per_size_counters() {
    let Some(_l) = privileged("splitting_mthp_folios_is_proven_by_the_per_size_counters") else {
        return;
    };
    // thp_split_page counts PMD-sized folios only; a 64 KiB folio's split shows in
    // hugepages-64kB/stats/split, which the run keeps as mthp_64kB_split.
    let knob = "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled";
    let knob_before = std::fs::read_to_string(knob).unwrap();
    // MADV_COLLAPSE only makes PMD-sized THPs: asked for here, it is refused up front
    // (unavailable, with the reason) instead of failing every call.
    let (out, r, _dir) = disturbed_run(&[
        "--buffer",
        "mthp:64K",
        "--bs",
        "64k",
        "--split",
        "cold",
        "--collapse",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_moved(&r, "split:cold", &["mthp_64kB_split"]);
    let collapse = refused_because(&r, "collapse");
    assert!(collapse.contains("PMD-sized"), "{collapse}");
    assert_eq!(
        delta(&r, "thp_split_page"),
        0,
        "no PMD-sized folio was split"
    );
    let buffer = &r.runs[0].buffer;
    assert!(buffer.thp_coverage_before >= 0.99);
    assert!(
        buffer.thp_coverage_after < 0.99,
        "the split folios stay split: {buffer:?}"
    );
    assert_eq!(
        std::fs::read_to_string(knob).unwrap(),
        knob_before,
        "mTHP knob restored"
    );
}

#[test]
fn hugetlb_buffers_refuse_thp_disturbers_and_fork_children_killed_are_not_evidence() {
    let Some(_l) = privileged(
        "hugetlb_buffers_refuse_thp_disturbers_and_fork_children_killed_are_not_evidence",
    ) else {
        return;
    };
    let nr_before = std::fs::read_to_string("/proc/sys/vm/nr_hugepages").unwrap();
    let (out, r, _dir) = disturbed_run(&["--buffer", "hugetlb", "--split", "cold", "--fork"]);
    // The split cannot act on hugetlb: refused up front, the fork still runs.
    let split = refused_because(&r, "split:cold");
    assert!(split.contains("hugetlb"), "{split}");
    // thpbench reserves only the huge pages its buffer needs, so when the parent's I/O
    // breaks copy-on-write on a page a child still maps, the kernel takes the page from
    // the child (SIGBUS). A child without a verdict proves nothing: the run says so.
    let (fork, report) = fork_figures(&r);
    assert!(fork.failures > 0, "no child was killed: {report:?}");
    assert_eq!(fork.last_signal, libc::SIGBUS as u64, "{report:?}");
    assert!(!r.valid);
    let reasons = r.invalid_reasons.join("; ");
    assert!(
        reasons.contains("gave no verdict, killed by SIGBUS"),
        "{reasons}"
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/nr_hugepages").unwrap(),
        nr_before,
        "nr_hugepages restored"
    );
}

#[test]
fn debugfs_split_is_unavailable_under_lockdown() {
    let Some(_l) = privileged("debugfs_split_is_unavailable_under_lockdown") else {
        return;
    };
    let lockdown = Command::new(bin())
        .args(["probe", "--json"])
        .output()
        .unwrap();
    let rows = probe_rows(&lockdown);
    let mode = &probe_row(&rows, "kernel lockdown").value;
    if mode == "none" {
        // Without lockdown the debugfs method must work and move thp_split_page.
        let (out, r, _dir) = disturbed_run(&["--split", "debugfs"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        assert_moved(&r, "split:debugfs", &["thp_split_page"]);
        return;
    }
    let debugfs_mounted = || {
        std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/sys/kernel/debug"))
    };
    let mounted_before = debugfs_mounted();
    // Alone, it fails the run and says why.
    let (out, _dir) = disturbed(&["--split", "debugfs"]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "EPERM");
    assert_stderr_contains(&out, "lockdown");
    // With another disturber, the run goes on and records it unavailable.
    let (out, r, _dir) = disturbed_run(&["--split", "debugfs", "--split", "cold"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let why = refused_because(&r, "split:debugfs");
    assert!(why.contains("EPERM"), "{why}");
    assert_moved(&r, "split:cold", &["thp_split_page"]);
    assert_eq!(
        debugfs_mounted(),
        mounted_before,
        "debugfs mount state changed"
    );
}

#[test]
fn collapse_moves_thp_collapse_alloc() {
    let Some(_l) = privileged("collapse_moves_thp_collapse_alloc") else {
        return;
    };
    let (out, r, _dir) = disturbed_run(&["--split", "cold", "--collapse"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_moved(&r, "collapse", &["thp_collapse_alloc"]);
    // The split-collapse cycle keeps going: both act many times.
    assert!(disturber(&r, "collapse").actions > 10);
}

#[test]
fn swap_out_on_a_zram_swap_made_by_the_run_and_removed_after() {
    let Some(_l) = privileged("swap_out_on_a_zram_swap_made_by_the_run_and_removed_after") else {
        return;
    };
    let (swaps_before, zram_before) = (swaps(), zram_devices());
    let (out, r, _dir) = disturbed_run(&["--swap-out", "--swap", "zram:256M"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_moved(&r, "swap-out", &["thp_swpout", "thp_swpout_fallback"]);
    assert!(
        delta(&r, "pswpout") > 0 && delta(&r, "pswpin") > 0,
        "{:?}",
        r.runs[0].vmstat_delta
    );
    assert_eq!(swaps(), swaps_before, "swap made for the run is off");
    assert_eq!(zram_devices(), zram_before, "its zram device is gone");
}

#[test]
fn on_base_pages_split_is_refused_and_swap_out_is_proven_by_pswp_alone() {
    let Some(_l) =
        privileged("on_base_pages_split_is_refused_and_swap_out_is_proven_by_pswp_alone")
    else {
        return;
    };
    let (out, r, _dir) = disturbed_run(&[
        "--buffer",
        "4k",
        "--split",
        "cold",
        "--swap-out",
        "--swap",
        "zram:256M",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let split = refused_because(&r, "split:cold");
    assert!(split.contains("base pages"), "{split}");
    // Base pages swap one by one: no THP counter can move, pswpout/pswpin prove it.
    assert_moved(&r, "swap-out", &["pswpout"]);
    assert_eq!(delta(&r, "thp_swpout"), 0);
    assert_eq!(
        disturber(&r, "swap-out").expected_counters,
        ["pswpout", "pswpin|swpin_zero|swpin"]
    );
}

#[test]
fn swap_out_without_swap_is_unavailable() {
    let Some(_l) = privileged("swap_out_without_swap_is_unavailable") else {
        return;
    };
    if !swaps().lines().skip(1).all(|l| l.trim().is_empty()) {
        assert!(!in_ci(), "CI machines start without swap");
        eprintln!("SKIP swap_out_without_swap_is_unavailable: this machine has swap on");
        return;
    }
    let (out, _dir) = disturbed(&["--swap-out"]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "no swap is active");
}

#[test]
fn sigint_in_a_swapping_run_removes_swap_and_zram() {
    let Some(_l) = privileged("sigint_in_a_swapping_run_removes_swap_and_zram") else {
        return;
    };
    let (swaps_before, zram_before) = (swaps(), zram_devices());
    let dir = tempfile::tempdir().unwrap();
    let mut child = seed_torture_command("60s", dir.path())
        .arg("--verbose")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_rest = wait_until_measuring(&mut child);
    assert_ne!(swaps(), swaps_before, "the run measures with its swap on");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let said: Vec<String> = stderr_rest.iter().collect();
    assert_eq!(status.code(), Some(130), "{}", said.join("\n"));
    let r = load_result(&dir.path().join("r.json"));
    assert!(r.interrupted);
    assert_eq!(swaps(), swaps_before);
    assert_eq!(zram_devices(), zram_before);
}

#[test]
fn seed_torture_ten_seconds_is_valid_with_zero_mismatches() {
    let Some(_l) = privileged("seed_torture_ten_seconds_is_valid_with_zero_mismatches") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = seed_torture_command("10s", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    assert!(r.valid, "{:?}", r.invalid_reasons);
    let run = &r.runs[0];
    assert_eq!(run.verify.mismatches, 0);
    assert!(run.verify.bytes_checked > 256 << 20);
    for c in ["thp_split_page", "thp_collapse_alloc", "pswpout", "pswpin"] {
        assert!(delta(&r, c) > 0, "{c} did not move: {:?}", run.vmstat_delta);
    }
    let (fork, report) = fork_figures(&r);
    assert!(fork.children > 0, "{report:?}");
    assert_eq!(fork.saw_parent_data, 0, "{report:?}");
}

#[test]
fn corruption_injected_under_disturbance_is_caught() {
    let Some(_l) = privileged("corruption_injected_under_disturbance_is_caught") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--size",
            "1M",
            "--duration",
            "1500ms",
            "--warmup",
            "0s",
            "--split",
            "cold",
            "--collapse",
            "--inject-corruption-at",
            "8192",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    let v = &r.runs[0].verify;
    assert!(v.mismatches > 0);
    assert_eq!(v.first_mismatches[0].offset, 8192);
    assert!(stdout(&out).contains("mismatched"));
}

#[test]
fn every_repeat_of_a_split_mthp_buffer_starts_from_whole_folios() {
    let Some(_l) = privileged("every_repeat_of_a_split_mthp_buffer_starts_from_whole_folios")
    else {
        return;
    };
    // MADV_COLLAPSE makes PMD THPs only: split 64 KiB folios must be remapped and
    // refaulted before the next run, baseline runs included.
    let (out, r, _dir) = disturbed_run(&[
        "--buffer",
        "mthp:64K",
        "--bs",
        "64k",
        "--split",
        "cold",
        "--baseline",
        "--repeat",
        "3",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let runs: Vec<_> = r.all_runs().collect();
    assert_eq!(runs.len(), 6);
    for view in runs {
        let (name, b) = (view.name(), &view.run.buffer);
        assert!(
            b.thp_coverage_before >= 0.99,
            "{name} started from split folios: {b:?}"
        );
        if view.role == RunRole::Baseline {
            assert!(b.thp_coverage_after >= 0.99, "{name}: {b:?}");
        }
    }
    assert!(r.valid, "{:?}", r.invalid_reasons);
}

#[test]
fn baseline_is_measured_beside_the_disturbed_run() {
    let Some(_l) = privileged("baseline_is_measured_beside_the_disturbed_run") else {
        return;
    };
    let (out, r, _dir) = disturbed_run(&["--split", "cold", "--baseline"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(r.baseline_runs.len(), 1);
    assert!(r.baseline_runs[0].disturbers.is_empty());
    assert_eq!(r.runs[0].disturbers.len(), 1);
    assert!(stdout(&out).contains("vs baseline"), "{}", stdout(&out));
}

#[test]
fn memory_pressure_swaps_the_buffers_and_removes_its_cgroup() {
    let Some(_l) = privileged("memory_pressure_swaps_the_buffers_and_removes_its_cgroup") else {
        return;
    };
    let groups = || -> Vec<String> {
        ["/sys/fs/cgroup/memory", "/sys/fs/cgroup"]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .filter(|n| n.starts_with("thpbench-"))
            .collect()
    };
    let (swaps_before, groups_before) = (swaps(), groups());
    let (out, r, _dir) = disturbed_run(&[
        "--pressure",
        "--swap",
        "zram:512M",
        "--bs",
        "10M",
        "--rw",
        "read",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_moved(&r, "pressure", &["pswpout"]);
    assert_eq!(groups(), groups_before, "the memory cgroup is removed");
    assert_eq!(swaps(), swaps_before);
}

/// The fork verdict first notes the sectors a read had poisoned and not yet filled at
/// fork (so data landing there in the child's copy is seen whenever it lands), and the
/// result says that the verdict is a lower bound.
#[test]
fn fork_children_watch_the_reads_in_flight_and_the_verdict_says_its_scope() {
    let Some(_l) =
        privileged("fork_children_watch_the_reads_in_flight_and_the_verdict_says_its_scope")
    else {
        return;
    };
    let (out, r, _dir) = disturbed_run(&["--fork"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let (fork, report) = fork_figures(&r);
    assert!(fork.children > 10, "{report:?}");
    // A reader is between poison and completion most of the time: over that many
    // forks, some child finds sectors still poisoned.
    assert!(fork.inflight_sectors > 0, "{report:?}");
    // This kernel keeps pinned pages with the parent (page_needs_cow_for_dma).
    assert_eq!(fork.inflight_landed, 0, "{report:?}");
    assert_eq!(fork.saw_parent_data, 0, "{report:?}");
    assert!(
        report
            .verdict_scope
            .as_deref()
            .is_some_and(|s| s.starts_with("lower bound")),
        "{report:?}"
    );
}
