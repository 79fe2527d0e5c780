//! Test fixtures shared by the modules' unit tests and tests/: synthetic results whose figures are
//! known, so that compare, export and plot can be checked without running anything.

use crate::result::{BenchResult, LatencySummary, RunResult};

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
