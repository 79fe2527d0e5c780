//! The verdict `thpbench bisect` gives a result against a good and a bad reference, for
//! `git bisect run`: like the good one, like the bad one, or not decided. docs/bisect.md
//! states the rule and its measured false-verdict rate.
//!
//! The rule, per metric: the samples are the metric's per-repeat values (the result's
//! measured runs, or one sweep case's). The references must separate first, as LKP
//! asks before it bisects: at least [`Rule::min_samples`] a side, the ranges of the
//! two sides disjoint, and the means apart by at least [`Rule::min_change_pct`]. The
//! candidate is then judged against the midpoint of the two means: when its 95%
//! confidence interval (Student's t, [`crate::stats::estimate`]) lies wholly on one side,
//! it is like that reference; otherwise undecided. Several metrics: bad when any says
//! bad, good when all say good, else undecided.
//!
//! Integrity is not a figure: a candidate whose data was corrupted (verify mismatches,
//! fork children that saw their private copy change) is bad whatever its figures say,
//! and a result that is not evidence (invalid, interrupted) is no verdict.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compare::run_metrics;
use crate::result::{BenchResult, RunResult};
use crate::stats::estimate;

/// How much evidence a verdict needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    /// Samples each reference needs, and the candidate before it is judged (LKP: 3).
    pub min_samples: usize,
    /// The references' means must differ by at least this much, in % of the good mean.
    pub min_change_pct: f64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            min_samples: 3,
            min_change_pct: DEFAULT_MIN_CHANGE_PCT,
        }
    }
}

/// The default floor on the references' difference: below 5 % a figure on a shared
/// machine is not a change worth a bisection (docs/bisect.md).
pub const DEFAULT_MIN_CHANGE_PCT: f64 = 5.0;

/// The metric bisect judges when none is named.
pub const DEFAULT_METRIC: &str = "ops_per_sec";

/// What one metric, or the whole candidate, is like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Good,
    Bad,
    Undecided,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::Undecided => "undecided",
        }
    }
}

/// A reference's samples, summed up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        let e = estimate(values)?;
        Some(Spread {
            n: e.n,
            mean: e.mean,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    fn describe(&self) -> String {
        format!(
            "n = {}, mean {}, range {} .. {}",
            self.n,
            num(self.mean),
            num(self.min),
            num(self.max)
        )
    }
}

/// Two references that separate on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Separation {
    pub metric: String,
    pub good: Spread,
    pub bad: Spread,
    /// Between the two means: the line a candidate's interval must not cross.
    pub midpoint: f64,
    /// The bad mean against the good one, in %.
    pub change_pct: f64,
}

/// Why two references cannot decide anything: a machinery failure (exit 128), since
/// no candidate could ever be judged against them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the references do not separate on {metric}: {why}. good: {good}; bad: {bad}. Give each side at least {min_samples} repeats of a workload that shows the change (more --good/--bad files, or run them with --repeat), or name another --metric")]
pub struct NotSeparated {
    pub metric: String,
    pub why: String,
    pub good: String,
    pub bad: String,
    pub min_samples: usize,
}

/// Whether the good and bad samples of `metric` separate under `rule`.
pub fn separate(
    metric: &str,
    good: &[f64],
    bad: &[f64],
    rule: &Rule,
) -> Result<Separation, NotSeparated> {
    let describe = |v: &[f64]| Spread::of(v).map_or_else(|| "no samples".into(), |s| s.describe());
    let fail = |why: String| NotSeparated {
        metric: metric.to_string(),
        why,
        good: describe(good),
        bad: describe(bad),
        min_samples: rule.min_samples,
    };
    let (Some(g), Some(b)) = (Spread::of(good), Spread::of(bad)) else {
        return Err(fail("a side has no samples".into()));
    };
    if g.n < rule.min_samples || b.n < rule.min_samples {
        return Err(fail(format!(
            "{} good and {} bad samples, {} a side needed",
            g.n, b.n, rule.min_samples
        )));
    }
    if !(g.max < b.min || b.max < g.min) {
        return Err(fail("the ranges of the two sides overlap".into()));
    }
    let change_pct = crate::stats::change_pct(g.mean, b.mean).unwrap_or(f64::INFINITY);
    if change_pct.abs() < rule.min_change_pct {
        return Err(fail(format!(
            "the means differ by {change_pct:+.2} %, less than the {} % floor (--min-change)",
            rule.min_change_pct
        )));
    }
    Ok(Separation {
        metric: metric.to_string(),
        midpoint: (g.mean + b.mean) / 2.0,
        good: g,
        bad: b,
        change_pct,
    })
}

