//! One repeat's figures: the run's result assembled from what its workers, disturbers
//! and collectors left, with what it found (why it is not evidence, what could not be
//! measured). It writes into nothing: the run assembler takes both.

use std::collections::BTreeMap;

use super::findings::Findings;
use super::rig::{NumaLocality, Setup};
use super::validity::{
    corrupted_data_reason, coverage_complaint, disturber_reasons, final_pass_reason, stall_reason,
};
use super::MIN_COVERAGE;
use crate::disturb::DisturberOutput;
use crate::measure::histogram;
use crate::measure::stall;
use crate::result::{BufferReport, LockReport, RunResult, RunRole, Unavailable, VerifyReport};
use crate::system::pagemap::Coverage;
use crate::target::Target;
use crate::worker::{io_rates, WorkerOutput};
use crate::workload::{Backing, Workload};

/// What one repeat left once its workers, disturbers and collectors stopped, with what
/// it found on the way (a run that did not start from whole folios).
pub(super) struct Collected {
    pub outputs: Vec<WorkerOutput>,
    pub epoch: u64,
    pub interrupted: bool,
    pub cov_before: Coverage,
    pub cov_after: Coverage,
    pub vmstat_delta: BTreeMap<String, i64>,
    pub disturber_outputs: Vec<DisturberOutput>,
    pub lock_report: Option<LockReport>,
    pub gup_slow_path: Option<crate::result::GupSlowPath>,
    pub numa_before: NumaLocality,
    pub numa_after: NumaLocality,
    /// The main thread's late wakes and the system's suspends over the wait.
    pub watch: stall::Watch,
    pub final_pass: Option<crate::result::FinalVerify>,
    pub host_activity: Option<crate::result::HostActivity>,
    pub findings: Findings,
}

