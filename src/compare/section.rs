//! One section of the comparison (plain runs, a sweep case, or the undisturbed runs):
//! a row per metric, a cell per group, each judged against the baseline.

use std::collections::BTreeMap;

use serde::Serialize;

use super::grouping::Group;
use super::metrics::{run_metrics, Category, Direction, MetricDef, FORK_CHILDREN};
use crate::stats::{change_pct, estimate, welch_t_test, Estimate, WelchTest, ALPHA};

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
    /// Integrity rows are pass/fail, never a test: no data was lost in any run...
    Pass,
    /// ...or some was (in any group, the baseline included).
    Fail,
}

/// An integrity cell's count: `bad` of `of` runs (verify) or forked children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IntegrityCount {
    pub bad: u64,
    pub of: u64,
    pub what: &'static str,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<IntegrityCount>,
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

/// How many lock callers to show: the top ones by wait.
const TOP_LOCK_CALLERS: usize = 5;

pub(super) fn build_section(
    name: &str,
    groups: &[Group],
    baseline: usize,
    threshold: Option<f64>,
) -> Section {
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
                    if def.category == Category::Integrity {
                        let children = values.get(FORK_CHILDREN).map(|v| &v[gi]);
                        return Some(judge_integrity(&def, est, vals, children, threshold));
                    }
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

/// Lost data is never noise: an integrity row fails any group with a run that lost
/// data (verify mismatches, or forked children that saw their buffer change), evidence
/// or not, baseline or not, and a failure always trips `--fail-on-regression`.
fn judge_integrity(
    def: &MetricDef,
    estimate_: Estimate,
    values: &[f64],
    fork_children: Option<&Vec<f64>>,
    threshold: Option<f64>,
) -> Cell {
    let integrity = match fork_children {
        Some(children) if def.key != "verify.mismatches" => IntegrityCount {
            bad: values.iter().sum::<f64>() as u64,
            of: children.iter().sum::<f64>() as u64,
            what: "children",
        },
        _ => IntegrityCount {
            bad: values.iter().filter(|v| **v > 0.0).count() as u64,
            of: values.len() as u64,
            what: "runs",
        },
    };
    let fail = values.iter().any(|v| *v > 0.0);
    Cell {
        estimate: estimate_,
        change_pct: None,
        test: None,
        verdict: if fail { Verdict::Fail } else { Verdict::Pass },
        beyond_threshold: fail && threshold.is_some(),
        integrity: Some(integrity),
        values: values.to_vec(),
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
        Some(b) if !is_baseline => change_pct(b.mean, estimate_.mean),
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
        integrity: None,
        values: values.to_vec(),
    }
}
