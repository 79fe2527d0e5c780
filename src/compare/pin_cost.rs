//! Pin cost from a sweep over `fixed_buffers`: for each pair of cases that differ only in
//! it, the time per I/O with per-I/O pins minus with registered buffers, per I/O and per
//! base page (4 KiB on x86-64, 4/16/64 KiB on arm64). Time per I/O is the workers' I/O
//! time over the I/Os (for uring the busy time, so that at any queue depth it is the
//! service time, not the latency, which at depth N holds about N service times, Little's
//! law). `thpbench run` measures the two
//! cases alternately within each repeat, on one target and buffer: the interval is then
//! that of the per-repeat differences (paired); otherwise Welch's, from the repeats.
//!
//! Per group: the `fixed_buffers` pairs of a group's sweep, recomputed over the group's
//! pooled repeats (as every other figure of `compare`), for groups whose results carry
//! `pin_cost`.
//!
//! Analysis over results (run and compare both call it), with stats.rs's estimators:
//! it measures nothing itself.

use std::collections::BTreeMap;

use serde::Serialize;

use super::grouping::{Group, Input};
use crate::result::{PinCost, SweepCase};

/// Time per I/O of one run: its I/O time over its I/Os; with `latency`, the mean latency
/// (results written before the I/O time was kept: one basis for all runs of a pair, never
/// a mix).
fn ns_per_io(r: &crate::result::RunResult, latency: bool) -> f64 {
    if latency {
        r.latency_ns.mean
    } else {
        r.io_time_ns as f64 / r.ops as f64
    }
}

/// One pin cost per pair of cases that differ only in `fixed_buffers`. `default_bs` is
/// the workload's bs, for sweeps that do not vary it. `paired`: the cases' repeats were
/// measured alternately, repeat by repeat, so that the i-th runs of both belong together.
/// `page_bytes`: the base page size of the kernel the cases ran on.
pub fn pin_costs(
    sweep: &[SweepCase],
    default_bs: u64,
    paired: bool,
    page_bytes: u64,
) -> Vec<PinCost> {
    let rest = |c: &SweepCase| {
        c.params
            .label_without(crate::workload::TypedSweepKey::FixedBuffers)
    };
    let fixed = |c: &SweepCase, want: bool| c.params.fixed_buffers == Some(want);
    let mut out = Vec::new();
    for pinned in sweep.iter().filter(|c| fixed(c, false)) {
        let label = rest(pinned);
        let Some(registered) = sweep.iter().find(|c| fixed(c, true) && rest(c) == label) else {
            continue;
        };
        // A run without its I/O time (an old result) sends the whole pair to latency.
        let latency = pinned
            .runs
            .iter()
            .chain(&registered.runs)
            .any(|r| r.ops > 0 && r.io_time_ns == 0);
        let times = |c: &SweepCase| -> Vec<f64> {
            c.runs
                .iter()
                .filter(|r| r.ops > 0)
                .map(|r| ns_per_io(r, latency))
                .collect()
        };
        let mean_latency = |c: &SweepCase| -> f64 {
            let l: Vec<f64> = c
                .runs
                .iter()
                .filter(|r| r.ops > 0)
                .map(|r| r.latency_ns.mean)
                .collect();
            mean(&l)
        };
        let (a, b) = (times(pinned), times(registered));
        if a.is_empty() || b.is_empty() {
            continue;
        }
        // Pairs by repeat index, both sides measured: a repeat dropped on one side only
        // drops its pair, never shifts the others.
        let pairs: Vec<(f64, f64)> = pinned
            .runs
            .iter()
            .zip(&registered.runs)
            .filter(|(x, y)| x.ops > 0 && y.ops > 0)
            .map(|(x, y)| (ns_per_io(x, latency), ns_per_io(y, latency)))
            .collect();
        let paired = paired && pinned.runs.len() == registered.runs.len() && !pairs.is_empty();
        // Paired: the figures come from the repeats both sides measured.
        let (a, b) = if paired {
            pairs.iter().copied().unzip()
        } else {
            (a, b)
        };
        let bs = pinned.params.bs.map_or(default_bs, |b| b.bytes());
        let pages = (bs as f64 / page_bytes as f64).max(1.0);
        let (ma, mb) = (mean(&a), mean(&b));
        let diff = ma - mb;
        let half = if paired {
            let d: Vec<f64> = pairs.iter().map(|(x, y)| x - y).collect();
            crate::stats::estimate(&d).and_then(|e| e.ci95)
        } else {
            crate::stats::welch_ci95_of_difference(&a, &b)
        };
        let ci = half.map(|h| [diff - h, diff + h]);
        out.push(PinCost {
            label,
            bs_bytes: bs,
            pinned_ns_per_io: ma,
            fixed_ns_per_io: mb,
            ns_per_io: diff,
            ns_per_page: diff / pages,
            ci95_ns_per_io: ci,
            ci95_ns_per_page: ci.map(|[lo, hi]| [lo / pages, hi / pages]),
            ratio: if mb > 0.0 { ma / mb } else { f64::NAN },
            repeats: [a.len(), b.len()],
            basis: if latency { LATENCY_BASIS } else { BASIS }.into(),
            paired,
            latency_diff_ns: Some(mean_latency(pinned) - mean_latency(registered)),
        });
    }
    out
}

