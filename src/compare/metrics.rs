//! The figures one run offers, each with a definition: unit, direction, category.

use serde::Serialize;

use std::collections::BTreeMap;

use crate::result::{DisturberReport, GupReport, GupSlowPath, LockReport, PerfReport, RunResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
    /// Counters that prove conditions (splits, swap-outs): a change is reported, never
    /// judged.
    Neutral,
}

/// How a metric's values are stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    OpsPerSec,
    /// Stored in bytes/s, shown in MiB/s.
    BytesPerSec,
    /// Stored in ns, shown in us.
    Nanoseconds,
    Count,
    /// A per-operation figure (perf counters divided by ops).
    PerOp,
    /// A share in percent.
    Percent,
    /// A dimensionless figure (ratios, gup figures whose unit the key names).
    Plain,
}

impl Unit {
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::OpsPerSec => "ops/s",
            Unit::BytesPerSec => "MiB/s",
            Unit::Nanoseconds => "us",
            Unit::Count => "",
            Unit::PerOp => "",
            Unit::Percent => "%",
            Unit::Plain => "",
        }
    }

    /// The stored value in display units.
    pub fn scale(self, v: f64) -> f64 {
        match self {
            Unit::BytesPerSec => v / (1024.0 * 1024.0),
            Unit::Nanoseconds => v / 1000.0,
            _ => v,
        }
    }

    pub fn decimals(self) -> usize {
        match self {
            Unit::OpsPerSec | Unit::Count => 1,
            _ => 2,
        }
    }
}

/// Keys of the fork figures: the integrity row counts children out of all children.
pub const FORK_CHILDREN: &str = "disturbers.fork.children";
pub const FORK_CHILDREN_SAW_CHANGE: &str = "disturbers.fork.child_saw_parent_data";

/// Where a metric comes from; orders the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Throughput,
    Latency,
    Lock,
    Gup,
    Perf,
    Conditions,
    Integrity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDef {
    /// Stable identifier, e.g. `latency_ns.p99`, `vmstat_delta.thp_split_page`.
    pub key: String,
    /// What a person reads in the table.
    pub label: String,
    pub unit: Unit,
    pub direction: Direction,
    pub category: Category,
}

impl MetricDef {
    fn new(
        key: impl Into<String>,
        label: impl Into<String>,
        unit: Unit,
        direction: Direction,
        category: Category,
    ) -> Self {
        MetricDef {
            key: key.into(),
            label: label.into(),
            unit,
            direction,
            category,
        }
    }
}

/// vmstat counters shown even when every run has them at 0 are none: a row of zeros says
/// nothing. These are the ones that prove conditions, listed first when they moved.
const CONDITION_COUNTERS: &[&str] = &[
    "thp_split_page",
    "thp_split_pmd",
    "thp_deferred_split_page",
    "thp_collapse_alloc",
    "thp_collapse_alloc_failed",
    "thp_swpout",
    "thp_swpout_fallback",
    "pswpout",
    "pswpin",
    "thp_fault_alloc",
    "thp_fault_fallback",
];

