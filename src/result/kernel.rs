//! The kernel-side reports a run carries: lock contention (`lock_contention`), the
//! workers' perf counters (`perf`) and the gup engine's reference costs (`gup`). They
//! live in the schema, below the measuring code that fills them (src/measure/), so that
//! every reader (summary, compare, export, plot) reads typed fields, never keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

/// The report stored under a run's `lock_contention` key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LockReport {
    pub available: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// `system-wide`: every task on every CPU, not only the run's threads. The `run_*`
    /// figures are the part of it taken by thpbench's own process (its workers and
    /// disturbers; forked children and kernel threads such as khugepaged or kswapd,
    /// which the run may well set to work, count as other tasks).
    pub scope: String,
    /// contention_begin events seen.
    pub events: u64,
    pub end_events: u64,
    /// Begin/end pairs, i.e. contentions with a known wait.
    pub paired: u64,
    pub unmatched_begin: u64,
    pub unmatched_end: u64,
    /// Samples the kernel dropped because the ring buffers were full.
    pub lost_samples: u64,
    pub total_wait_ns: u64,
    /// With lost samples: `lower`, the totals are a lower bound (pairs around a loss are
    /// dropped, contentions whose events were lost are missing). Absent without loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals_bound: Option<String>,
    /// Begin/end pairs dropped because a ring lost samples during their span.
    #[serde(default)]
    pub dropped_near_loss: u64,
    /// Begin/end pairs wholly outside the measured window (not counted in `paired`).
    #[serde(default)]
    pub outside_window: u64,
    /// Tasks of thpbench's own process with at least one paired contention.
    #[serde(default)]
    pub run_tasks: u64,
    /// Paired contentions and their wait taken by thpbench's own threads.
    #[serde(default)]
    pub run_paired: u64,
    /// None in results written before thpbench kept its own threads' share apart (then
    /// `run_paired` and `run_tasks` are absent too, and read as 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_total_wait_ns: Option<u64>,
    /// Top 20 callers by total wait.
    pub by_caller: Vec<CallerStat>,
    /// Lock type -> {count, total_wait_ns, max_wait_ns}.
    pub by_type: BTreeMap<String, TypeStat>,
    /// The waits of thpbench's own checking (the pagemap reads that confirm each
    /// disturber action), by the checking thread inside its checks: kept out of every
    /// figure above, so that those are the I/O's and the disturbers' contention.
    /// Absent in results written before it was kept apart (their totals include it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_checks: Option<OwnChecks>,
}

/// Contention waited out by thpbench's own checks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OwnChecks {
    pub paired: u64,
    pub total_wait_ns: u64,
    pub max_wait_ns: u64,
    /// Top 5 callers by total wait (run_* fields unused).
    pub by_caller: Vec<CallerStat>,
    /// Waits of other tasks (workers, disturbers, the rest of the system) that overlapped
    /// one of the checks: counted in the figures above, and possibly caused by the check
    /// (a fault or GUP waiting behind the pagemap read's mmap_lock). An upper bound on
    /// the waits the checks induced.
    #[serde(default)]
    pub overlapping_paired: u64,
    #[serde(default)]
    pub overlapping_wait_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CallerStat {
    pub caller: String,
    #[serde(rename = "type")]
    pub lock_type: String,
    pub count: u64,
    pub total_wait_ns: u64,
    pub max_wait_ns: u64,
    pub avg_wait_ns: u64,
    /// The part of count and total_wait_ns taken by thpbench's own threads.
    #[serde(default)]
    pub run_count: u64,
    #[serde(default)]
    pub run_total_wait_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TypeStat {
    pub count: u64,
    pub total_wait_ns: u64,
    pub max_wait_ns: u64,
}
impl LockReport {
    /// The report of a run whose contention could not be traced, with why.
    pub fn unavailable(reason: impl Into<String>) -> LockReport {
        LockReport {
            available: false,
            reason: reason.into(),
            ..LockReport::default()
        }
    }
}

/// `lock_contention` as the result stores it: the whole report when traced, only
/// `{available: false, reason}` when not (no zero counts that look measured).
pub(super) fn serialize_lock_contention<S: Serializer>(
    report: &Option<LockReport>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Untraced<'a> {
        available: bool,
        reason: &'a str,
    }
    match report {
        Some(r) if !r.available => Untraced {
            available: false,
            reason: &r.reason,
        }
        .serialize(s),
        other => other.serialize(s),
    }
}

