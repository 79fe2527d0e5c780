//! The one place a run's result is built: from what the plan fixed (when, where, what),
//! the runs each phase measured, and what every phase found. Nothing below it writes
//! into a result; validity is decided here, once, from all of it.

use std::collections::BTreeMap;

use super::findings::Findings;
use crate::result::{BenchResult, MockReport, RunResult, SweepCase, SystemInfo, Tool};
use crate::workload::Workload;

/// What was measured: the workload's runs (and its undisturbed baseline runs), or one
/// entry per sweep case.
pub(super) enum Measured {
    Plain {
        runs: Vec<RunResult>,
        baseline_runs: Vec<RunResult>,
    },
    Sweep(Vec<SweepCase>),
}

/// Everything the result is made of.
pub(super) struct Parts {
    pub started_at: String,
    pub system: SystemInfo,
    /// As resolved for the run (its worker count, not 0 for "every allowed CPU").
    pub workload: Workload,
    pub mock: Option<MockReport>,
    pub measured: Measured,
    /// Per sweep case label: whether its private I/Os are cut as shared ones are, so
    /// that a shared/private ratio compares sharing alone.
    pub cut_as_shared: BTreeMap<String, bool>,
    pub findings: Findings,
    /// A signal came after the last repeat, during teardown: it stopped nothing measured.
    pub signal_in_teardown: bool,
}

/// The result, its ratios and its validity.
pub(super) fn result(parts: Parts) -> BenchResult {
    let Parts {
        started_at,
        system,
        workload,
        mock,
        measured,
        cut_as_shared,
        findings,
        signal_in_teardown,
    } = parts;
    let (runs, baseline_runs, sweep) = match measured {
        Measured::Plain {
            runs,
            baseline_runs,
        } => (runs, baseline_runs, Vec::new()),
        Measured::Sweep(cases) => (Vec::new(), Vec::new(), cases),
    };
    let shared_folio = crate::compare::shared_folio_ratios(&sweep, |c| {
        cut_as_shared.get(&c.label).copied().unwrap_or(false)
    });
    let pin_cost =
        crate::compare::pin_costs(&sweep, workload.bs.bytes(), true, system.base_page_bytes);
    let Findings {
        mut invalid_reasons,
        unavailable,
        interrupted,
    } = findings;
    let mut result = BenchResult {
        schema_version: crate::result::SCHEMA_VERSION,
        tool: Tool::default(),
        started_at,
        system,
        workload,
        runs,
        baseline_runs,
        sweep,
        shared_folio,
        pin_cost,
        unavailable,
        valid: false,
        invalid_reasons: Vec::new(),
        interrupted,
        signal_in_teardown,
        mock,
    };
    invalid_reasons.extend(super::validity::closing_reasons(&result));
    result.valid = invalid_reasons.is_empty();
    result.invalid_reasons = invalid_reasons;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(runs: Vec<RunResult>, findings: Findings) -> Parts {
        Parts {
            started_at: "2026-12-03T00:00:00Z".into(),
            system: SystemInfo::default(),
            workload: Workload::default(),
            mock: None,
            measured: Measured::Plain {
                runs,
                baseline_runs: Vec::new(),
            },
            cut_as_shared: BTreeMap::new(),
            findings,
            signal_in_teardown: false,
        }
    }

    fn run(ops: u64) -> RunResult {
        RunResult {
            ops,
            ..RunResult::default()
        }
    }

    #[test]
    fn a_result_is_valid_only_when_no_phase_found_a_reason() {
        let clean = result(parts(vec![run(10), run(12)], Findings::default()));
        assert!(clean.valid, "{:?}", clean.invalid_reasons);
        let mut f = Findings::default();
        f.invalid(Some("run 1"), "stalled");
        let stalled = result(parts(vec![run(10), run(12)], f));
        assert!(!stalled.valid);
        assert_eq!(stalled.invalid_reasons, ["run 1: stalled"]);
    }

    #[test]
    fn an_interrupted_or_idle_run_makes_the_result_invalid_after_the_phases_reasons() {
        let f = Findings {
            invalid_reasons: vec!["run 0: coverage".into()],
            interrupted: true,
            ..Findings::default()
        };
        let r = result(parts(vec![run(10), run(0)], f));
        assert!(!r.valid && r.interrupted);
        assert_eq!(r.invalid_reasons[0], "run 0: coverage");
        assert!(r.invalid_reasons[1].starts_with("interrupted by a signal"));
        assert_eq!(r.invalid_reasons[2], "run 0 completed no operation");
    }
}
