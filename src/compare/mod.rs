//! Statistics across results: `thpbench compare`.
//!
//! Results are grouped into columns by kernel build (its build-id, labelled by `uname -r`;
//! `uname -r` and `uname -v` for results without one), machine and conditions, workload
//! name and resolved workload parameters, and whether they count as evidence. The runs of
//! all files in a group are pooled as repeats. Results from different machines or
//! conditions (see `conditions`) are refused unless `allow_different_machines`, and then
//! never pooled. For every metric present the table gives
//! the mean with a 95% confidence interval (Student's t) over the repeats, and for every
//! column but the baseline the change in % and Welch's two-sided t-test: a change with
//! p < 0.05 is called better or worse (by the metric's direction), anything else noise.
//!
//! Results that are invalid or interrupted are shown in their own columns but never
//! counted as evidence: their cells carry no verdict and they never fail a regression gate.
//!
//! Rendering lives in `report::compare`; this module only computes.

mod conditions;
mod grouping;
mod metrics;
mod pin_cost;
mod scaling;
mod section;
mod shared_folio;

use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;

pub use conditions::{relevant_cmdline, SettingKind, SystemDifference};
pub use grouping::{
    workload_params, Exclusion, Group, Input, ParamDifference, MAIN_SECTION, UNDISTURBED_SECTION,
};
pub use metrics::{run_metrics, Category, Direction, MetricDef, Unit};
pub use pin_cost::{pin_costs, GroupPinCost};
pub use scaling::{Scaling, ScalingPoint};
pub use section::{Cell, Row, Section, Verdict};
pub use shared_folio::shared_folio_ratios;

use grouping::{group_inputs, label_groups, param_differences};
use pin_cost::group_pin_cost;
use scaling::thread_scaling;
use section::build_section;

#[derive(Debug, Clone, Serialize)]
pub struct Regression {
    pub group: String,
    pub section: String,
    pub metric: String,
    pub change_pct: f64,
    pub p_value: f64,
    /// An integrity row that failed: `n of N runs|children`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_data: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub groups: Vec<Group>,
    pub baseline: usize,
    /// Workload parameters that differ (only possible with `--force`).
    pub differences: Vec<ParamDifference>,
    /// What differs between the results besides the kernel and the workload: machine and
    /// conditions (only with `--allow-different-machines`), then the rest (microcode,
    /// lockdown, thpbench's commit), which compare only prints.
    pub system_differences: Vec<SystemDifference>,
    pub sections: Vec<Section>,
    pub scaling: Vec<Scaling>,
    /// Per group whose results carry `pin_cost`: the pairs over its pooled repeats.
    pub pin_cost: Vec<GroupPinCost>,
    pub fail_on_regression_pct: Option<f64>,
    pub regressions: Vec<Regression>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// A result file or a kernel release; default: the first result's group.
    pub baseline: Option<String>,
    pub force: bool,
    /// Compare results from different machines or conditions (never pooled).
    pub allow_different_machines: bool,
    pub fail_on_regression_pct: Option<f64>,
}

/// The flag that compares results from different machines or conditions.
pub const ALLOW_DIFFERENT_MACHINES: &str = "--allow-different-machines";

/// Why compare refused the results: what differs, and so which flag would compare them
/// anyway (`thpbench kernels` passes exactly those).
#[derive(Debug, Clone, thiserror::Error)]
pub struct Refusal {
    /// Workload parameters that differ (empty when `--force` was given or none do).
    pub workloads: Vec<ParamDifference>,
    /// Machine and condition settings that differ (empty when
    /// `--allow-different-machines` was given or none do).
    pub machines: Vec<SystemDifference>,
}

impl Refusal {
    /// `--force` would compare them.
    pub fn needs_force(&self) -> bool {
        !self.workloads.is_empty()
    }