/// The run's figures from what the repeat collected, and the reasons it is not
/// evidence, if any.
pub(super) fn assemble(
    rig: &Setup,
    w: &Workload,
    repeat: usize,
    role: RunRole,
    keep_stalled: bool,
    collected: Collected,
) -> (RunResult, Findings) {
    let Collected {
        outputs,
        epoch,
        interrupted,
        cov_before,
        cov_after,
        vmstat_delta,
        disturber_outputs,
        lock_report,
        gup_slow_path,
        numa_before,
        numa_after,
        watch,
        final_pass,
        host_activity,
        mut findings,
    } = collected;
    let end = outputs
        .iter()
        .map(|o| o.end_ns)
        .max()
        .unwrap_or(epoch)
        .max(epoch + 1);
    let duration_ns = end - epoch;
    let recorders: Vec<&histogram::Recorder> = outputs.iter().map(|o| &o.recorder).collect();
    let merged = histogram::merge(&recorders);
    let ops: u64 = outputs.iter().map(|o| o.recorder.ops).sum();
    let bytes: u64 = outputs.iter().map(|o| o.recorder.bytes).sum();
    // A run with disturbers splits on purpose; the others must end as they started.
    let disturbed_run = role == RunRole::Measured && !rig.disturbers.is_empty();
    let run_name = role.run_name(repeat);
    let name = Some(run_name.as_str());
    if !disturbed_run && cov_after.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
        let why = coverage_complaint(w, cov_after.fraction, "at its end");
        findings.invalid(name, why);
    }
    let nonce = rig.target.as_ref().and_then(|t| t.stamped).unwrap_or(0);
    let mut verify = verify_report(w.verify, nonce, &outputs);
    if w.verify {
        verify.level = Some(w.verify_level);
    }
    verify.final_pass = final_pass;
    if let Some(why) = corrupted_data_reason(&verify) {
        findings.invalid(name, why);
    }
    if let Some(why) = final_pass_reason(&verify, interrupted) {
        findings.invalid(name, why);
    }
    let latency = histogram::summarize(&merged.total);
    let gaps: Vec<stall::Gaps> = outputs.iter().map(|o| o.gaps).collect();
    let phase = stall::Phase {
        epoch,
        end,
        threshold_ns: stall::threshold(latency.p99),
        // The main thread, the workers, the disturbers, and one for the collectors.
        // The process cannot use more CPU than it has CPUs, whatever its threads.
        threads: ((outputs.len() + disturber_outputs.len() + 2) as u64)
            .min(crate::system::cpu::allowed_cpus().len().max(1) as u64),
    };
    let mut stalls = stall::find(&watch.late, &watch.suspends, &gaps, phase);
    for s in &mut stalls {
        s.kept = keep_stalled;
    }
    if let Some(why) = stall_reason(&stalls) {
        if keep_stalled {
            crate::output::warn(&format!(
                "{run_name}: {why}; kept as measured (--keep-stalled)"
            ));
        } else {
            findings.invalid(
                name,
                format!("{why}; pass --keep-stalled to keep such a run as measured"),
            );
        }
    }
    let mut timeline = merged.timeline;
    let zswap = crate::system::swap::zswap_enabled();
    let disturbers = disturber_reports(w, &disturber_outputs, &vmstat_delta, zswap);
    for (o, report) in disturber_outputs.iter().zip(&disturbers) {
        attribute_actions(
            &report.name,
            &o.action_times,
            &mut timeline,
            &mut verify.first_mismatches,
        );
        for why in disturber_reasons(report, w.buffer, interrupted) {
            findings.invalid(name, why);
        }
    }
    let (gup, gup_complaint) = gup_value(&outputs, w, ops, latency.mean);
    if let Some(why) = gup_complaint {
        findings.invalid(name, why);
    }
    let (perf, perf_unavailable) = perf_value(&outputs);
    for u in perf_unavailable {
        findings.unavailable(u);
    }
    let threads = rig.thread_results(&outputs, &numa_before, &numa_after);
    if !interrupted {
        let complaints = crate::placement::locality_complaints(w.numa, &run_name, &threads);
        findings.invalid_reasons.extend(complaints);
    }
    let run = RunResult {
        repeat,
        duration_ns,
        ops,
        bytes,
        ops_per_sec: io_rates(&outputs).0,
        bytes_per_sec: io_rates(&outputs).1,
        io_time_ns: outputs.iter().map(|o| o.io_ns).sum(),
        verify_time_ns: outputs.iter().map(|o| o.verify_ns).sum(),
        latency_ns: latency.clone(),
        histogram: histogram::encode_compressed(&merged.total),
        interval_histograms: merged.intervals,
        timeline,
        disturbers,
        gup: gup.map(|g| rig.with_kernel_gup_figures(w, g)),
        perf,
        gup_slow_path,
        io_uring: crate::measure::uring_punts::merge(
            &outputs
                .iter()
                .filter_map(|o| o.engine_figures.clone())
                .collect::<Vec<_>>(),
        ),
        target: rig.target.as_ref().map(Target::report),
        lock_contention: lock_report,
        threads,
        buffer: BufferReport {
            backing: w.buffer,
            share: w.share,
            bytes: rig.buffers.len() as u64,
            folio_bytes: rig.buffers.folio_bytes,
            thp_coverage_before: cov_before.fraction,
            thp_coverage_after: cov_after.fraction,
            coverage_method: cov_before.method.to_string(),
            numa: Some(w.numa),
            numa_nodes_before: numa_before.1,
            numa_nodes_after: numa_after.1,
        },
        vmstat_delta,
        verify,
        interrupted,
        stalls,
        placement: Some(rig.layout.placement.clone()),
        host_activity,
    };
    (run, findings)
}

/// What the workers' verify checked and found, the earliest 16 mismatches first.
fn verify_report(enabled: bool, nonce: u32, outputs: &[WorkerOutput]) -> VerifyReport {
    let mut verify = VerifyReport {
        enabled,
        nonce,
        ..VerifyReport::default()
    };
    for o in outputs {
        verify.bytes_checked += o.bytes_checked;
        verify.mismatches += o.mismatches;
        verify.readbacks += o.readbacks;
        verify
            .first_mismatches
            .extend(o.first_mismatches.iter().cloned());
    }
    verify.first_mismatches.sort_by_key(|m| m.t_ms);
    verify.first_mismatches.truncate(16);
    verify
}

/// Each disturber's report against the run's vmstat deltas.
fn disturber_reports(
    w: &Workload,
    disturber_outputs: &[DisturberOutput],
    vmstat_delta: &BTreeMap<String, i64>,
    zswap: bool,
) -> Vec<crate::result::DisturberReport> {
    disturber_outputs
        .iter()
        .map(|o| {
            let mut report = o.report(vmstat_delta, w.buffer, zswap);
            if w.fixed_buffers {
                // Registered buffers are pinned long-term: what the pin stops is
                // recorded as defeated, not as a broken run.
                crate::disturb::pinned::mark_defeated_by_pin(
                    o.spec.kind,
                    &mut report,
                    vmstat_delta,
                );
            }
            report
        })
        .collect()
}