/// The candidate on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricVerdict {
    pub separation: Separation,
    pub n: usize,
    pub mean: Option<f64>,
    /// Half-width of the candidate's 95 % interval; `None` below two samples.
    pub ci95: Option<f64>,
    pub verdict: Verdict,
    /// Why undecided, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The candidate's samples judged against a separation.
pub fn judge(sep: &Separation, candidate: &[f64], rule: &Rule) -> MetricVerdict {
    let e = estimate(candidate);
    let (n, mean, ci95) = match &e {
        Some(e) => (e.n, Some(e.mean), e.ci95),
        None => (0, None, None),
    };
    let mut out = MetricVerdict {
        separation: sep.clone(),
        n,
        mean,
        ci95,
        verdict: Verdict::Undecided,
        why: None,
    };
    let (Some(mean), Some(ci)) = (mean, ci95) else {
        out.why = Some(format!(
            "{n} samples, at least {} needed",
            rule.min_samples.max(2)
        ));
        return out;
    };
    if n < rule.min_samples {
        out.why = Some(format!("{n} samples, at least {} needed", rule.min_samples));
        return out;
    }
    let (lo, hi) = (mean - ci, mean + ci);
    let good_above = sep.good.mean > sep.midpoint;
    let side = if lo > sep.midpoint {
        Some(good_above)
    } else if hi < sep.midpoint {
        Some(!good_above)
    } else {
        None
    };
    out.verdict = match side {
        Some(true) => Verdict::Good,
        Some(false) => Verdict::Bad,
        None => {
            out.why = Some(format!(
                "the interval {} .. {} holds the midpoint {}",
                num(lo),
                num(hi),
                num(sep.midpoint)
            ));
            Verdict::Undecided
        }
    };
    out
}

/// Several metrics' verdicts as one: bad when any is bad (a regression in one figure is
/// the change sought), good when all are good, else undecided.
pub fn combine(verdicts: &[MetricVerdict]) -> Verdict {
    if verdicts.iter().any(|v| v.verdict == Verdict::Bad) {
        Verdict::Bad
    } else if !verdicts.is_empty() && verdicts.iter().all(|v| v.verdict == Verdict::Good) {
        Verdict::Good
    } else {
        Verdict::Undecided
    }
}

/// Why a result cannot be judged by its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Judge its figures.
    Evidence,
    /// Data was harmed: bad, whatever the figures say.
    Corrupted(String),
    /// Invalid or interrupted: no verdict.
    NotEvidence(String),
}

/// Whether a result's figures may be judged. `allow_mock` lets mock results count (a
/// testing aid: the false-verdict measurement runs the mock engine).
pub fn standing(r: &BenchResult, allow_mock: bool) -> Standing {
    let mut harmed = Vec::new();
    for view in r.all_runs() {
        if view.run.verify.mismatches > 0 {
            harmed.push(format!(
                "{}: verify found {} mismatched sectors",
                view.name(),
                view.run.verify.mismatches
            ));
        }
        let saw: u64 = view
            .run
            .disturbers
            .iter()
            .map(|d| crate::disturb::fork::children_saw_parent_data(&d.extra))
            .sum();
        if saw > 0 {
            harmed.push(format!(
                "{}: {saw} fork children saw their private copy change",
                view.name()
            ));
        }
    }
    if !harmed.is_empty() {
        return Standing::Corrupted(harmed.join("; "));
    }
    let mut why = Vec::new();
    if !r.valid {
        why.push(if r.invalid_reasons.is_empty() {
            "marked invalid".to_string()
        } else {
            format!("invalid: {}", r.invalid_reasons.join("; "))
        });
    }
    if r.interrupted {
        why.push("interrupted by a signal: its runs are partial".to_string());
    }
    if r.mock.is_some() && !allow_mock {
        why.push("a mock run (--mock): engine and target were simulated".to_string());
    }
    if why.is_empty() {
        Standing::Evidence
    } else {
        Standing::NotEvidence(why.join("; "))
    }
}

