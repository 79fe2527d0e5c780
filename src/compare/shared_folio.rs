//! What a sweep yields beyond its cases: the shared-folio contention ratios. Analysis
//! over a result's cases (run stores it in the result), with stats.rs's estimators.

use crate::result::{RunResult, SharedFolioRatio, SweepCase};
use crate::workload::{Share, TypedSweepKey};

/// For every pair of sweep cases that differ only in `share`, and whose private case
/// cuts its I/O into the same iovecs as the shared one (`same_iovecs`): the latency per
/// op with all threads on the same folios over the latency with private folios, the
/// mean of the per-repeat ratios (paired by index) with its 95% confidence interval.
pub fn shared_folio_ratios(
    sweep: &[SweepCase],
    same_iovecs: impl Fn(&SweepCase) -> bool,
) -> Vec<SharedFolioRatio> {
    let rest = |c: &SweepCase| c.params.label_without(TypedSweepKey::Share);
    let mean_lat = |runs: &[RunResult]| {
        runs.iter().map(|r| r.latency_ns.mean).sum::<f64>() / runs.len().max(1) as f64
    };
    let mut out = Vec::new();
    for private in sweep
        .iter()
        .filter(|c| c.params.share == Some(Share::Private))
    {
        let label = rest(private);
        let Some(shared) = sweep
            .iter()
            .find(|c| c.params.share == Some(Share::Shared) && rest(c) == label)
        else {
            continue;
        };
        if !same_iovecs(private) {
            continue;
        }
        let (p, sh) = (mean_lat(&private.runs), mean_lat(&shared.runs));
        if p <= 0.0 || private.runs.is_empty() || shared.runs.is_empty() {
            continue;
        }
        let paired: Vec<f64> = private
            .runs
            .iter()
            .zip(&shared.runs)
            .filter(|(a, _)| a.latency_ns.mean > 0.0)
            .map(|(a, b)| b.latency_ns.mean / a.latency_ns.mean)
            .collect();
        // The point and its interval from the same estimator: the mean of the paired
        // ratios (a ratio of the means would not lie at the interval's centre).
        let Some(estimate) = crate::stats::estimate(&paired) else {
            continue;
        };
        let ci95 = estimate
            .ci95
            .map(|h| [estimate.mean - h, estimate.mean + h]);
        out.push(SharedFolioRatio {
            label,
            private_ns_per_op: p,
            shared_ns_per_op: sh,
            ratio: estimate.mean,
            ci95,
            repeats: paired.len(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{runs_with_mean_latency, sweep_case};

    fn case(label: &str, share: &str, means: &[f64]) -> SweepCase {
        sweep_case(
            label,
            &[("share", share), ("threads", "2")],
            runs_with_mean_latency(means),
        )
    }

    #[test]
    fn the_shared_folio_ratio_is_the_estimate_its_interval_belongs_to() {
        // Paired ratios 2, 1, 1.5: their mean is 1.5; the ratio of the means would be
        // 420/300 = 1.4, away from the interval's centre.
        let sweep = [
            case("p", "private", &[100.0, 100.0, 100.0]),
            case("s", "shared", &[200.0, 100.0, 150.0]),
        ];
        let r = shared_folio_ratios(&sweep, |_| true);
        assert_eq!(r.len(), 1);
        assert!((r[0].ratio - 1.5).abs() < 1e-12, "{:?}", r[0]);
        let [lo, hi] = r[0].ci95.unwrap();
        assert!(((lo + hi) / 2.0 - r[0].ratio).abs() < 1e-12, "{:?}", r[0]);
        assert_eq!(r[0].repeats, 3);
    }

    #[test]
    fn no_shared_folio_ratio_where_the_iovecs_differ_too() {
        let sweep = [
            case("p", "private", &[100.0]),
            case("s", "shared", &[200.0]),
        ];
        assert!(shared_folio_ratios(&sweep, |_| false).is_empty());
        // 2 MiB in one iovec privately, in 512 when shared: not sharing alone.
        assert!(!crate::buffer::private_cut_as_shared(2 << 20, false));
        assert!(crate::buffer::private_cut_as_shared(2 << 20, true));
        assert!(crate::buffer::private_cut_as_shared(4096, false));
    }
}
