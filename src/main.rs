use anyhow::Result;
use clap::Parser;

use thpbench::cli::{Cli, Command};
use thpbench::commands;
use thpbench::output;

fn main() {
    let cli = Cli::parse();
    output::set_verbose(cli.verbose);
    output::set_quiet(cli.quiet);
    let code = match dispatch(&cli.command) {
        Ok(code) => code,
        // A flag value clap took as text that does not parse: a usage error, as clap's own.
        Err(e) => match e.downcast_ref::<clap::Error>() {
            Some(usage) => {
                let _ = usage.print();
                usage.exit_code()
            }
            None => {
                output::to_stderr(&format!("thpbench: error: {e:#}\n"));
                thpbench::exit::ERROR.code
            }
        },
    };
    std::process::exit(code);
}

fn dispatch(command: &Command) -> Result<i32> {
    match command {
        Command::Probe(args) => commands::probe::execute(args),
        Command::Run(args) => commands::run::execute(args),
        Command::Show(args) => commands::show::execute(args),
        Command::Compare(args) => commands::compare::execute(args),
        Command::Export(args) => commands::export::execute(args),
        Command::Plot(args) => commands::plot::execute(args),
        Command::Kernels(args) => commands::kernels::execute(args),
        Command::Cleanup(args) => commands::cleanup::execute(args),
        Command::ExitCodes(args) => commands::exit_codes::execute(args),
    }
}