/// `perf`: worker thread label (`cpu<N>`) -> counter name -> value over the measured loop.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct PerfReport(pub BTreeMap<String, BTreeMap<String, u64>>);

impl PerfReport {
    /// The worker thread's CPU time (ns): the counter the readers add up as CPU per op.
    pub const TASK_CLOCK: &'static str = "task-clock";
    /// The CPU time (ns) of the worker's io-wq threads (uring), which do the device work
    /// of punted requests.
    pub const IO_WQ_TASK_CLOCK: &'static str = "io-wq-task-clock";
    /// How many of the worker's io-wq threads exited during the run: a count of threads,
    /// not of events, whose time is lost (so `IO_WQ_TASK_CLOCK` is then a lower bound).
    pub const IO_WQ_EXITED: &'static str = "io-wq-exited";

    /// io-wq threads that exited during the run, over all workers.
    pub fn io_wq_exited(&self) -> u64 {
        self.0
            .values()
            .filter_map(|c| c.get(Self::IO_WQ_EXITED))
            .sum()
    }

    /// Every counter summed over the threads and divided by the run's operations, so
    /// that runs of different lengths compare; None for a run without operations.
    pub fn per_op(&self, ops: u64) -> Option<BTreeMap<String, f64>> {
        if ops == 0 {
            return None;
        }
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for counters in self.0.values() {
            // A count of threads, not of events per op.
            for (name, v) in counters.iter().filter(|(n, _)| *n != Self::IO_WQ_EXITED) {
                *sums.entry(name.clone()).or_default() += *v as f64;
            }
        }
        for sum in sums.values_mut() {
            *sum /= ops as f64;
        }
        Some(sums)
    }
}

/// `gup`: the gup engine's figures for one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GupReport {
    /// The engine that took the references (`gup`).
    pub engine: String,
    /// What the figure is: "vmsplice page references", a control (pipe handling
    /// included), not the direct-I/O pin cost. Absent in results before 2026-11-28.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub figure: String,
    /// Base pages one operation references (bs / system.base_page_bytes).
    pub pages_per_op: u64,
    /// Base pages the engine referenced; a difference from `pages_expected` makes the
    /// result invalid.
    pub pages_referenced: u64,
    /// ops x pages_per_op.
    pub pages_expected: u64,
    /// Mean latency of one operation.
    pub ns_per_op: f64,
    /// Per base page.
    pub ns_per_page: f64,
    /// The kernel's own benchmark on the same buffer after the run (gup_test).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelGupReport>,
}

/// One benchmark, summed over its calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KernelGupFigure {
    /// ioctl calls made (each walks the whole buffer once).
    pub calls: u64,
    /// Base pages referenced over all calls.
    pub pages: u64,
    pub get_usec: u64,
    pub put_usec: u64,
    pub get_ns_per_page: f64,
    pub put_ns_per_page: f64,
}