/// The runs whose figures are samples: the measured runs, or those of sweep case `case`.
/// Baseline runs (`--baseline`) are the workload without its disturbers, never samples.
pub fn sample_runs<'a>(r: &'a BenchResult, case: Option<&str>) -> Result<&'a [RunResult], String> {
    let groups: Vec<(Option<&str>, &[RunResult])> = r.measured_groups().collect();
    match case {
        Some(label) => groups
            .iter()
            .find(|(c, _)| *c == Some(label))
            .map(|(_, runs)| *runs)
            .ok_or_else(|| {
                format!(
                    "has no sweep case `{label}`; its cases: {}",
                    case_list(&groups)
                )
            }),
        None => match groups.as_slice() {
            [] => Ok(&[]),
            [(None, runs)] => Ok(runs),
            _ => Err(format!(
                "is a sweep: name the case whose runs are the samples with --case (one of {})",
                case_list(&groups)
            )),
        },
    }
}

fn case_list(groups: &[(Option<&str>, &[RunResult])]) -> String {
    let labels: Vec<&str> = groups.iter().filter_map(|(c, _)| *c).collect();
    if labels.is_empty() {
        "none".into()
    } else {
        labels.join(", ")
    }
}

/// `metric`'s value in each run that has it. Per-size mTHP counters are kept only where
/// they moved, so a run without one saw it at 0 (as compare counts it).
pub fn samples(runs: &[RunResult], metric: &str) -> Vec<f64> {
    runs.iter()
        .filter_map(|run| {
            run_metrics(run)
                .into_iter()
                .find(|(d, _)| d.key == metric)
                .map(|(_, v)| v)
                .or_else(|| metric.starts_with("vmstat_delta.").then_some(0.0))
        })
        .collect()
}

/// Every metric key the runs offer, for the message that names an unknown one.
pub fn metric_keys(runs: &[RunResult]) -> Vec<String> {
    let mut keys: BTreeMap<String, ()> = BTreeMap::new();
    for run in runs {
        for (d, _) in run_metrics(run) {
            keys.insert(d.key, ());
        }
    }
    keys.into_keys().collect()
}

