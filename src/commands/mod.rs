//! One file per subcommand: each turns its clap arguments into domain types, calls the
//! core, prints what the user asked for and says which exit code the outcome means.

pub mod cleanup;
pub mod compare;
pub mod exit_codes;
pub mod export;
pub mod kernels;
pub mod plot;
pub mod probe;
pub mod run;
pub mod show;