/// The result's `gup.kernel` value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KernelGupReport {
    pub available: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Base pages per get_user_pages_fast()/pin_user_pages_fast() call: the engine's pages
    /// per op.
    #[serde(default)]
    pub nr_pages_per_call: u32,
    /// FOLL_* flags passed (0: read references, as vmsplice takes).
    #[serde(default)]
    pub gup_flags: u32,
    /// get_user_pages_fast + put_page: FOLL_GET, what vmsplice does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gup_fast: Option<KernelGupFigure>,
    /// pin_user_pages_fast + unpin_user_pages: FOLL_PIN, what direct I/O does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_fast: Option<KernelGupFigure>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::RunResult;

    #[test]
    fn an_untraced_run_stores_only_why() {
        let run = RunResult {
            lock_contention: Some(LockReport::unavailable("lockdown")),
            ..Default::default()
        };
        let v = serde_json::to_value(&run).unwrap();
        assert_eq!(
            v["lock_contention"],
            serde_json::json!({"available": false, "reason": "lockdown"})
        );
        let back: RunResult = serde_json::from_value(v).unwrap();
        assert_eq!(back.lock_contention, run.lock_contention);
    }

    #[test]
    fn perf_per_op_sums_the_threads() {
        let perf: PerfReport = serde_json::from_value(serde_json::json!(
            {"cpu0": {"cycles": 300, "task-clock": 10}, "cpu1": {"cycles": 100}}
        ))
        .unwrap();
        let per_op = perf.per_op(4).unwrap();
        assert_eq!(per_op["cycles"], 100.0);
        assert_eq!(per_op["task-clock"], 2.5);
        assert!(perf.per_op(0).is_none());
    }

    /// The names readers look counters up by are the ones results hold.
    #[test]
    fn io_wq_figures_are_read_by_the_names_results_hold() {
        let perf: PerfReport = serde_json::from_value(serde_json::json!({
            "cpu0": {"task-clock": 10, "io-wq-task-clock": 30, "io-wq-exited": 1},
            "cpu1": {"task-clock": 10, "io-wq-task-clock": 10, "io-wq-exited": 2}
        }))
        .unwrap();
        assert_eq!(perf.io_wq_exited(), 3);
        let per_op = perf.per_op(10).unwrap();
        assert_eq!(per_op[PerfReport::TASK_CLOCK], 2.0);
        assert_eq!(per_op[PerfReport::IO_WQ_TASK_CLOCK], 4.0);
        // A count of threads, not of events per op.
        assert!(!per_op.contains_key(PerfReport::IO_WQ_EXITED));
    }
}

/// The run's `gup_slow_path` figures: GUP-fast fallbacks to the mmap_lock slow path by
/// the run's own threads (mmap_lock:mmap_lock_start_locking with kernel callchains).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GupSlowPath {
    pub available: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// mmap_lock acquisitions by the run's threads on the GUP slow path. Acquisitions, not
    /// fallbacks: a fallback whose fault dropped the lock and retried (VM_FAULT_RETRY, as
    /// a swap-in does) takes it again and counts again, so this is an upper bound on the
    /// number of fallbacks.
    pub count: u64,
    /// count per 1000 I/Os the workers issued in the window: measured I/Os and verify's
    /// read-backs (whose GUP falls back alike). Results before 2026-12-02 divided by
    /// the measured I/Os alone.
    pub per_1000_io: f64,
    /// Time from start_locking to acquire_returned, summed over those acquisitions
    /// whose acquire was the task's next event, with no ring loss in between.
    pub wait_ns: u64,
    /// Samples the kernel dropped (full ring buffers): the count is then a lower bound.
    pub lost_samples: u64,
    /// Fallbacks whose task's next event was not an acquire (it was lost): no wait.
    #[serde(default)]
    pub unpaired: u64,
    /// Fallbacks whose wait spans a stretch in which a ring lost samples: no wait.
    #[serde(default)]
    pub dropped_near_loss: u64,
    /// `lower` when samples were lost (count and wait_ns are then lower bounds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<String>,
}

impl GupSlowPath {
    pub fn unavailable(reason: impl Into<String>) -> GupSlowPath {
        GupSlowPath {
            reason: reason.into(),
            ..GupSlowPath::default()
        }
    }
}

/// The uring engine's queue and how its requests were issued: submitted, and punted to
/// io-wq worker threads (io_uring:io_uring_queue_async_work).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct IoUringReport {
    pub iodepth: u32,
    pub fixed_buffers: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub punted_to_io_wq: Option<u64>,
    /// punted_to_io_wq / submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub punted_share: Option<f64>,
    /// Why the punts were not counted (not root, no tracepoints, --no-perf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub punts_unavailable: Option<String>,
    /// The ring's IORING_SETUP_* flags beyond the defaults (fio's: COOP_TASKRUN,
    /// SINGLE_ISSUER, DEFER_TASKRUN, as far as the kernel takes them); empty in results
    /// from before 2026-12-03, whose rings had none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup_flags: Vec<String>,
}
