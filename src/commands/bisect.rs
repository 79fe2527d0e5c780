//! `thpbench bisect`: a result (or repeats run here, one at a time) judged against a
//! good and a bad reference by the rule in `crate::bisect`, with `git bisect run`'s exit
//! codes. Every error returned from here is a machinery failure: main exits 128 with it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use clap::Parser;
use serde::Serialize;

use crate::bisect::{self as rule, num, MetricVerdict, Rule, Separation, Standing, Verdict};
use crate::cli::{BisectArgs, Cli, Command};
use crate::compare::{workload_params, Input};
use crate::exit::bisect::{BAD, GOOD, SKIP};

mod kernel;
use crate::result::{BenchResult, RunResult};

/// Repeats `--run` adds at most when `--repeat-until` is not given.
pub const DEFAULT_MAX_REPEATS: usize = 10;

/// `thpbench bisect`.
pub fn execute(args: &BisectArgs) -> Result<i32> {
    let rule = rule_of(args)?;
    if args.repeat_until.is_some() && args.run.is_none() && args.kernel.is_none() {
        bail!("--repeat-until: repeats are added only when bisect runs the workload (--run, or --kernel); a result file is judged as it is");
    }
    let metrics = if args.metric.is_empty() {
        vec![rule::DEFAULT_METRIC.to_string()]
    } else {
        args.metric.clone()
    };
    let refs = References::load(args, &rule, &metrics)?;
    let report = match (&args.kernel, &args.run) {
        (Some(k), _) => kernel::boot_until_decided(args, &rule, &refs, k)?,
        (None, Some(run)) => run_until_decided(args, &rule, &refs, run)?,
        (None, None) => judge_files(args, &rule, &refs)?,
    };
    if args.json {
        crate::output::to_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        crate::output::to_stdout(&report.render());
    }
    Ok(report.exit_code)
}

fn rule_of(args: &BisectArgs) -> Result<Rule> {
    if !(args.min_change.is_finite() && args.min_change >= 0.0) {
        bail!(
            "--min-change {}: expected a percentage of 0 or more, e.g. 5",
            args.min_change
        );
    }
    if args.min_samples < 2 {
        bail!(
            "--min-samples {}: a confidence interval needs at least 2 samples (LKP asks 3)",
            args.min_samples
        );
    }
    Ok(Rule {
        min_samples: args.min_samples,
        min_change_pct: args.min_change,
    })
}

/// The references, loaded, checked and separated on every metric.
struct References {
    separations: Vec<Separation>,
    /// The resolved workload the candidate must have run (the first good file's).
    params: BTreeMap<String, String>,
    params_from: String,
}

impl References {
    fn load(args: &BisectArgs, rule: &Rule, metrics: &[String]) -> Result<References> {
        let good = Input::load_all(&args.good)?;
        let bad = Input::load_all(&args.bad)?;
        for (side, inputs) in [("good", &good), ("bad", &bad)] {
            for input in inputs.iter() {
                let why = match rule::standing(&input.result, args.allow_mock) {
                    Standing::Evidence => continue,
                    Standing::Corrupted(why) => format!("its data was corrupted ({why})"),
                    Standing::NotEvidence(why) => why,
                };
                bail!(
                    "--{side} {}: a reference must be a valid, complete run, and this one is not: {why}; run the reference again",
                    input.path.display()
                );
            }
        }
        let params = workload_params(&good[0].result);
        let params_from = good[0].path.display().to_string();
        if !args.force {
            for input in good.iter().chain(&bad).skip(1) {
                check_same_workload(&params, &params_from, &input.result, &input.path)?;
            }
        }
        let mut separations = Vec::new();
        for metric in metrics {
            let pooled = |inputs: &[Input]| -> Result<Vec<f64>> {
                let mut out = Vec::new();
                for input in inputs {
                    let runs = rule::sample_runs(&input.result, args.case.as_deref())
                        .map_err(|e| anyhow::anyhow!("{} {e}", input.path.display()))?;
                    out.extend(rule::samples(runs, metric));
                }
                Ok(out)
            };
            let (g, b) = (pooled(&good)?, pooled(&bad)?);
            if g.is_empty() && b.is_empty() {
                let runs = rule::sample_runs(&good[0].result, args.case.as_deref())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                bail!(
                    "--metric {metric}: no reference run has it; {} offers: {}",
                    good[0].path.display(),
                    rule::metric_keys(runs).join(", ")
                );
            }
            separations.push(rule::separate(metric, &g, &b, rule)?);
        }
        Ok(References {
            separations,
            params,
            params_from,
        })
    }
}