    /// `--allow-different-machines` would compare them.
    pub fn needs_allow_different_machines(&self) -> bool {
        !self.machines.is_empty()
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut msg = String::new();
        if self.needs_force() {
            msg.push_str(
                "the results ran different workloads; these resolved parameters differ:\n",
            );
            for d in &self.workloads {
                msg.push_str(&format!("  {}:", d.parameter));
                for (files, value) in &d.values {
                    msg.push_str(&format!(" {value} ({files});"));
                }
                msg.pop();
                msg.push('\n');
            }
            msg.push_str("compare results of the same workload, or pass --force to compare anyway (the table then names the differing parameters)");
        }
        if self.needs_allow_different_machines() {
            if !msg.is_empty() {
                msg.push_str("\nand ");
            }
            msg.push_str("the results come from different machines or conditions, so their differences would not be the kernel's; these differ:\n");
            for d in &self.machines {
                msg.push_str(&format!(
                    "  {} ({}): {}\n",
                    d.setting,
                    d.kind.word(),
                    d.values_text()
                ));
            }
            msg.push_str(&format!("run the results on one machine set up alike, or pass {ALLOW_DIFFERENT_MACHINES} to compare anyway (never pooled; the differences are printed first)"));
        }
        f.write_str(&msg)
    }
}

/// Groups the inputs, picks the baseline and judges every metric of every section.
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
    let files: Vec<(String, Vec<conditions::Setting>)> = inputs
        .iter()
        .map(|i| {
            (
                i.path.display().to_string(),
                conditions::settings_of(&i.result),
            )
        })
        .collect();
    let system_differences = conditions::differences(&files);
    let refused: Vec<&SystemDifference> = system_differences
        .iter()
        .filter(|d| d.kind != SettingKind::Note)
        .collect();
    let refusal = Refusal {
        workloads: if opts.force {
            Vec::new()
        } else {
            differences.clone()
        },
        machines: if opts.allow_different_machines {
            Vec::new()
        } else {
            refused.into_iter().cloned().collect()
        },
    };
    if refusal.needs_force() || refusal.needs_allow_different_machines() {
        return Err(refusal.into());
    }
    label_groups(&mut groups, baseline);
    let mut notes = Vec::new();
    notes.extend(missing_provenance_notes(inputs));
    for g in &groups {
        let debug: Vec<&str> = inputs
            .iter()
            .filter(|i| g.files.contains(&i.path.display().to_string()))
            .filter_map(|i| i.result.system.kernel.config.as_ref())
            .flat_map(|c| c.debug_options_on())
            .fold(Vec::new(), |mut v, o| {
                if !v.contains(&o) {
                    v.push(o);
                }
                v
            });
        if !debug.is_empty() {
            notes.push(format!(
                "{}: the kernel has debug options on ({}); its figures include their cost",
                g.label,
                debug.join(", ")
            ));
        }
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
                        lost_data: c
                            .integrity
                            .map(|i| format!("{} of {} {}", i.bad, i.of, i.what)),
                    });
                }
            }
        }
        sections.push(section);
    }
    let scaling = (0..groups.len())
        .filter_map(|gi| thread_scaling(gi, &groups[gi], inputs))
        .collect();
    let pin_cost = (0..groups.len())
        .filter_map(|gi| group_pin_cost(gi, &groups[gi], inputs))
        .collect();
    Ok(Comparison {
        groups,
        baseline,
        differences,
        system_differences,
        sections,
        scaling,
        pin_cost,
        fail_on_regression_pct: opts.fail_on_regression_pct,
        regressions,
        notes,
    })
}

