//! `thpbench run` end to end: real runs on a file and a zram target, verification,
//! signals, privileges and bad input.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use thpbench::result::{BenchResult, RunResult};

/// The contract in results/README.md: the keys every result carries, under the names it
/// documents. Read with no defaults, so that a key the file lacks (or writes under
/// another name) fails to deserialise; what the values must be is checked on the typed
/// result. The fields are there to be required, not read.
#[allow(dead_code)]
mod contract {
    use serde::de::IgnoredAny as Any;
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Result {
        schema_version: Any,
        tool: Any,
        system: System,
        workload: Workload,
        runs: Vec<Run>,
        unavailable: Any,
        valid: Any,
        invalid_reasons: Any,
        interrupted: Any,
    }

    #[derive(Deserialize)]
    struct System {
        kernel: Kernel,
        thp: Thp,
        base_page_bytes: Any,
        lockdown: String,
        cpus: Any,
    }

    #[derive(Deserialize)]
    struct Kernel {
        release: Any,
        version: Any,
        cmdline: Any,
        machine: Any,
    }

    #[derive(Deserialize)]
    struct Thp {
        enabled: Any,
        defrag: Any,
        shmem_enabled: Any,
        pmd_size_bytes: Any,
        mthp: Any,
    }

    #[derive(Deserialize)]
    struct Workload {
        name: String,
    }

    #[derive(Deserialize)]
    struct Run {
        duration_ns: Any,
        ops: Any,
        bytes: Any,
        ops_per_sec: Any,
        bytes_per_sec: Any,
        latency_ns: Latency,
        histogram: Any,
        threads: Any,
        buffer: Buffer,
        vmstat_delta: Any,
        verify: Verify,
    }

    #[derive(Deserialize)]
    struct Latency {
        count: Any,
        min: Any,
        mean: Any,
        stddev: Any,
        p50: Any,
        p90: Any,
        p99: Any,
        p999: Any,
        p9999: Any,
        max: Any,
    }

    #[derive(Deserialize)]
    struct Buffer {
        backing: Any,
        share: Any,
        bytes: Any,
        thp_coverage_before: Any,
        thp_coverage_after: Any,
    }

    #[derive(Deserialize)]
    struct Verify {
        bytes_checked: Any,
        mismatches: Any,
    }
}

/// Checks that the result's text keeps the contract (every key present, under its
/// documented name), and that `r`, the same result typed, has this machine's page
/// geometry and a described system.
fn assert_contract(text: &str, r: &BenchResult) {
    if let Err(e) = serde_json::from_str::<contract::Result>(text) {
        panic!("the result breaks the contract of results/README.md: {e}");
    }
    // The page geometry the figures are counted in: this kernel's.
    assert_eq!(
        r.system.base_page_bytes,
        thpbench::pages::base_page() as u64,
        "system.base_page_bytes"
    );
    assert_eq!(
        r.system.thp.pmd_size_bytes,
        thpbench::pages::pmd_size(),
        "system.thp.pmd_size_bytes"
    );
    assert_eq!(r.system.kernel.machine, std::env::consts::ARCH);
    assert!(!r.system.cpus.is_empty());
}

/// The histogram's count must equal the ops the run counted.
fn histogram_count(run: &RunResult) -> u64 {
    thpbench::measure::histogram::decode_compressed(&run.histogram)
        .unwrap()
        .len()
}

/// Checks the contract on the JSON text of a result and a good run's figures on its
/// typed form, which it returns.
fn check_good_run(text: &str) -> BenchResult {
    let r: BenchResult = serde_json::from_str(text).expect("a result in the schema");
    assert_contract(text, &r);
    assert!(r.valid, "invalid: {:?}", r.invalid_reasons);
    let run = &r.runs[0];
    let ops = run.ops;
    assert!(ops > 0);
    assert_eq!(histogram_count(run), ops);
    assert_eq!(run.latency_ns.count, ops);
    let per_thread: u64 = run.threads.iter().map(|t| t.ops).sum();
    assert_eq!(per_thread, ops);
    let timeline_ops: u64 = run.timeline.iter().map(|t| t.ops).sum();
    assert_eq!(timeline_ops, ops);
    assert!(run.buffer.thp_coverage_before >= 0.99, "{:?}", run.buffer);
    assert_eq!(run.verify.mismatches, 0);
    // The default level checks a 16-byte header per 4 KiB base page read.
    assert_eq!(
        run.verify.level,
        Some(thpbench::workload::VerifyLevel::Pages)
    );
    assert!(run.verify.bytes_checked >= ops * 16);
    assert!(run.vmstat_delta.contains_key("thp_split_page"));
    r
}