/// Every figure one run offers, with its definition.
pub fn run_metrics(run: &RunResult) -> Vec<(MetricDef, f64)> {
    use Category::*;
    use Direction::*;
    let mut out = vec![
        (
            MetricDef::new(
                "ops_per_sec",
                "ops/s",
                Unit::OpsPerSec,
                HigherIsBetter,
                Throughput,
            ),
            run.ops_per_sec,
        ),
        (
            MetricDef::new(
                "bytes_per_sec",
                "throughput",
                Unit::BytesPerSec,
                HigherIsBetter,
                Throughput,
            ),
            run.bytes_per_sec,
        ),
    ];
    let l = &run.latency_ns;
    if l.count > 0 {
        for (key, label, v) in [
            ("p50", "latency p50", l.p50),
            ("p99", "latency p99", l.p99),
            ("p999", "latency p99.9", l.p999),
            ("max", "latency max", l.max),
        ] {
            out.push((
                MetricDef::new(
                    format!("latency_ns.{key}"),
                    label,
                    Unit::Nanoseconds,
                    LowerIsBetter,
                    Latency,
                ),
                v as f64,
            ));
        }
    }
    if let Some(lock) = &run.lock_contention {
        lock_metrics(lock, &mut out);
    }
    if let Some(g) = run.gup_slow_path.as_ref().filter(|g| g.available) {
        gup_slow_path_metrics(g, &mut out);
    }
    if let Some(gup) = &run.gup {
        gup_metrics(gup, &mut out);
    }
    if let Some(perf) = &run.perf {
        perf_metrics(perf, run.ops, run.io_uring.is_some(), &mut out);
    }
    vmstat_metrics(&run.vmstat_delta, &mut out);
    disturber_metrics(&run.disturbers, &mut out);
    out.push((
        MetricDef::new(
            "buffer.thp_coverage_after",
            "buffer coverage after",
            Unit::Percent,
            Neutral,
            Conditions,
        ),
        run.buffer.thp_coverage_after * 100.0,
    ));
    if run.verify.enabled {
        out.push((
            MetricDef::new(
                "verify.mismatches",
                "verify mismatches",
                Unit::Count,
                LowerIsBetter,
                Integrity,
            ),
            // The final pass's mismatches are corrupted data too.
            (run.verify.mismatches + run.verify.final_pass.as_ref().map_or(0, |f| f.mismatches))
                as f64,
        ));
    }
    out
}

/// GUP-fast's fallbacks to the mmap_lock slow path.
fn gup_slow_path_metrics(g: &GupSlowPath, out: &mut Vec<(MetricDef, f64)>) {
    use Category::*;
    use Direction::*;
    for (key, label, unit, v) in [
        (
            "count",
            "GUP slow-path fallbacks",
            Unit::Count,
            g.count as f64,
        ),
        (
            "per_1000_io",
            "GUP slow-path fallbacks per 1000 I/Os",
            Unit::Plain,
            g.per_1000_io,
        ),
        (
            "wait_ns",
            "GUP slow-path mmap_lock wait",
            Unit::Nanoseconds,
            g.wait_ns as f64,
        ),
    ] {
        out.push((
            MetricDef::new(
                format!("gup_slow_path.{key}"),
                label,
                unit,
                LowerIsBetter,
                Gup,
            ),
            v,
        ));
    }
}

/// The vmstat counters that moved: condition counters first, then the rest.
fn vmstat_metrics(vmstat_delta: &BTreeMap<String, i64>, out: &mut Vec<(MetricDef, f64)>) {
    use Category::*;
    use Direction::*;
    let mut counters: Vec<(&String, &i64)> = vmstat_delta.iter().collect();
    // Condition counters first, in the order above, then the rest alphabetically.
    counters.sort_by_key(|(name, _)| {
        (
            CONDITION_COUNTERS
                .iter()
                .position(|c| c == name)
                .unwrap_or(usize::MAX),
            (*name).clone(),
        )
    });
    for (name, v) in counters {
        out.push((
            MetricDef::new(
                format!("vmstat_delta.{name}"),
                name.clone(),
                Unit::Count,
                Neutral,
                Conditions,
            ),
            *v as f64,
        ));
    }
}

/// Each disturber's actions, and what fork children saw.
fn disturber_metrics(disturbers: &[DisturberReport], out: &mut Vec<(MetricDef, f64)>) {
    use Category::*;
    use Direction::*;
    for d in disturbers {
        if let Some(fork) = d.fork() {
            let (children, saw) = (fork.children, fork.saw_parent_data);
            out.push((
                MetricDef::new(
                    FORK_CHILDREN,
                    "fork children",
                    Unit::Count,
                    Neutral,
                    Conditions,
                ),
                children as f64,
            ));
            out.push((
                MetricDef::new(
                    FORK_CHILDREN_SAW_CHANGE,
                    "fork children that saw their buffer change",
                    Unit::Count,
                    LowerIsBetter,
                    Integrity,
                ),
                saw as f64,
            ));
        }
        out.push((
            MetricDef::new(
                format!("disturbers.{}.actions", d.name),
                format!("{} actions", d.name),
                Unit::Count,
                Neutral,
                Conditions,
            ),
            d.actions as f64,
        ));
    }
}