/// One note per set of files that lack the same provenance (written by an older
/// thpbench): what they lack and how they were grouped.
fn missing_provenance_notes(inputs: &[Input]) -> Vec<String> {
    let mut by_missing: Vec<(Vec<&'static str>, Vec<String>)> = Vec::new();
    for i in inputs {
        let missing = i.result.missing_provenance();
        if missing.is_empty() {
            continue;
        }
        let file = i.path.display().to_string();
        match by_missing.iter_mut().find(|(m, _)| *m == missing) {
            Some((_, files)) => files.push(file),
            None => by_missing.push((missing, vec![file])),
        }
    }
    by_missing
        .into_iter()
        .map(|(missing, files)| {
            let how = if missing.contains(&"kernel build-id") {
                "grouped by kernel release and `uname -v` (two builds of one release may pool)"
            } else {
                "grouped by what it records"
            };
            format!(
                "{} lack{} {} (written before thpbench recorded them): {how}; what is not recorded is not checked",
                files.join(", "),
                if files.len() == 1 { "s" } else { "" },
                missing.join(", ")
            )
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::result::{BenchResult, SweepCase};
    use crate::test_support::{synthetic, synthetic_run};

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

    /// Lost data is pass/fail, never a t-test: [0, 0] against [5, 7] mismatches fails
    /// (Welch called it noise), forked children count as n of N, and any failure, even
    /// in an invalid result, trips --fail-on-regression.
    #[test]
    fn integrity_rows_are_pass_or_fail_and_lost_data_always_fails_the_gate() {
        use crate::result::DisturberReport;
        let with = |release: &str, mismatches: [u64; 2], saw: [u64; 2]| {
            let mut r = synthetic(release, &[100.0, 101.0]);
            for (i, run) in r.runs.iter_mut().enumerate() {
                run.verify.enabled = true;
                run.verify.mismatches = mismatches[i];
                run.disturbers.push(DisturberReport {
                    name: "fork".into(),
                    extra: crate::result::ForkFigures {
                        children: 50,
                        saw_parent_data: saw[i],
                        ..Default::default()
                    }
                    .to_extra(),
                    ..Default::default()
                });
            }
            r
        };
        let clean = with("6.18.0", [0, 0], [0, 0]);
        let mut lost = with("6.1.0", [5, 7], [0, 3]);
        lost.valid = false;
        let opts = CompareOptions {
            fail_on_regression_pct: Some(50.0),
            ..Default::default()
        };
        let c = compare(&inputs(vec![clean, lost]), &opts).unwrap();
        let mism = row(&c, "verify.mismatches");
        assert_eq!(mism.cells[0].as_ref().unwrap().verdict, Verdict::Pass);
        let bad = mism.cells[1].as_ref().unwrap();
        assert_eq!((bad.verdict, bad.test), (Verdict::Fail, None));
        let children = row(&c, crate::compare::metrics::FORK_CHILDREN_SAW_CHANGE);
        let bad = children.cells[1].as_ref().unwrap().integrity.unwrap();
        assert_eq!((bad.bad, bad.of, bad.what), (3, 100, "children"));
        let lost: Vec<_> = c
            .regressions
            .iter()
            .filter_map(|r| r.lost_data.clone())
            .collect();
        assert_eq!(
            lost,
            vec!["3 of 100 children".to_string(), "2 of 2 runs".to_string()]
        );
        // The baseline is judged too: a baseline that lost data fails the gate.
        let c = compare(
            &inputs(vec![
                with("6.1.0", [0, 1], [0, 0]),
                with("6.18.0", [0, 0], [0, 0]),
            ]),
            &opts,
        )
        .unwrap();
        assert_eq!(c.regressions.len(), 1, "{:?}", c.regressions);
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
        .unwrap_err();
        let refusal = err.downcast_ref::<Refusal>().expect("a refusal");
        assert!(refusal.needs_force() && !refusal.needs_allow_different_machines());
        let differ: Vec<&str> = refusal
            .workloads
            .iter()
            .map(|d| d.parameter.as_str())
            .collect();
        assert_eq!(differ, ["bs", "buffer"]);
        let err = err.to_string();
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
                    params: [("threads", threads.to_string())].into_iter().collect(),
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

    /// Two results of a fixed_buffers sweep: compare pools each group's repeats and gives
    /// per pair the cost per I/O and per base page with an interval; results without
    /// pin_cost give none.
    #[test]
    fn pin_cost_pairs_are_recomputed_per_group_with_intervals() {
        let with_pairs = |release: &str, pinned: f64, fixed: f64| {
            let mut r = synthetic(release, &[]);
            for (flag, mean) in [("false", pinned), ("true", fixed)] {
                let params = [("bs", "10M"), ("fixed_buffers", flag)]
                    .into_iter()
                    .collect();
                let runs = (0..3)
                    .map(|i| {
                        let mut run = synthetic_run(i, 100.0);
                        run.latency_ns.mean = mean + 1000.0 * i as f64;
                        run
                    })
                    .collect();
                r.sweep.push(SweepCase {
                    label: format!("bs=10M fixed_buffers={flag}"),
                    params,
                    runs,
                });
            }
            r.pin_cost = pin_costs(&r.sweep, 4096, false, r.system.base_page_bytes);
            r
        };
        let a = with_pairs("6.1.0", 1_360_000.0, 1_010_000.0);
        let b = with_pairs("6.12.0", 1_110_000.0, 1_010_000.0);
        let plain = synthetic("6.13.0", &[100.0, 101.0]);
        let c = compare(&inputs(vec![a, b]), &CompareOptions::default()).unwrap();
        assert_eq!(c.pin_cost.len(), 2);
        let first = &c.pin_cost[0].pairs[0];
        assert_eq!(first.label, "bs=10M");
        assert!((first.ns_per_io - 350_000.0).abs() < 1e-6, "{first:?}");
        assert!((first.ns_per_page - 350_000.0 / 2560.0).abs() < 1e-9);
        let [lo, hi] = first.ci95_ns_per_page.unwrap();
        assert!(
            lo < first.ns_per_page && hi > first.ns_per_page,
            "{lo}..{hi}"
        );
        assert!((c.pin_cost[1].pairs[0].ns_per_io - 100_000.0).abs() < 1e-6);
        let text = crate::report::compare::render_text(&c);
        assert!(text.contains("Pin cost"), "{text}");
        assert!(text.contains("bs=10M"), "{text}");
        assert!(text.contains("136.7 ± "), "{text}");
        let none = compare(&inputs(vec![plain]), &CompareOptions::default()).unwrap();
        assert!(none.pin_cost.is_empty());
        assert!(!crate::report::compare::render_text(&none).contains("Pin cost"));
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
            run.lock_contention = serde_json::from_value(serde_json::json!({
                "available": true, "total_wait_ns": 5000, "run_total_wait_ns": 3000, "events": 3,
                "by_caller": [{"caller": "folio_lock", "type": "mutex", "count": 1,
                    "total_wait_ns": 4000, "max_wait_ns": 4000, "avg_wait_ns": 4000}]
            }))
            .unwrap();
            run.perf = serde_json::from_value(
                serde_json::json!({"cpu0": {"cycles": 1000}, "cpu1": {"cycles": 1000}}),
            )
            .unwrap();
            run.gup = serde_json::from_value(serde_json::json!({
                "ns_per_page": 12.5, "pages_referenced": 512,
                "kernel": {"available": true, "pin_fast": {"calls": 2, "pages": 1024,
                    "get_usec": 3, "put_usec": 1, "get_ns_per_page": 2.9, "put_ns_per_page": 1.0}}
            }))
            .unwrap();
        }
        let c = compare(&inputs(vec![a]), &CompareOptions::default()).unwrap();
        for key in [
            "vmstat_delta.thp_split_page",
            "lock_contention.total_wait_ns",
            "lock_contention.run_total_wait_ns",
            "lock_contention.by_caller.folio_lock",
            "perf.cycles",
            "gup.ns_per_page",
            "gup.pages_referenced",
            "gup.kernel.pin_fast.get_ns_per_page",
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

    /// One kernel on one machine, edited one way at a time as issue 17 did: another
    /// hostname, 64 CPUs, THP `always`, `mitigations=off`. Each is refused, naming the
    /// setting, its values and the flag; with the flag each is compared in a column of
    /// its own (never pooled), the differences first.
    #[test]
    fn results_from_another_machine_or_conditions_are_refused_unless_allowed() {
        let base = synthetic("6.18.0", &[100.0, 101.0, 99.0]);
        type Edit = fn(&mut BenchResult);
        let edits: [(&str, Edit); 6] = [
            (
                "architecture (machine): x86_64 (r0.json); aarch64 (r1.json)",
                |r| r.system.kernel.machine = "aarch64".into(),
            ),
            // A 16K-page kernel: every per-page figure counts other pages.
            ("base page (condition): 4K (r0.json); 16K (r1.json)", |r| {
                r.system.base_page_bytes = 16 << 10;
                r.system.thp.pmd_size_bytes = 32 << 20;
            }),
            (
                "hostname (machine): bench1 (r0.json); other (r1.json)",
                |r| r.system.hostname = "other".into(),
            ),
            ("CPUs (machine): 4 (r0.json); 64 (r1.json)", |r| {
                r.system.cpus = (0..64)
                    .map(|cpu| crate::result::CpuInfo {
                        cpu,
                        ..Default::default()
                    })
                    .collect()
            }),
            (
                "THP enabled (condition): madvise (r0.json); always (r1.json)",
                |r| r.system.thp.enabled = "always".into(),
            ),
            (
                "kernel command line (condition): (none) (r0.json); mitigations=off (r1.json)",
                |r| r.system.kernel.cmdline.push_str(" mitigations=off"),
            ),
        ];
        for (expected, edit) in edits {
            let mut other = synthetic("6.18.0", &[100.0, 102.0, 98.0]);
            edit(&mut other);
            let both = inputs(vec![base.clone(), other]);
            let err = compare(&both, &CompareOptions::default()).unwrap_err();
            let refusal = err.downcast_ref::<Refusal>().expect("a refusal");
            assert!(
                refusal.needs_allow_different_machines() && !refusal.needs_force(),
                "{expected}: {refusal:?}"
            );
            let err = err.to_string();
            assert!(err.contains(expected), "{expected}\n{err}");
            assert!(err.contains("different machines or conditions"), "{err}");
            assert!(err.contains(ALLOW_DIFFERENT_MACHINES), "{err}");
            let allowed = CompareOptions {
                allow_different_machines: true,
                ..Default::default()
            };
            let c = compare(&both, &allowed).unwrap();
            assert_eq!(c.groups.len(), 2, "{expected}: pooled");
            assert_eq!(c.groups[0].runs_counted, 3);
            assert_ne!(c.groups[0].label, c.groups[1].label);
            let d = c
                .system_differences
                .iter()
                .find(|d| d.kind != SettingKind::Note)
                .unwrap();
            assert!(expected.starts_with(&d.setting), "{d:?}");
            let text = crate::report::compare::render_text(&c);
            let top = text.lines().nth(2).unwrap_or_default();
            assert!(
                top.starts_with("DIFFERENT MACHINES OR CONDITIONS"),
                "{text}"
            );
            assert!(text.contains(expected), "{text}");
        }
        // Another kernel on the same machine is what compare is for; the boot image
        // differs in the command line and does not count.
        let other_kernel = synthetic("6.19.0", &[100.0, 101.0]);
        let c = compare(
            &inputs(vec![base, other_kernel]),
            &CompareOptions::default(),
        )
        .unwrap();
        assert!(
            c.system_differences.is_empty(),
            "{:?}",
            c.system_differences
        );
    }

    /// `uname -v` of a reproducible build is the same for every build (`#1 SMP
    /// PREEMPT_DYNAMIC @0`): the build-id tells a patched build from the unpatched one.
    #[test]
    fn two_builds_of_one_release_are_two_groups() {
        let unpatched = synthetic("6.18.0", &[100.0, 101.0, 99.0]);
        let mut patched = synthetic("6.18.0", &[120.0, 121.0, 119.0]);
        patched.system.kernel.build_id = Some("ab".repeat(20));
        let again = synthetic("6.18.0", &[100.0, 100.0]);
        let c = compare(
            &inputs(vec![unpatched.clone(), patched.clone(), again]),
            &CompareOptions::default(),
        )
        .unwrap();
        assert_eq!(c.groups.len(), 2, "{:?}", c.groups);
        assert_eq!(c.groups[0].files, ["r0.json", "r2.json"]);
        assert!(
            c.groups[1].label.contains("[build abababababab]"),
            "{}",
            c.groups[1].label
        );
        let id0 = c.groups[0].kernel_build_id.clone().unwrap();
        assert!(c.groups[0]
            .label
            .contains(&format!("[build {}]", &id0[..12])));
        assert_eq!(
            row(&c, "ops_per_sec").cells[1].as_ref().unwrap().verdict,
            Verdict::Better
        );
        // An older result without a build-id groups by release and version, with a note.
        let mut old = unpatched;
        old.system.kernel.build_id = None;
        old.tool.commit.clear();
        let c = compare(&inputs(vec![old, patched]), &CompareOptions::default()).unwrap();
        assert_eq!(c.groups.len(), 1);
        assert!(
            c.notes.iter().any(
                |n| n.starts_with("r0.json lacks thpbench commit, kernel build-id")
                    && n.contains("grouped by kernel release")
            ),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn a_debug_kernel_is_named_in_the_notes_and_microcode_is_printed_not_refused() {
        let mut a = synthetic("6.18.0", &[100.0, 101.0]);
        a.system.kernel.config = Some(crate::result::KernelConfig {
            options: [("LOCKDEP".to_string(), "y".to_string())].into(),
            ..Default::default()
        });
        let mut b = synthetic("6.19.0", &[100.0, 101.0]);
        if let Some(m) = b.system.machine.as_mut() {
            m.microcode = "0x2000000".into();
        }
        let c = compare(&inputs(vec![a, b]), &CompareOptions::default()).unwrap();
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("debug options on (LOCKDEP)")),
            "{:?}",
            c.notes
        );
        let text = crate::report::compare::render_text(&c);
        assert!(text.contains("Also differs besides the kernel:\n  microcode: 0x1000065 (r0.json); 0x2000000 (r1.json)"), "{text}");
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