#[test]
fn file_target_with_thp_buffers() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--duration",
            "2s",
            "--warmup",
            "200ms",
            "--size",
            "16M",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", failure(&out));
    let text = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    let r = check_good_run(&text);
    assert_eq!(r.runs[0].buffer.backing, thpbench::workload::Backing::Thp);
    // The data file was removed; only the result is left.
    assert_only_result_left(dir.path());
}

#[test]
fn zram_target_is_made_and_removed() {
    let Some(_l) = privileged("zram_target_is_made_and_removed") else {
        return;
    };
    let before = zram_devices();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--target",
            "zram:64M",
            "--duration",
            "2s",
            "--warmup",
            "200ms",
            "--json",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // --json prints the result.
    let r = check_good_run(&stdout(&out));
    assert_eq!(r.runs[0].buffer.coverage_method, "kpageflags");
    assert_eq!(
        zram_devices(),
        before,
        "the zram device made for the run is gone"
    );
}

#[test]
fn verify_catches_corruption_injected_between_fill_and_read() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--size",
            "1M",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--inject-corruption-at",
            "40960",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit code 3 on mismatch; stderr: {}",
        stderr(&out)
    );
    let r = load_result(&dir.path().join("r.json"));
    let v = &r.runs[0].verify;
    assert!(v.mismatches > 0);
    let first = &v.first_mismatches[0];
    assert_eq!(
        first.offset, 40960,
        "the corrupted sector is named: {first:?}"
    );
    assert_ne!(first.expected, first.actual);
    assert!(stdout(&out).contains("mismatched"), "{}", stdout(&out));
    // Corrupted data is never evidence: the result is invalid, and says why.
    assert!(!r.valid, "a run that lost data is not valid");
    let reasons = r.invalid_reasons.join("; ");
    assert!(
        reasons.contains("mismatched sectors, the first at target offset 40960")
            && reasons.contains("corrupted data is not evidence"),
        "{reasons}"
    );
}

/// A write answered as done but never made leaves the block's previous generation on
/// the device; the read-back after it must see that as a mismatch (with a pattern of
/// offset and seed alone, the old block looked right).
#[test]
fn verify_catches_a_lost_write() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--size",
            "1M",
            "--bs",
            "4K",
            "--rw",
            "randwrite",
            "--threads",
            "1",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--drop-write",
            "5",
            "--verify-level",
            "full",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    let r = load_result(&dir.path().join("r.json"));
    let v = &r.runs[0].verify;
    assert_eq!(
        v.level,
        Some(thpbench::workload::VerifyLevel::Full),
        "{v:?}"
    );
    assert_eq!(
        v.mismatches, 8,
        "the 8 sectors of the lost 4 KiB write: {v:?}"
    );
    let first = &v.first_mismatches[0];
    // The header's tag (bytes 8..16 of the sector) differs first: the generation.
    assert_eq!(first.offset % 512, 8, "{first:?}");
    assert!(!r.valid);
}

fn interrupt_run(target: &str, dir: &Path) -> (std::process::ExitStatus, BenchResult, Duration) {
    let mut child = Command::new(bin())
        .args([
            "--verbose",
            "run",
            "--target",
            target,
            "--duration",
            "60s",
            "--warmup",
            "0s",
            "-o",
            "r.json",
        ])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _stderr = wait_until_measuring(&mut child);
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "thpbench did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    (status, load_result(&dir.join("r.json")), took)
}

#[test]
fn sigint_saves_partial_result_and_removes_the_file() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let (status, r, _) = interrupt_run(".", dir.path());
    assert_eq!(status.code(), Some(130));
    assert!(r.interrupted);
    assert!(!r.valid);
    assert!(r.runs[0].ops > 0, "the partial run is kept");
    assert_only_result_left(dir.path());
}

#[test]
fn sigint_removes_the_zram_device() {
    let Some(_l) = privileged("sigint_removes_the_zram_device") else {
        return;
    };
    let before = zram_devices();
    let dir = tempfile::tempdir().unwrap();
    let (status, r, _) = interrupt_run("zram:64M", dir.path());
    assert_eq!(status.code(), Some(130));
    assert!(r.interrupted);
    assert_eq!(zram_devices(), before);
}

