//! `thpbench exit-codes` (hidden): the exit-code table, for scripts (`--bisect`: the
//! table of `thpbench bisect`, which follows `git bisect run`).

use anyhow::Result;

use crate::cli::ExitCodesArgs;
use crate::exit;

pub fn execute(args: &ExitCodesArgs) -> Result<i32> {
    let table: &[exit::ExitCode] = if args.bisect {
        &exit::bisect::ALL
    } else {
        &exit::ALL
    };
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(table)?)
    } else {
        table
            .iter()
            .map(|c| format!("{:3}  {:12} {}\n", c.code, c.name, c.meaning))
            .collect()
    };
    crate::output::to_stdout(&text);
    Ok(exit::OK.code)
}