/// `lock_contention`: the total wait and the wait per caller (the tracer keeps the top
/// 20 callers of each run; the table shows the top few).
fn lock_metrics(lock: &LockReport, out: &mut Vec<(MetricDef, f64)>) {
    if !lock.available {
        return;
    }
    let lock_row = |key: String, label: String, unit: Unit, v: u64| {
        (
            MetricDef::new(key, label, unit, Direction::LowerIsBetter, Category::Lock),
            v as f64,
        )
    };
    out.push(lock_row(
        "lock_contention.total_wait_ns".into(),
        "lock wait total".into(),
        Unit::Nanoseconds,
        lock.total_wait_ns,
    ));
    // Absent from results written before the run's own share was kept.
    if let Some(own) = lock.run_total_wait_ns {
        out.push(lock_row(
            "lock_contention.run_total_wait_ns".into(),
            "lock wait, thpbench's threads".into(),
            Unit::Nanoseconds,
            own,
        ));
    }
    out.push(lock_row(
        "lock_contention.events".into(),
        "lock contentions".into(),
        Unit::Count,
        lock.events,
    ));
    for c in &lock.by_caller {
        out.push(lock_row(
            format!("lock_contention.by_caller.{}", c.caller),
            format!("lock wait {}", c.caller),
            Unit::Nanoseconds,
            c.total_wait_ns,
        ));
    }
}

/// `perf`: every counter per operation (summed over threads), so that runs of
/// different lengths compare. `perf.cpu` is the CPU one I/O took: the worker's
/// task-clock, plus for uring its io-wq threads', which do the device work of punted
/// requests. A uring worker's own task-clock is keyed apart
/// (`perf.task-clock.submitter`), so that it never stands beside another engine's
/// whole cost; a uring result without io-wq time (before it was read) has no `perf.cpu`.
fn perf_metrics(perf: &PerfReport, ops: u64, uring: bool, out: &mut Vec<(MetricDef, f64)>) {
    let Some(per_op) = perf.per_op(ops) else {
        return;
    };
    let cpu = match (
        per_op.get(PerfReport::TASK_CLOCK),
        per_op.get(PerfReport::IO_WQ_TASK_CLOCK),
    ) {
        (Some(t), Some(w)) => Some(t + w),
        (Some(t), None) if !uring => Some(*t),
        _ => None,
    };
    if let Some(cpu) = cpu {
        out.push((
            MetricDef::new(
                "perf.cpu",
                "CPU per op (worker and its io-wq threads)",
                Unit::PerOp,
                Direction::LowerIsBetter,
                Category::Perf,
            ),
            cpu,
        ));
    }
    for (name, per_op) in per_op {
        let (key, label) = if uring && name == PerfReport::TASK_CLOCK {
            (
                "perf.task-clock.submitter".to_string(),
                "task-clock per op (submitting thread only)".to_string(),
            )
        } else {
            (format!("perf.{name}"), format!("{name} per op"))
        };
        out.push((
            MetricDef::new(
                key,
                label,
                Unit::PerOp,
                Direction::LowerIsBetter,
                Category::Perf,
            ),
            per_op,
        ));
    }
}

