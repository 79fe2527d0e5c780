//! `thpbench cleanup`: undo what killed or crashed runs left on this machine, from the
//! journal in /run/thpbench, and say what was undone.

use anyhow::Result;

/// `thpbench cleanup`.
pub fn execute() -> Result<i32> {
    crate::system::journal::command()
}
