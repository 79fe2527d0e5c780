//! The probe's row for what dead runs left: the journal's leftovers, and its entries
//! that cannot be read.

use super::ProbeRow;
use crate::system::recovery;

/// `thpbench probe`'s row: leftovers of dead runs, and journal entries that cannot be read.
pub fn probe_row() -> ProbeRow {
    if !crate::system::is_root() {
        return ProbeRow {
            what: "leftovers of dead runs".into(),
            available: true,
            value: "not checked".into(),
            reason: format!(
                "the journal in {} is root's alone",
                crate::system::journal::JOURNAL_DIR
            ),
            remedy: "thpbench probe as root".into(),
        };
    }
    let mut left = crate::system::journal::describe(&crate::system::journal::leftovers());
    left.extend(
        recovery::unreadable_leftovers()
            .iter()
            .map(ToString::to_string),
    );
    ProbeRow {
        what: "leftovers of dead runs".into(),
        available: left.is_empty(),
        value: if left.is_empty() {
            "none".into()
        } else {
            left.join("; ")
        },
        reason: if left.is_empty() {
            String::new()
        } else {
            format!(
                "a killed or crashed thpbench run left these changes (journal in {}); runs refuse to start over them",
                crate::system::journal::JOURNAL_DIR
            )
        },
        remedy: if left.is_empty() {
            String::new()
        } else {
            "thpbench cleanup (as root)".into()
        },
    }
}
