//! Statistics across results: `thpbench compare`.
//!
//! Results are grouped into columns by kernel build (`uname -r` and `uname -v`), workload
//! name and resolved workload parameters, and whether they count as evidence. The runs of
//! all files in a group are pooled as repeats. For every metric present the table gives
//! the mean with a 95% confidence interval (Student's t) over the repeats, and for every
//! column but the baseline the change in % and Welch's two-sided t-test: a change with
//! p < 0.05 is called better or worse (by the metric's direction), anything else noise.
//!
//! Results that are invalid or interrupted are shown in their own columns but never
//! counted as evidence: their cells carry no verdict and they never fail a regression gate.
//!
//! Rendering lives in `export::table`; this module only computes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::result::{BenchResult, RunResult};

/// Two-sided significance level of the t-test.
pub const ALPHA: f64 = 0.05;

/// Workload keys that do not change what is measured, so results that differ only in
/// them are compared without `--force`: labels (`name`, `description`), the verify
/// pattern's `seed`, permission flags (`force`, `allow_write_device`, `allow_fallback`;
/// a fallback shows up as `valid = false`), and `repeat` (how many runs, not what a run
/// does). `name` still separates groups, so that runs on one kernel can be labelled
/// `before`/`after` a change that the workload does not describe.
pub const IGNORED_WORKLOAD_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "force",
    "allow_write_device",
    "allow_fallback",
    "repeat",
];

// ------------------------------------------------------------------------------------
// Statistics

/// Mean and spread of one metric over repeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for a single value.
    pub stddev: f64,
    /// Half-width of the 95% confidence interval of the mean (Student's t); `None` with
    /// fewer than two values, where there is no spread to speak of.
    pub ci95: Option<f64>,
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom.
fn t_quantile_975(df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .map(|t| t.inverse_cdf(1.0 - ALPHA / 2.0))
        .unwrap_or(f64::NAN)
}

pub fn estimate(values: &[f64]) -> Option<Estimate> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(Estimate {
            n,
            mean,
            stddev: 0.0,
            ci95: None,
        });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let stddev = var.sqrt();
    let ci95 = t_quantile_975((n - 1) as f64) * stddev / (n as f64).sqrt();
    Some(Estimate {
        n,
        mean,
        stddev,
        ci95: Some(ci95),
    })
}

/// Welch's unequal-variance t-test of `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WelchTest {
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Needs at least two values on each side. When both sides have no spread at all (e.g. a
/// vmstat counter that is 0 in every run), equal means give p = 1 and different means
/// p = 0: the difference is exact, not a sampling accident.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<WelchTest> {
    let ea = estimate(a)?;
    let eb = estimate(b)?;
    if ea.n < 2 || eb.n < 2 {
        return None;
    }
    let va = ea.stddev.powi(2) / ea.n as f64;
    let vb = eb.stddev.powi(2) / eb.n as f64;
    let diff = eb.mean - ea.mean;
    if va + vb == 0.0 {
        let exact = diff == 0.0;
        return Some(WelchTest {
            t: if exact {
                0.0
            } else {
                diff.signum() * f64::INFINITY
            },
            df: (ea.n + eb.n - 2) as f64,
            p_value: if exact { 1.0 } else { 0.0 },
        });
    }
    let t = diff / (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va.powi(2) / (ea.n - 1) as f64 + vb.powi(2) / (eb.n - 1) as f64);
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p_value = (2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0);
    Some(WelchTest { t, df, p_value })
}

// ------------------------------------------------------------------------------------
// Metrics

/// Which way is good. Decides whether a significant change is better or worse, and
/// whether `--fail-on-regression` looks at it.
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

// ------------------------------------------------------------------------------------
// Grouping

/// One input file, loaded.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub result: BenchResult,
}

impl Input {
    pub fn load(path: &Path) -> Result<Input> {
        Ok(Input {
            path: path.to_path_buf(),
            result: BenchResult::load(path)?,
        })
    }

    /// Loads every file once: a file named twice (e.g. by overlapping globs) would
    /// otherwise count its runs twice and narrow every confidence interval.
    pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Input>> {
        let mut seen = Vec::new();
        let mut inputs = Vec::new();
        for path in paths {
            let key = path.canonicalize().unwrap_or_else(|_| path.clone());
            if seen.contains(&key) {
                crate::output::warn(&format!(
                    "{} is given more than once; using it once",
                    path.display()
                ));
                continue;
            }
            seen.push(key);
            inputs.push(Input::load(path)?);
        }
        Ok(inputs)
    }
}

/// Why some runs were not counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exclusion {
    pub file: String,
    /// `None`: the whole file.
    pub run: Option<usize>,
    pub reason: String,
}

