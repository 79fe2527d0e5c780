//! `thpbench bisect --kernel KERNEL`: boot the kernel under qemu through the same code as
//! `thpbench kernels` (src/kernels), run the workload there, and decide by the rule.
//!
//! Repeats per boot: the first boot runs `--min-samples` repeats (the rule cannot decide
//! on fewer, so a boot per repeat would only add boots), each further boot one more, and
//! the rule looks after every boot, until decided or `--repeat-until`. The verdicts are
//! those of `--run` on this machine, which looks after every repeat but cannot decide
//! before `--min-samples` either; a guest cannot be told to stop early, and one boot per
//! added repeat keeps the repeats run no more than needed.
//!
//! What happens before a result exists decides by type, not by message: a tree that does
//! not build ([`tree::BuildFailed`]), a kernel that does not boot, a run that fails in
//! the guest, skip (125); a guest that reports corruption, bad (1); everything else (qemu
//! missing, unreadable references, bad arguments) is the machinery's failure (128).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;

use super::{
    check_same_workload, judge_runs, max_repeats, progress, run_flags, worst_standing, References,
    Report,
};
use crate::bisect::{self as rule, Rule, Standing, Verdict};
use crate::cli::{BisectArgs, Cli, Command, KernelsArgs};
use crate::exit::bisect::{BAD, SKIP};
use crate::kernels::{self, guest, tree, KernelForm, ResolveOptions, Workdir};
use crate::output;
use crate::result::RunResult;

/// What one boot gave, before the rule looks at any figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootStep {
    /// A whole result came back (it may still be corrupted or not evidence).
    Result(PathBuf),
    /// The guest never said how thpbench ended and sent no result: the kernel did not
    /// boot, panicked, hung, or init failed.
    BootFailed(String),
    /// thpbench ran in the guest but failed without a usable result.
    RunFailed(String),
    /// thpbench in the guest exited with the mismatch code: data was corrupted.
    Corrupted(String),
}

/// Reads a guest's outcome as a step of the bisection.
pub fn classify(o: &guest::GuestOutcome, timeout_s: u64) -> BootStep {
    let console = o.console.display();
    let mismatch = crate::exit::MISMATCH.code;
    match (&o.result, o.guest_exit) {
        (Some(r), Some(rc)) if rc == mismatch => BootStep::Corrupted(format!(
            "thpbench exited {rc} in the guest: {}",
            super::super::kernels::corruption_cause(Some(r))
        )),
        (None, Some(rc)) if rc == mismatch => BootStep::Corrupted(format!(
            "thpbench exited {rc} in the guest (data corrupted), and its result did not come back (console: {console})"
        )),
        // OK, or INVALID (the result says why it is no evidence).
        (Some(r), Some(rc)) if rc == crate::exit::OK.code || rc == crate::exit::INVALID.code => {
            BootStep::Result(r.clone())
        }
        (Some(_), Some(rc)) => BootStep::RunFailed(format!(
            "thpbench exited {rc} in the guest (console: {console})"
        )),
        (Some(_), None) => BootStep::RunFailed(format!(
            "a result came back but the guest did not say how thpbench exited (console: {console})"
        )),
        (None, Some(rc)) => {
            let damaged = if o.damaged.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = o
                    .damaged
                    .iter()
                    .map(|(n, e)| format!("{n} came back {e}"))
                    .collect();
                format!("; {}", names.join(", "))
            };
            BootStep::RunFailed(format!(
                "thpbench exited {rc} in the guest and no whole result came back{damaged} (console: {console})"
            ))
        }
        (None, None) => BootStep::BootFailed(match o.qemu {
            guest::QemuEnd::TimedOut => format!(
                "no result after {timeout_s} s: qemu was killed (a hang or a very slow boot; console: {console})"
            ),
            ref end => format!(
                "the guest never ran the workload (qemu {end}: a panic, or init failed; console: {console})"
            ),
        }),
    }
}

/// An error on the way to a result that is a verdict on the kernel, not a failure of
/// the machinery: (outcome, exit code, why). None: the machinery failed (128).
pub fn verdict_of_error(e: &anyhow::Error) -> Option<(&'static str, i32, String)> {
    if let Some(b) = e
        .chain()
        .find_map(|c| c.downcast_ref::<tree::BuildFailed>())
    {
        return Some(("not_built", SKIP.code, b.to_string()));
    }
    if e.chain().any(|c| c.is::<crate::signals::Interrupted>()) {
        return Some(("interrupted", SKIP.code, "interrupted by a signal".into()));
    }
    None
}

