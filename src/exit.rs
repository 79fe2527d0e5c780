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

/// `thpbench bisect`'s codes, which follow `git bisect run`'s contract instead: 0 good,
/// 1-127 bad except 125 skip, 128 and above stop the bisection.
pub mod bisect {
    use super::ExitCode;

    pub const GOOD: ExitCode = ExitCode {
        code: 0,
        name: "good",
        meaning: "like the good reference",
    };
    pub const BAD: ExitCode = ExitCode {
        code: 1,
        name: "bad",
        meaning: "like the bad reference, or data was corrupted",
    };
    pub const SKIP: ExitCode = ExitCode {
        code: 125,
        name: "skip",
        meaning:
            "no verdict: the result is invalid or interrupted, or the evidence stays undecided",
    };
    pub const ABORT: ExitCode = ExitCode {
        code: 128,
        name: "abort",
        meaning: "thpbench failed (unreadable file, bad arguments, references that do not separate): git bisect stops",
    };

    pub const ALL: [ExitCode; 4] = [GOOD, BAD, SKIP, ABORT];

    // git bisect run reads 0 as good, 1-127 but 125 as bad, 125 as skip, and stops at
    // 128 and above.
    const _: () = assert!(GOOD.code == 0);
    const _: () = assert!(BAD.code >= 1 && BAD.code <= 127 && BAD.code != 125);
    const _: () = assert!(SKIP.code == 125);
    const _: () = assert!(ABORT.code >= 128 && ABORT.code <= 255);
}

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
        for table in [&ALL[..], &bisect::ALL[..]] {
            for (i, a) in table.iter().enumerate() {
                for b in &table[i + 1..] {
                    assert!(a.code != b.code && a.name != b.name, "{a:?} {b:?}");
                }
            }
        }
    }

    /// clap's usage code 2 would read as bad to git, so bisect never uses it (the codes'
    /// meanings to git are checked at compile time, beside the table).
    #[test]
    fn bisect_never_exits_with_the_usage_code() {
        assert!(!bisect::ALL.iter().any(|c| c.code == USAGE.code));
    }
}
