//! The result schema: the single definition of the JSON that `thpbench run` writes and
//! that `compare`, `export` and `plot` read. results/README.md documents every key.
//!
//! Bump [`SCHEMA_VERSION`] whenever a key changes meaning or disappears; adding keys is
//! backwards compatible (readers use `#[serde(default)]`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::workload::Workload;

pub mod kernel;
pub mod provenance;
mod walk;

pub use kernel::{GupReport, GupSlowPath, IoUringReport, LockReport, PerfReport};
pub use provenance::{HostActivity, KernelConfig, MachineInfo, MmSettings};
pub use walk::{RunRole, RunView};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchResult {
    pub schema_version: u32,
    pub tool: Tool,
    /// UTC start time of the invocation, RFC 3339.
    pub started_at: String,
    pub system: SystemInfo,
    /// The resolved workload spec (defaults filled in, flags applied).
    pub workload: Workload,
    /// One entry per `--repeat`, each an independent measured run.
    pub runs: Vec<RunResult>,
    /// Undisturbed runs of the same workload, measured in the same invocation
    /// (`--baseline`); empty otherwise.
    #[serde(default)]
    pub baseline_runs: Vec<RunResult>,
    /// Sweeps (`--threads 1,2,4`, `--sweep`): the same workload measured at several
    /// parameter settings in one invocation, each case with its own runs. When present,
    /// `runs` is empty and every figure lives in the cases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<SweepCase>,
    /// The shared-folio contention ratios a sweep over `share` yields: latency per op
    /// with every thread on the same folios over latency per op with private folios.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_folio: Vec<SharedFolioRatio>,
    /// The cost of pinning per I/O, for every pair of sweep cases that differ only in
    /// `fixed_buffers` (uring): per-I/O pins against registered buffers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pin_cost: Vec<PinCost>,
    /// Every measurement or feature that could not be had, with why and what to do.
    pub unavailable: Vec<Unavailable>,
    pub valid: bool,
    pub invalid_reasons: Vec<String>,
    /// The run was stopped by SIGINT/SIGTERM; the runs present are partial.
    pub interrupted: bool,
    /// A signal arrived after the last repeat was measured, during teardown (which
    /// finished): the runs are complete, and the exit code follows them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signal_in_teardown: bool,
    /// Present when the engine and target were simulated (hidden `--mock`, for tests):
    /// such a result is never evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<MockReport>,
}

/// The simulated engine's settings (hidden `--mock`): time per operation, and the
/// operation (from 1, warm-up and verify read-backs included, first worker only) at
/// which a fault was injected.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MockReport {
    pub op_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatch_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
    /// The git commit thpbench was built from; `unknown` when built outside a git
    /// checkout (a tarball) without THPBENCH_GIT_COMMIT set; empty in results written
    /// before thpbench recorded it.
    #[serde(default)]
    pub commit: String,
    /// Whether the checkout had uncommitted changes; None when unknown or not recorded.
    #[serde(default)]
    pub dirty: Option<bool>,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: env!("THPBENCH_GIT_COMMIT").to_string(),
            dirty: match env!("THPBENCH_GIT_DIRTY") {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
        }
    }
}

/// `thpbench --version`: the version, the commit and whether the tree was dirty.
pub const LONG_VERSION: &str = env!("THPBENCH_LONG_VERSION");

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SystemInfo {
    pub kernel: KernelInfo,
    /// `none`, `integrity`, `confidentiality`, or `unknown` when securityfs cannot be read.
    pub lockdown: String,
    pub thp: ThpInfo,
    pub cpus: Vec<CpuInfo>,
    #[serde(default)]
    pub hostname: String,
    /// CPU model, microcode, hypervisor, memory (absent in results before 2026-12-02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineInfo>,
    /// zswap, NUMA balancing, khugepaged, DAMON (absent in results before 2026-12-02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mm: Option<MmSettings>,
    /// Provenance that this machine would not give, each with why (e.g. `kernel config:
    /// neither /proc/config.gz nor /boot/config-6.1.0 exists`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_recorded: Vec<String>,
    /// The kernel's base page size (sysconf(_SC_PAGESIZE)): the unit of every figure
    /// counted in pages (coverage's pages, folio sizes in pages, NUMA pages per node,
    /// gup pages). 4 KiB on x86-64; 4, 16 or 64 KiB on arm64. Results written before
    /// it was recorded come from x86-64 builds and load as 4096.
    #[serde(default = "four_kib")]
    pub base_page_bytes: u64,
}