/// A candidate that ran another workload than the references is a mistake in the
/// bisection's set-up, not a verdict on a kernel.
fn check_same_workload(
    params: &BTreeMap<String, String>,
    params_from: &str,
    r: &BenchResult,
    path: &Path,
) -> Result<()> {
    let other = workload_params(r);
    let keys: std::collections::BTreeSet<&String> = params.keys().chain(other.keys()).collect();
    let none = "(absent)".to_string();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| params.get(*k) != other.get(*k))
        .map(|k| {
            format!(
                "{k}: {} in {params_from}, {} in {}",
                params.get(k).unwrap_or(&none),
                other.get(k).unwrap_or(&none),
                path.display()
            )
        })
        .collect();
    if !differ.is_empty() {
        bail!(
            "{} ran another workload than the references; these resolved parameters differ: {}. Run the same workload, or pass --force to judge it anyway",
            path.display(),
            differ.join("; ")
        );
    }
    Ok(())
}

/// What `thpbench bisect` decided, and on what.
#[derive(Debug, Serialize)]
pub struct Report {
    /// good, bad, corrupted, not_evidence or undecided.
    pub outcome: &'static str,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The candidate's result files (with --run: those its repeats wrote).
    pub files: Vec<String>,
    pub rule: Rule,
    pub metrics: Vec<MetricVerdict>,
}

impl Report {
    fn judged(files: Vec<String>, rule: &Rule, metrics: Vec<MetricVerdict>) -> Report {
        let verdict = rule::combine(&metrics);
        let (outcome, code) = match verdict {
            Verdict::Good => ("good", GOOD.code),
            Verdict::Bad => ("bad", BAD.code),
            Verdict::Undecided => ("undecided", SKIP.code),
        };
        Report {
            outcome,
            exit_code: code,
            reason: None,
            files,
            rule: *rule,
            metrics,
        }
    }

    fn unjudged(files: Vec<String>, rule: &Rule, standing: Standing) -> Report {
        let (outcome, code, why) = match standing {
            Standing::Corrupted(why) => ("corrupted", BAD.code, why),
            Standing::NotEvidence(why) => ("not_evidence", SKIP.code, why),
            Standing::Evidence => unreachable!("evidence is judged"),
        };
        Report::without_result(files, rule, outcome, code, why)
    }

