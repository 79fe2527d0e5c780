//! Validity: why a result is, or is not, evidence, and the exit code that says so.

use super::MIN_COVERAGE;
use crate::result::{BenchResult, DisturberReport, Stall, VerifyReport};
use crate::workload::{Backing, Workload};

/// The reasons only the whole result shows, after those the phases found: a signal cut
/// the runs short, or a run did nothing.
pub(super) fn closing_reasons(result: &BenchResult) -> Vec<String> {
    let mut reasons = Vec::new();
    if result.interrupted {
        reasons.push("interrupted by a signal: the runs are partial".to_string());
    }
    // Every run counts, baseline runs too: a baseline that did nothing is no baseline.
    reasons.extend(
        result
            .all_runs()
            .filter(|v| v.run.ops == 0 && !v.run.interrupted)
            .map(|v| format!("{} completed no operation", v.name())),
    );
    reasons
}

/// Why a run whose reads did not all verify, in the run or in the final pass, is not
/// evidence: its rate and latency describe I/O that lost data.
pub(super) fn corrupted_data_reason(verify: &VerifyReport) -> Option<String> {
    let in_run = in_run_mismatch_reason(verify);
    let last = verify.final_pass.as_ref().filter(|f| f.mismatches > 0).map(|f| {
        let offsets: Vec<String> = f
            .first_mismatches
            .iter()
            .take(4)
            .map(|m| m.offset.to_string())
            .collect();
        format!(
            "the final verify pass found {} mismatched sectors in {} of {} blocks, first at target offsets {}{}: data the run did not write (another writer, or a write lost after its read-back)",
            f.mismatches,
            f.mismatched_blocks,
            f.blocks_checked,
            offsets.join(", "),
            if f.mismatched_blocks > 4 { ", ..." } else { "" }
        )
    });
    match (in_run, last) {
        (None, None) => None,
        (Some(a), None) => Some(a),
        (None, Some(b)) => Some(format!("{b}: corrupted data is not evidence")),
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
    }
}

/// Why a final verify pass that did not cover the region leaves the run unproven (an
/// interrupted run is invalid already).
pub(super) fn final_pass_reason(verify: &VerifyReport, interrupted: bool) -> Option<String> {
    let why = verify.final_pass.as_ref()?.incomplete.as_ref()?;
    (!interrupted).then(|| format!("the final verify pass did not read the whole region: {why}"))
}

/// Why the run is not evidence when it stalled: the process did not run (SIGSTOP, a
/// frozen cgroup, a paused VM) or the system was suspended, and the figures hold the
/// pause. None when there was no stall.
pub(super) fn stall_reason(stalls: &[Stall]) -> Option<String> {
    let first = stalls.first()?;
    let total: u64 = stalls.iter().map(|s| s.length_ns).sum();
    let what = if first.kind == "suspended" {
        "the system was suspended"
    } else {
        "the process did not run (SIGSTOP, a frozen cgroup, a paused VM or no CPU for it)"
    };
    let more = if stalls.len() > 1 {
        format!(
            " ({} stalls, {:.2} s in all)",
            stalls.len(),
            total as f64 / 1e9
        )
    } else {
        String::new()
    };
    Some(format!(
        "stalled: {what} for {:.2} s at {} ms into the measured phase{more}, while no worker completed an operation: the figures measure the pause, not the I/O",
        first.length_ns as f64 / 1e9,
        first.t_ms
    ))
}

fn in_run_mismatch_reason(verify: &VerifyReport) -> Option<String> {
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
    if let Some(fork) = report.fork() {
        reasons.extend(crate::disturb::fork::invalid_reasons(
            &fork,
            backing,
            interrupted,
        ));
    }
    reasons
}

