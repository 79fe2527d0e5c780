//! thpbench's exit codes, in one table: the binary returns them, `--help` lists them,
//! and scripts read them from `thpbench exit-codes --json` rather than copying them.

use serde::Serialize;

/// One exit code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExitCode {
    pub code: i32,
    /// A stable name for scripts (`mismatch`, `invalid`).
    pub name: &'static str,
    pub meaning: &'static str,
}

pub const OK: ExitCode = ExitCode {
    code: 0,
    name: "ok",
    meaning: "success",
};
pub const ERROR: ExitCode = ExitCode {
    code: 1,
    name: "error",
    meaning: "error",
};
pub const USAGE: ExitCode = ExitCode {
    code: 2,
    name: "usage",
    meaning: "usage error",
};
pub const MISMATCH: ExitCode = ExitCode {
    code: 3,
    name: "mismatch",
    meaning: "data mismatch found by --verify",
};
pub const INVALID: ExitCode = ExitCode {
    code: 4,
    name: "invalid",
    meaning: "result invalid (an asked-for condition did not hold)",
};
pub const INTERRUPTED: ExitCode = ExitCode {
    code: 130,
    name: "interrupted",
    meaning: "interrupted",
};

pub const ALL: [ExitCode; 6] = [OK, ERROR, USAGE, MISMATCH, INVALID, INTERRUPTED];

/// The line `--help` ends with (cli.rs spells it out, being a leaf; a test holds the two
/// together).
pub fn help_line() -> String {
    let codes = ALL
        .iter()
        .map(|c| format!("{} {}", c.code, c.meaning))
        .collect::<Vec<_>>()
        .join(", ");
    format!("Exit codes: {codes}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_lists_the_table() {
        use clap::CommandFactory;
        let help = crate::cli::Cli::command()
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert_eq!(help, help_line());
    }

    #[test]
    fn codes_and_names_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert!(a.code != b.code && a.name != b.name, "{a:?} {b:?}");
            }
        }
    }
}
