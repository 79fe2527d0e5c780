//! `thpbench kernels --self-test`: builds the initramfs, boots Debian's 6.1 cloud kernel
//! under qemu (TCG where KVM does not work) and runs a 2 s quick workload in it; and the
//! emulated SMT and NUMA guests.
//!
//! Needs root (apt-get install of qemu-system-x86, busybox-static, ...; apt-get download
//! of the kernel package, about 27 MB, cached in ~/.cache/thpbench-kernels). In CI it must
//! run: a missing package mirror fails the test rather than skipping it. About 15-40 s
//! with the package cached, plus the download the first time.
//!
//! THPBENCH_SELFTEST_KERNEL picks another kernel (a package name, .deb or bzImage);
//! THPBENCH_ACCEL=tcg skips the KVM probe.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use thpbench::result::{BenchResult, RunResult, ThreadResult};

fn histogram_count(run: &RunResult) -> u64 {
    thpbench::measure::histogram::decode_compressed(&run.histogram)
        .expect("decoding runs[0].histogram")
        .len()
}

#[test]
fn self_test_boots_a_debian_kernel_and_brings_the_result_back() {
    let Some(_lock) = common::privileged("kernels::self_test") else {
        return;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(common::bin());
    cmd.args(["kernels", "--self-test", "--out-dir"])
        .arg(out.path())
        .current_dir(repo);
    if let Ok(k) = std::env::var("THPBENCH_SELFTEST_KERNEL") {
        cmd.arg(k);
    }
    let start = Instant::now();
    let o = cmd.output().expect("running thpbench kernels");
    let took = start.elapsed();
    let stderr = common::stderr(&o);
    eprintln!("{stderr}");
    eprintln!(
        "thpbench kernels --self-test took {:.1} s",
        took.as_secs_f64()
    );
    assert!(
        o.status.success(),
        "--self-test failed ({}): {stderr}",
        o.status
    );

    // The host named the kernel it booted (from the bzImage header) in runs.tsv.
    let tsv = std::fs::read_to_string(out.path().join("runs.tsv")).unwrap();
    let row: Vec<&str> = tsv
        .lines()
        .nth(1)
        .expect("a row in runs.tsv")
        .split('\t')
        .collect();
    let (release, accel, status, file) = (row[1], row[2], row[5], row[6]);
    assert_eq!(status, "ok", "runs.tsv: {tsv}");
    assert!(accel == "tcg" || accel == "kvm", "accelerator {accel}");

    // The guest's own result came back through the serial port, from that kernel.
    let result = common::load_result(&out.path().join(file));
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(result.system.kernel.release, release);
    assert_ne!(
        release,
        host.trim(),
        "the workload ran on the host, not in a guest"
    );
    let cmdline = &result.system.kernel.cmdline;
    assert!(
        cmdline.contains(&format!("thpbench.accel={accel}")),
        "guest cmdline {cmdline}"
    );
    assert_eq!(result.workload.name, "quick");
    assert_eq!(result.workload.duration.to_string(), "2s");
    let run = &result.runs[0];
    let ops = run.ops;
    assert!(ops > 0, "no operations in the guest: {run:?}");
    assert_eq!(run.latency_ns.count, ops);
    assert_eq!(histogram_count(run), ops);
    assert_eq!(run.verify.mismatches, 0, "{run:?}");
    assert!(run.verify.bytes_checked > 0);

    // It ends with compare and plot, as a kernel comparison does.
    let md = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(
        md.contains(release),
        "compare.md does not name {release}: {md}"
    );
    let svg = std::fs::read_to_string(out.path().join("plot.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains(release));
}

/// The old script is a wrapper: its command line reaches `thpbench kernels` (its help,
/// and its refusal of a bad option with the subcommand's usage exit code).
#[test]
fn the_script_hands_its_command_line_to_thpbench_kernels() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/compare-kernels.sh");
    let o = Command::new("bash")
        .arg(&script)
        .args(["--thpbench", common::bin(), "--help"])
        .output()
        .unwrap();
    let out = common::stdout(&o);
    assert!(o.status.success(), "{out}{}", common::stderr(&o));
    assert!(
        out.contains("Usage: thpbench kernels") && out.contains("--self-test"),
        "{out}"
    );
    let o = Command::new("bash")
        .arg(&script)
        .args([
            "--thpbench",
            common::bin(),
            "--smp",
            "3",
            "--numa",
            "2",
            "quick",
            "host",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(thpbench::exit::USAGE.code));
    let err = common::stderr(&o);
    assert!(err.contains("--numa 2") && err.contains("3 vCPUs"), "{err}");
}

/// Boots the self-test kernel once with `topology` (`thpbench kernels` options) and a workload,
/// returning the guest's result.
fn boot_topology(test: &str, topology: &[&str], workload: &str) -> BenchResult {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let wl = out.path().join(format!("{test}.toml"));
    std::fs::write(&wl, workload).unwrap();
    let kernel = std::env::var("THPBENCH_SELFTEST_KERNEL")
        .unwrap_or_else(|_| "linux-image-cloud-amd64".into());
    let o = Command::new(common::bin())
        .arg("kernels")
        .args(topology)
        .args(["--no-compare", "--out-dir"])
        .arg(out.path())
        .arg(&wl)
        .arg(kernel)
        .current_dir(repo)
        .output()
        .expect("running thpbench kernels");
    let stderr = common::stderr(&o);
    eprintln!("{stderr}");
    assert!(o.status.success(), "{test} failed ({}): {stderr}", o.status);
    let tsv = std::fs::read_to_string(out.path().join("runs.tsv")).unwrap();
    let row: Vec<&str> = tsv.lines().nth(1).expect("a row").split('\t').collect();
    assert_eq!(row[5], "ok", "runs.tsv: {tsv}");
    common::load_result(&out.path().join(row[6]))
}

/// Each case's first run by its sweep label.
fn case<'a>(r: &'a BenchResult, label: &str) -> &'a RunResult {
    assert!(!r.sweep.is_empty(), "a sweep");
    let c = r.sweep.iter().find(|c| c.label == label);
    &c.unwrap_or_else(|| panic!("no case {label}: {:?}", r.sweep))
        .runs[0]
}

const TOPOLOGY_WORKLOAD: &str = "name = \"topology\"\ntarget = \"zram:64M\"\nbs = \"4M\"\nduration = \"1s\"\nwarmup = \"200ms\"\nlock_contention = false\nperf = false\n";

#[test]
fn smt_2x2_guest_runs_one_worker_per_core() {
    let Some(_lock) = common::privileged("kernels::smt_2x2") else {
        return;
    };
    let wl = format!("{TOPOLOGY_WORKLOAD}sweep = {{ cpus = [\"cores\", \"threads\"] }}\n");
    let r = boot_topology("smt", &["--smp", "4,sockets=1,cores=2,threads=2"], &wl);
    let cores = case(&r, "cpus=cores");
    let threads = &cores.threads;
    assert_eq!(threads.len(), 2, "{threads:?}");
    assert_ne!(threads[0].core, threads[1].core, "{threads:?}");
    let placement = cores.placement.as_ref().expect("the placement is recorded");
    assert_eq!(placement.housekeeping, "SMT siblings of workers");
    let all = case(&r, "cpus=threads");
    assert_eq!(all.threads.len(), 4);
    assert!(r.valid, "{:?}", r.invalid_reasons);
}

#[test]
fn two_node_guest_keeps_buffers_local_unless_interleaved() {
    let Some(_lock) = common::privileged("kernels::two_nodes") else {
        return;
    };
    let wl = format!(
        "{TOPOLOGY_WORKLOAD}sweep = {{ numa = [\"local\", \"interleave\"], cpus = [\"cores\", \"node:1\"] }}\n"
    );
    let r = boot_topology("numa", &["--smp", "4", "--numa", "2"], &wl);
    let share = |t: &ThreadResult| t.numa_local_after.expect("numa_local_after");
    let local = case(&r, "cpus=cores numa=local");
    let nodes: Vec<u32> = local
        .threads
        .iter()
        .map(|t| t.numa_node.expect("numa_node"))
        .collect();
    assert_eq!(nodes, [0, 0, 1, 1]);
    for t in &local.threads {
        assert!(
            t.numa_local_before.expect("numa_local_before") >= 0.99 && share(t) >= 0.99,
            "{t:?}"
        );
    }
    let spread = case(&r, "cpus=cores numa=interleave");
    assert!(spread.threads.iter().any(|t| share(t) < 0.99), "{spread:?}");
    let node1 = case(&r, "cpus=node:1 numa=local");
    let cpus: Vec<usize> = node1.threads.iter().map(|t| t.cpu).collect();
    assert_eq!(cpus, [2, 3]);
    assert!(r.valid, "{:?}", r.invalid_reasons);
}
