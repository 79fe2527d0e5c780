//! scripts/compare-kernels.sh --self-test: builds the initramfs, boots Debian's 6.1 cloud
//! kernel under qemu (TCG where KVM does not work) and runs a 2 s quick workload in it.
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

fn histogram_count(run: &serde_json::Value) -> u64 {
    thpbench::measure::histogram::decode_compressed(run["histogram"].as_str().unwrap())
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
    let mut cmd = Command::new("bash");
    cmd.arg(repo.join("scripts/compare-kernels.sh"))
        .arg("--self-test")
        .arg("--thpbench")
        .arg(common::bin())
        .arg("--out-dir")
        .arg(out.path())
        .current_dir(repo);
    if let Ok(k) = std::env::var("THPBENCH_SELFTEST_KERNEL") {
        cmd.arg(k);
    }
    let start = Instant::now();
    let o = cmd.output().expect("running scripts/compare-kernels.sh");
    let took = start.elapsed();
    let stderr = common::stderr(&o);
    eprintln!("{stderr}");
    eprintln!(
        "compare-kernels.sh --self-test took {:.1} s",
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
    let result = common::load_json(&out.path().join(file));
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(result["system"]["kernel"]["release"], release);
    assert_ne!(
        release,
        host.trim(),
        "the workload ran on the host, not in a guest"
    );
    let cmdline = result["system"]["kernel"]["cmdline"].as_str().unwrap();
    assert!(
        cmdline.contains(&format!("thpbench.accel={accel}")),
        "guest cmdline {cmdline}"
    );
    assert_eq!(result["workload"]["name"], "quick");
    assert_eq!(result["workload"]["duration"], "2s");
    let run = &result["runs"][0];
    let ops = run["ops"].as_u64().unwrap();
    assert!(ops > 0, "no operations in the guest: {run}");
    assert_eq!(run["latency_ns"]["count"].as_u64(), Some(ops));
    assert_eq!(histogram_count(run), ops);
    assert_eq!(run["verify"]["mismatches"].as_u64(), Some(0), "{run}");
    assert!(run["verify"]["bytes_checked"].as_u64().unwrap() > 0);

    // It ends with compare and plot, as a kernel comparison does.
    let md = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(
        md.contains(release),
        "compare.md does not name {release}: {md}"
    );
    let svg = std::fs::read_to_string(out.path().join("plot.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains(release));
}

/// The runner's verdict on a thpbench exit code comes from `thpbench exit-codes --json`
/// (src/exit.rs), not from a copy of the table in the script. Runs the script's own
/// functions, without qemu.
#[test]
fn the_runner_reads_the_exit_codes_from_thpbench() {
    if Command::new("jq").arg("--version").output().is_err() {
        assert!(!common::in_ci(), "jq is missing in CI");
        eprintln!("SKIP the_runner_reads_the_exit_codes_from_thpbench: jq not installed");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/compare-kernels.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    let start = text
        .find("declare -A EXIT_CODE")
        .expect("the script keeps the exit codes in EXIT_CODE");
    let end = start + text[start..].find("\n# ----").unwrap();
    let functions = &text[start..end];
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "die() {{ echo \"die: $*\"; exit 1; }}\n{functions}\nload_exit_codes\n\
             for rc in 0 1 2 4 130 77; do rc_status $rc run.log r.json; done"
        ))
        .env("THPBENCH_BIN", common::bin())
        .output()
        .unwrap();
    let out = common::stdout(&o);
    assert!(o.status.success(), "{out}{}", common::stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    let meaning = |c: thpbench::exit::ExitCode| {
        format!("{} (thpbench exit {}; see run.log)", c.meaning, c.code)
    };
    use thpbench::exit::*;
    assert_eq!(
        lines,
        [
            "ok".to_string(),
            meaning(ERROR),
            meaning(USAGE),
            meaning(INVALID),
            meaning(INTERRUPTED),
            "thpbench failed (thpbench exit 77; see run.log)".to_string(),
        ]
    );
}
