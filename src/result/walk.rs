//! One walk over the runs a result holds (its runs, its baseline runs, its sweep cases'
//! runs), and the rules that read a whole result: which runs it holds, whether it is
//! evidence. Validity, compare, export, plot and the summary all walk it here, so that
//! none of them forgets a kind of run.

use super::{BenchResult, RunResult};

/// What a run is in its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRole<'a> {
    /// One of `runs`: the workload as asked.
    Measured,
    /// One of `baseline_runs`: the same workload without its disturbers (`--baseline`).
    Baseline,
    /// One of the runs of the sweep case with this label.
    Case(&'a str),
}

/// A run and its role.
#[derive(Debug, Clone, Copy)]
pub struct RunView<'a> {
    pub role: RunRole<'a>,
    pub run: &'a RunResult,
}

impl RunRole<'_> {
    /// `run 2`, `baseline run 2`, `case threads=4 run 2`: how messages (invalid reasons,
    /// warnings, the summary) name a run; the one place that spells it.
    pub fn run_name(self, repeat: usize) -> String {
        match self {
            RunRole::Measured => format!("run {repeat}"),
            RunRole::Baseline => format!("baseline run {repeat}"),
            RunRole::Case(label) => format!("case {label} run {repeat}"),
        }
    }
}

impl RunView<'_> {
    /// The run's name in messages (see [`RunRole::run_name`]).
    pub fn name(&self) -> String {
        self.role.run_name(self.run.repeat)
    }
}

impl BenchResult {
    /// The result's groups of runs in one order (runs, baseline runs, then each sweep
    /// case), empty groups left out.
    pub fn run_groups(&self) -> impl Iterator<Item = (RunRole<'_>, &[RunResult])> {
        [
            (RunRole::Measured, self.runs.as_slice()),
            (RunRole::Baseline, self.baseline_runs.as_slice()),
        ]
        .into_iter()
        .chain(
            self.sweep
                .iter()
                .map(|c| (RunRole::Case(c.label.as_str()), c.runs.as_slice())),
        )
        .filter(|(_, runs)| !runs.is_empty())
    }

    /// Every run the result holds, with its role, in the order of [`Self::run_groups`].
    pub fn all_runs(&self) -> impl Iterator<Item = RunView<'_>> {
        self.run_groups()
            .flat_map(|(role, runs)| runs.iter().map(move |run| RunView { role, run }))
    }

    /// The runs of the workload as asked, by sweep case label (None for plain runs):
    /// baseline runs left out, as exports and plots show the workload, not its control.
    pub fn measured_groups(&self) -> impl Iterator<Item = (Option<&str>, &[RunResult])> {
        self.run_groups().filter_map(|(role, runs)| match role {
            RunRole::Measured => Some((None, runs)),
            RunRole::Case(label) => Some((Some(label), runs)),
            RunRole::Baseline => None,
        })
    }

    /// The first run that ran the workload as asked (a measured run or a sweep case's),
    /// never a baseline run.
    pub fn first_measured_run(&self) -> Option<&RunResult> {
        self.measured_groups().find_map(|(_, runs)| runs.first())
    }

    /// Why the whole result is not evidence (invalid, or interrupted), if it is not.
    pub fn not_evidence_reason(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.valid {
            if self.invalid_reasons.is_empty() {
                why.push("marked invalid".to_string());
            } else {
                why.push(format!("invalid: {}", self.invalid_reasons.join("; ")));
            }
        }
        if self.interrupted {
            why.push("interrupted by a signal: its runs are partial".to_string());
        }
        if self.mock.is_some() {
            why.push("a mock run (--mock): engine and target were simulated".to_string());
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    pub fn is_evidence(&self) -> bool {
        self.not_evidence_reason().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::SweepCase;

    fn run(repeat: usize) -> RunResult {
        RunResult {
            repeat,
            ..Default::default()
        }
    }

    fn result() -> BenchResult {
        BenchResult::new(Default::default(), Default::default())
    }

    #[test]
    fn every_kind_of_run_is_walked_with_its_role() {
        let mut r = result();
        r.runs = vec![run(0), run(1)];
        r.baseline_runs = vec![run(0)];
        r.sweep = vec![SweepCase {
            label: "threads=2".into(),
            params: Default::default(),
            runs: vec![run(0)],
        }];
        let names: Vec<String> = r.all_runs().map(|v| v.name()).collect();
        assert_eq!(
            names,
            ["run 0", "run 1", "baseline run 0", "case threads=2 run 0"]
        );
        assert_eq!(r.run_groups().count(), 3);
    }

    #[test]
    fn the_first_measured_run_is_never_a_baseline_run() {
        let mut r = result();
        r.baseline_runs = vec![run(7)];
        assert!(r.first_measured_run().is_none());
        r.sweep = vec![SweepCase {
            label: "a".into(),
            params: Default::default(),
            runs: vec![run(3)],
        }];
        assert_eq!(r.first_measured_run().map(|x| x.repeat), Some(3));
        let groups: Vec<Option<&str>> = r.measured_groups().map(|(case, _)| case).collect();
        assert_eq!(groups, [Some("a")]);
    }

    #[test]
    fn a_mock_result_is_never_evidence() {
        let mut r = result();
        r.mock = Some(Default::default());
        assert!(!r.is_evidence());
        assert!(r.not_evidence_reason().unwrap().contains("mock"));
    }

    #[test]
    fn invalid_or_interrupted_results_are_not_evidence() {
        let mut r = result();
        assert!(r.is_evidence());
        r.interrupted = true;
        assert!(r.not_evidence_reason().unwrap().contains("interrupted"));
        r.interrupted = false;
        r.valid = false;
        assert_eq!(r.not_evidence_reason().unwrap(), "marked invalid");
        r.invalid_reasons
            .push("run 0 completed no operation".into());
        assert!(r.not_evidence_reason().unwrap().contains("no operation"));
    }
}
