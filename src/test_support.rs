//! Test fixtures shared by the modules' unit tests and tests/: synthetic results whose figures are
//! known, so that compare, export and plot can be checked without running anything.

use crate::result::{BenchResult, LatencySummary, RunResult, SweepCase};

/// True in CI (`CI=true` or `CI=1`), which runs as root with every tool the tests use
/// installed (.ci/run): there a test that cannot go on fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// True when `test` can go on as root. Elsewhere it prints why it is skipped (`needs`:
/// what root opens, e.g. /proc/kpageflags), and in CI fails instead.
pub fn require_root(test: &str, needs: &str) -> bool {
    if crate::system::is_root() {
        return true;
    }
    assert!(!in_ci(), "{test}: CI must run privileged tests as root");
    eprintln!("SKIP {test}: needs root ({needs})");
    false
}

/// True when `tool` can be run (`tool --version` starts). Elsewhere it prints why
/// `test` is skipped, and in CI fails instead, naming the Debian package that
/// .ci/run must install.
pub fn require_tool(test: &str, tool: &str, package: &str) -> bool {
    if std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    assert!(
        !in_ci(),
        "{test}: {tool} is missing in CI (Debian package {package})"
    );
    eprintln!("SKIP {test}: {tool} is not installed (Debian package {package})");
    false
}

/// A valid result with one run per `ops_per_sec` value; latency scales inversely. It
/// carries the provenance a current run records: a build-id of its own per release, one
/// machine (host `bench1`, 4 CPUs, 16 GiB) and one set of conditions.
pub fn synthetic(release: &str, ops_per_sec: &[f64]) -> BenchResult {
    let runs = ops_per_sec
        .iter()
        .enumerate()
        .map(|(i, &ops)| synthetic_run(i, ops))
        .collect();
    let system = crate::result::SystemInfo {
        kernel: crate::result::KernelInfo {
            release: release.into(),
            version: "#1 SMP".into(),
            cmdline: format!("BOOT_IMAGE=/vmlinuz-{release} root=/dev/vda ro quiet"),
            build_id: Some(crate::digest::sha256_hex(release.as_bytes())[..40].to_string()),
            compiler: Some("gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46".into()),
            config: None,
            machine: "x86_64".into(),
        },
        lockdown: "none".into(),
        thp: crate::result::ThpInfo {
            enabled: "madvise".into(),
            defrag: "madvise".into(),
            shmem_enabled: "never".into(),
            pmd_size_bytes: 2 << 20,
            mthp: Default::default(),
        },
        cpus: (0..4)
            .map(|cpu| crate::result::CpuInfo {
                cpu,
                ..Default::default()
            })
            .collect(),
        hostname: "bench1".into(),
        machine: Some(crate::result::MachineInfo {
            cpu_model: "AMD EPYC".into(),
            microcode: "0x1000065".into(),
            hypervisor: "kvm".into(),
            container: String::new(),
            mem_total_bytes: 16 << 30,
        }),
        mm: Some(crate::result::MmSettings {
            numa_balancing: "0".into(),
            ..Default::default()
        }),
        not_recorded: Vec::new(),
        base_page_bytes: 4096,
    };
    let workload = crate::workload::Workload {
        name: "quick".into(),
        ..Default::default()
    };
    BenchResult {
        started_at: "2025-01-02T03:04:05Z".into(),
        runs,
        ..BenchResult::new(system, workload)
    }
}

pub fn synthetic_run(repeat: usize, ops_per_sec: f64) -> RunResult {
    let lat = (1e9 / ops_per_sec) as u64;
    RunResult {
        repeat,
        duration_ns: 1_000_000_000,
        ops: ops_per_sec as u64,
        bytes: ops_per_sec as u64 * 4096,
        ops_per_sec,
        bytes_per_sec: ops_per_sec * 4096.0,
        latency_ns: LatencySummary {
            count: ops_per_sec as u64,
            min: lat / 2,
            mean: lat as f64,
            stddev: 1.0,
            p50: lat,
            p90: lat * 2,
            p99: lat * 3,
            p999: lat * 4,
            p9999: lat * 5,
            max: lat * 6,
        },
        ..Default::default()
    }
}

