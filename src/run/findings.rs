//! What the phases of a run find besides their figures: the reasons a run is not
//! evidence, what could not be measured, and whether a signal stopped it. Each phase
//! (plan, setup, every repeat) returns its own; the assembler (`assemble.rs`) alone puts
//! them into the result, so no phase writes into a half-built result.

use crate::result::Unavailable;

#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Findings {
    /// Why the runs are not evidence, each naming the run it is about where it is one.
    pub invalid_reasons: Vec<String>,
    /// What could not be measured here, each once.
    pub unavailable: Vec<Unavailable>,
    /// A signal stopped the measurement (the runs are partial).
    pub interrupted: bool,
}

impl Findings {
    /// A reason the run (or, without a name, the whole result) is not evidence.
    pub fn invalid(&mut self, run_name: Option<&str>, why: impl Into<String>) {
        let why = why.into();
        self.invalid_reasons.push(match run_name {
            Some(name) => format!("{name}: {why}"),
            None => why,
        });
    }

    /// Something that could not be measured; the same entry from several repeats is kept
    /// once.
    pub fn unavailable(&mut self, u: Unavailable) {
        if !self.unavailable.contains(&u) {
            self.unavailable.push(u);
        }
    }

    /// Takes in what a later phase found, in order.
    pub fn absorb(&mut self, later: Findings) {
        self.invalid_reasons.extend(later.invalid_reasons);
        for u in later.unavailable {
            self.unavailable(u);
        }
        self.interrupted |= later.interrupted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_their_run_and_unavailable_entries_are_kept_once() {
        let u = Unavailable::new("perf counter x", "no PMU", "bare metal");
        let mut setup = Findings::default();
        setup.invalid(None, "coverage 0.5 after prefault");
        setup.unavailable(u.clone());
        let mut repeat = Findings::default();
        repeat.invalid(Some("run 1"), "stalled");
        repeat.unavailable(u.clone());
        repeat.interrupted = true;
        setup.absorb(repeat);
        assert_eq!(
            setup.invalid_reasons,
            ["coverage 0.5 after prefault", "run 1: stalled"]
        );
        assert_eq!(setup.unavailable, [u]);
        assert!(setup.interrupted);
    }
}