/// A column of the comparison: one kernel build running one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub label: String,
    pub kernel_release: String,
    pub kernel_version: String,
    pub workload: String,
    pub files: Vec<String>,
    /// False when the group's results are invalid or interrupted: shown, never counted.
    pub evidence: bool,
    pub excluded: Vec<Exclusion>,
    /// Runs that entered the statistics (over all sections).
    pub runs_counted: usize,
    #[serde(skip)]
    workload_params: BTreeMap<String, String>,
    #[serde(skip)]
    thp_setting: String,
    /// Section name -> runs.
    #[serde(skip)]
    sections: Vec<(String, Vec<RunResult>)>,
}

/// A workload parameter that differs between groups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamDifference {
    pub parameter: String,
    /// (group label, value) for every group, the baseline first.
    pub values: Vec<(String, String)>,
}

/// Section name of plain (non-sweep) runs.
pub const MAIN_SECTION: &str = "";
/// Section name of a result's undisturbed runs (`run --baseline`).
pub const UNDISTURBED_SECTION: &str = "undisturbed (run --baseline)";

/// The resolved workload as flat `key -> value` text, without the ignored keys.
pub fn workload_params(result: &BenchResult) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&result.workload) {
        for (k, v) in map {
            if IGNORED_WORKLOAD_KEYS.contains(&k.as_str()) {
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "(none)".to_string(),
                other => other.to_string(),
            };
            out.insert(k, text);
        }
    }
    // Disturbers in a form a person reads in a column header, still naming every setting
    // that changes what they do.
    let disturb: Vec<String> = result
        .workload
        .disturb
        .iter()
        .map(|d| {
            let mut text = format!("{}(every={}", d.label(), d.every);
            if d.fraction != 1.0 {
                text.push_str(&format!(",fraction={}", d.fraction));
            }
            if let Some(cpu) = d.cpu {
                text.push_str(&format!(",cpu={cpu}"));
            }
            if d.kind == crate::workload::DisturbKind::Fork {
                text.push_str(&format!(",hold={}", d.hold));
            }
            text + ")"
        })
        .collect();
    if out.contains_key("disturb") {
        let text = if disturb.is_empty() {
            "none".to_string()
        } else {
            disturb.join("+")
        };
        out.insert("disturb".into(), text);
    }
    out
}

