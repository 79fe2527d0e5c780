//! `thpbench show`: the summary of a saved result.

use anyhow::Result;

use crate::cli::ShowArgs;
use crate::result::BenchResult;

/// `thpbench show`.
pub fn execute(args: &ShowArgs) -> Result<i32> {
    let r = BenchResult::load(&args.result)?;
    print!("{}", crate::output::summary::render(&r));
    Ok(0)
}