/// `gup`: costs (ns) are better low; page counts, sizes and flags are conditions.
fn gup_metrics(gup: &GupReport, out: &mut Vec<(MetricDef, f64)>) {
    use Direction::{LowerIsBetter, Neutral};
    let mut rows: Vec<(String, f64, Direction)> = vec![
        ("pages_per_op".into(), gup.pages_per_op as f64, Neutral),
        (
            "pages_referenced".into(),
            gup.pages_referenced as f64,
            Neutral,
        ),
        ("pages_expected".into(), gup.pages_expected as f64, Neutral),
        ("ns_per_op".into(), gup.ns_per_op, LowerIsBetter),
        ("ns_per_page".into(), gup.ns_per_page, LowerIsBetter),
    ];
    if let Some(k) = &gup.kernel {
        rows.push((
            "kernel.nr_pages_per_call".into(),
            k.nr_pages_per_call as f64,
            Neutral,
        ));
        rows.push(("kernel.gup_flags".into(), k.gup_flags as f64, Neutral));
        for (bench, fig) in [("gup_fast", &k.gup_fast), ("pin_fast", &k.pin_fast)] {
            let Some(f) = fig else { continue };
            for (name, v, direction) in [
                ("calls", f.calls as f64, Neutral),
                ("pages", f.pages as f64, Neutral),
                ("get_usec", f.get_usec as f64, Neutral),
                ("put_usec", f.put_usec as f64, Neutral),
                ("get_ns_per_page", f.get_ns_per_page, LowerIsBetter),
                ("put_ns_per_page", f.put_ns_per_page, LowerIsBetter),
            ] {
                rows.push((format!("kernel.{bench}.{name}"), v, direction));
            }
        }
    }
    for (path, v, direction) in rows {
        out.push((
            MetricDef::new(
                format!("gup.{path}"),
                format!("gup {path}"),
                Unit::Plain,
                direction,
                Category::Gup,
            ),
            v,
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::measure::gup_slow::GupSlowPath;
    use crate::result::RunResult;

    #[test]
    fn gup_slow_path_figures_are_compared_when_taken() {
        let run = RunResult {
            gup_slow_path: Some(GupSlowPath {
                available: true,
                count: 15,
                per_1000_io: 46.0,
                wait_ns: 13_000_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = super::run_metrics(&run);
        let get = |k: &str| m.iter().find(|(d, _)| d.key == k).map(|(_, v)| *v);
        assert_eq!(get("gup_slow_path.count"), Some(15.0));
        assert_eq!(get("gup_slow_path.per_1000_io"), Some(46.0));
        assert_eq!(get("gup_slow_path.wait_ns"), Some(13e6));
        let unavailable = RunResult {
            gup_slow_path: Some(GupSlowPath::unavailable("not root")),
            ..Default::default()
        };
        assert!(super::run_metrics(&unavailable)
            .iter()
            .all(|(d, _)| !d.key.starts_with("gup_slow_path")));
    }

    fn run_with_perf(counters: &[(&str, u64)], uring: bool) -> RunResult {
        let c = counters.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        RunResult {
            ops: 1000,
            perf: Some(crate::result::PerfReport(
                [("cpu0".to_string(), c)].into_iter().collect(),
            )),
            io_uring: uring.then(crate::result::IoUringReport::default),
            ..Default::default()
        }
    }

    #[test]
    fn uring_cpu_per_op_counts_its_io_wq_threads_and_its_own_clock_stands_apart() {
        // The case: uring's submitting thread 9.0 us per 64 KiB read, its io-wq
        // threads 9.7 us; dio 18.7 us, all in the worker.
        let uring = run_with_perf(
            &[("task-clock", 9_000_000), ("io-wq-task-clock", 9_700_000)],
            true,
        );
        let dio = run_with_perf(&[("task-clock", 18_700_000)], false);
        let get = |r: &RunResult, k: &str| {
            super::run_metrics(r)
                .into_iter()
                .find(|(d, _)| d.key == k)
                .map(|(_, v)| v)
        };
        assert_eq!(get(&uring, "perf.cpu"), Some(18_700.0));
        assert_eq!(get(&dio, "perf.cpu"), Some(18_700.0));
        // The submitter's own clock never meets dio's task-clock in one row.
        assert_eq!(get(&uring, "perf.task-clock"), None);
        assert_eq!(get(&uring, "perf.task-clock.submitter"), Some(9_000.0));
        assert_eq!(get(&dio, "perf.task-clock"), Some(18_700.0));
        // An old uring result, without io-wq time, offers no CPU figure at all.
        let old = run_with_perf(&[("task-clock", 9_000_000)], true);
        assert_eq!(get(&old, "perf.cpu"), None);
    }
}
