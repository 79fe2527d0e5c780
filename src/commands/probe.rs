//! `thpbench probe`: what this machine lets thpbench do, as a table or JSON.

use anyhow::Result;

use crate::cli::ProbeArgs;
use crate::system::probe;

/// `thpbench probe`.
pub fn execute(args: &ProbeArgs) -> Result<i32> {
    let rows = probe::probe(&args.target);
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&rows)?)
    } else {
        crate::report::probe::render(&rows)
    };
    crate::output::to_stdout(&text);
    Ok(0)
}
