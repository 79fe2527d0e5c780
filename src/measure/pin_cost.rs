//! Pin cost from a sweep over `fixed_buffers`: for each pair of cases that differ only in
//! it, the mean latency per I/O with per-I/O pins minus with registered buffers, per I/O
//! and per base page (`page_bytes`: 4 KiB on x86-64, 4/16/64 KiB on arm64), with a Welch
//! 95% interval from the repeats.

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::result::{PinCost, SweepCase};

/// One pin cost per pair of cases that differ only in `fixed_buffers`. `default_bs` is
/// the workload's bs, for sweeps that do not vary it; `page_bytes` the base page size of
/// the kernel the cases ran on.
pub fn pin_costs(sweep: &[SweepCase], default_bs: u64, page_bytes: u64) -> Vec<PinCost> {
    let rest = |c: &SweepCase| {
        c.params
            .iter()
            .filter(|(k, _)| k.as_str() != "fixed_buffers")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let fixed =
        |c: &SweepCase, want: &str| c.params.get("fixed_buffers").map(String::as_str) == Some(want);
    let mut out = Vec::new();
    for pinned in sweep.iter().filter(|c| fixed(c, "false")) {
        let label = rest(pinned);
        let Some(registered) = sweep.iter().find(|c| fixed(c, "true") && rest(c) == label) else {
            continue;
        };
        let means = |c: &SweepCase| -> Vec<f64> {
            c.runs
                .iter()
                .filter(|r| r.ops > 0)
                .map(|r| r.latency_ns.mean)
                .collect()
        };
        let (a, b) = (means(pinned), means(registered));
        if a.is_empty() || b.is_empty() {
            continue;
        }
        let bs = pinned
            .params
            .get("bs")
            .and_then(|v| crate::units::parse_size(v).ok())
            .unwrap_or(default_bs);
        let pages = (bs as f64 / page_bytes as f64).max(1.0);
        let (ma, mb) = (mean(&a), mean(&b));
        let diff = ma - mb;
        let ci = welch_ci95(&a, &b).map(|h| [diff - h, diff + h]);
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
        });
    }
    out
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn variance(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
}

/// Half-width of the Welch 95% interval of mean(a) - mean(b); None below two repeats
/// on either side.
fn welch_ci95(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (va, vb) = (variance(a) / a.len() as f64, variance(b) / b.len() as f64);
    let se2 = va + vb;
    if se2 == 0.0 {
        return Some(0.0);
    }
    let df = se2.powi(2) / (va.powi(2) / (a.len() - 1) as f64 + vb.powi(2) / (b.len() - 1) as f64);
    let t = StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(0.975);
    Some(t * se2.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{LatencySummary, RunResult};

    fn case(params: &[(&str, &str)], means: &[f64]) -> SweepCase {
        SweepCase {
            label: String::new(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            runs: means
                .iter()
                .map(|&m| RunResult {
                    ops: 10,
                    latency_ns: LatencySummary {
                        mean: m,
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .collect(),
        }
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
        let costs = pin_costs(&sweep, 4096, 4096);
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
}