/// 130 interrupted (or a signal came, also during teardown), 3 data went where it must
/// not (a verify mismatch, or a forked child that saw the parent's data), 4 invalid (a
/// condition was not met), else 0.
pub fn exit_code(r: &BenchResult, signalled: bool) -> i32 {
    if r.interrupted || signalled {
        crate::exit::INTERRUPTED.code
    } else if r.all_runs().map(|v| v.run).any(|run| {
        run.verify.corrupted()
            || run
                .disturbers
                .iter()
                .any(|d| d.fork().is_some_and(|f| f.saw_parent_data > 0))
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
        assert_eq!(
            closing_reasons(&r),
            ["baseline run 0 completed no operation"]
        );
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
        let fork = DisturberReport {
            extra: crate::result::ForkFigures {
                children: 1,
                saw_parent_data: 1,
                ..Default::default()
            }
            .to_extra(),
            ..Default::default()
        };
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
    fn a_final_pass_mismatch_is_corruption_named_by_its_offsets() {
        let verify = VerifyReport {
            enabled: true,
            final_pass: Some(crate::result::FinalVerify {
                blocks_checked: 2048,
                mismatched_blocks: 2,
                mismatches: 16,
                first_mismatches: [8192, 65536]
                    .map(|offset| crate::result::FinalMismatch {
                        offset,
                        ..Default::default()
                    })
                    .to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let why = corrupted_data_reason(&verify).unwrap();
        assert!(
            why.contains(
                "16 mismatched sectors in 2 of 2048 blocks, first at target offsets 8192, 65536:"
            ),
            "{why}"
        );
        let mut r = result_with(vec![RunResult {
            ops: 10,
            verify,
            ..Default::default()
        }]);
        r.valid = false;
        assert_eq!(exit_code(&r, false), 3, "as a mismatch in the run");
        // A clean pass is no reason; an incomplete one is, unless the run was interrupted.
        let clean = VerifyReport {
            final_pass: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(corrupted_data_reason(&clean), None);
        assert_eq!(final_pass_reason(&clean, false), None);
        let cut = VerifyReport {
            final_pass: Some(crate::result::FinalVerify {
                incomplete: Some("reading 4096 bytes at offset 0 failed: EIO".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(final_pass_reason(&cut, false).unwrap().contains("EIO"));
        assert_eq!(final_pass_reason(&cut, true), None);
    }

    #[test]
    fn a_stall_is_named_with_its_length_and_when_it_began() {
        assert_eq!(stall_reason(&[]), None);
        let stop = Stall {
            kind: "stopped".into(),
            t_ms: 1400,
            length_ns: 5_000_000_000,
            process_cpu_ns: Some(1_000_000),
            kept: false,
        };
        let why = stall_reason(std::slice::from_ref(&stop)).unwrap();
        assert!(
            why.contains("the process did not run") && why.contains("for 5.00 s at 1400 ms"),
            "{why}"
        );
        let two = [
            stop.clone(),
            Stall {
                t_ms: 9000,
                length_ns: 1_000_000_000,
                ..stop
            },
        ];
        assert!(stall_reason(&two)
            .unwrap()
            .contains("(2 stalls, 6.00 s in all)"));
    }

    /// A fork child killed before its verdict (SIGBUS on hugetlb, where the kernel takes
    /// a page from the child) leaves the run unproven: invalid, exit 4, not 3, since no
    /// data was seen to go wrong.
    #[test]
    fn fork_children_without_a_verdict_make_the_run_invalid_not_corrupted() {
        let killed = DisturberReport {
            name: "fork".into(),
            actions: 4,
            counters_moved: true,
            extra: crate::result::ForkFigures {
                children: 4,
                failures: 2,
                last_signal: libc::SIGBUS as u64,
                ..Default::default()
            }
            .to_extra(),
            ..Default::default()
        };
        let why = disturber_reasons(&killed, Backing::Hugetlb, false);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(
            why[0].starts_with("2 of 4 forked children gave no verdict, killed by SIGBUS"),
            "{why:?}"
        );
        let mut r = result_with(vec![RunResult {
            ops: 10,
            disturbers: vec![killed],
            ..Default::default()
        }]);
        r.valid = false;
        r.invalid_reasons = why;
        assert_eq!(exit_code(&r, false), crate::exit::INVALID.code);
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
