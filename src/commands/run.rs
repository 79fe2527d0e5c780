//! `thpbench run`: the workload from a file or the built-in quick one, with the flags
//! applied; then the run, its summary or JSON, and its exit code.

use std::io::IsTerminal;

use anyhow::Result;

use clap::CommandFactory;

use crate::cli::{self, RunArgs};
use crate::output;
use crate::system::numa::Numa;
use crate::units::Duration;
use crate::workload::{
    DisturbKind, DisturbSpec, Engine, Rw, Share, SplitMethod, SweepValue, Workload, QUICK_TOML,
};

/// `thpbench run`.
pub fn execute(args: &RunArgs) -> Result<i32> {
    let w = workload(args)?;
    if args.print_workload {
        // JSON for scripts, TOML for people.
        if args.json {
            println!("{}", serde_json::to_string_pretty(&w)?);
        } else {
            print!("{}", w.to_toml());
        }
        return Ok(0);
    }
    let opts = options(args)?;
    let outcome = crate::run::execute(&w, &opts)?;
    // Writes to a closed stream are not errors here: the result is saved already.
    if args.json {
        output::to_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&outcome.result)?
        ));
    } else {
        output::to_stdout(&crate::report::summary::render(&outcome.result));
        output::to_stdout(&format!("result: {}\n", outcome.path.display()));
    }
    let code = outcome.exit_code();
    // The summary may go to a file or a pipe: a failed verdict is also said on stderr.
    if code == crate::exit::INVALID.code {
        output::warn(&format!(
            "result invalid (exit {code}): {}",
            outcome.result.invalid_reasons.join("; ")
        ));
    } else if code == crate::exit::MISMATCH.code {
        output::warn(&format!(
            "data mismatch (exit {code}): the data read back differs from what was written; see the summary's verify lines"
        ));
    }
    Ok(code)
}

/// How to run, from the flags (also `thpbench bisect --run`'s repeats).
pub(crate) fn options(args: &RunArgs) -> Result<crate::run::RunOptions> {
    Ok(crate::run::RunOptions {
        results_dir: args.results_dir.clone(),
        output: args.output.clone(),
        progress: !args.json && std::io::stderr().is_terminal() && !output::is_quiet(),
        inject_corruption_at: args.inject_corruption_at,
        drop_write: args.drop_write,
        drop_read: args.drop_read,
        baseline: args.baseline,
        no_wait: args.no_wait,
        cleanup_first: args.cleanup_first,
        keep_stalled: args.keep_stalled,
        mock: mock_spec(args)?,
    })
}

/// The value of `--FIELD`, parsed. One that does not parse is a usage error, reported
/// as clap reports its own (exit 2).
fn flag_value<T: std::str::FromStr<Err = String>>(field: &str, text: &str) -> Result<T> {
    text.parse().map_err(|e: String| {
        let flag = field.replace('_', "-");
        let placeholder = field.to_ascii_uppercase();
        cli::Cli::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value '{text}' for '--{flag} <{placeholder}>': {e}"),
            )
            .into()
    })
}

/// The workload from the file (or the built-in quick one) with the flags applied.
pub fn workload(args: &RunArgs) -> Result<Workload> {
    let mut w = match &args.workload {
        Some(path) => Workload::load(path)?,
        None => Workload::from_toml(QUICK_TOML, "workloads/quick.toml")?,
    };
    macro_rules! set {
        ($($field:ident),*) => {$(
            if let Some(v) = &args.$field { w.$field = v.clone().into(); }
        )*};
    }
    // Values clap took as text: a bad one is a usage error, as clap's own.
    macro_rules! parse {
        ($($field:ident),*) => {$(
            if let Some(v) = &args.$field { w.$field = flag_value(stringify!($field), v)?; }
        )*};
    }
    set!(name, engine, cpus, rw, rwmix_read, target, share, numa);
    parse!(duration, warmup, buffer, bs);
    if let Some(v) = &args.size {
        w.size = Some(flag_value("size", v)?);
    }
    if let Some(t) = &args.threads {
        let counts: Vec<&str> = t
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let parse = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--threads `{t}`: `{s}` is not a thread count"))
        };
        if counts.len() == 1 {
            w.threads = parse(counts[0])?;
        } else {
            let values = counts
                .iter()
                .map(|c| parse(c).map(|n| SweepValue::Int(n as i64)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            w.sweep.insert("threads".into(), values);
        }
        // A file's cpus list would ignore the count; --cpus given with it combines.
        if args.cpus.is_none() {
            w.cpus.clear();
        }
    }
    for axis in &args.sweep {
        let (key, values) = axis.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--sweep `{axis}`: expected KEY=V1,V2,... (e.g. buffer=4k,thp)")
        })?;
        w.sweep.insert(
            key.trim().to_string(),
            values.split(',').map(SweepValue::parse).collect(),
        );
    }
    if args.cpus.is_some() && args.threads.is_none() {
        w.threads = 0;
    }
    if let Some(v) = args.repeat {
        w.repeat = v;
    }
    if let Some(v) = args.seed {
        w.seed = v;
    }
    if let Some(v) = &args.bytes {
        w.bytes = Some(flag_value("bytes", v)?);
        w.ops = None;
    }
    if let Some(v) = args.ops {
        w.ops = Some(v);
        w.bytes = None;
    }
    if let Some(v) = args.iodepth {
        w.iodepth = v;
    }
    w.fixed_buffers |= args.fixed_buffers;
    w.force |= args.force;
    w.allow_write_device |= args.allow_write_device;
    w.allow_fallback |= args.allow_fallback;
    if args.no_verify {
        w.verify = false;
    }
    if args.verify {
        w.verify = true;
    }
    if let Some(level) = args.verify_level {
        w.verify_level = level.into();
    }
    let mut added = Vec::new();
    added.extend(
        args.split
            .iter()
            .map(|m| DisturbSpec::new(DisturbKind::Split, Some((*m).into()))),
    );
    if args.collapse {
        added.push(DisturbSpec::new(DisturbKind::Collapse, None));
    }
    if args.swap_out {
        added.push(DisturbSpec::new(DisturbKind::SwapOut, None));
    }
    if args.fork {
        added.push(DisturbSpec::new(DisturbKind::Fork, None));
    }
    if args.pressure {
        added.push(DisturbSpec::new(DisturbKind::Pressure, None));
    }
    w.disturb.extend(added);
    if let Some(every) = &args.every {
        let every: Duration = flag_value("every", every)?;
        for d in &mut w.disturb {
            d.every = every;
        }
    }
    if let Some(s) = &args.swap {
        w.swap = Some(s.clone());
    }
    if args.no_lock_contention {
        w.lock_contention = false;
    }
    if args.hw_counters {
        w.hw_counters = true;
    }
    if args.no_perf {
        w.perf = false;
    }
    crate::workload::sweep_cases(&w).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(w)
}

