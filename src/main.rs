use anyhow::Result;
use clap::Parser;

use thpbench::cli::{Cli, Command};
use thpbench::commands;
use thpbench::output;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // `git bisect run` reads clap's usage code 2 as "bad": a bisect usage error
            // must stop the bisection instead (--help and --version still exit 0).
            let code = match e.exit_code() {
                0 => 0,
                _ if invoked_subcommand().as_deref() == Some("bisect") => {
                    thpbench::exit::bisect::ABORT.code
                }
                usage => usage,
            };
            std::process::exit(code);
        }
    };
    output::set_verbose(cli.verbose);
    output::set_quiet(cli.quiet);
    let bisect = matches!(cli.command, Command::Bisect(_));
    let code = match dispatch(&cli.command) {
        Ok(code) => code,
        // A flag value clap took as text that does not parse: a usage error, as clap's own.
        Err(e) => match e.downcast_ref::<clap::Error>() {
            Some(usage) => {
                let _ = usage.print();
                if bisect {
                    thpbench::exit::bisect::ABORT.code
                } else {
                    usage.exit_code()
                }
            }
            None => {
                output::to_stderr(&format!("thpbench: error: {e:#}\n"));
                if bisect {
                    thpbench::exit::bisect::ABORT.code
                } else {
                    thpbench::exit::ERROR.code
                }
            }
        },
    };
    std::process::exit(code);
}

/// The subcommand named on the command line (the first word that is not a flag: the
/// global flags take no value), for exit codes when the line does not parse.
fn invoked_subcommand() -> Option<String> {
    std::env::args().skip(1).find(|a| !a.starts_with('-'))
}

fn dispatch(command: &Command) -> Result<i32> {
    match command {
        Command::Probe(args) => commands::probe::execute(args),
        Command::Run(args) => commands::run::execute(args),
        Command::Show(args) => commands::show::execute(args),
        Command::Compare(args) => commands::compare::execute(args),
        Command::Export(args) => commands::export::execute(args),
        Command::Plot(args) => commands::plot::execute(args),
        Command::Bisect(args) => commands::bisect::execute(args),
        Command::Kernels(args) => commands::kernels::execute(args),
        Command::Cleanup(args) => commands::cleanup::execute(args),
        Command::ExitCodes(args) => commands::exit_codes::execute(args),
    }
}
