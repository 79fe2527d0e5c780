//! Validity: why a result is, or is not, evidence, and the exit code that says so.

use super::MIN_COVERAGE;
use crate::result::{BenchResult, DisturberReport, VerifyReport};
use crate::workload::{Backing, Workload};

pub(super) fn finalize_validity(result: &mut BenchResult) {
    if result.interrupted {
        result
            .invalid_reasons
            .push("interrupted by a signal: the runs are partial".into());
    }
    // Every run counts, baseline runs too: a baseline that did nothing is no baseline.
    let idle: Vec<String> = result
        .all_runs()
        .filter(|v| v.run.ops == 0 && !v.run.interrupted)
        .map(|v| format!("{} completed no operation", v.name()))
        .collect();
    result.invalid_reasons.extend(idle);
    result.valid = result.invalid_reasons.is_empty();
}

/// Why a run whose reads did not all verify is not evidence: its rate and latency
/// describe I/O that lost data.
pub(super) fn corrupted_data_reason(verify: &VerifyReport) -> Option<String> {
    if verify.mismatches == 0 {
        return None;
    }
    let first = verify.first_mismatches.first().map_or_else(
        || " (no details were recorded: a bug in thpbench, please report it)".to_string(),
        |m| {
            format!(
                ", the first at target offset {} on CPU {} at {} ms",
                m.offset, m.thread_cpu, m.t_ms
            )
        },
    );
    Some(format!(
        "verify found {} mismatched sectors{first}: corrupted data is not evidence",
        verify.mismatches
    ))
}

pub(super) fn coverage_complaint(w: &Workload, fraction: f64, when: &str) -> String {
    let knob = match w.buffer {
        Backing::Thp => format!(
            "/sys/kernel/mm/transparent_hugepage/enabled is `{}` and defrag is `{}`; with too little free contiguous memory the kernel falls back to base pages (try defrag = madvise, echo 1 > /proc/sys/vm/compact_memory)",
            crate::system::thp::info().enabled,
            crate::system::thp::info().defrag
        ),
        Backing::Mthp(sz) => format!("check /sys/kernel/mm/transparent_hugepage/hugepages-{}kB/enabled", sz / 1024),
        Backing::Hugetlb => "check /proc/sys/vm/nr_hugepages".into(),
        Backing::Base => String::new(),
    };
    format!(
        "only {:.1}% of the {} buffer is backed as asked {when} (need {:.0}%): {knob}; per NUMA node: {}",
        fraction * 100.0,
        w.buffer,
        MIN_COVERAGE * 100.0,
        crate::system::numa::huge_page_capacity_now(match w.buffer {
            Backing::Mthp(sz) => sz,
            _ => crate::system::thp::pmd_size(),
        })
    )
}

/// Why a disturber's run is not evidence: it acted but nothing shows it changed the
/// buffer, it never acted, or (fork) its children saw the parent's data.
pub(super) fn disturber_reasons(
    report: &DisturberReport,
    backing: Backing,
    interrupted: bool,
) -> Vec<String> {
    let mut reasons = Vec::new();
    // Confirmed actions on the buffer prove a disturbance where they can be seen;
    // the system-wide counters then only support it.
    if report.actions > 0 && report.confirmed == Some(0) && !report.defeated_by_pin && !interrupted
    {
        reasons.push(format!(
            "disturber {} acted {} times but none of its actions changed the folio of the page it acted on (pagemap + kpageflags before and after each){}",
            report.name,
            report.actions,
            if report.counters_moved { "; the system-wide vmstat counters moved, from other activity" } else { "" }
        ));
    } else if report.actions > 0
        && report.confirmed.is_none()
        && !report.counters_moved
        && !report.defeated_by_pin
        && !interrupted
    {
        reasons.push(format!(
            "disturber {} acted {} times but the vmstat counters that prove it did not all move: none of {} moved",
            report.name,
            report.actions,
            report.counters_not_moved.join(", nor ")
        ));
    }
    if report.actions == 0 && !interrupted {
        reasons.push(format!(
            "disturber {} never acted ({} errors, last: {})",
            report.name,
            report.errors,
            report.last_error.as_deref().unwrap_or("none")
        ));
    }
    // The fork disturber's children report through `extra`.
    reasons.extend(crate::disturb::fork::invalid_reasons(
        &report.extra,
        backing,
        interrupted,
    ));
    reasons
}