// The command line's enums mirror the domain's (cli.rs is a leaf and cannot name them);
// one macro converts each, and a missing variant on either side fails to compile.
super::mirror_enum!(cli::Engine => Engine { Dio, Uring, Gup });
super::mirror_enum!(cli::Rw => Rw { Read, Write, RandRead, RandWrite, ReadWrite });
super::mirror_enum!(cli::Numa => Numa { Local, Interleave, Any });
super::mirror_enum!(cli::Share => Share { Private, Shared });
use crate::verify::Level as VerifyLevel;
super::mirror_enum!(cli::VerifyLevel => VerifyLevel { Pages, Full });
super::mirror_enum!(cli::SplitMethod => SplitMethod { Cold, Pageout, Dontneed, Mprotect, Debugfs });

/// `--mock TIME` and its fault options, as the mock engine takes them.
fn mock_spec(args: &RunArgs) -> Result<Option<crate::result::MockReport>> {
    let Some(time) = &args.mock else {
        return Ok(None);
    };
    let op_ns = crate::units::parse_duration(time)
        .map_err(|e| anyhow::anyhow!("--mock {e} (the time each mock operation takes)"))?;
    Ok(Some(crate::result::MockReport {
        op_ns,
        mismatch_at: args.mock_mismatch_at,
        short_at: args.mock_short_at,
        error_at: args.mock_error_at,
    }))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn run_args(argv: &[&str]) -> RunArgs {
        let mut full = vec!["thpbench", "run"];
        full.extend_from_slice(argv);
        match cli::Cli::parse_from(full).command {
            cli::Command::Run(args) => *args,
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn flags_become_the_workload() {
        let w = workload(&run_args(&[
            "--bs",
            "64k",
            "--rw",
            "randwrite",
            "--buffer",
            "mthp:64K",
            "--split",
            "pageout",
            "--every",
            "20ms",
        ]))
        .unwrap();
        assert_eq!(w.bs.0, 64 << 10);
        assert_eq!(w.rw, Rw::RandWrite);
        assert_eq!(w.disturb[0].method, Some(SplitMethod::Pageout));
        assert_eq!(w.disturb[0].every, Duration(20_000_000));
        assert!(w.verify, "disturbers verify unless told not to");
    }

    /// Lock tracing (and the GUP slow-path tracer, which rides on it) is on unless
    /// --no-lock-contention turns it off; the run then starts no tracer.
    #[test]
    fn no_lock_contention_turns_tracing_off() {
        assert!(workload(&run_args(&[])).unwrap().lock_contention);
        let w = workload(&run_args(&["--no-lock-contention", "--split", "cold"])).unwrap();
        assert!(!w.lock_contention);
    }

    #[test]
    fn a_workload_that_turns_verify_off_keeps_it_off_under_disturber_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "verify = false\n").unwrap();
        let file = path.to_str().unwrap();
        let w = workload(&run_args(&[file, "--fork", "--pressure"])).unwrap();
        assert!(
            !w.verify,
            "verify = false in the file is as explicit as --no-verify"
        );
        let w = workload(&run_args(&[file, "--fork", "--verify"])).unwrap();
        assert!(w.verify);
    }

    #[test]
    fn a_value_that_does_not_parse_is_a_usage_error_naming_the_flag() {
        let err = workload(&run_args(&["--warmup", "3q"])).unwrap_err();
        let usage = err
            .downcast_ref::<clap::Error>()
            .expect("a clap usage error");
        assert_eq!(usage.exit_code(), 2);
        let text = usage.to_string();
        assert!(text.contains("'3q' for '--warmup <WARMUP>'"), "{text}");
        assert!(text.contains("unknown duration unit"), "{text}");
    }
}
