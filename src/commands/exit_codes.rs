//! `thpbench exit-codes` (hidden): the exit-code table, for scripts.

use anyhow::Result;

use crate::cli::ExitCodesArgs;
use crate::exit;

pub fn execute(args: &ExitCodesArgs) -> Result<i32> {
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&exit::ALL)?)
    } else {
        exit::ALL
            .iter()
            .map(|c| format!("{:3}  {:12} {}\n", c.code, c.name, c.meaning))
            .collect()
    };
    crate::output::to_stdout(&text);
    Ok(exit::OK.code)
}