fn four_kib() -> u64 {
    4096
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KernelInfo {
    /// `uname -r`
    pub release: String,
    /// `uname -v`: tells two builds of the same release apart, unless the build is
    /// reproducible (then `#1 SMP PREEMPT_DYNAMIC @0` for every build: see build_id).
    pub version: String,
    pub cmdline: String,
    /// The GNU build-id note of the running kernel (/sys/kernel/notes), hex: what tells two
    /// builds of one release apart. None in older results or where unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// The compiler and linker the kernel was built with, from /proc/version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<KernelConfig>,
    /// `uname -m`: `x86_64`, `aarch64`. Empty in results written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub machine: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThpInfo {
    pub enabled: String,
    pub defrag: String,
    pub shmem_enabled: String,
    /// The PMD (huge page) size: 2 MiB with 4 KiB base pages, 32 MiB with 16 KiB, 512 MiB
    /// with 64 KiB.
    pub pmd_size_bytes: u64,
    /// mTHP size in kB -> the selected value of `hugepages-<size>kB/enabled`.
    pub mthp: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuInfo {
    pub cpu: usize,
    pub core_id: Option<u32>,
    pub package_id: Option<u32>,
    pub numa_node: Option<u32>,
    pub smt_siblings: Vec<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub stddev: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// Index of this repeat, from 0.
    pub repeat: usize,
    /// Wall time of the measured phase (barrier release to the last worker's stop).
    pub duration_ns: u64,
    pub ops: u64,
    pub bytes: u64,
    /// The I/O's own rate: per worker, ops (bytes) over its time in the timed calls
    /// (`io_time_ns`), summed over the workers. Verify and bookkeeping do not count.
    pub ops_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Time the workers spent inside the timed I/O calls, summed over the workers.
    #[serde(default)]
    pub io_time_ns: u64,
    /// Time the workers spent on verify (stamp, poison, read-back, check), summed. At a
    /// queued engine's depth > 1 a slot is stamped or checked while others are in
    /// flight, and that time counts here and in `io_time_ns` both.
    #[serde(default)]
    pub verify_time_ns: u64,
    /// Latency of one operation (one pread/pwrite, one vmsplice+drain), nanoseconds.
    pub latency_ns: LatencySummary,
    /// The merged latency histogram of all workers: HdrHistogram V2 + DEFLATE, base64.
    pub histogram: String,
    /// Per-second interval histograms (V2 + DEFLATE, base64) for the interval-log export.
    #[serde(default)]
    pub interval_histograms: Vec<IntervalHistogram>,
    /// Per 100 ms: ops, bytes, latency percentiles, and disturber actions.
    #[serde(default)]
    pub timeline: Vec<TimelinePoint>,
    pub threads: Vec<ThreadResult>,
    pub buffer: BufferReport,
    /// Delta over the measured phase of /proc/vmstat's thp_*, pswp*, swp*, compact_*,
    /// pgfault and pgmajfault counters.
    pub vmstat_delta: BTreeMap<String, i64>,
    pub verify: VerifyReport,
    /// One entry per disturber thread (empty without disturbers).
    #[serde(default)]
    pub disturbers: Vec<DisturberReport>,
    /// The I/O target and the region of it the run used (absent for the gup engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetReport>,
    /// Lock contention seen through lock:contention_begin/end, when traced.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "kernel::serialize_lock_contention"
    )]
    pub lock_contention: Option<LockReport>,
    /// Per worker thread perf counters: thread label -> counter -> value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf: Option<PerfReport>,
    /// get_user_pages cost figures (gup engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gup: Option<GupReport>,
    /// GUP fast-path fallbacks to the locked slow path by the run's threads, from
    /// mmap_lock:mmap_lock_start_locking callchains (traced with lock_contention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gup_slow_path: Option<GupSlowPath>,
    /// uring engine: queue depth, registered buffers, requests submitted and punted to
    /// io-wq worker threads (io_uring:io_uring_queue_async_work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_uring: Option<IoUringReport>,
    /// This run was cut short by a signal.
    #[serde(default)]
    pub interrupted: bool,
    /// Stretches of the measured phase in which the process did not run (SIGSTOP, a
    /// frozen cgroup, a paused VM) or the system was suspended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalls: Vec<Stall>,
    /// Which CPUs the workers and the disturbers/collectors ran on, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Load, steal and other tasks' time on the workers' CPUs during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_activity: Option<HostActivity>,
}