/// Every result file kept under results/ (made by older versions, some before fields
/// were added), sorted: what readers of results must go on reading.
pub fn kept_results() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results"),
        &mut files,
    );
    files.sort();
    files
}

/// A sweep case named `label` with the swept `params` (workload key, value) and `runs`.
pub fn sweep_case(label: &str, params: &[(&str, &str)], runs: Vec<RunResult>) -> SweepCase {
    SweepCase {
        label: label.into(),
        params: params.iter().copied().collect(),
        runs,
    }
}

/// One run per mean latency (ns), each of 10 operations, every other figure zero: what
/// the ratios over sweep cases (pin cost, shared folios) read.
pub fn runs_with_mean_latency(means_ns: &[f64]) -> Vec<RunResult> {
    means_ns
        .iter()
        .map(|&mean| RunResult {
            ops: 10,
            latency_ns: LatencySummary {
                mean,
                ..Default::default()
            },
            ..Default::default()
        })
        .collect()
}

/// What an hlog export holds, read back as a reader of the format would: (operations in
/// all its interval histograms, number of intervals).
pub fn hlog_totals(log: &[u8]) -> (u64, usize) {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let (mut ops, mut intervals) = (0, 0);
    for entry in IntervalLogIterator::new(log) {
        if let LogEntry::Interval(iv) = entry.expect("the hlog parses") {
            let bytes = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                iv.encoded_histogram(),
            )
            .expect("an interval's histogram is base64");
            let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                .deserialize(&mut &bytes[..])
                .expect("an interval's histogram decodes");
            ops += h.len();
            intervals += 1;
        }
    }
    (ops, intervals)
}

/// Checks an hgrm export (HdrHistogram's percentile text) of `result`'s runs: its header,
/// a footer that counts every operation, and a 100 % line that holds the largest
/// latency as the summary shows it (ns to us, 3 decimals).
pub fn assert_hgrm_holds(result: &BenchResult, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "       Value     Percentile TotalCount 1/(1-Percentile)"
    );
    assert_eq!(lines[1], "");
    let total: u64 = result.runs.iter().map(|r| r.latency_ns.count).sum();
    let footer = lines[lines.len() - 2];
    let counted = footer
        .trim_end_matches(']')
        .rsplit('=')
        .next()
        .unwrap()
        .trim();
    assert_eq!(counted, total.to_string(), "{footer}");
    assert!(lines[lines.len() - 1].starts_with("#[Buckets = "));
    let max = result.runs.iter().map(|r| r.latency_ns.max).max().unwrap();
    let last = lines[lines.len() - 4];
    assert!(last.contains(" 1.000000000000 "), "{last}");
    assert!(
        last.trim_start()
            .starts_with(&format!("{:.3}", max as f64 / 1000.0)),
        "{last} vs {max}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_tool_goes_on_and_a_missing_one_skips_or_fails_in_ci() {
        assert!(require_tool("t", "sh", "dash"));
        let missing = std::panic::catch_unwind(|| {
            require_tool("t", "thpbench-no-such-tool", "no-such-package")
        });
        match missing {
            Ok(go_on) => assert!(!in_ci() && !go_on),
            Err(why) => {
                assert!(in_ci());
                let why = why.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(why.contains("Debian package no-such-package"), "{why}");
            }
        }
    }

    #[test]
    fn root_goes_on_and_others_skip_or_fail_in_ci() {
        let root = crate::system::is_root();
        match std::panic::catch_unwind(|| require_root("t", "nothing")) {
            Ok(go_on) => assert_eq!(go_on, root),
            Err(_) => assert!(in_ci() && !root),
        }
    }
}