#[test]
fn unprivileged_run_records_unavailable_instead_of_crashing() {
    if !require_root(
        "unprivileged_run_records_unavailable_instead_of_crashing (needs root to drop to nobody)",
    ) {
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        assert!(!in_ci(), "setpriv (util-linux) is missing in CI");
        eprintln!("SKIP: setpriv not installed");
        return;
    }
    let _l = machine_lock();
    let dir = world_writable_tempdir();
    // An unprivileged file run works.
    let r = result_of_run(
        run_as_nobody,
        &["--duration", "1s", "--warmup", "0s", "--size", "8M"],
        dir.path(),
    );
    let text = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    assert_contract(&text, &r);
    assert!(!r.unavailable.is_empty());
    for u in &r.unavailable {
        assert!(!u.reason.is_empty() && !u.remedy.is_empty(), "{u:?}");
    }
    assert_eq!(r.runs[0].buffer.coverage_method, "smaps");
    assert!(r.runs[0].ops > 0);

    // What needs root says so, without a panic.
    let out = run_as_nobody(
        &["run", "--target", "zram:16M", "--duration", "1s"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("needs root") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn malformed_workload_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "name = \"x\"\nbs = \"4k\"\nthreds = 2\n",
    )
    .unwrap();
    let out = run(&["run", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml:3:1:") && err.contains("threds"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_flags_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["run", "--bs", "3k7"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_contains(&out, "unknown size suffix");
    let out = run(&["run", "--bs", "1000"], dir.path());
    assert_stderr_contains(&out, "multiple of 512");
    let out = run(&["run", "--cpus", "4096"], dir.path());
    assert_stderr_contains(&out, "CPU 4096 is not online");
}

#[test]
fn existing_file_is_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![7u8; 1 << 20];
    std::fs::write(dir.path().join("mine.dat"), &data).unwrap();
    let out = run(
        &["run", "--target", "mine.dat", "--duration", "1s"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "--force");
    // Read-only use of an existing file works and leaves it as it was.
    let out = run(
        &[
            "run",
            "--target",
            "mine.dat",
            "--no-verify",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("mine.dat")).unwrap(), data);
}

#[test]
fn probe_reports_every_capability() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["probe", "--json"], dir.path());
    let rows = probe_rows(&out);
    let whats: Vec<&str> = rows.iter().map(|r| r.what.as_str()).collect();
    for want in [
        "kernel release",
        "kernel lockdown",
        "THP enabled",
        "mTHP sizes",
        "swap devices",
        "zram",
        "privileges",
        "perf hardware PMU",
        "lock:contention_begin/end",
        "debugfs split_huge_pages",
        "MADV_COLLAPSE",
        "MADV_PAGEOUT",
        "MADV_COLD",
        "O_DIRECT",
        "CPUs",
    ] {
        assert!(whats.contains(&want), "probe lacks `{want}`: {whats:?}");
    }
    for r in &rows {
        if !r.available {
            assert!(!r.reason.is_empty(), "no reason: {r:?}");
        }
    }
    let lockdown = std::fs::read_to_string("/sys/kernel/security/lockdown").ok();
    if is_root() {
        let split = probe_row(&rows, "debugfs split_huge_pages");
        let lock = probe_row(&rows, "kernel lockdown");
        if lock.value == "integrity" || lock.value == "confidentiality" {
            assert!(!split.available);
            assert!(split.reason.contains("EPERM"), "{split:?}");
        }
        let _ = lockdown;
    }
}

#[test]
fn thread_sweep_measures_each_count_in_one_result() {
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = output_and_result_of_run(
        run,
        &[
            "--threads",
            "1,2",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--size",
            "8M",
        ],
        dir.path(),
    );
    assert!(r.valid, "{:?}", r.invalid_reasons);
    assert_eq!(r.sweep.len(), 2);
    for (case, threads) in r.sweep.iter().zip([1usize, 2]) {
        assert_eq!(case.params.threads, Some(threads));
        let run = &case.runs[0];
        assert_eq!(run.threads.len(), threads);
        assert!(run.ops > 0);
    }
    assert!(stdout(&out).contains("efficiency"), "{}", stdout(&out));
}

fn thp_knobs() -> String {
    let mut out = String::new();
    for e in std::fs::read_dir("/sys/kernel/mm/transparent_hugepage")
        .unwrap()
        .flatten()
    {
        let f = e.path().join("enabled");
        if let Ok(v) = std::fs::read_to_string(&f) {
            out.push_str(&format!("{}: {v}", f.display()));
        }
    }
    out + &std::fs::read_to_string("/proc/sys/vm/nr_hugepages").unwrap()
}

#[test]
fn mthp_and_hugetlb_buffers_are_proven_and_knobs_restored() {
    let Some(_l) = privileged("mthp_and_hugetlb_buffers_are_proven_and_knobs_restored") else {
        return;
    };
    let knobs_before = thp_knobs();
    let sizes = thpbench::system::thp::mthp_sizes_kb();
    let mthp = sizes
        .iter()
        .find(|&&kb| kb == 64)
        .or(sizes.first())
        .copied();
    let mut cases = vec![("hugetlb".to_string(), 2u64 << 20)];
    if let Some(kb) = mthp.filter(|&kb| kb < 2048) {
        cases.push((format!("mthp:{kb}K"), kb << 10));
    } else {
        assert!(!in_ci(), "the CI kernel offers mTHP sizes");
    }
    for (backing, folio) in cases {
        for share in ["private", "shared"] {
            let dir = tempfile::tempdir().unwrap();
            let out = run(
                &[
                    "run",
                    "--buffer",
                    &backing,
                    "--share",
                    share,
                    "--duration",
                    "1s",
                    "--warmup",
                    "0s",
                    "--size",
                    "8M",
                    "-o",
                    "r.json",
                ],
                dir.path(),
            );
            assert!(out.status.success(), "{backing} {share}: {}", stderr(&out));
            let r = load_result(&dir.path().join("r.json"));
            let b = &r.runs[0].buffer;
            assert_eq!(b.backing.to_string(), backing.as_str());
            assert_eq!(b.folio_bytes, folio);
            assert!(b.thp_coverage_before >= 0.99, "{backing} {share}: {b:?}");
            assert!(r.valid, "{:?}", r.invalid_reasons);
        }
        assert_eq!(thp_knobs(), knobs_before, "{backing}: knobs restored");
    }
}

#[test]
fn block_device_is_written_only_when_allowed_and_blank() {
    let Some(_l) = privileged("block_device_is_written_only_when_allowed_and_blank") else {
        return;
    };
    let dev = thpbench::system::zram::ZramDevice::create(32 << 20).unwrap();
    let path = dev.path();
    let p = path.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Verify needs writes: refused without the flag.
    let out = run(&["run", "--target", p, "--duration", "1s"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "--allow-write-device");
    // Read-only runs are fine.
    let out = run(
        &[
            "run",
            "--target",
            p,
            "--no-verify",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "-o",
            "a.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A blank device may be written when allowed.
    let out = run(
        &[
            "run",
            "--target",
            p,
            "--allow-write-device",
            "--size",
            "32M",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "-o",
            "b.json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        load_result(&dir.path().join("b.json")).runs[0]
            .verify
            .mismatches,
        0
    );
    // A device holding a signature is never written.
    let mk = Command::new("mkswap").arg(p).output().unwrap();
    assert!(mk.status.success());
    let out = run(
        &[
            "run",
            "--target",
            p,
            "--allow-write-device",
            "--duration",
            "1s",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_contains(&out, "swap signature");
    drop(dev);
}

#[test]
fn progress_bar_on_a_terminal_only() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(!in_ci(), "script (util-linux) is missing in CI");
        eprintln!("SKIP progress_bar_on_a_terminal_only: no `script` to make a terminal");
        return;
    }
    let _l = machine_lock();
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} run --duration 1500ms --warmup 0s --size 8M -o tty.json",
        bin()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("quick run 1/1") && tty.contains("p99"),
        "no progress bar on a terminal: {tty}"
    );
    // Off a terminal: the summary only.
    let out = run(
        &[
            "run",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--size",
            "8M",
            "-o",
            "pipe.json",
        ],
        dir.path(),
    );
    assert!(!stderr(&out).contains("run 1/1") && !stdout(&out).contains("run 1/1"));
    assert!(stdout(&out).contains("ops/s"));
}

#[test]
fn a_shared_layout_in_which_threads_do_not_share_every_folio_is_refused() {
    // 4 KiB folios hold one 4 KiB chunk each: no folio is shared by both threads.
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "run",
            "--engine",
            "gup",
            "--buffer",
            "4k",
            "--share",
            "shared",
            "--threads",
            "2",
            "--duration",
            "100ms",
            "-o",
            "r.json",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("not shared by all threads"), "{err}");
    assert!(!dir.path().join("r.json").exists(), "nothing measured");
}