/// How a run was laid out on the machine's cores.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Placement {
    /// The worker CPUs as a list, and why these (`cpus`, `threads`, the topology).
    pub worker_cpus: String,
    pub why: String,
    /// CPUs the disturbers, collectors and the main thread were allowed on.
    pub housekeeping_cpus: String,
    /// `free cores`, `SMT siblings of workers`, or `none free: ...`.
    pub housekeeping: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TargetReport {
    /// `file (created)`, `file (existing)`, `block device`, `zram`.
    pub kind: String,
    /// The target thpbench used: the path the user named, resolved once.
    pub path: String,
    /// The path as given, where it was a symlink that resolved to `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    /// Bytes the target holds.
    pub size_bytes: u64,
    /// Bytes of it the I/O used, [0, region_bytes): less than size_bytes only when the
    /// workload's `size` narrowed it.
    pub region_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SharedFolioRatio {
    /// The parameters both cases share, e.g. `engine=gup threads=2 buffer=thp`.
    pub label: String,
    pub private_ns_per_op: f64,
    pub shared_ns_per_op: f64,
    /// shared / private mean latency per op.
    pub ratio: f64,
    /// 95% confidence interval of the ratio from the repeats (paired by index), when
    /// there are at least two.
    pub ci95: Option<[f64; 2]>,
    pub repeats: usize,
}

/// What pinning costs on the direct-I/O path for one pair of sweep cases: mean latency per
/// I/O with per-I/O pins (FOLL_PIN on submission, unpin on completion) minus with
/// registered buffers (pinned once), per I/O and per base page of the I/O
/// (`system.base_page_bytes`: 4 KiB on x86-64; 16 KiB pages make per-page figures 4x
/// larger for the same per-byte cost).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PinCost {
    /// The parameters both cases share, e.g. `bs=10M buffer=thp`.
    pub label: String,
    pub bs_bytes: u64,
    /// Time per I/O with per-I/O pins, ns (mean over the repeats): see `basis`.
    pub pinned_ns_per_io: f64,
    /// Time per I/O with registered buffers, ns.
    pub fixed_ns_per_io: f64,
    /// pinned_ns_per_io - fixed_ns_per_io.
    pub ns_per_io: f64,
    /// ns_per_io / (bs_bytes / system.base_page_bytes): per base page.
    pub ns_per_page: f64,
    /// 95% confidence interval of ns_per_io, when each case has at least two repeats:
    /// of the per-repeat differences when `paired`, else Welch's.
    pub ci95_ns_per_io: Option<[f64; 2]>,
    pub ci95_ns_per_page: Option<[f64; 2]>,
    /// pinned_ns_per_io / fixed_ns_per_io.
    pub ratio: f64,
    /// Repeats of the per-I/O-pinned case and of the registered-buffer case.
    pub repeats: [usize; 2],
    /// What the per-I/O figures are: `time per I/O (I/O time over I/Os)`; empty in
    /// results before 2026-12-02, whose figures are mean latencies (at queue depth > 1
    /// about depth times the service time).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basis: String,
    /// The two cases ran alternately within each repeat, on one target and buffer, and
    /// the interval is that of the paired differences.
    #[serde(default)]
    pub paired: bool,
    /// Mean latency with per-I/O pins minus with registered buffers, ns: at queue depth 1
    /// about `ns_per_io`; at depth N it holds the pin's cost to every I/O queued behind
    /// (about N times, Little's law), which is what an application waiting on one I/O
    /// sees. Absent in results before 2026-12-02.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_diff_ns: Option<f64>,
}

