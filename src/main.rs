use std::io::IsTerminal;

use anyhow::Result;
use clap::Parser;

use thpbench::cli::{Cli, Command};
use thpbench::output;

fn main() {
    let cli = Cli::parse();
    output::set_verbose(cli.verbose);
    output::set_quiet(cli.quiet);
    let code = match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            output::to_stderr(&format!("thpbench: error: {e:#}\n"));
            1
        }
    };
    std::process::exit(code);
}

fn dispatch(command: Command) -> Result<i32> {
    match command {
        Command::Probe(args) => {
            let rows = thpbench::system::probe::probe(&args.target);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                thpbench::system::probe::print_table(&rows);
            }
            Ok(0)
        }
        Command::Run(args) => {
            let w = args.resolve()?;
            if args.print_workload {
                print!("{}", w.to_toml());
                return Ok(0);
            }
            let opts = thpbench::run::RunOptions {
                results_dir: args.results_dir.clone(),
                output: args.output.clone(),
                progress: !args.json && std::io::stderr().is_terminal() && !output::is_quiet(),
                inject_corruption_at: args.inject_corruption_at,
                baseline: args.baseline,
                no_wait: args.no_wait,
                cleanup_first: args.cleanup_first,
            };
            let outcome = thpbench::run::execute(&w, &opts)?;
            if args.json {
                output::to_stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&outcome.result)?
                ));
            } else {
                output::to_stdout(&thpbench::output::summary::render(&outcome.result));
                output::to_stdout(&format!("result: {}\n", outcome.path.display()));
            }
            Ok(outcome.exit_code())
        }
        Command::Show(args) => {
            let r = thpbench::result::BenchResult::load(&args.result)?;
            print!("{}", thpbench::output::summary::render(&r));
            Ok(0)
        }
        Command::Compare(args) => thpbench::compare::command(&args),
        Command::Export(args) => thpbench::export::command(&args),
        Command::Plot(args) => thpbench::plot::command(&args),
        Command::Cleanup => thpbench::system::journal::command(),
    }
}