/// The report for a step that brought no judgeable result.
fn step_report(files: Vec<String>, rule: &Rule, step: BootStep) -> Option<Report> {
    let (outcome, code, why) = match step {
        BootStep::Result(_) => return None,
        BootStep::BootFailed(why) => ("not_booted", SKIP.code, why),
        BootStep::RunFailed(why) => ("run_failed", SKIP.code, why),
        BootStep::Corrupted(why) => ("corrupted", BAD.code, why),
    };
    Some(Report::without_result(files, rule, outcome, code, why))
}

/// `thpbench kernels`' arguments from bisect's guest flags, so that the guest is set up
/// by the same code (and defaults) as there.
fn kernels_args(args: &BisectArgs) -> Result<KernelsArgs> {
    let mut argv: Vec<String> = vec!["thpbench".into(), "kernels".into()];
    let flags: [(&str, Option<String>); 10] = [
        ("--accel", args.accel.clone()),
        ("--smp", args.smp.clone()),
        ("--numa", args.numa.clone()),
        ("--mem", args.mem.clone()),
        ("--thp", args.thp.clone()),
        ("--timeout", args.timeout.clone()),
        ("--arch", args.arch.clone()),
        ("--jobs", args.jobs.clone()),
        (
            "--cache-dir",
            args.cache_dir.as_ref().map(|p| p.display().to_string()),
        ),
        (
            "--kernel-config",
            args.kernel_config.as_ref().map(|p| p.display().to_string()),
        ),
    ];
    for (flag, v) in flags {
        if let Some(v) = v {
            argv.push(format!("{flag}={v}"));
        }
    }
    if args.gup_test {
        argv.push("--gup-test".into());
    }
    let cli = Cli::try_parse_from(&argv)?;
    let Command::Kernels(k) = cli.command else {
        unreachable!("parsed as kernels")
    };
    Ok(*k)
}

/// The workload as `thpbench run` takes it: `--run WORKLOAD [FLAGS]`, or a bare
/// WORKLOAD, or nothing (quick). A name is looked up as `thpbench kernels` does.
fn workload_argv(args: &BisectArgs) -> Result<Vec<String>> {
    let mut run: Vec<String> = match (&args.run, args.results.as_slice()) {
        (Some(r), []) => r.clone(),
        (None, []) => Vec::new(),
        (None, [w]) => vec![w.display().to_string()],
        _ => bail!(
            "--kernel: give the workload as one WORKLOAD, or as --run WORKLOAD [RUN FLAGS] (last); there are no result files to judge with --kernel"
        ),
    };
    if let Some(first) = run.first().filter(|a| !a.starts_with('-')).cloned() {
        match super::super::kernels::workload_file(&first)? {
            Some(path) => run[0] = path.display().to_string(),
            None => {
                run.remove(0); // quick: run's built-in
            }
        }
    }
    Ok(run)
}