    /// No figures to judge: `outcome` names why (corrupted, not_evidence, not_built,
    /// not_booted, run_failed) and the exit code is `code`.
    fn without_result(
        files: Vec<String>,
        rule: &Rule,
        outcome: &'static str,
        code: i32,
        why: String,
    ) -> Report {
        Report {
            outcome,
            exit_code: code,
            reason: Some(why),
            files,
            rule: *rule,
            metrics: Vec::new(),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for m in &self.metrics {
            let s = &m.separation;
            out.push_str(&format!("{}\n", s.metric));
            out.push_str(&format!(
                "  good      n = {}, mean {}, range {} .. {}\n",
                s.good.n,
                num(s.good.mean),
                num(s.good.min),
                num(s.good.max)
            ));
            out.push_str(&format!(
                "  bad       n = {}, mean {}, range {} .. {} ({:+.2} %)\n",
                s.bad.n,
                num(s.bad.mean),
                num(s.bad.min),
                num(s.bad.max),
                s.change_pct
            ));
            out.push_str(&format!("  midpoint  {}\n", num(s.midpoint)));
            let figure = match (m.mean, m.ci95) {
                (Some(mean), Some(ci)) => format!("mean {} ± {} (95 %)", num(mean), num(ci)),
                (Some(mean), None) => format!("mean {}", num(mean)),
                _ => "no samples".into(),
            };
            let why = m
                .why
                .as_deref()
                .map_or(String::new(), |w| format!(" ({w})"));
            out.push_str(&format!(
                "  result    n = {}, {figure}: {}{why}\n",
                m.n,
                m.verdict.as_str()
            ));
        }
        let meaning = match self.outcome {
            "corrupted" => "bad: data was corrupted",
            "not_evidence" => "skip: the result is not evidence",
            "undecided" => "skip: undecided",
            "not_built" => "skip: the kernel does not build",
            "not_booted" => "skip: the kernel did not boot",
            "run_failed" => "skip: the run failed in the guest",
            "interrupted" => "skip: interrupted",
            other => other,
        };
        out.push_str(&format!("verdict: {meaning} (exit {})", self.exit_code));
        if let Some(why) = &self.reason {
            out.push_str(&format!(": {why}"));
        }
        out.push('\n');
        out
    }
}

/// The candidate's files: corruption first, then evidence, then the figures.
fn judge_files(args: &BisectArgs, rule: &Rule, refs: &References) -> Result<Report> {
    if args.results.is_empty() {
        bail!("no result to judge: give RESULT.json after `--` (every file after --good or --bad is a reference), or --run WORKLOAD to run it here");
    }
    let inputs = Input::load_all(&args.results)?;
    let files: Vec<String> = inputs
        .iter()
        .map(|i| i.path.display().to_string())
        .collect();
    if let Some(standing) = worst_standing(inputs.iter().map(|i| (&i.path, &i.result)), args) {
        return Ok(Report::unjudged(files, rule, standing));
    }
    let mut runs: Vec<RunResult> = Vec::new();
    for input in &inputs {
        if !args.force {
            check_same_workload(&refs.params, &refs.params_from, &input.result, &input.path)?;
        }
        let own = rule::sample_runs(&input.result, args.case.as_deref())
            .map_err(|e| anyhow::anyhow!("{} {e}", input.path.display()))?;
        runs.extend_from_slice(own);
    }
    Ok(Report::judged(files, rule, judge_runs(refs, &runs, rule)))
}

/// Corrupted before not evidence: corruption anywhere is bad, whatever else is wrong.
fn worst_standing<'a>(
    results: impl Iterator<Item = (&'a std::path::PathBuf, &'a BenchResult)>,
    args: &BisectArgs,
) -> Option<Standing> {
    let mut not_evidence = None;
    for (path, r) in results {
        match rule::standing(r, args.allow_mock) {
            Standing::Evidence => {}
            Standing::Corrupted(why) => {
                return Some(Standing::Corrupted(format!("{}: {why}", path.display())))
            }
            Standing::NotEvidence(why) => {
                not_evidence
                    .get_or_insert(Standing::NotEvidence(format!("{}: {why}", path.display())));
            }
        }
    }
    not_evidence
}

fn judge_runs(refs: &References, runs: &[RunResult], rule: &Rule) -> Vec<MetricVerdict> {
    refs.separations
        .iter()
        .map(|s| rule::judge(s, &rule::samples(runs, &s.metric), rule))
        .collect()
}