/// A figure as people read it: no exponent, a few significant digits.
pub fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::synthetic;

    const GOOD: [f64; 4] = [1000.0, 1010.0, 990.0, 1005.0];
    const BAD: [f64; 4] = [800.0, 810.0, 790.0, 805.0];

    fn sep() -> Separation {
        separate("ops_per_sec", &GOOD, &BAD, &Rule::default()).unwrap()
    }

    #[test]
    fn references_separate_with_the_midpoint_between_the_means() {
        let s = sep();
        assert_eq!(s.good.n, 4);
        assert!((s.midpoint - 901.25).abs() < 1e-9, "{s:?}");
        assert!((s.change_pct + 19.975).abs() < 0.001, "{s:?}");
    }

    #[test]
    fn references_that_overlap_are_too_few_or_too_close_do_not_separate() {
        let rule = Rule::default();
        let e = separate("m", &GOOD, &[995.0, 1020.0, 900.0], &rule).unwrap_err();
        assert!(e.why.contains("overlap"), "{e}");
        assert!(e.to_string().contains("range 990.0 .. 1010.0"), "{e}");
        let e = separate("m", &GOOD, &BAD[..2], &rule).unwrap_err();
        assert!(e.why.contains("3 a side"), "{e}");
        // Disjoint but 2 % apart: under the 5 % floor.
        let e = separate("m", &[100.0, 100.1, 100.2], &[102.0, 102.1, 102.2], &rule).unwrap_err();
        assert!(e.why.contains("floor"), "{e}");
        let loose = Rule {
            min_change_pct: 1.0,
            ..rule
        };
        assert!(separate("m", &[100.0, 100.1, 100.2], &[102.0, 102.1, 102.2], &loose).is_ok());
    }

    #[test]
    fn a_candidate_is_judged_by_the_side_its_interval_lies_on() {
        let rule = Rule::default();
        let good = judge(&sep(), &[1001.0, 995.0, 1003.0], &rule);
        assert_eq!(good.verdict, Verdict::Good, "{good:?}");
        let bad = judge(&sep(), &[801.0, 795.0, 803.0], &rule);
        assert_eq!(bad.verdict, Verdict::Bad, "{bad:?}");
        // Mean on the good side, but the interval crosses the midpoint.
        let wide = judge(&sep(), &[1000.0, 850.0, 950.0], &rule);
        assert_eq!(wide.verdict, Verdict::Undecided, "{wide:?}");
        assert!(wide.why.unwrap().contains("midpoint 901.2"));
        // Too few samples.
        let few = judge(&sep(), &[1000.0, 1001.0], &rule);
        assert_eq!(few.verdict, Verdict::Undecided);
        // A latency-like metric, where the good side is the lower one.
        let lat = separate("latency_ns.p99", &BAD, &GOOD, &rule).unwrap();
        assert_eq!(
            judge(&lat, &[801.0, 795.0, 803.0], &rule).verdict,
            Verdict::Good
        );
    }

    #[test]
    fn any_bad_metric_makes_the_candidate_bad_and_all_good_makes_it_good() {
        let rule = Rule::default();
        let g = judge(&sep(), &[1001.0, 995.0, 1003.0], &rule);
        let b = judge(&sep(), &[801.0, 795.0, 803.0], &rule);
        let u = judge(&sep(), &[1000.0, 850.0, 950.0], &rule);
        assert_eq!(combine(&[g.clone(), g.clone()]), Verdict::Good);
        assert_eq!(combine(&[g.clone(), u.clone()]), Verdict::Undecided);
        assert_eq!(combine(&[u, b, g]), Verdict::Bad);
        assert_eq!(combine(&[]), Verdict::Undecided);
    }

    #[test]
    fn corruption_outranks_invalidity_and_mock_counts_only_when_allowed() {
        let mut r = synthetic("6.1", &GOOD);
        assert_eq!(standing(&r, false), Standing::Evidence);
        r.mock = Some(Default::default());
        assert!(matches!(standing(&r, false), Standing::NotEvidence(_)));
        assert_eq!(standing(&r, true), Standing::Evidence);
        r.valid = false;
        r.invalid_reasons = vec!["only 40% of the thp buffer is backed".into()];
        match standing(&r, true) {
            Standing::NotEvidence(why) => assert!(why.contains("40%"), "{why}"),
            other => panic!("{other:?}"),
        }
        r.runs[1].disturbers = vec![crate::result::DisturberReport {
            name: "fork".into(),
            extra: [("child_saw_parent_data".to_string(), 2u64)].into(),
            ..Default::default()
        }];
        match standing(&r, true) {
            Standing::Corrupted(why) => assert!(why.contains("run 1: 2 fork children"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn samples_come_from_the_measured_runs_or_the_named_case() {
        let mut r = synthetic("6.1", &GOOD);
        r.baseline_runs = vec![crate::test_support::synthetic_run(0, 5.0)];
        let runs = sample_runs(&r, None).unwrap();
        assert_eq!(samples(runs, "ops_per_sec"), GOOD);
        assert_eq!(samples(runs, "vmstat_delta.mthp_64kB_swpout"), [0.0; 4]);
        assert!(samples(runs, "no.such.metric").is_empty());
        r.sweep = vec![crate::result::SweepCase {
            label: "threads=2".into(),
            params: Default::default(),
            runs: r.runs.clone(),
        }];
        assert!(sample_runs(&r, None).unwrap_err().contains("threads=2"));
        assert_eq!(sample_runs(&r, Some("threads=2")).unwrap().len(), 4);
        assert!(sample_runs(&r, Some("threads=9")).is_err());
    }
}