/// `--kernel`: resolve (build) the kernel once, then boot it until the rule decides.
pub fn boot_until_decided(
    args: &BisectArgs,
    rule: &Rule,
    refs: &References,
    spec: &str,
) -> Result<Report> {
    crate::signals::install();
    let run_args = run_flags(&workload_argv(args)?)?;
    let max = max_repeats(args, rule)?;
    // Validated (with every sweep case) by the run command's own reading of it.
    let mut w = super::super::run::workload(&run_args)?;
    guest::placement(&w).map_err(anyhow::Error::msg)?;
    let ka = kernels_args(args)?;
    let cache = ka.cache_dir.clone().unwrap_or_else(kernels::default_cache);
    let thpbench = super::super::kernels::thpbench_binary(args.thpbench.as_deref())?;
    let g = super::super::kernels::guest_options(&ka, thpbench, cache.clone())?;
    let form = KernelForm::parse(spec)?;
    if form == KernelForm::Host {
        bail!("--kernel host: bisect runs on this machine with --run, not --kernel");
    }
    let ropts = ResolveOptions {
        cache: cache.clone(),
        build: tree::BuildOptions {
            arch: g.arch,
            config: ka.kernel_config.clone(),
            gup_test: ka.gup_test,
            jobs: ka
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            cache: cache.clone(),
        },
    };
    let k = match kernels::resolve(&form, &ropts) {
        Ok(Some(k)) => k,
        Ok(None) => unreachable!("host refused above"),
        Err(e) => match verdict_of_error(&e) {
            Some((outcome, code, why)) => {
                output::warn(&format!("kernel {spec}: {e:#}"));
                return Ok(Report::without_result(Vec::new(), rule, outcome, code, why));
            }
            None => return Err(e),
        },
    };
    // After the build: a commit that does not build is a skip whatever the host lacks.
    kernels::tools::ensure(&cache)?;
    let out_dir = match &args.out_dir {
        Some(d) => d.clone(),
        None => {
            cache
                .join("bisect")
                .join(format!("{}-{}", crate::util::utc_now_compact(), k.label))
        }
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("--out-dir {}", out_dir.display()))?;
    let out_dir = out_dir.canonicalize()?;
    output::info(&format!(
        "bisect: kernel {} ({spec}); workload {}; results in {}",
        k.label,
        w.name,
        out_dir.display()
    ));
    let work = Workdir::new(args.keep)?;
    let mut files = Vec::new();
    let mut runs: Vec<RunResult> = Vec::new();
    let mut last = Vec::new();
    let mut done = 0;
    let mut boot = 0;
    while done < max {
        // The rule cannot decide on fewer than min_samples: the first boot runs them all.
        w.repeat = if done == 0 { rule.min_samples } else { 1 };
        boot += 1;
        // The kernel's label in the name: the steps of a bisection may share --out-dir.
        let prefix = format!("{}-boot{boot:02}", k.label);
        let o = match kernels::boot_workload(&k, &w, &g, &work.path, &out_dir, &prefix) {
            Ok(o) => o,
            Err(e) => match verdict_of_error(&e) {
                Some((outcome, code, why)) => {
                    return Ok(Report::without_result(files, rule, outcome, code, why))
                }
                None => return Err(e),
            },
        };
        let step = classify(&o, ka.timeout);
        output::info(&format!(
            "bisect: boot {boot} ({} repeat{}): {:.1} s under {}, {}",
            w.repeat,
            if w.repeat == 1 { "" } else { "s" },
            o.wall.as_secs_f64(),
            o.accel.name(),
            match &step {
                BootStep::Result(p) => format!("result {}", p.display()),
                other => format!("{other:?}"),
            }
        ));
        let BootStep::Result(path) = step else {
            if let Some(r) = &o.result {
                files.push(r.display().to_string());
            }
            return Ok(step_report(files, rule, step).expect("not a result"));
        };
        files.push(path.display().to_string());
        let result = crate::result::BenchResult::load(&path)
            .with_context(|| format!("the guest's result {}", path.display()))?;
        let standing = worst_standing(std::iter::once((&path, &result)), args);
        if let Some(standing) = standing {
            return Ok(Report::unjudged(files, rule, standing));
        }
        if crate::signals::received() {
            return Ok(Report::unjudged(
                files,
                rule,
                Standing::NotEvidence("interrupted by a signal after the run".into()),
            ));
        }
        if !args.force {
            check_same_workload(&refs.params, &refs.params_from, &result, &path)?;
        }
        let own = rule::sample_runs(&result, args.case.as_deref())
            .map_err(|e| anyhow::anyhow!("{} {e}", path.display()))?;
        runs.extend_from_slice(own);
        done += w.repeat;
        last = judge_runs(refs, &runs, rule);
        let verdict = rule::combine(&last);
        progress(
            &format!("boot {boot}, {done}/{max} repeats"),
            &last,
            verdict,
        );
        if verdict != Verdict::Undecided {
            break;
        }
    }
    Ok(Report::judged(files, rule, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::protocol::FrameError;
    use crate::kernels::qemu::Accel;
    use std::time::Duration;

    fn outcome(
        result: Option<&str>,
        exit: Option<i32>,
        qemu: guest::QemuEnd,
    ) -> guest::GuestOutcome {
        guest::GuestOutcome {
            result: result.map(PathBuf::from),
            guest_exit: exit,
            qemu,
            accel: Accel::Tcg,
            accel_why: String::new(),
            wall: Duration::from_secs(1),
            console: "/o/boot01.console.log".into(),
            damaged: Vec::new(),
            boot_to_run_s: None,
            init_s: None,
        }
    }

    #[test]
    fn guest_outcomes_map_to_steps() {
        use guest::QemuEnd::{Exited, TimedOut};
        let r = Some("/o/boot01.json");
        assert_eq!(
            classify(&outcome(r, Some(0), Exited(0)), 60),
            BootStep::Result("/o/boot01.json".into())
        );
        // An invalid run's result says why; the standing reads it.
        assert_eq!(
            classify(&outcome(r, Some(crate::exit::INVALID.code), Exited(0)), 60),
            BootStep::Result("/o/boot01.json".into())
        );
        assert!(matches!(
            classify(&outcome(r, Some(crate::exit::MISMATCH.code), Exited(0)), 60),
            BootStep::Corrupted(_)
        ));
        assert!(matches!(
            classify(
                &outcome(None, Some(crate::exit::MISMATCH.code), Exited(0)),
                60
            ),
            BootStep::Corrupted(_)
        ));
        assert!(matches!(
            classify(&outcome(r, Some(crate::exit::ERROR.code), Exited(0)), 60),
            BootStep::RunFailed(_)
        ));
        assert!(matches!(
            classify(&outcome(r, None, Exited(0)), 60),
            BootStep::RunFailed(_)
        ));
        let mut damaged = outcome(None, Some(0), Exited(0));
        damaged.damaged = vec![(
            "result.json".into(),
            FrameError::Truncated { received_lines: 3 },
        )];
        match classify(&damaged, 60) {
            BootStep::RunFailed(why) => assert!(why.contains("result.json came back"), "{why}"),
            other => panic!("{other:?}"),
        }
        match classify(&outcome(None, None, TimedOut), 60) {
            BootStep::BootFailed(why) => assert!(why.contains("after 60 s"), "{why}"),
            other => panic!("{other:?}"),
        }
        match classify(&outcome(None, None, Exited(0)), 60) {
            BootStep::BootFailed(why) => {
                assert!(
                    why.contains("never ran") && why.contains("console"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn steps_map_to_exit_codes() {
        let rule = Rule {
            min_samples: 3,
            min_change_pct: 5.0,
        };
        let code = |s: BootStep| step_report(vec![], &rule, s).map(|r| (r.outcome, r.exit_code));
        assert_eq!(code(BootStep::Result("/r.json".into())), None);
        assert_eq!(
            code(BootStep::BootFailed("panic".into())),
            Some(("not_booted", 125))
        );
        assert_eq!(
            code(BootStep::RunFailed("exit 1".into())),
            Some(("run_failed", 125))
        );
        assert_eq!(
            code(BootStep::Corrupted("mismatch".into())),
            Some(("corrupted", 1))
        );
        let r = step_report(vec![], &rule, BootStep::BootFailed("a panic".into())).unwrap();
        assert!(
            r.render()
                .contains("verdict: skip: the kernel did not boot (exit 125): a panic"),
            "{}",
            r.render()
        );
    }

    #[test]
    fn errors_before_a_result_are_skips_only_when_typed() {
        let built: anyhow::Error = tree::BuildFailed("`make bzImage` failed".into()).into();
        let (outcome, code, why) = verdict_of_error(&built).unwrap();
        assert_eq!((outcome, code), ("not_built", 125));
        assert!(why.contains("make bzImage"));
        // Context on top does not hide the type.
        let wrapped = anyhow::Error::from(tree::BuildFailed("x".into())).context("kernel .");
        assert_eq!(verdict_of_error(&wrapped).unwrap().1, 125);
        let interrupted: anyhow::Error = crate::signals::Interrupted.into();
        assert_eq!(verdict_of_error(&interrupted).unwrap().0, "interrupted");
        // The same words in an untyped error are the machinery's failure (128).
        let untyped = anyhow::anyhow!("`make bzImage` failed: qemu-system-x86_64 not found");
        assert_eq!(verdict_of_error(&untyped), None);
    }

    #[test]
    fn guest_flags_reach_the_kernels_arguments() {
        let args = match Cli::parse_from([
            "thpbench",
            "bisect",
            "--good",
            "g.json",
            "--bad",
            "b.json",
            "--kernel",
            ".",
            "--smp",
            "4",
            "--mem",
            "2G",
            "--timeout",
            "300",
            "--gup-test",
            "--run",
            "quick",
            "--duration",
            "2s",
        ])
        .command
        {
            Command::Bisect(a) => *a,
            other => panic!("{other:?}"),
        };
        let k = kernels_args(&args).unwrap();
        assert_eq!(
            (k.smp.as_str(), k.mem.as_str(), k.timeout),
            ("4", "2G", 300)
        );
        assert!(k.gup_test);
        // Not given: `thpbench kernels`' defaults.
        assert_eq!((k.thp.as_str(), k.numa), ("host", 0));
        // A name is looked up as `thpbench kernels` does (workloads/ here holds quick.toml;
        // without it, quick is run's built-in), the flags kept.
        let argv = workload_argv(&args).unwrap();
        assert!(argv[0].ends_with("workloads/quick.toml"), "{argv:?}");
        assert_eq!(argv[1..], ["--duration", "2s"]);
        let bare = match Cli::parse_from([
            "thpbench", "bisect", "--good", "g", "--bad", "b", "--kernel", ".", "--", "quick",
        ])
        .command
        {
            Command::Bisect(a) => *a,
            other => panic!("{other:?}"),
        };
        assert_eq!(workload_argv(&bare).unwrap(), [argv[0].clone()]);
        let two = match Cli::parse_from([
            "thpbench", "bisect", "--good", "g", "--bad", "b", "--kernel", ".", "--", "a", "b",
        ])
        .command
        {
            Command::Bisect(a) => *a,
            other => panic!("{other:?}"),
        };
        assert!(workload_argv(&two).is_err());
    }
}