/// Why a whole result is not evidence, if it is not.
fn not_evidence_reason(r: &BenchResult) -> Option<String> {
    let mut why = Vec::new();
    if !r.valid {
        if r.invalid_reasons.is_empty() {
            why.push("marked invalid".to_string());
        } else {
            why.push(format!("invalid: {}", r.invalid_reasons.join("; ")));
        }
    }
    if r.interrupted {
        why.push("interrupted by a signal: its runs are partial".to_string());
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn sections_of(r: &BenchResult) -> Vec<(String, Vec<RunResult>)> {
    let mut out = Vec::new();
    if !r.runs.is_empty() {
        out.push((MAIN_SECTION.to_string(), r.runs.clone()));
    }
    for case in &r.sweep {
        out.push((case.label.clone(), case.runs.clone()));
    }
    if !r.baseline_runs.is_empty() {
        out.push((UNDISTURBED_SECTION.to_string(), r.baseline_runs.clone()));
    }
    out
}

/// Groups inputs by kernel build, workload name, workload parameters and evidence, in
/// the order they first appear.
fn group_inputs(inputs: &[Input]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for input in inputs {
        let r = &input.result;
        let params = workload_params(r);
        let file = input.path.display().to_string();
        let whole_file_reason = not_evidence_reason(r);
        let evidence = whole_file_reason.is_none();
        let idx = groups.iter().position(|g| {
            g.kernel_release == r.system.kernel.release
                && g.kernel_version == r.system.kernel.version
                && g.workload == r.workload.name
                && g.workload_params == params
                && g.evidence == evidence
        });
        let idx = idx.unwrap_or_else(|| {
            groups.push(Group {
                label: String::new(),
                kernel_release: r.system.kernel.release.clone(),
                kernel_version: r.system.kernel.version.clone(),
                workload: r.workload.name.clone(),
                files: Vec::new(),
                evidence,
                excluded: Vec::new(),
                runs_counted: 0,
                workload_params: params.clone(),
                thp_setting: format!(
                    "enabled={} defrag={}",
                    r.system.thp.enabled, r.system.thp.defrag
                ),
                sections: Vec::new(),
            });
            groups.len() - 1
        });
        let g = &mut groups[idx];
        g.files.push(file.clone());
        if let Some(reason) = whole_file_reason {
            g.excluded.push(Exclusion {
                file: file.clone(),
                run: None,
                reason,
            });
        }
        for (name, runs) in sections_of(r) {
            let mut kept = Vec::new();
            for run in runs {
                if run.interrupted && evidence {
                    g.excluded.push(Exclusion {
                        file: file.clone(),
                        run: Some(run.repeat),
                        reason: "run cut short by a signal".into(),
                    });
                    continue;
                }
                kept.push(run);
            }
            if evidence {
                g.runs_counted += kept.len();
            }
            match g.sections.iter_mut().find(|(n, _)| *n == name) {
                Some((_, runs)) => runs.extend(kept),
                None => g.sections.push((name, kept)),
            }
        }
    }
    groups
}

/// Labels that tell the columns apart: kernel release and workload name, then what else
/// differs when that is not enough.
fn label_groups(groups: &mut [Group], baseline: usize) {
    let base_params = groups[baseline].workload_params.clone();
    let n = groups.len();
    let plain: Vec<String> = groups
        .iter()
        .map(|g| format!("{} {}", g.kernel_release, g.workload))
        .collect();
    for i in 0..n {
        let mut label = plain[i].clone();
        let collides = (0..n).any(|j| j != i && plain[j] == plain[i]);
        if collides {
            let g = &groups[i];
            let same_build_elsewhere = (0..n).any(|j| {
                j != i && plain[j] == plain[i] && groups[j].kernel_version != g.kernel_version
            });
            if same_build_elsewhere {
                label.push_str(&format!(" [{}]", g.kernel_version));
            }
            let diffs: Vec<String> = g
                .workload_params
                .iter()
                .filter(|(k, v)| base_params.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !diffs.is_empty() {
                label.push(' ');
                label.push_str(&diffs.join(" "));
            }
        }
        if !groups[i].evidence {
            label.push_str(" (not evidence)");
        }
        groups[i].label = label;
    }
    // Still equal (e.g. two invalid groups alike): number them.
    for i in 0..n {
        if (0..i).any(|j| groups[j].label == groups[i].label) {
            groups[i].label = format!("{} #{}", groups[i].label, i + 1);
        }
    }
}

/// Workload parameters that differ between any group and the baseline.
fn param_differences(groups: &[Group], baseline: usize) -> Vec<ParamDifference> {
    let mut keys: Vec<&String> = groups
        .iter()
        .flat_map(|g| g.workload_params.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let base = groups[baseline].workload_params.get(key);
        if groups.iter().all(|g| g.workload_params.get(key) == base) {
            continue;
        }
        let mut order: Vec<usize> = vec![baseline];
        order.extend((0..groups.len()).filter(|&i| i != baseline));
        out.push(ParamDifference {
            parameter: key.clone(),
            values: order
                .iter()
                .map(|&i| {
                    let g = &groups[i];
                    (
                        g.files.join(", "),
                        g.workload_params
                            .get(key)
                            .cloned()
                            .unwrap_or_else(|| "(absent)".into()),
                    )
                })
                .collect(),
        });
    }
    out
}

// ------------------------------------------------------------------------------------
// The comparison

/// Verdict of one cell against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Baseline,
    /// Significant and in the good direction.
    Better,
    /// Significant and in the bad direction.
    Worse,
    /// Significant, for a metric with no good direction.
    Changed,
    /// Not significant: inside the noise.
    Noise,
    /// Fewer than two runs on a side: no test possible.
    Untested,
    /// The group is not evidence (invalid or interrupted), or the baseline is not.
    NotEvidence,
    /// The baseline lacks this metric.
    NoBaseline,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub estimate: Estimate,
    /// Change of the mean against the baseline's, in %; `None` for the baseline itself
    /// or where the baseline's mean is 0.
    pub change_pct: Option<f64>,
    pub test: Option<WelchTest>,
    pub verdict: Verdict,
    /// A significant regression larger than `--fail-on-regression`.
    pub beyond_threshold: bool,
    #[serde(skip)]
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: MetricDef,
    /// One cell per group, in group order; `None` where the group lacks the metric.
    pub cells: Vec<Option<Cell>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Empty for plain runs; the sweep case label, or the undisturbed runs.
    pub name: String,
    pub rows: Vec<Row>,
}

/// ops/s at each thread count of a thread sweep, for one group.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingPoint {
    pub threads: usize,
    pub case: String,
    pub ops_per_sec: Estimate,
    /// ops/s at N threads / (N / N0 * ops/s at N0 threads), N0 the smallest count (1 when
    /// the sweep has it).
    pub efficiency: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    pub group: usize,
    /// The thread count efficiency is measured against.
    pub reference_threads: usize,
    pub points: Vec<ScalingPoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Regression {
    pub group: String,
    pub section: String,
    pub metric: String,
    pub change_pct: f64,
    pub p_value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub groups: Vec<Group>,
    pub baseline: usize,
    /// Workload parameters that differ (only possible with `--force`).
    pub differences: Vec<ParamDifference>,
    pub sections: Vec<Section>,
    pub scaling: Vec<Scaling>,
    pub fail_on_regression_pct: Option<f64>,
    pub regressions: Vec<Regression>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// A result file or a kernel release; default: the first result's group.
    pub baseline: Option<String>,
    pub force: bool,
    pub fail_on_regression_pct: Option<f64>,
}

/// How many lock callers to show: the top ones by wait.
const TOP_LOCK_CALLERS: usize = 5;

pub fn compare(inputs: &[Input], opts: &CompareOptions) -> Result<Comparison> {
    if inputs.is_empty() {
        bail!("no results to compare: give at least one result file");
    }
    if let Some(pct) = opts.fail_on_regression_pct {
        if !(pct.is_finite() && pct >= 0.0) {
            bail!("--fail-on-regression {pct}: expected a percentage of 0 or more, e.g. 5");
        }
    }
    for input in inputs {
        if input.result.runs.is_empty() && input.result.sweep.is_empty() {
            bail!(
                "{} holds no runs and no sweep cases: nothing to compare",
                input.path.display()
            );
        }
    }
    let mut groups = group_inputs(inputs);
    let baseline = find_baseline(&groups, inputs, opts.baseline.as_deref())?;
    let differences = param_differences(&groups, baseline);
    if !differences.is_empty() && !opts.force {
        let mut msg = String::from(
            "the results ran different workloads; these resolved parameters differ:\n",
        );
        for d in &differences {
            msg.push_str(&format!("  {}:", d.parameter));
            for (files, value) in &d.values {
                msg.push_str(&format!(" {value} ({files});"));
            }
            msg.pop();
            msg.push('\n');
        }
        msg.push_str("compare results of the same workload, or pass --force to compare anyway (the table then names the differing parameters)");
        bail!(msg);
    }
    label_groups(&mut groups, baseline);
    let mut notes = Vec::new();
    if groups
        .iter()
        .any(|g| g.thp_setting != groups[baseline].thp_setting)
    {
        let settings: Vec<String> = groups
            .iter()
            .map(|g| format!("{}: {}", g.label, g.thp_setting))
            .collect();
        notes.push(format!(
            "THP settings differ between the groups ({})",
            settings.join("; ")
        ));
    }
    if !groups[baseline].evidence {
        notes.push(format!(
            "the baseline {} is not evidence: no changes are judged",
            groups[baseline].label
        ));
    }

    let mut section_names: Vec<String> = Vec::new();
    for g in &groups {
        for (name, _) in &g.sections {
            if !section_names.contains(name) {
                section_names.push(name.clone());
            }
        }
    }
    let mut sections = Vec::new();
    let mut regressions = Vec::new();
    for name in &section_names {
        let section = build_section(name, &groups, baseline, opts.fail_on_regression_pct);
        for row in &section.rows {
            for (gi, cell) in row.cells.iter().enumerate() {
                if let Some(c) = cell.as_ref().filter(|c| c.beyond_threshold) {
                    regressions.push(Regression {
                        group: groups[gi].label.clone(),
                        section: name.clone(),
                        metric: row.metric.label.clone(),
                        change_pct: c.change_pct.unwrap_or(0.0),
                        p_value: c.test.map_or(0.0, |t| t.p_value),
                    });
                }
            }
        }
        sections.push(section);
    }
    let scaling = (0..groups.len())
        .filter_map(|gi| thread_scaling(gi, &groups[gi], inputs))
        .collect();
    Ok(Comparison {
        groups,
        baseline,
        differences,
        sections,
        scaling,
        fail_on_regression_pct: opts.fail_on_regression_pct,
        regressions,
        notes,
    })
}

fn find_baseline(groups: &[Group], inputs: &[Input], wanted: Option<&str>) -> Result<usize> {
    let Some(wanted) = wanted else {
        return Ok(0);
    };
    let as_path = Path::new(wanted);
    if as_path.exists() {
        let canonical = as_path.canonicalize().ok();
        for input in inputs {
            if input.path.canonicalize().ok() == canonical {
                let file = input.path.display().to_string();
                if let Some(i) = groups.iter().position(|g| g.files.contains(&file)) {
                    return Ok(i);
                }
            }
        }
        bail!(
            "--baseline {wanted}: that file is not among the results being compared; list it as a RESULT too"
        );
    }
    if let Some(i) = groups.iter().position(|g| g.kernel_release == wanted) {
        return Ok(i);
    }
    let mut releases: Vec<&str> = groups.iter().map(|g| g.kernel_release.as_str()).collect();
    releases.dedup();
    bail!(
        "--baseline {wanted}: no such result file and no result from kernel release `{wanted}`; the results are from: {}",
        releases.join(", ")
    )
}

fn build_section(name: &str, groups: &[Group], baseline: usize, threshold: Option<f64>) -> Section {
    // Metric -> per group values; definitions in first-seen order.
    let mut defs: Vec<MetricDef> = Vec::new();
    let mut values: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    for (gi, g) in groups.iter().enumerate() {
        let Some((_, runs)) = g.sections.iter().find(|(n, _)| n == name) else {
            continue;
        };
        for run in runs {
            for (def, v) in run_metrics(run) {
                if !v.is_finite() {
                    continue;
                }
                let per_group = values.entry(def.key.clone()).or_insert_with(|| {
                    defs.push(def.clone());
                    vec![Vec::new(); groups.len()]
                });
                per_group[gi].push(v);
            }
        }
    }
    // Results keep the per-size mTHP counters only where they moved: a run without one
    // saw it at 0, and leaving that run out would bias the mean.
    for (gi, g) in groups.iter().enumerate() {
        let Some((_, runs)) = g.sections.iter().find(|(n, _)| n == name) else {
            continue;
        };
        for (key, per_group) in values.iter_mut() {
            if key.starts_with("vmstat_delta.mthp_") {
                let seen = &mut per_group[gi];
                seen.resize(runs.len().max(seen.len()), 0.0);
            }
        }
    }
    defs.sort_by_key(|d| d.category);
    // Rows of zeros say nothing (a vmstat counter that never moved).
    defs.retain(|d| {
        d.category != Category::Conditions
            || d.key.starts_with("buffer.")
            || values[&d.key].iter().flatten().any(|v| *v != 0.0)
    });
    // Only the top lock callers by their largest mean wait.
    let mut callers: Vec<(f64, String)> = defs
        .iter()
        .filter(|d| d.key.starts_with("lock_contention.by_caller."))
        .map(|d| {
            let top = values[&d.key]
                .iter()
                .filter_map(|v| estimate(v).map(|e| e.mean))
                .fold(0.0, f64::max);
            (top, d.key.clone())
        })
        .collect();
    callers.sort_by(|a, b| b.0.total_cmp(&a.0));
    let shown: Vec<String> = callers
        .into_iter()
        .take(TOP_LOCK_CALLERS)
        .map(|(_, k)| k)
        .collect();
    defs.retain(|d| !d.key.starts_with("lock_contention.by_caller.") || shown.contains(&d.key));

    let rows = defs
        .into_iter()
        .map(|def| {
            let per_group = &values[&def.key];
            let base_values = &per_group[baseline];
            let cells = per_group
                .iter()
                .enumerate()
                .map(|(gi, vals)| {
                    let est = estimate(vals)?;
                    Some(judge(
                        &def,
                        est,
                        vals,
                        gi == baseline,
                        groups[gi].evidence && groups[baseline].evidence,
                        base_values,
                        threshold,
                    ))
                })
                .collect();
            Row { metric: def, cells }
        })
        .collect();
    Section {
        name: name.to_string(),
        rows,
    }
}

fn judge(
    def: &MetricDef,
    estimate_: Estimate,
    values: &[f64],
    is_baseline: bool,
    evidence: bool,
    base_values: &[f64],
    threshold: Option<f64>,
) -> Cell {
    let base = estimate(base_values);
    let change_pct = match &base {
        Some(b) if !is_baseline => {
            if b.mean != 0.0 {
                Some((estimate_.mean - b.mean) / b.mean.abs() * 100.0)
            } else if estimate_.mean == 0.0 {
                Some(0.0)
            } else {
                None
            }
        }
        _ => None,
    };
    let test = if is_baseline {
        None
    } else {
        welch_t_test(base_values, values)
    };
    let verdict = if is_baseline {
        Verdict::Baseline
    } else if !evidence {
        Verdict::NotEvidence
    } else if base.is_none() {
        Verdict::NoBaseline
    } else {
        match test {
            None => Verdict::Untested,
            Some(t) if t.p_value >= ALPHA => Verdict::Noise,
            Some(t) => {
                let up = t.t > 0.0;
                match def.direction {
                    Direction::Neutral => Verdict::Changed,
                    Direction::HigherIsBetter if up => Verdict::Better,
                    Direction::LowerIsBetter if !up => Verdict::Better,
                    _ => Verdict::Worse,
                }
            }
        }
    };
    let beyond_threshold = verdict == Verdict::Worse
        && match (threshold, change_pct) {
            (Some(pct), Some(change)) => change.abs() > pct,
            // A regression from 0 (e.g. mismatches appearing) is beyond any threshold.
            (Some(_), None) => true,
            _ => false,
        };
    Cell {
        estimate: estimate_,
        change_pct,
        test,
        verdict,
        beyond_threshold,
        values: values.to_vec(),
    }
}

/// Thread scaling of one group, when its sweep cases differ in `threads`.
fn thread_scaling(gi: usize, group: &Group, inputs: &[Input]) -> Option<Scaling> {
    // Case label -> thread count, from the cases' params.
    let mut threads_of: BTreeMap<&str, usize> = BTreeMap::new();
    for input in inputs {
        if !group.files.contains(&input.path.display().to_string()) {
            continue;
        }
        for case in &input.result.sweep {
            if let Some(t) = case.params.get("threads").and_then(|t| t.parse().ok()) {
                threads_of.insert(case.label.as_str(), t);
            }
        }
    }
    let mut points: Vec<ScalingPoint> = group
        .sections
        .iter()
        .filter_map(|(name, runs)| {
            let threads = *threads_of.get(name.as_str())?;
            let ops: Vec<f64> = runs.iter().map(|r| r.ops_per_sec).collect();
            Some(ScalingPoint {
                threads,
                case: name.clone(),
                ops_per_sec: estimate(&ops)?,
                efficiency: None,
            })
        })
        .collect();
    let mut counts: Vec<usize> = points.iter().map(|p| p.threads).collect();
    counts.sort();
    counts.dedup();
    // A sweep over something else (buffer, share) at several thread counts mixes cases at
    // one count; efficiency is only defined when each count is one case.
    if counts.len() < 2 || counts.len() != points.len() {
        return None;
    }
    points.sort_by_key(|p| p.threads);
    let reference = points[0].clone();
    for p in &mut points {
        if reference.ops_per_sec.mean > 0.0 && reference.threads > 0 {
            let ideal = reference.ops_per_sec.mean * p.threads as f64 / reference.threads as f64;
            p.efficiency = Some(p.ops_per_sec.mean / ideal);
        }
    }
    Some(Scaling {
        group: gi,
        reference_threads: reference.threads,
        points,
    })
}

/// `thpbench compare`.
pub fn command(args: &crate::cli::CompareArgs) -> Result<i32> {
    let inputs = Input::load_all(&args.results)?;
    let opts = CompareOptions {
        baseline: args.baseline.clone(),
        force: args.force,
        fail_on_regression_pct: args.fail_on_regression,
    };
    let cmp = compare(&inputs, &opts)?;
    let text = match args.format {
        CompareFormat::Text => crate::export::table::render_text(&cmp),
        CompareFormat::Markdown => crate::export::table::render_markdown(&cmp),
        CompareFormat::Json => serde_json::to_string_pretty(&cmp)? + "\n",
    };
    print!("{text}");
    if let Some(pct) = opts.fail_on_regression_pct {
        if !cmp.regressions.is_empty() {
            for r in &cmp.regressions {
                let section = if r.section.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", r.section)
                };
                eprintln!(
                    "thpbench: regression beyond {pct}%: {}{section} {} {:+.2}% (p = {:.3})",
                    r.group, r.metric, r.change_pct, r.p_value
                );
            }
            return Ok(1);
        }
    }
    Ok(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    /// Aligned plain text for a terminal.
    Text,
    /// Aligned markdown tables that paste into a mail or a pull request as they are.
    Markdown,
    /// Every figure, for scripts.
    Json,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::result::{LatencySummary, SweepCase};

    /// A valid result with one run per `ops_per_sec` value; latency scales inversely.
    pub(crate) fn synthetic(release: &str, ops_per_sec: &[f64]) -> BenchResult {
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
            },
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

    pub(crate) fn synthetic_run(repeat: usize, ops_per_sec: f64) -> RunResult {
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

    fn inputs(results: Vec<BenchResult>) -> Vec<Input> {
        results
            .into_iter()
            .enumerate()
            .map(|(i, result)| Input {
                path: PathBuf::from(format!("r{i}.json")),
                result,
            })
            .collect()
    }

    fn row<'a>(c: &'a Comparison, key: &str) -> &'a Row {
        c.sections[0]
            .rows
            .iter()
            .find(|r| r.metric.key == key)
            .unwrap_or_else(|| panic!("no row {key}"))
    }

    #[test]
    fn welch_matches_a_known_textbook_value() {
        // Two samples whose Welch t and df are easy to check by hand:
        // means 100.4 and 120, variances 1.3 and 2.5 (n = 5 each):
        // t = 19.6 / sqrt(0.26 + 0.5) = 22.483, df = 0.5776 / (0.0169 + 0.0625) = 7.2745.
        let a = [100.0, 101.0, 99.0, 100.0, 102.0];
        let b = [120.0, 119.0, 121.0, 122.0, 118.0];
        let t = welch_t_test(&a, &b).unwrap();
        assert!((t.t - 22.4834).abs() < 1e-3, "{t:?}");
        assert!((t.df - 7.2745).abs() < 1e-3, "{t:?}");
        assert!(t.p_value < 1e-6, "{t:?}");
    }

    #[test]
    fn confidence_interval_uses_students_t() {
        // n = 5, s = sqrt(1.3): t(0.975, 4) = 2.776445 -> half-width 1.41571.
        let e = estimate(&[100.0, 101.0, 99.0, 100.0, 102.0]).unwrap();
        assert!((e.mean - 100.4).abs() < 1e-9);
        assert!((e.ci95.unwrap() - 1.41571).abs() < 1e-4, "{e:?}");
        assert_eq!(estimate(&[5.0]).unwrap().ci95, None);
    }

    #[test]
    fn known_difference_is_significant_and_zero_difference_is_noise() {
        let a = synthetic("6.1.0", &[100.0, 101.0, 99.0, 100.0, 102.0]);
        let b = synthetic("6.12.0", &[120.0, 119.0, 121.0, 122.0, 118.0]);
        let same = synthetic("6.13.0", &[101.0, 100.0, 102.0, 99.0, 100.0]);
        let c = compare(&inputs(vec![a, b, same]), &CompareOptions::default()).unwrap();
        let ops = row(&c, "ops_per_sec");
        let faster = ops.cells[1].as_ref().unwrap();
        assert_eq!(faster.verdict, Verdict::Better);
        assert!((faster.change_pct.unwrap() - 19.5219).abs() < 1e-3);
        let unchanged = ops.cells[2].as_ref().unwrap();
        assert_eq!(unchanged.verdict, Verdict::Noise);
        assert!((unchanged.test.unwrap().p_value - 1.0).abs() < 1e-9);
        // Latency went down with more ops/s: better too, by direction.
        let p99 = row(&c, "latency_ns.p99");
        assert_eq!(p99.cells[1].as_ref().unwrap().verdict, Verdict::Better);
        assert_eq!(p99.cells[0].as_ref().unwrap().verdict, Verdict::Baseline);
    }

    #[test]
    fn slower_kernel_is_a_regression_beyond_threshold_only_when_large() {
        let a = synthetic("6.12.0", &[120.0, 119.0, 121.0, 122.0, 118.0]);
        let b = synthetic("6.1.0", &[100.0, 101.0, 99.0, 100.0, 102.0]);
        let opts = |pct| CompareOptions {
            fail_on_regression_pct: Some(pct),
            ..Default::default()
        };
        let c = compare(&inputs(vec![a.clone(), b.clone()]), &opts(5.0)).unwrap();
        assert_eq!(
            row(&c, "ops_per_sec").cells[1].as_ref().unwrap().verdict,
            Verdict::Worse
        );
        assert!(
            c.regressions.iter().any(|r| r.metric == "ops/s"),
            "{:?}",
            c.regressions
        );
        // -16.3% is not beyond 50%.
        let c = compare(&inputs(vec![a, b]), &opts(50.0)).unwrap();
        assert!(
            !c.regressions.iter().any(|r| r.metric == "ops/s"),
            "{:?}",
            c.regressions
        );
    }

    #[test]
    fn different_workloads_are_refused_naming_the_parameters() {
        let a = synthetic("6.1.0", &[100.0, 101.0]);
        let mut b = synthetic("6.1.0", &[100.0, 101.0]);
        b.workload.buffer = crate::workload::Backing::Base;
        b.workload.bs = crate::units::Size(1 << 20);
        b.workload.seed = 1; // ignored: only the verify pattern
        let err = compare(
            &inputs(vec![a.clone(), b.clone()]),
            &CompareOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("buffer: thp (r0.json); 4k (r1.json)"), "{err}");
        assert!(
            err.contains("bs: 4096 (r0.json); 1048576 (r1.json)"),
            "{err}"
        );
        assert!(!err.contains("seed"), "{err}");
        assert!(err.contains("--force"), "{err}");
        let forced = compare(
            &inputs(vec![a, b]),
            &CompareOptions {
                force: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(forced.differences.len(), 2);
        // Same kernel and name: the labels say what differs.
        assert!(
            forced.groups[1].label.contains("buffer=4k"),
            "{:?}",
            forced.groups[1].label
        );
    }

    #[test]
    fn invalid_and_interrupted_results_are_shown_but_not_evidence() {
        let a = synthetic("6.1.0", &[100.0, 101.0, 99.0]);
        let mut b = synthetic("6.1.0", &[50.0, 51.0, 49.0]);
        b.valid = false;
        b.invalid_reasons = vec!["buffer 40% THP-backed, asked 100%".into()];
        let mut c_ = synthetic("6.1.0", &[100.0, 102.0, 101.0]);
        c_.runs[2].interrupted = true;
        let c = compare(
            &inputs(vec![a, b, c_]),
            &CompareOptions {
                fail_on_regression_pct: Some(1.0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c.groups.len(),
            2,
            "the interrupted run's file groups with r0"
        );
        assert!(!c.groups[1].evidence);
        assert!(c.groups[1].excluded[0].reason.contains("40% THP-backed"));
        assert!(c.groups[1].label.contains("not evidence"));
        let cell = row(&c, "ops_per_sec").cells[1].clone().unwrap();
        assert_eq!(cell.verdict, Verdict::NotEvidence);
        assert!(c.regressions.is_empty(), "{:?}", c.regressions);
        // The interrupted run was dropped from the pooled group: 3 + 2 runs.
        assert_eq!(c.groups[0].runs_counted, 5);
        assert_eq!(c.groups[0].excluded[0].run, Some(2));
    }

    #[test]
    fn sweeps_compare_case_by_case_and_report_scaling() {
        let mut a = synthetic("6.1.0", &[]);
        let mut b = synthetic("6.12.0", &[]);
        for (r, per_thread) in [(&mut a, 100.0), (&mut b, 120.0)] {
            for threads in [1usize, 2, 4] {
                // Scales at 90% per doubling.
                let eff = 0.9f64.powi(threads.trailing_zeros() as i32);
                let ops = per_thread * threads as f64 * eff;
                r.sweep.push(SweepCase {
                    label: format!("threads={threads}"),
                    params: [("threads".to_string(), threads.to_string())].into(),
                    runs: vec![
                        synthetic_run(0, ops - 1.0),
                        synthetic_run(1, ops),
                        synthetic_run(2, ops + 1.0),
                    ],
                });
            }
        }
        let c = compare(&inputs(vec![a, b]), &CompareOptions::default()).unwrap();
        let names: Vec<&str> = c.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["threads=1", "threads=2", "threads=4"]);
        let ops4 = c.sections[2]
            .rows
            .iter()
            .find(|r| r.metric.key == "ops_per_sec")
            .unwrap();
        assert_eq!(ops4.cells[1].as_ref().unwrap().verdict, Verdict::Better);
        assert_eq!(c.scaling.len(), 2);
        let eff: Vec<f64> = c.scaling[0]
            .points
            .iter()
            .map(|p| p.efficiency.unwrap())
            .collect();
        assert!(
            (eff[0] - 1.0).abs() < 1e-9
                && (eff[1] - 0.9).abs() < 1e-9
                && (eff[2] - 0.81).abs() < 1e-9,
            "{eff:?}"
        );
    }

    #[test]
    fn an_mthp_counter_missing_from_a_run_counts_as_zero() {
        // Results keep mthp_* counters only where they moved.
        let mut a = synthetic("6.1.0", &[100.0, 101.0, 102.0]);
        a.runs[0].vmstat_delta.insert("mthp_64kB_split".into(), 6);
        let c = compare(&inputs(vec![a]), &CompareOptions::default()).unwrap();
        let cell = row(&c, "vmstat_delta.mthp_64kB_split").cells[0]
            .clone()
            .unwrap();
        assert_eq!(cell.values, vec![6.0, 0.0, 0.0]);
        assert!((cell.estimate.mean - 2.0).abs() < 1e-9);
    }

    #[test]
    fn optional_figures_become_rows() {
        let mut a = synthetic("6.1.0", &[100.0, 101.0]);
        for run in &mut a.runs {
            run.vmstat_delta.insert("thp_split_page".into(), 40);
            run.vmstat_delta.insert("pgfault".into(), 0);
            run.lock_contention = Some(serde_json::json!({
                "available": true, "total_wait_ns": 5000, "run_total_wait_ns": 3000, "events": 3,
                "by_caller": [{"caller": "folio_lock", "total_wait_ns": 4000}]
            }));
            run.perf =
                Some(serde_json::json!({"cpu0": {"cycles": 1000}, "cpu1": {"cycles": 1000}}));
            run.gup = Some(serde_json::json!({"ns_per_page": 12.5, "pages": 512}));
        }
        let c = compare(&inputs(vec![a]), &CompareOptions::default()).unwrap();
        for key in [
            "vmstat_delta.thp_split_page",
            "lock_contention.total_wait_ns",
            "lock_contention.run_total_wait_ns",
            "lock_contention.by_caller.folio_lock",
            "perf.cycles",
            "gup.ns_per_page",
            "gup.pages",
        ] {
            row(&c, key);
        }
        assert!(!c.sections[0]
            .rows
            .iter()
            .any(|r| r.metric.key == "vmstat_delta.pgfault"));
        // 2000 cycles over 100 and 101 ops.
        let cycles = row(&c, "perf.cycles").cells[0]
            .as_ref()
            .unwrap()
            .estimate
            .mean;
        assert!((cycles - (20.0 + 2000.0 / 101.0) / 2.0).abs() < 1e-9);
        assert_eq!(
            row(&c, "gup.ns_per_page").metric.direction,
            Direction::LowerIsBetter
        );
    }

    #[test]
    fn baseline_by_release_and_unknown_release_is_explained() {
        let a = synthetic("6.1.0", &[100.0, 101.0]);
        let b = synthetic("6.12.0", &[100.0, 101.0]);
        let c = compare(
            &inputs(vec![a.clone(), b.clone()]),
            &CompareOptions {
                baseline: Some("6.12.0".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.baseline, 1);
        let err = compare(
            &inputs(vec![a, b]),
            &CompareOptions {
                baseline: Some("5.4".into()),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("6.1.0, 6.12.0"), "{err}");
    }
}
