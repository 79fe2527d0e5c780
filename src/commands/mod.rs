//! One file per subcommand: each turns its clap arguments into domain types, calls the
//! core, prints what the user asked for and says which exit code the outcome means.

pub mod bisect;
pub mod cleanup;
pub mod compare;
pub mod exit_codes;
pub mod export;
pub mod kernels;
pub mod plot;
pub mod probe;
pub mod run;
pub mod show;

/// `From<$cli> for $domain` for two enums with the same variants: the command line's
/// copy (cli.rs imports nothing of the crate) and the domain's. An exhaustive match both
/// ways round, so a variant added to one and not the other is a compile error.
macro_rules! mirror_enum {
    ($cli:path => $domain:ident { $($v:ident),* $(,)? }) => {
        impl From<$cli> for $domain {
            fn from(v: $cli) -> Self {
                use $cli as C;
                match v {
                    $(C::$v => $domain::$v,)*
                }
            }
        }
        const _: fn($domain) = |d| match d {
            $($domain::$v => {})*
        };
    };
}
pub(crate) use mirror_enum;