/// `--run`: one repeat at a time on this machine, until the verdict is decided or
/// `--repeat-until` repeats were made.
fn run_until_decided(
    args: &BisectArgs,
    rule: &Rule,
    refs: &References,
    run: &[String],
) -> Result<Report> {
    let run_args = run_flags(run)?;
    let max = max_repeats(args, rule)?;
    let mut w = super::run::workload(&run_args)?;
    w.repeat = 1;
    let mut opts = super::run::options(&run_args)?;
    opts.progress = false;
    let mut files = Vec::new();
    let mut runs: Vec<RunResult> = Vec::new();
    let mut last = Vec::new();
    for i in 1..=max {
        let outcome = crate::run::execute(&w, &opts)?;
        files.push(outcome.path.display().to_string());
        let mut standing = worst_standing(std::iter::once((&outcome.path, &outcome.result)), args);
        if standing.is_none() && crate::signals::received() {
            standing = Some(Standing::NotEvidence(
                "interrupted by a signal after the run".into(),
            ));
        }
        if let Some(standing) = standing {
            return Ok(Report::unjudged(files, rule, standing));
        }
        if !args.force {
            check_same_workload(
                &refs.params,
                &refs.params_from,
                &outcome.result,
                &outcome.path,
            )?;
        }
        let own = rule::sample_runs(&outcome.result, args.case.as_deref())
            .map_err(|e| anyhow::anyhow!("{} {e}", outcome.path.display()))?;
        runs.extend_from_slice(own);
        last = judge_runs(refs, &runs, rule);
        let verdict = rule::combine(&last);
        progress(&format!("repeat {i}/{max}"), &last, verdict);
        if verdict != Verdict::Undecided {
            break;
        }
    }
    Ok(Report::judged(files, rule, last))
}

/// The verdict so far, on stderr: each metric's figure against its midpoint.
fn progress(step: &str, last: &[MetricVerdict], verdict: Verdict) {
    let figures: Vec<String> = last
        .iter()
        .map(|m| match (m.mean, m.ci95) {
            (Some(mean), Some(ci)) => format!(
                "{} {} ± {} (midpoint {})",
                m.separation.metric,
                num(mean),
                num(ci),
                num(m.separation.midpoint)
            ),
            (Some(mean), None) => format!("{} {}", m.separation.metric, num(mean)),
            _ => format!("{} not measured", m.separation.metric),
        })
        .collect();
    crate::output::info(&format!(
        "bisect: {step}: {}: {}",
        figures.join(", "),
        verdict.as_str()
    ));
}

/// `--repeat-until`, checked against the rule.
fn max_repeats(args: &BisectArgs, rule: &Rule) -> Result<usize> {
    let max = args.repeat_until.unwrap_or(DEFAULT_MAX_REPEATS);
    if max < rule.min_samples {
        bail!(
            "--repeat-until {max}: fewer repeats than the {} a verdict needs (--min-samples)",
            rule.min_samples
        );
    }
    Ok(max)
}