/// The gup engine's figures for one run: pages referenced (checked against what was
/// vmspliced), ns per op and per page; and why the run is not evidence when the count is
/// off.
fn gup_value(
    outputs: &[WorkerOutput],
    w: &Workload,
    ops: u64,
    mean_ns: f64,
) -> (Option<crate::result::GupReport>, Option<String>) {
    let Some(pages) = outputs
        .iter()
        .map(|o| o.pages_referenced)
        .sum::<Option<u64>>()
    else {
        return (None, None);
    };
    let pages_per_op = w.bs.bytes() / crate::pages::base_page() as u64;
    let expected = ops * pages_per_op;
    let complaint = (pages != expected).then(|| {
        format!(
            "the gup engine referenced {pages} pages, but {ops} ops of {} should reference {expected}",
            w.bs
        )
    });
    let report = crate::result::GupReport {
        engine: "gup".into(),
        figure: "vmsplice page references".into(),
        pages_referenced: pages,
        pages_expected: expected,
        pages_per_op,
        ns_per_op: mean_ns,
        ns_per_page: mean_ns / pages_per_op as f64,
        kernel: None,
    };
    (Some(report), complaint)
}

/// The per-thread perf counters as the result stores them ({"cpu<N>": {counter: value}}),
/// and the counters that could not be opened, as unavailable (once each).
fn perf_value(outputs: &[WorkerOutput]) -> (Option<crate::result::PerfReport>, Vec<Unavailable>) {
    let mut threads = std::collections::BTreeMap::new();
    let mut unavailable: Vec<Unavailable> = Vec::new();
    for o in outputs {
        let Some((values, counters)) = &o.perf else {
            continue;
        };
        threads.insert(format!("cpu{}", o.cpu), values.clone());
        for (name, why) in &counters.unavailable {
            let u = if why == crate::measure::perfcount::HARDWARE_OFF {
                // One entry for the four counters not asked for.
                Unavailable::new(
                    "hardware perf counters",
                    why.clone(),
                    "--hw-counters (hw_counters = true), on a machine with a PMU",
                )
            } else {
                crate::system::probe::capability::perf(name)
                    .unavailable(format!("perf counter {name}"), why.clone())
            };
            if !unavailable.contains(&u) {
                unavailable.push(u);
            }
        }
        if !counters.kernel_included && counters.hardware_taken() {
            let u = crate::system::probe::capability::perf_kernel_mode().unavailable(
                "kernel-mode perf counts",
                "perf_event_paranoid > 1 and not root: counters exclude kernel mode",
            );
            if !unavailable.contains(&u) {
                unavailable.push(u);
            }
        }
    }
    let report = (!threads.is_empty()).then_some(crate::result::PerfReport(threads));
    (report, unavailable)
}

/// Counts a disturber's actions into the 100 ms timeline and into the interval of each
/// mismatch, so that spikes and corruption line up with what caused them.
fn attribute_actions(
    name: &str,
    times_ns: &[u64],
    timeline: &mut [crate::result::TimelinePoint],
    mismatches: &mut [crate::result::Mismatch],
) {
    let tick_ms = histogram::TICK_NS / 1_000_000;
    for &t in times_ns {
        let t_ms = t / 1_000_000 / tick_ms * tick_ms;
        if let Ok(i) = timeline.binary_search_by_key(&t_ms, |p| p.t_ms) {
            *timeline[i]
                .disturb_actions
                .entry(name.to_string())
                .or_default() += 1;
        }
        for m in mismatches.iter_mut() {
            if m.t_ms / tick_ms == t_ms / tick_ms {
                *m.disturb_actions.entry(name.to_string()).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{Mismatch, TimelinePoint};

    #[test]
    fn actions_land_in_their_100ms_interval_and_beside_their_mismatch() {
        let mut timeline: Vec<TimelinePoint> = (0..3)
            .map(|i| TimelinePoint {
                t_ms: i * 100,
                ..Default::default()
            })
            .collect();
        let mut mismatches = vec![Mismatch {
            t_ms: 150,
            ..Default::default()
        }];
        // 50 ms, 120 ms, 199 ms, and 5 s (past the timeline: counted nowhere).
        let times = [50_000_000, 120_000_000, 199_000_000, 5_000_000_000];
        attribute_actions("split", &times, &mut timeline, &mut mismatches);
        let counts: Vec<u64> = timeline
            .iter()
            .map(|p| p.disturb_actions.get("split").copied().unwrap_or(0))
            .collect();
        assert_eq!(counts, [1, 2, 0]);
        assert_eq!(mismatches[0].disturb_actions["split"], 2);
    }
}
