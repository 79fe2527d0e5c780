//! Worker placement on the machine's topology and NUMA-local buffers, run for real.

mod common;

use std::collections::BTreeSet;

use common::*;
use thpbench::result::BenchResult;
use thpbench::workload::{Numa, SweepValue, TypedSweepKey};

/// Runs a small workload file on a zram target; returns the result.
fn run_workload(extra: &str, test: &str) -> (BenchResult, String) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "name = \"topo\"\ntarget = \"zram:64M\"\nsize = \"64M\"\nbs = \"4M\"\nduration = \"300ms\"\nwarmup = \"100ms\"\nlock_contention = false\nperf = false\n{extra}\n"
    );
    std::fs::write(dir.path().join("w.toml"), toml).unwrap();
    let out = run(&["run", "w.toml", "-o", "r.json"], dir.path());
    assert!(out.status.success(), "{test}: {}", stderr(&out));
    (load_result(&dir.path().join("r.json")), stdout(&out))
}

#[test]
fn default_runs_one_worker_per_core_with_its_buffer_on_its_node() {
    let Some(_lock) = privileged("default_runs_one_worker_per_core_with_its_buffer_on_its_node")
    else {
        return;
    };
    let (r, summary) = run_workload("", "default");
    let run = &r.runs[0];
    let p = run.placement.as_ref().expect("the placement is recorded");
    assert!(p.why.contains("one per physical core"), "{p:?}");
    assert!(summary.contains("workers on "), "{summary}");
    let threads = &run.threads;
    let cores: BTreeSet<(u32, u32)> = threads
        .iter()
        .map(|t| (t.package.expect("a package"), t.core.expect("a core")))
        .collect();
    assert_eq!(
        cores.len(),
        threads.len(),
        "two workers share a core: {threads:?}"
    );
    for t in threads {
        assert!(t.numa_node.is_some(), "{t:?}");
        for (key, share) in [
            ("numa_local_before", t.numa_local_before),
            ("numa_local_after", t.numa_local_after),
        ] {
            assert!(share.expect(key) >= 0.99, "{key}: {t:?}");
        }
    }
    let b = &run.buffer;
    assert_eq!(b.numa, Some(Numa::Local));
    let pages: u64 = b.numa_nodes_before.values().sum();
    assert_eq!(pages, b.bytes / 4096, "{b:?}");
    assert!(r.valid, "{:?}", r.invalid_reasons);
}

#[test]
fn interleave_and_any_are_recorded_and_never_judged_local() {
    let Some(_lock) = privileged("interleave_and_any_are_recorded_and_never_judged_local") else {
        return;
    };
    for numa in [Numa::Interleave, Numa::Any] {
        let (r, _) = run_workload(&format!("numa = \"{numa}\"\nshare = \"shared\""), "numa");
        let run = &r.runs[0];
        assert_eq!(run.buffer.numa, Some(numa));
        assert!(!run.buffer.numa_nodes_after.is_empty());
        // A shared buffer has no owner: no per-worker share.
        assert!(
            run.threads[0].numa_local_before.is_none(),
            "{:?}",
            run.threads[0]
        );
        assert!(r.valid, "{numa}: {:?}", r.invalid_reasons);
    }
}

#[test]
fn cpu_specs_that_cannot_be_met_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["run", "--cpus", "node:4096"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_stderr_contains(&out, "no NUMA node 4096");
    let out = run(&["run", "--cpus", "core"], dir.path());
    assert_stderr_contains(&out, "\"cores\", \"threads\", \"node:N\"");
}

#[test]
fn probe_shows_cores_threads_packages_and_node_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["probe", "--json"], dir.path());
    let rows = probe_rows(&out);
    let v = &probe_row(&rows, "topology").value;
    for want in [
        "cores",
        "threads per core",
        "packages",
        "NUMA nodes",
        "node 0: cpus",
        "memory",
    ] {
        assert!(v.contains(want), "`{want}` missing: {v}");
    }
}

/// `--cpus node:N --threads K` keeps both (K workers from node N's cores), `--numa` sets
/// the policy, and a CPU list with a count is refused rather than the count ignored.
#[test]
fn cpus_combine_with_threads_and_numa_is_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let w = printed_workload(
        &["--cpus", "node:1", "--threads", "2", "--numa", "interleave"],
        dir.path(),
    );
    assert_eq!(w.cpus, "node:1", "{w:?}");
    assert_eq!(w.threads, 2, "{w:?}");
    assert_eq!(w.numa, Numa::Interleave, "{w:?}");
    // A thread sweep keeps the node too.
    let w = printed_workload(&["--cpus", "node:1", "--threads", "1,2"], dir.path());
    assert_eq!(w.cpus, "node:1", "{w:?}");
    assert_eq!(
        w.sweep.get(TypedSweepKey::Threads.name()),
        Some(&vec![SweepValue::Int(1), SweepValue::Int(2)]),
        "{w:?}"
    );
    let out = run(
        &["run", "--print-workload", "--cpus", "0-1", "--threads", "1"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would be ignored"),
        "{}",
        stderr(&out)
    );
    let out = run(&["run", "--print-workload", "--numa", "near"], dir.path());
    assert!(stderr(&out).contains("interleave"), "{}", stderr(&out));
}
