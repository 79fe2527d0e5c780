//! The figures one run offers, each with a definition: unit, direction, category.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::result::RunResult;

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
    if let Some(gup) = &run.gup {
        let mut leaves = Vec::new();
        numeric_leaves(gup, String::new(), &mut leaves);
        for (path, v) in leaves {
            let lower = path.to_ascii_lowercase();
            // Costs (ns, ratios of shared to private latency) are better low; anything
            // else (page counts, sizes) is a condition.
            let direction = if lower.contains("ns") || lower.contains("ratio") {
                LowerIsBetter
            } else {
                Neutral
            };
            out.push((
                MetricDef::new(
                    format!("gup.{path}"),
                    format!("gup {path}"),
                    Unit::Plain,
                    direction,
                    Gup,
                ),
                v,
            ));
        }
    }
    if let Some(perf) = &run.perf {
        perf_metrics(perf, run.ops, &mut out);
    }
    let mut counters: Vec<(&String, &i64)> = run.vmstat_delta.iter().collect();
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
    for d in &run.disturbers {
        if let (Some(&children), Some(&saw)) = (
            d.extra.get("children"),
            d.extra.get("child_saw_parent_data"),
        ) {
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
            run.verify.mismatches as f64,
        ));
    }
    out
}

/// `lock_contention`: the total wait and the wait per caller (the tracer keeps the top
/// 20 callers of each run; the table shows the top few).
fn lock_metrics(lock: &serde_json::Value, out: &mut Vec<(MetricDef, f64)>) {
    if lock.get("available").and_then(|v| v.as_bool()) == Some(false) {
        return;
    }
    if let Some(total) = lock.get("total_wait_ns").and_then(|v| v.as_f64()) {
        out.push((
            MetricDef::new(
                "lock_contention.total_wait_ns",
                "lock wait total",
                Unit::Nanoseconds,
                Direction::LowerIsBetter,
                Category::Lock,
            ),
            total,
        ));
    }
    // Absent from results written before the run's own share was kept.
    if let Some(own) = lock.get("run_total_wait_ns").and_then(|v| v.as_f64()) {
        out.push((
            MetricDef::new(
                "lock_contention.run_total_wait_ns",
                "lock wait, thpbench's threads",
                Unit::Nanoseconds,
                Direction::LowerIsBetter,
                Category::Lock,
            ),
            own,
        ));
    }
    if let Some(events) = lock.get("events").and_then(|v| v.as_f64()) {
        out.push((
            MetricDef::new(
                "lock_contention.events",
                "lock contentions",
                Unit::Count,
                Direction::LowerIsBetter,
                Category::Lock,
            ),
            events,
        ));
    }
    if let Some(callers) = lock.get("by_caller").and_then(|v| v.as_array()) {
        for c in callers {
            let (Some(caller), Some(wait)) = (
                c.get("caller").and_then(|v| v.as_str()),
                c.get("total_wait_ns").and_then(|v| v.as_f64()),
            ) else {
                continue;
            };
            out.push((
                MetricDef::new(
                    format!("lock_contention.by_caller.{caller}"),
                    format!("lock wait {caller}"),
                    Unit::Nanoseconds,
                    Direction::LowerIsBetter,
                    Category::Lock,
                ),
                wait,
            ));
        }
    }
}

/// `perf`: {thread: {counter: value}}. Summed over threads and divided by the run's
/// operations, so that runs of different lengths compare.
fn perf_metrics(perf: &serde_json::Value, ops: u64, out: &mut Vec<(MetricDef, f64)>) {
    let Some(threads) = perf.as_object() else {
        return;
    };
    if ops == 0 {
        return;
    }
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for counters in threads.values() {
        let Some(counters) = counters.as_object() else {
            continue;
        };
        for (name, v) in counters {
            if let Some(v) = v.as_f64() {
                *sums.entry(name.clone()).or_default() += v;
            }
        }
    }
    for (name, sum) in sums {
        out.push((
            MetricDef::new(
                format!("perf.{name}"),
                format!("{name} per op"),
                Unit::PerOp,
                Direction::LowerIsBetter,
                Category::Perf,
            ),
            sum / ops as f64,
        ));
    }
}

/// Numeric scalars of a JSON tree, keyed by their dotted path; arrays are skipped (their
/// entries have no stable identity across results).
fn numeric_leaves(v: &serde_json::Value, path: String, out: &mut Vec<(String, f64)>) {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.push((path, f));
            }
        }
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                numeric_leaves(child, p, out);
            }
        }
        _ => {}
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
}
