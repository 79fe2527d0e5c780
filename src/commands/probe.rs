//! `thpbench probe`: what this machine lets thpbench do, as a table or JSON.

use anyhow::Result;

use crate::cli::ProbeArgs;
use crate::system::probe;

/// `thpbench probe`.
pub fn execute(args: &ProbeArgs) -> Result<i32> {
    let rows = probe::probe(&args.target);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        probe::print_table(&rows);
    }
    Ok(0)
}