/// `thpbench run`'s workload and flags after `--run`, parsed as run parses them, with
/// the flags that would fight bisect's own handling of repeats and files refused.
fn run_flags(run: &[String]) -> Result<crate::cli::RunArgs> {
    // Everything after --run is run's: one of bisect's own flags there was meant for bisect.
    const OWN: &[&str] = &[
        "--good",
        "--bad",
        "--metric",
        "--case",
        "--min-change",
        "--min-samples",
        "--repeat-until",
        "--kernel",
        "--allow-mock",
        "--out-dir",
        "--accel",
        "--smp",
        "--mem",
        "--thp",
        "--timeout",
        "--arch",
        "--cache-dir",
        "--kernel-config",
        "--gup-test",
        "--jobs",
        "--thpbench",
        "--keep",
    ];
    if let Some(flag) = run
        .iter()
        .find(|a| OWN.contains(&a.split('=').next().unwrap_or(a)))
    {
        bail!("{flag} follows --run, which takes everything after it as `thpbench run` flags; give {flag} before --run");
    }
    let argv = ["thpbench", "run"]
        .into_iter()
        .map(String::from)
        .chain(run.iter().cloned());
    let inner = Cli::try_parse_from(argv)?;
    // -q/-v among the run flags mean what they mean on bisect's own line.
    if inner.quiet {
        crate::output::set_quiet(true);
    }
    if inner.verbose {
        crate::output::set_verbose(true);
    }
    let Command::Run(run_args) = inner.command else {
        unreachable!("parsed as run")
    };
    for (given, flag) in [
        (run_args.output.is_some(), "-o/--output"),
        (run_args.repeat.is_some(), "--repeat"),
        (run_args.print_workload, "--print-workload"),
        (run_args.json, "--json"),
    ] {
        if given {
            bail!("--run ... {flag}: bisect runs one repeat at a time and saves each under --results-dir; leave {flag} out");
        }
    }
    Ok(*run_args)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::test_support::synthetic;

    fn bisect_args(argv: &[&str]) -> BisectArgs {
        let mut full = vec!["thpbench", "bisect"];
        full.extend_from_slice(argv);
        match Cli::parse_from(full).command {
            Command::Bisect(args) => *args,
            other => panic!("not bisect: {other:?}"),
        }
    }

    fn write(dir: &Path, name: &str, r: &BenchResult) -> String {
        let path = dir.join(name);
        r.save(&path).unwrap();
        path.display().to_string()
    }

    #[test]
    fn files_after_the_references_need_the_double_dash() {
        let a = bisect_args(&["--good", "g1", "g2", "--bad", "b1", "--", "r.json"]);
        assert_eq!(a.good.len(), 2);
        assert_eq!(a.bad.len(), 1);
        assert_eq!(a.results, [Path::new("r.json")]);
        let a = bisect_args(&["--good", "g", "--bad", "b", "--run", "w.toml", "--bs", "8k"]);
        assert_eq!(a.run.unwrap(), ["w.toml", "--bs", "8k"]);
    }

    #[test]
    fn a_result_is_judged_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = write(d, "g.json", &synthetic("6.1", &[1000.0, 1010.0, 990.0]));
        let bad = write(d, "b.json", &synthetic("6.2", &[800.0, 810.0, 790.0]));
        let like_bad = write(d, "c.json", &synthetic("6.3", &[805.0, 799.0, 802.0]));
        let args = bisect_args(&["--good", &good, "--bad", &bad, "--", &like_bad]);
        let rule = rule_of(&args).unwrap();
        let refs = References::load(&args, &rule, &["ops_per_sec".into()]).unwrap();
        let report = judge_files(&args, &rule, &refs).unwrap();
        assert_eq!((report.outcome, report.exit_code), ("bad", 1));
        assert!(report.render().contains("verdict: bad (exit 1)"));
        // No candidate: the files all went to --bad.
        let args = bisect_args(&["--good", &good, "--bad", &bad, &like_bad]);
        let err = judge_files(&args, &rule, &refs).unwrap_err().to_string();
        assert!(err.contains("after `--`"), "{err}");
    }

    #[test]
    fn a_candidate_of_another_workload_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = write(d, "g.json", &synthetic("6.1", &[1000.0, 1010.0, 990.0]));
        let bad = write(d, "b.json", &synthetic("6.2", &[800.0, 810.0, 790.0]));
        let mut other = synthetic("6.3", &[1000.0, 1001.0, 999.0]);
        other.workload.bs = crate::units::Size(8192);
        let other = write(d, "c.json", &other);
        let args = bisect_args(&["--good", &good, "--bad", &bad, "--", &other]);
        let rule = rule_of(&args).unwrap();
        let refs = References::load(&args, &rule, &["ops_per_sec".into()]).unwrap();
        let err = judge_files(&args, &rule, &refs).unwrap_err().to_string();
        assert!(err.contains("bs: "), "{err}");
        let args = bisect_args(&["--force", "--good", &good, "--bad", &bad, "--", &other]);
        assert_eq!(judge_files(&args, &rule, &refs).unwrap().exit_code, 0);
    }

    #[test]
    fn an_unknown_metric_is_named_with_the_ones_offered() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = write(d, "g.json", &synthetic("6.1", &[1000.0, 1010.0, 990.0]));
        let bad = write(d, "b.json", &synthetic("6.2", &[800.0, 810.0, 790.0]));
        let args = bisect_args(&["--good", &good, "--bad", &bad, "--metric", "opps"]);
        let rule = rule_of(&args).unwrap();
        let err = References::load(&args, &rule, &args.metric)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("--metric opps") && err.contains("latency_ns.p99"),
            "{err}"
        );
    }
}