/// 130 interrupted (or a signal came, also during teardown), 3 data went where it must
/// not (a verify mismatch, or a forked child that saw the parent's data), 4 invalid (a
/// condition was not met), else 0.
pub fn exit_code(r: &BenchResult, signalled: bool) -> i32 {
    if r.interrupted || signalled {
        crate::exit::INTERRUPTED.code
    } else if r.all_runs().map(|v| v.run).any(|run| {
        run.verify.mismatches > 0
            || run
                .disturbers
                .iter()
                .any(|d| crate::disturb::fork::children_saw_parent_data(&d.extra) > 0)
    }) {
        crate::exit::MISMATCH.code
    } else if !r.valid {
        crate::exit::INVALID.code
    } else {
        crate::exit::OK.code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{DisturberReport, RunResult};

    fn result_with(runs: Vec<RunResult>) -> BenchResult {
        let mut r = BenchResult::new(Default::default(), Default::default());
        r.runs = runs;
        r
    }

    #[test]
    fn a_baseline_run_without_operations_makes_the_result_invalid() {
        let mut r = result_with(vec![RunResult {
            ops: 10,
            ..Default::default()
        }]);
        r.baseline_runs = vec![RunResult::default()];
        finalize_validity(&mut r);
        assert!(!r.valid);
        assert_eq!(r.invalid_reasons, ["baseline run 0 completed no operation"]);
    }

    #[test]
    fn exit_codes_put_interruption_before_corruption_before_invalidity() {
        let mut r = result_with(vec![RunResult {
            ops: 10,
            ..Default::default()
        }]);
        assert_eq!(exit_code(&r, false), 0);
        assert_eq!(exit_code(&r, true), 130);
        r.valid = false;
        assert_eq!(exit_code(&r, false), 4);
        let mut fork = DisturberReport::default();
        fork.extra.insert("child_saw_parent_data".into(), 1);
        r.baseline_runs = vec![RunResult {
            disturbers: vec![fork],
            ..Default::default()
        }];
        assert_eq!(
            exit_code(&r, false),
            3,
            "a baseline run's fork child counts"
        );
        r.interrupted = true;
        assert_eq!(exit_code(&r, false), 130);
    }

    #[test]
    fn a_disturber_is_judged_by_its_confirmations_else_its_counters() {
        let acted = DisturberReport {
            name: "split:cold".into(),
            actions: 5,
            confirmed: Some(0),
            counters_moved: true,
            ..Default::default()
        };
        let why = disturber_reasons(&acted, Backing::Thp, false);
        assert!(
            why[0].contains("none of its actions changed the folio"),
            "{why:?}"
        );
        let confirmed = DisturberReport {
            confirmed: Some(3),
            counters_moved: false,
            ..acted.clone()
        };
        assert!(disturber_reasons(&confirmed, Backing::Thp, false).is_empty());
        let unconfirmable = DisturberReport {
            confirmed: None,
            counters_moved: false,
            counters_not_moved: vec!["thp_split_pmd".into()],
            ..acted.clone()
        };
        let why = disturber_reasons(&unconfirmable, Backing::Thp, false);
        assert!(why[0].contains("none of thp_split_pmd moved"), "{why:?}");
        let idle = DisturberReport {
            actions: 0,
            ..Default::default()
        };
        assert!(disturber_reasons(&idle, Backing::Thp, false)[0].contains("never acted"));
        assert!(disturber_reasons(&idle, Backing::Thp, true).is_empty());
    }
}
