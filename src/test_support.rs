//! Test fixtures shared by the modules' unit tests and tests/: synthetic results whose figures are
//! known, so that compare, export and plot can be checked without running anything.

use crate::result::{BenchResult, LatencySummary, RunResult};

/// A valid result with one run per `ops_per_sec` value; latency scales inversely.
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
            cmdline: String::new(),
            machine: "x86_64".into(),
        },
        base_page_bytes: 4096,
        ..Default::default()
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