/// What `ns_per_io` is, in results that say. At queue depth 1 it is one I/O's service
/// time; at depth N the I/O time is the busy time (some I/O in flight), so it is the
/// inverse of the throughput with N in flight: what a pin costs the device's rate.
pub const BASIS: &str = "time per I/O (I/O time over I/Os)";
/// The basis of a pair with a run that kept no I/O time (results before 2026-12-02).
pub const LATENCY_BASIS: &str = "mean latency (a run without its I/O time)";

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupPinCost {
    pub group: usize,
    /// One per pair label (`bs=10M buffer=thp`), as in a result's `pin_cost[]`.
    pub pairs: Vec<PinCost>,
}

/// The pin cost of one group, when any of its results has `pin_cost`.
pub(super) fn group_pin_cost(gi: usize, group: &Group, inputs: &[Input]) -> Option<GroupPinCost> {
    let mine: Vec<&Input> = inputs
        .iter()
        .filter(|i| group.files.contains(&i.path.display().to_string()))
        .collect();
    if mine.iter().all(|i| i.result.pin_cost.is_empty()) {
        return None;
    }
    // Case label -> its params, from the results' sweeps; the runs are the group's pooled
    // (evidence-filtered) runs of that section.
    let mut params: BTreeMap<&str, &crate::workload::SweepParams> = BTreeMap::new();
    for input in &mine {
        for case in &input.result.sweep {
            params.insert(case.label.as_str(), &case.params);
        }
    }
    let cases: Vec<SweepCase> = group
        .sections
        .iter()
        .filter_map(|(name, runs)| {
            Some(SweepCase {
                label: name.clone(),
                params: (*params.get(name.as_str())?).clone(),
                runs: runs.clone(),
            })
        })
        .collect();
    let default_bs = mine[0].result.workload.bs.bytes();
    // Pooled runs pair up by index only if every result measured its pairs alternately.
    let paired = mine
        .iter()
        .all(|i| i.result.pin_cost.iter().all(|p| p.paired));
    let page = mine[0].result.system.base_page_bytes;
    let pairs = pin_costs(&cases, default_bs, paired, page);
    (!pairs.is_empty()).then_some(GroupPinCost { group: gi, pairs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{LatencySummary, RunResult};
    use crate::test_support::{runs_with_mean_latency, sweep_case};

    fn case(params: &[(&str, &str)], means: &[f64]) -> SweepCase {
        sweep_case("", params, runs_with_mean_latency(means))
    }

    #[test]
    fn pairs_cases_differing_only_in_fixed_buffers() {
        let sweep = [
            case(
                &[("bs", "10M"), ("fixed_buffers", "false")],
                &[1_350_000.0, 1_370_000.0, 1_360_000.0],
            ),
            case(
                &[("bs", "10M"), ("fixed_buffers", "true")],
                &[1_000_000.0, 1_020_000.0, 1_010_000.0],
            ),
            case(&[("bs", "4k"), ("fixed_buffers", "false")], &[7000.0]),
            case(&[("bs", "4k"), ("fixed_buffers", "true")], &[6800.0]),
            // No partner: ignored.
            case(&[("bs", "64k"), ("fixed_buffers", "false")], &[9000.0]),
        ];
        let costs = pin_costs(&sweep, 4096, false, 4096);
        assert_eq!(costs.len(), 2);
        let big = &costs[0];
        assert_eq!(big.label, "bs=10M");
        assert_eq!(big.bs_bytes, 10 << 20);
        assert!((big.ns_per_io - 350_000.0).abs() < 1e-6);
        assert!((big.ns_per_page - 350_000.0 / 2560.0).abs() < 1e-9);
        assert!((big.ratio - 1_360_000.0 / 1_010_000.0).abs() < 1e-9);
        let [lo, hi] = big.ci95_ns_per_io.unwrap();
        assert!(
            lo < 350_000.0 && hi > 350_000.0 && lo > 300_000.0,
            "{lo}..{hi}"
        );
        assert_eq!(big.repeats, [3, 3]);
        // One repeat each: no interval.
        assert_eq!(costs[1].ci95_ns_per_io, None);
        assert!((costs[1].ns_per_page - 200.0).abs() < 1e-9);
    }

    /// A run at queue depth `qd` whose I/Os each take `service_ns` of the device: I/O
    /// (busy) time ops x service, latency qd x service (Little's law).
    fn deep(service_ns: f64, qd: f64) -> RunResult {
        RunResult {
            ops: 1000,
            io_time_ns: (1000.0 * service_ns) as u64,
            latency_ns: LatencySummary {
                mean: qd * service_ns,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn case_of(fixed: &str, runs: Vec<RunResult>) -> SweepCase {
        sweep_case("", &[("bs", "64k"), ("fixed_buffers", fixed)], runs)
    }

    #[test]
    fn pin_cost_at_depth_is_the_time_per_io_not_the_latency() {
        // 16 pages per I/O, 72 ns each: 1152 ns more service time per I/O with per-I/O
        // pins. At depth 16 the latencies differ by 16 x that; the pin cost must not.
        let sweep = [
            case_of("false", vec![deep(10_000.0 + 1152.0, 16.0)]),
            case_of("true", vec![deep(10_000.0, 16.0)]),
        ];
        let c = &pin_costs(&sweep, 4096, true, 4096)[0];
        assert!((c.ns_per_io - 1152.0).abs() < 1e-6, "{c:?}");
        assert!((c.ns_per_page - 72.0).abs() < 1e-6, "{c:?}");
        assert_eq!(c.basis, BASIS);
        // The latency difference is kept beside it, at 16 times (what one waiter sees).
        assert!(
            (c.latency_diff_ns.unwrap() - 16.0 * 1152.0).abs() < 1e-6,
            "{c:?}"
        );
    }

    #[test]
    fn one_run_without_io_time_puts_the_whole_pair_on_latency() {
        // An old result's run (no I/O time) beside new ones: mixing the bases would
        // compare a latency (16 x service) with a time per I/O.
        let mut old = deep(10_000.0 + 1152.0, 16.0);
        old.io_time_ns = 0;
        let sweep = [
            case_of("false", vec![old, deep(10_000.0 + 1152.0, 16.0)]),
            case_of("true", vec![deep(10_000.0, 16.0), deep(10_000.0, 16.0)]),
        ];
        let c = &pin_costs(&sweep, 4096, true, 4096)[0];
        assert_eq!(c.basis, LATENCY_BASIS);
        assert!((c.ns_per_io - 16.0 * 1152.0).abs() < 1e-6, "{c:?}");
    }

    #[test]
    fn alternated_repeats_give_the_interval_of_the_paired_differences() {
        // Drift moves both cases alike from repeat to repeat; the difference stays at
        // 100 ns +- 1: the paired interval is narrow, Welch's (unpaired) spans zero.
        let pinned = [1100.0, 2101.0, 3099.0];
        let fixed = [1000.0, 2000.0, 3000.0];
        let runs = |v: &[f64]| v.iter().map(|&t| deep(t, 1.0)).collect::<Vec<_>>();
        let sweep = [
            case_of("false", runs(&pinned)),
            case_of("true", runs(&fixed)),
        ];
        let p = &pin_costs(&sweep, 4096, true, 4096)[0];
        let [lo, hi] = p.ci95_ns_per_io.unwrap();
        assert!(p.paired && lo > 90.0 && hi < 110.0, "{p:?}");
        let u = &pin_costs(&sweep, 4096, false, 4096)[0];
        let [lo, hi] = u.ci95_ns_per_io.unwrap();
        assert!(!u.paired && lo < 0.0 && hi > 200.0, "{u:?}");
    }

    #[test]
    fn a_repeat_lost_on_one_side_drops_its_pair_and_shifts_no_other() {
        // Repeat 0 lost on the pinned side, repeat 3 on the registered side: zipping the
        // survivors would pair 2101 with 1000 and 3099 with 2000 (about 1100 ns apart).
        let mut p: Vec<RunResult> = [0.0, 2101.0, 3099.0, 4100.0]
            .iter()
            .map(|&t| deep(t, 1.0))
            .collect();
        p[0].ops = 0;
        let mut f: Vec<RunResult> = [1000.0, 2000.0, 3000.0, 4000.0]
            .iter()
            .map(|&t| deep(t, 1.0))
            .collect();
        f[3].ops = 0;
        let sweep = [case_of("false", p), case_of("true", f)];
        let c = &pin_costs(&sweep, 4096, true, 4096)[0];
        let [lo, hi] = c.ci95_ns_per_io.unwrap();
        assert!(c.paired && lo > 80.0 && hi < 120.0, "{c:?}");
    }
}
