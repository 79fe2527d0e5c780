//! `thpbench cleanup`: undo what killed or crashed runs left on this machine, from the
//! journal in /run/thpbench, recognising each thing as thpbench's before undoing it,
//! and say what was undone and what was left alone.

use anyhow::{bail, Result};

use crate::cli::CleanupArgs;
use crate::system::recovery;

/// `thpbench cleanup`: undoes what dead runs left and says what it undid, and what it
/// left alone. Exit 1 when something could not be undone or read.
pub fn execute(args: &CleanupArgs) -> Result<i32> {
    crate::signals::install();
    if !crate::system::is_root() {
        bail!(
            "undoing what dead runs left needs root (the journal in {} is root's alone); run `thpbench cleanup` as root",
            crate::system::journal::JOURNAL_DIR
        );
    }
    let _lock = crate::system::journal::MachineLock::acquire(!args.no_wait)?;
    if crate::system::journal::leftovers().is_empty() && recovery::unreadable_leftovers().is_empty()
    {
        crate::output::to_stdout("nothing to clean up: no dead run left changes on this machine\n");
        return Ok(0);
    }
    let report = recovery::cleanup();
    for u in &report.undone {
        crate::output::to_stdout(&format!("undone: {u}\n"));
    }
    for l in &report.left_alone {
        crate::output::warn(&format!("left alone: {l}"));
    }
    for f in &report.failed {
        crate::output::warn(&format!("not undone: {f}"));
    }
    Ok(if report.failed.is_empty() { 0 } else { 1 })
}