/// One setting of a sweep: which parameters differ from the workload, and its runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SweepCase {
    /// Short label, e.g. `threads=4` or `engine=gup buffer=thp share=shared threads=2`.
    pub label: String,
    /// The swept parameters and their values in this case (workload keys).
    pub params: crate::workload::SweepParams,
    pub runs: Vec<RunResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IntervalHistogram {
    /// Start of the interval, ns since the measured phase began.
    pub start_ns: u64,
    pub duration_ns: u64,
    /// V2 + DEFLATE, base64.
    pub histogram: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    /// Start of the interval, ms since the measured phase began.
    pub t_ms: u64,
    pub ops: u64,
    pub bytes: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    /// Disturber name -> actions completed in this interval.
    #[serde(default)]
    pub disturb_actions: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThreadResult {
    pub cpu: usize,
    /// The worker CPU's core_id, physical package and NUMA node (sysfs topology).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_node: Option<u32>,
    /// Share of the present pages of this worker's part of a private buffer that are on
    /// its node (move_pages), before and after the measured run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_local_before: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_local_after: Option<f64>,
    pub ops: u64,
    pub bytes: u64,
    #[serde(default)]
    pub io_time_ns: u64,
    #[serde(default)]
    pub verify_time_ns: u64,
    pub latency_ns: LatencySummary,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BufferReport {
    /// `thp`, `4k`, `mthp:64K`, `hugetlb`
    pub backing: crate::workload::Backing,
    /// `private` or `shared`
    pub share: crate::workload::Share,
    pub bytes: u64,
    /// Folio size asked for (bytes); for `4k` (base pages) the base page size:
    /// 4096 on x86-64, 16384 on a 16K arm64 kernel.
    pub folio_bytes: u64,
    /// Share of the buffer in folios of at least `folio_bytes`, before the measured run.
    pub thp_coverage_before: f64,
    pub thp_coverage_after: f64,
    /// How the coverage was measured: `smaps` (AnonHugePages) or `kpageflags`.
    pub coverage_method: String,
    /// The workload's `numa` placement, and the buffer's present pages per node
    /// (`node0` -> pages) before and after the measured run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa: Option<crate::workload::Numa>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub numa_nodes_before: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub numa_nodes_after: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VerifyReport {
    pub enabled: bool,
    /// What each read's check covered (`pages` or `full`); absent in results made before
    /// the levels existed, whose checks were all `full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<crate::workload::VerifyLevel>,
    /// Bytes compared against the pattern (at the `pages` level, 16 per base page read).
    pub bytes_checked: u64,
    pub mismatches: u64,
    /// The first mismatches found (at most 16), for a person to look at.
    #[serde(default)]
    pub first_mismatches: Vec<Mismatch>,
    /// The random nonce of the target's fill, carried in every sector's tag.
    #[serde(default)]
    pub nonce: u32,
    /// The read of the whole region after the measured phase (write workloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_pass: Option<FinalVerify>,
    /// Written blocks read back and checked in the measured phase (one per measured
    /// write), outside the timed calls: reads interleaved with the writes, which a run
    /// with verify off does not have. 0 in results made before it was kept.
    #[serde(default)]
    pub readbacks: u64,
}

impl VerifyReport {
    /// Data went wrong: in the run's own checks or in the final pass.
    pub fn corrupted(&self) -> bool {
        self.mismatches > 0 || self.final_pass.as_ref().is_some_and(|f| f.mismatches > 0)
    }
}

/// A stretch of the measured phase that measured a pause, not the I/O.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stall {
    /// `stopped`: the main thread woke late and no worker completed an operation (the
    /// process was not run); `suspended`: CLOCK_BOOTTIME ran on while CLOCK_MONOTONIC
    /// stood still.
    pub kind: String,
    /// Start, ms since the measured phase began.
    pub t_ms: u64,
    pub length_ns: u64,
    /// CPU time the whole process used over the main thread's late sleep (which holds
    /// the stall): near 0 for a stopped process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_cpu_ns: Option<u64>,
    /// Kept as measured (`--keep-stalled`) instead of making the result invalid.
    #[serde(default)]
    pub kept: bool,
}

/// The read of the whole I/O region after the measured phase (write workloads with
/// verify): every block against the generation the run last wrote there.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FinalVerify {
    pub blocks_checked: u64,
    pub bytes_checked: u64,
    /// Blocks with at least one wrong sector, and the wrong 512 B sectors.
    pub mismatched_blocks: u64,
    pub mismatches: u64,
    /// The lowest mismatched blocks (at most 16): where, and what was found.
    #[serde(default)]
    pub first_mismatches: Vec<FinalMismatch>,
    /// Wall time of the pass (not part of the measured phase).
    pub time_ns: u64,
    /// Why the pass did not cover the region (interrupted), when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FinalMismatch {
    /// Offset in the target of the first differing byte.
    pub offset: u64,
    /// The generation the run last wrote to the block (0: only the fill).
    pub generation: u32,
    /// Hex of up to 16 bytes from the first differing byte on.
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Mismatch {
    /// Offset in the target of the first differing byte.
    pub offset: u64,
    pub thread_cpu: usize,
    /// Hex of up to 16 bytes from the first differing byte on.
    pub expected: String,
    pub actual: String,
    /// ms since the measured phase began.
    pub t_ms: u64,
    /// Disturber actions in the 100 ms interval of the mismatch.
    #[serde(default)]
    pub disturb_actions: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DisturberReport {
    /// e.g. `split:cold`, `collapse`, `swap-out`, `fork`
    pub name: String,
    pub cpu: Option<usize>,
    pub actions: u64,
    /// Actions seen to change the folio of the page they acted on (pagemap +
    /// kpageflags before and after each); absent where that cannot be seen (not root)
    /// or the disturber changes no folio one action at a time (mprotect, fork, pressure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<u64>,
    pub errors: u64,
    pub last_error: Option<String>,
    /// Latency of the disturber's own calls (one madvise, one fork round).
    pub latency_ns: LatencySummary,
    /// The same as a histogram: V2 + DEFLATE, base64.
    #[serde(default)]
    pub histogram: String,
    /// vmstat counters this disturber is expected to move, and whether any moved.
    pub expected_counters: Vec<String>,
    pub counters_moved: bool,
    /// The groups of expected_counters that did not move.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters_not_moved: Vec<String>,
    /// Extra figures a disturber reports (fork: `ForkFigures`, read through `fork()`).
    #[serde(default)]
    pub extra: BTreeMap<String, u64>,
    /// The buffers were registered (long-term pinned) and the disturber acted without its
    /// effect: the pin defeated it (not a broken run; see `pin_evidence`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub defeated_by_pin: bool,
    /// With `defeated_by_pin`: the vmstat deltas that show what happened instead
    /// (thp_split_page_failed, mthp_<size>kB_split_failed, pswpout without pswpin, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pin_evidence: BTreeMap<String, i64>,
    /// What the disturber's own verdict can and cannot see (fork: a lower bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_scope: Option<String>,
}

/// The fork disturber's figures: what its report's `extra` holds, read and written here
/// only, so that no reader looks them up by key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForkFigures {
    /// Children forked, each holding a copy of the buffer for a while.
    pub children: u64,
    /// Children that saw their buffer change: data meant for the parent reached them.
    pub saw_parent_data: u64,
    /// Children that gave no verdict (killed, or their message lost).
    pub failures: u64,
    /// The signal that last killed a child before its verdict (0: none did).
    pub last_signal: u64,
    /// Sectors that held verify's poison at the children's first look, and of them
    /// those filled in the child's copy by the end of its hold.
    pub inflight_sectors: u64,
    pub inflight_landed: u64,
}

impl ForkFigures {
    /// The keys in `extra`, as results have always written them.
    const CHILDREN: &'static str = "children";
    const SAW_PARENT_DATA: &'static str = "child_saw_parent_data";
    const FAILURES: &'static str = "child_failures";
    const LAST_SIGNAL: &'static str = "child_last_signal";
    const INFLIGHT_SECTORS: &'static str = "child_inflight_sectors";
    const INFLIGHT_LANDED: &'static str = "child_inflight_landed";

    pub fn to_extra(&self) -> BTreeMap<String, u64> {
        [
            (Self::CHILDREN, self.children),
            (Self::SAW_PARENT_DATA, self.saw_parent_data),
            (Self::FAILURES, self.failures),
            (Self::LAST_SIGNAL, self.last_signal),
            (Self::INFLIGHT_SECTORS, self.inflight_sectors),
            (Self::INFLIGHT_LANDED, self.inflight_landed),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A fork disturber's figures from its `extra`; `None` when it holds none of them
    /// (another disturber). A figure an older result lacks reads as 0.
    pub fn from_extra(extra: &BTreeMap<String, u64>) -> Option<ForkFigures> {
        let keys = [
            Self::CHILDREN,
            Self::SAW_PARENT_DATA,
            Self::FAILURES,
            Self::LAST_SIGNAL,
            Self::INFLIGHT_SECTORS,
            Self::INFLIGHT_LANDED,
        ];
        if !keys.iter().any(|k| extra.contains_key(*k)) {
            return None;
        }
        let get = |k: &str| extra.get(k).copied().unwrap_or(0);
        Some(ForkFigures {
            children: get(Self::CHILDREN),
            saw_parent_data: get(Self::SAW_PARENT_DATA),
            failures: get(Self::FAILURES),
            last_signal: get(Self::LAST_SIGNAL),
            inflight_sectors: get(Self::INFLIGHT_SECTORS),
            inflight_landed: get(Self::INFLIGHT_LANDED),
        })
    }
}

impl DisturberReport {
    /// The fork disturber's figures, when this is one.
    pub fn fork(&self) -> Option<ForkFigures> {
        ForkFigures::from_extra(&self.extra)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Unavailable {
    pub what: String,
    pub reason: String,
    pub remedy: String,
}

impl Unavailable {
    pub fn new(
        what: impl Into<String>,
        reason: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Unavailable {
            what: what.into(),
            reason: reason.into(),
            remedy: remedy.into(),
        }
    }
}

impl BenchResult {
    /// A result with no runs yet, valid until told otherwise, started now.
    pub fn new(system: SystemInfo, workload: Workload) -> BenchResult {
        BenchResult {
            schema_version: SCHEMA_VERSION,
            tool: Tool::default(),
            started_at: crate::util::utc_now_rfc3339(),
            system,
            workload,
            runs: Vec::new(),
            baseline_runs: Vec::new(),
            sweep: Vec::new(),
            shared_folio: Vec::new(),
            pin_cost: Vec::new(),
            unavailable: Vec::new(),
            valid: true,
            invalid_reasons: Vec::new(),
            interrupted: false,
            signal_in_teardown: false,
            mock: None,
        }
    }

    pub fn load(path: &Path) -> Result<BenchResult> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading result file {}", path.display()))?;
        let result: BenchResult = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a thpbench result (schema version {SCHEMA_VERSION})",
                path.display()
            )
        })?;
        if result.schema_version > SCHEMA_VERSION {
            anyhow::bail!(
                "{} has schema version {}, newer than this thpbench understands ({SCHEMA_VERSION}); upgrade thpbench",
                path.display(),
                result.schema_version
            );
        }
        Ok(result)
    }

    /// Writes the result atomically: a temporary file in the same directory, then rename,
    /// so a reader never sees half a result and an interrupted write loses nothing older.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        crate::util::write_atomic(path, text.as_bytes())
    }

    /// The provenance this result lacks because it was written by an older thpbench
    /// (fields absent from the file, not ones this machine could not give).
    pub fn missing_provenance(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.tool.commit.is_empty() {
            out.push("thpbench commit");
        }
        // Fields this machine could not give are in `not_recorded`, with why; the
        // ones absent without a word are the older writer's.
        let said = |what: &str| self.system.not_recorded.iter().any(|n| n.starts_with(what));
        let k = &self.system.kernel;
        for (absent, what) in [
            (k.build_id.is_none(), "kernel build-id"),
            (k.config.is_none(), "kernel config"),
            (k.compiler.is_none(), "kernel compiler"),
            (
                self.system.machine.is_none(),
                "machine (CPU model, microcode, hypervisor, memory)",
            ),
            (self.system.hostname.is_empty(), "hostname"),
            (
                self.system.mm.is_none(),
                "zswap, numa_balancing, khugepaged and DAMON settings",
            ),
        ] {
            if absent && !said(what) {
                out.push(what);
            }
        }
        if self.all_runs().next().is_some()
            && self.all_runs().all(|v| v.run.host_activity.is_none())
        {
            out.push("load and steal time during the runs");
        }
        out
    }

    /// Short label for tables and legends: kernel release and workload name.
    pub fn label(&self) -> String {
        format!("{} {}", self.system.kernel.release, self.workload.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_figures_are_read_back_from_the_keys_they_are_written_under() {
        let fork = ForkFigures {
            children: 7,
            saw_parent_data: 1,
            failures: 2,
            last_signal: 7,
            inflight_sectors: 40,
            inflight_landed: 3,
        };
        let extra = fork.to_extra();
        assert_eq!(extra["children"], 7);
        assert_eq!(extra["child_saw_parent_data"], 1);
        assert_eq!(ForkFigures::from_extra(&extra), Some(fork));
        // Another disturber's figures are not a fork's; an older fork's missing ones are 0.
        let pressure = BTreeMap::from([("reclaimed".to_string(), 5)]);
        assert_eq!(ForkFigures::from_extra(&pressure), None);
        let old = BTreeMap::from([("children".to_string(), 3)]);
        assert_eq!(
            ForkFigures::from_extra(&old),
            Some(ForkFigures {
                children: 3,
                ..Default::default()
            })
        );
    }

    /// Every key a committed result holds under `path`, with its value, is also in
    /// `typed` (the same subtree written back from the typed schema).
    fn assert_kept(original: &serde_json::Value, typed: &serde_json::Value, path: &str) {
        match original {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let Some(t) = typed.get(k) else {
                        panic!("{path}.{k} is lost by the typed schema");
                    };
                    assert_kept(v, t, &format!("{path}.{k}"));
                }
            }
            serde_json::Value::Array(items) => {
                let typed = typed.as_array().unwrap_or_else(|| panic!("{path}"));
                assert_eq!(items.len(), typed.len(), "{path}");
                for (i, (v, t)) in items.iter().zip(typed).enumerate() {
                    assert_kept(v, t, &format!("{path}[{i}]"));
                }
            }
            _ => assert_eq!(original, typed, "{path}"),
        }
    }

    #[test]
    fn a_result_without_a_base_page_size_loads_as_4k_and_a_new_one_keeps_it() {
        let old = r#"{"kernel": {"release": "6.1", "version": "1 SMP", "cmdline": ""},
            "lockdown": "none", "thp": {"enabled": "madvise", "defrag": "madvise",
            "shmem_enabled": "never", "pmd_size_bytes": 2097152, "mthp": {}}, "cpus": []}"#;
        let sys: SystemInfo = serde_json::from_str(old).unwrap();
        assert_eq!(
            (sys.base_page_bytes, sys.kernel.machine.as_str()),
            (4096, "")
        );
        let arm = SystemInfo {
            base_page_bytes: 16 << 10,
            thp: ThpInfo {
                pmd_size_bytes: 32 << 20,
                ..sys.thp.clone()
            },
            kernel: KernelInfo {
                machine: "aarch64".into(),
                ..sys.kernel.clone()
            },
            ..sys
        };
        let back: SystemInfo = serde_json::from_str(&serde_json::to_string(&arm).unwrap()).unwrap();
        assert_eq!(back, arm);
    }

    #[test]
    fn every_committed_result_loads_and_keeps_its_kernel_reports() {
        let files = crate::test_support::kept_results();
        assert!(files.len() >= 10, "{} result files found", files.len());
        for file in files {
            let loaded = BenchResult::load(&file).unwrap_or_else(|e| panic!("{e:#}"));
            let raw: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let written = serde_json::to_value(&loaded).unwrap();
            let runs = |v: &serde_json::Value| -> Vec<serde_json::Value> {
                let mut out = Vec::new();
                for key in ["runs", "baseline_runs"] {
                    out.extend(v[key].as_array().cloned().unwrap_or_default());
                }
                for case in v["sweep"].as_array().cloned().unwrap_or_default() {
                    out.extend(case["runs"].as_array().cloned().unwrap_or_default());
                }
                out
            };
            let (raw_runs, written_runs) = (runs(&raw), runs(&written));
            assert_eq!(raw_runs.len(), written_runs.len(), "{}", file.display());
            assert_eq!(
                raw_runs.len(),
                loaded.all_runs().count(),
                "{}",
                file.display()
            );
            for (r, w) in raw_runs.iter().zip(&written_runs) {
                for key in ["lock_contention", "perf", "gup"] {
                    assert_kept(&r[key], &w[key], &format!("{} {key}", file.display()));
                }
            }
        }
    }
}
