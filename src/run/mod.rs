//! Orchestration of `thpbench run`: plan, set up (target, buffers, swap), run each repeat
//! (pinned workers, disturbers, collectors), assemble the result, tear down. Teardown is
//! the guards' drops, in reverse order of setup, on success, error and Ctrl-C alike.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::result::{BenchResult, RunResult, RunRole, Unavailable};
use crate::signals::Interrupted;
use crate::workload::Workload;

mod assemble;
mod figures;
mod findings;
mod repeat;
mod rig;
mod validity;

use assemble::{Measured, Parts};
use findings::Findings;
use repeat::Repeat;
use rig::Setup;
pub use validity::exit_code;

/// Coverage below this share of what was asked fails the run (or marks it invalid).
pub const MIN_COVERAGE: f64 = 0.99;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where results land when `output` is not given.
    pub results_dir: PathBuf,
    pub output: Option<PathBuf>,
    /// Show a progress bar (stderr is a terminal and not --json).
    pub progress: bool,
    /// Test hook: overwrite this target offset after the fill, to prove --verify works.
    pub inject_corruption_at: Option<u64>,
    /// Test hook: the first worker's Nth write is answered as done but not made.
    pub drop_write: Option<u64>,
    /// Test hook: the first worker's Nth read is answered as done but never lands.
    pub drop_read: Option<u64>,
    /// Also measure the workload without its disturbers (`--baseline`).
    pub baseline: bool,
    /// Refuse instead of waiting while another run holds the machine lock.
    pub no_wait: bool,
    /// Undo a dead run's leftovers before starting (else refuse while they are there).
    pub cleanup_first: bool,
    /// Keep a run that stalled (the process did not run) as measured, recording the
    /// stall, instead of making the result invalid (`--keep-stalled`).
    pub keep_stalled: bool,
    /// Test hook (`--mock`): an in-memory target and the mock engine; changes nothing
    /// on the machine, needs no root, and the result is never evidence.
    pub mock: Option<crate::result::MockReport>,
}

pub struct Outcome {
    pub result: BenchResult,
    pub path: PathBuf,
}

impl Outcome {
    /// 130 interrupted, 3 data mismatches, 4 invalid (a condition was not met), else 0:
    /// from the saved result alone, so that the exit code and the file never disagree
    /// (a signal during teardown is recorded in the result, see `signal_in_teardown`).
    pub fn exit_code(&self) -> i32 {
        validity::exit_code(&self.result, false)
    }
}

/// The CPUs to run workers on.
pub fn resolve_cpus(w: &Workload) -> Result<Vec<usize>> {
    Ok(resolve_cpu_selection(w)?.cpus)
}

/// The CPUs to run workers on and why these (see src/system/topology.rs).
pub fn resolve_cpu_selection(w: &Workload) -> Result<crate::system::topology::Selection> {
    use crate::system::topology::{select, CpuSpec, Topology};
    let spec = CpuSpec::parse(&w.cpus).map_err(|e| anyhow::anyhow!("cpus = {e}"))?;
    let allowed = crate::system::cpu::allowed_cpus();
    select(&Topology::current(), &allowed, &spec, w.threads).map_err(|e| {
        anyhow::anyhow!(
            "cpus = \"{}\"{}: {e}",
            if w.cpus.is_empty() { "cores" } else { &w.cpus },
            if w.threads > 0 {
                format!(", threads = {}", w.threads)
            } else {
                String::new()
            }
        )
    })
}

/// `-o` as given; else a name in the results directory that holds the pid, so that two
/// runs started in the same second do not collide.
fn result_path(opts: &RunOptions, release: &str, name: &str) -> PathBuf {
    opts.output.clone().unwrap_or_else(|| {
        opts.results_dir.join(format!(
            "{}-{}-{}-{}.json",
            crate::util::utc_now_compact(),
            crate::util::sanitize_file_part(release),
            crate::util::sanitize_file_part(name),
            std::process::id()
        ))
    })
}

/// Saves the result: never over an existing file (`-o` onto one is refused before
/// measuring; a generated name gets a counter). If saving fails, the result goes to a fallback path in the temp
/// directory, which is said; only if that fails too is it an error.
fn save_result(result: &BenchResult, path: &Path, generated: bool) -> Result<PathBuf> {
    let text = serde_json::to_string_pretty(result)?;
    let first = if generated {
        (1..1000)
            .map(|n| match n {
                1 => path.to_path_buf(),
                n => path.with_extension(format!("{n}.json")),
            })
            .map(|p| (crate::util::write_new_atomic(&p, text.as_bytes()), p))
            .find(|(r, _)| !matches!(r, Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists))
            .map(|(r, p)| r.map(|()| p).map_err(anyhow::Error::from))
            .unwrap_or_else(|| Err(anyhow::anyhow!("999 files of that name exist")))
    } else {
        crate::util::write_new_atomic(path, text.as_bytes())
            .map(|()| path.to_path_buf())
            .map_err(anyhow::Error::from)
    };
    let e = match first {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    let fallback = std::env::temp_dir().join(path.file_name().unwrap_or("result.json".as_ref()));
    let fallback = fallback.with_extension(format!("{}.json", std::process::id()));
    crate::util::write_new_atomic(&fallback, text.as_bytes()).with_context(|| {
        format!(
            "saving the result to {} failed ({e:#}), and to the fallback {} too",
            path.display(),
            fallback.display()
        )
    })?;
    crate::output::warn(&format!(
        "could not save the result to {} ({e:#}); it is in {} instead",
        path.display(),
        fallback.display()
    ));
    Ok(fallback)
}

/// Runs a workload end to end and saves the result. Errors before any measurement are
/// returned as errors; an interruption returns the partial result.
pub fn execute(w: &Workload, opts: &RunOptions) -> Result<Outcome> {
    let mut w = w.clone();
    if opts.mock.is_some() {
        // Lock tracing switches the kernel's tracing on: a mock run changes nothing.
        w.lock_contention = false;
    }
    if let Some(why) = w.settle_verify() {
        crate::output::info(why);
    }
    let w = &w;
    let cases = crate::workload::sweep_cases(w)
        .map_err(|e| anyhow::anyhow!("workload `{}`: {e}", w.name))?;
    if opts.mock.is_some() && w.engine != crate::workload::Engine::Dio {
        bail!(
            "--mock replaces the engine, and the workload asks for engine = {}; leave the engine at dio",
            w.engine.as_str()
        );
    }
    crate::signals::install();
    // A mock run measures the harness: every change to the machine (knobs, zram, swap,
    // cgroups, mounts, files) is refused before it is made, whoever runs it.
    let _forbidden = opts.mock.is_some().then(|| {
        crate::system::journal::ChangesForbidden::new(
            "--mock never changes the machine; drop what needs the change (swap, mTHP or hugetlb buffers, pressure, debugfs splits) from the mock run",
        )
    });
    // Root runs change shared state: one at a time, and never over a dead run's changes.
    // A mock run takes the lock too, so that it never reads a machine half set up by
    // another run.
    let _machine_lock = if crate::system::is_root() {
        let lock = crate::system::journal::MachineLock::acquire(!opts.no_wait)?;
        if opts.mock.is_none() {
            crate::system::recovery::check_leftovers(opts.cleanup_first)?;
        }
        Some(lock)
    } else {
        None
    };
    let sweeping = !w.sweep.is_empty();
    // Check every case's CPUs, layout and resources before measuring anything.
    for (label, _, case) in &cases {
        let threads = resolve_cpus(case)?.len();
        crate::system::preflight::check_case(case).with_context(|| {
            if sweeping {
                format!("sweep case {label}, checked before measuring any")
            } else {
                format!("workload `{}`, checked before measuring", w.name)
            }
        })?;
        let bs = case.bs.bytes() as usize;
        let shares = crate::buffer::sharing_problem(
            case.buffer,
            case.share,
            threads,
            bs,
            case.per_page_iovecs,
        );
        if let Some(why) = shares {
            let case = if sweeping {
                format!(" (sweep case {label})")
            } else {
                String::new()
            };
            bail!("workload `{}`{case}: {why}", w.name);
        }
    }
    let system = crate::system::probe::system_info();
    let path = result_path(opts, &system.kernel.release, &w.name);
    if let Some(out) = &opts.output {
        if std::fs::symlink_metadata(out).is_ok() {
            bail!(
                "-o {}: that file exists, and thpbench never overwrites a result; remove it or pick another name",
                out.display()
            );
        }
    }
    crate::util::check_writable_dir(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    let started_at = crate::util::utc_now_rfc3339();
    let mut workload = w.clone();
    if !w.sweep.contains_key("threads") {
        // The worker count actually used, not 0 ("every allowed CPU"): compare groups on it.
        workload.threads = resolve_cpus(w)?.len();
    }
    let mut findings = Findings::default();
    if !crate::system::is_root() {
        findings.unavailable(Unavailable::new(
            "exact folio sizes (kpageflags)",
            "not root: /proc/kpageflags is root-only and pagemap hides PFNs",
            "run as root; THP coverage is taken from smaps AnonHugePages instead",
        ));
    }
    if opts.baseline && w.disturb.is_empty() {
        crate::output::warn("--baseline compares a disturbed run with an undisturbed one, and this workload has no disturbers; ignoring it");
    }
    // Cases that differ only in fixed_buffers are measured together, on one target and
    // buffer, alternating within each repeat: their difference is the pin cost, and
    // drift between cases run one after the other would be part of it.
    let partners = pin_partners(&cases);
    let mut measured: Vec<Option<crate::result::SweepCase>> = vec![None; cases.len()];
    let mut plain = (Vec::new(), Vec::new());
    for (i, (label, params, _)) in cases.iter().enumerate() {
        if measured[i].is_some() || partners[..i].contains(&Some(i)) {
            continue;
        }
        let group: Vec<usize> = std::iter::once(i).chain(partners[i]).collect();
        if sweeping {
            let labels: Vec<&str> = group.iter().map(|&g| cases[g].0.as_str()).collect();
            crate::output::info(&format!(
                "sweep case {}{}",
                labels.join(" and "),
                if group.len() > 1 {
                    ", alternating within each repeat"
                } else {
                    ""
                }
            ));
        }
        let workloads: Vec<&Workload> = group.iter().map(|&g| &cases[g].2).collect();
        let (runs, baseline_runs) = match measure_workloads(&workloads, opts) {
            Ok((mut r, found)) => {
                findings.absorb(found);
                if r.len() > 1 {
                    // The partner's runs, in its own place among the cases.
                    let (runs, _) = r.pop().expect("two groups");
                    let j = group[1];
                    measured[j] = Some(crate::result::SweepCase {
                        label: cases[j].0.clone(),
                        params: cases[j].1.clone(),
                        runs,
                    });
                }
                r.pop().expect("one group")
            }
            Err(e) if e.is::<Interrupted>() => {
                findings.interrupted = true;
                findings.invalid(None, "interrupted during setup, before any measurement");
                break;
            }
            // Keep what earlier sweep cases measured: save it, marked invalid.
            Err(e) if measured.iter().any(Option::is_some) => {
                crate::output::warn(&format!(
                    "sweep case {label} failed: {e:#}; saving the cases measured before it"
                ));
                findings.invalid(None, format!("sweep case {label} failed: {e:#}"));
                break;
            }
            Err(e) => return Err(e),
        };
        if sweeping {
            measured[i] = Some(crate::result::SweepCase {
                label: label.clone(),
                params: params.clone(),
                runs,
            });
        } else {
            plain = (runs, baseline_runs);
        }
        if findings.interrupted {
            break;
        }
    }
    // Private cases cut their I/O as shared ones do only with per_page_iovecs (or when
    // bs is one chunk): elsewhere a ratio would mix the iovec count with sharing.
    let cut_as_shared = cases
        .iter()
        .map(|(label, _, c)| {
            let bs = c.bs.bytes() as usize;
            (
                label.clone(),
                crate::buffer::private_cut_as_shared(bs, c.per_page_iovecs),
            )
        })
        .collect();
    if w.engine == crate::workload::Engine::Gup || w.sweep.contains_key("engine") {
        if let Some(u) = crate::measure::gup_test::unavailable() {
            findings.unavailable(u);
        }
    }
    // Teardown ran inside measure_workloads: a signal that came after the last repeat
    // stopped nothing that was measured.
    let signal_in_teardown = crate::signals::received() && !findings.interrupted;
    let result = assemble::result(Parts {
        started_at,
        system,
        workload,
        mock: opts.mock.clone(),
        measured: if sweeping {
            Measured::Sweep(measured.into_iter().flatten().collect())
        } else {
            Measured::Plain {
                runs: plain.0,
                baseline_runs: plain.1,
            }
        },
        cut_as_shared,
        findings,
        signal_in_teardown,
    });
    let path = save_result(&result, &path, opts.output.is_none())?;
    Ok(Outcome { result, path })
}

/// For each case, the index of the case that differs from it only in `fixed_buffers`,
/// for the first of each such pair; None for the others.
fn pin_partners(cases: &[crate::workload::SweepCaseSpec]) -> Vec<Option<usize>> {
    let rest = |p: &crate::workload::SweepParams| {
        p.label_without(crate::workload::TypedSweepKey::FixedBuffers)
    };
    (0..cases.len())
        .map(|i| {
            let fixed = cases[i].1.fixed_buffers?;
            let j = (i + 1..cases.len()).find(|&j| {
                cases[j].1.fixed_buffers.is_some_and(|f| f != fixed)
                    && rest(&cases[j].1) == rest(&cases[i].1)
            })?;
            Some(j)
        })
        .collect()
}

/// Per workload, its runs and its baseline runs.
type RunsOf = (Vec<RunResult>, Vec<RunResult>);

/// Sets up for the first workload (one sweep case, or a pair that differs only in
/// fixed_buffers, which needs nothing else set up differently), measures the repeats of
/// each in turn within every repeat (the order alternating from repeat to repeat, and
/// with baseline runs when asked), and tears down. Returns the runs per workload, and
/// what setting up and every repeat found.
fn measure_workloads(ws: &[&Workload], opts: &RunOptions) -> Result<(Vec<RunsOf>, Findings)> {
    let w = ws[0];
    let selection = resolve_cpu_selection(w)?;
    let layout = crate::placement::Layout::new(&selection);
    let cpus = selection.cpus;
    let (rig, mut findings) = Setup::new(w, &cpus, layout, opts)?;
    let with_baseline = opts.baseline && !w.disturb.is_empty();
    let mut out: Vec<RunsOf> = vec![(Vec::new(), Vec::new()); ws.len()];
    'repeats: for index in 0..w.repeat {
        let order: Vec<usize> = if index % 2 == 0 {
            (0..ws.len()).collect()
        } else {
            (0..ws.len()).rev().collect()
        };
        for i in order {
            // Baseline and disturbed runs alternate, so that drift hits both alike.
            let roles: &[RunRole] = if with_baseline {
                &[RunRole::Baseline, RunRole::Measured]
            } else {
                &[RunRole::Measured]
            };
            for &role in roles {
                let repeat = Repeat {
                    rig: &rig,
                    w: ws[i],
                    index,
                    role,
                    opts,
                };
                let (run, found) = repeat.run()?;
                findings.absorb(found);
                let stop = run.interrupted;
                if role == RunRole::Baseline {
                    out[i].1.push(run);
                } else {
                    out[i].0.push(run);
                }
                if stop {
                    findings.interrupted = true;
                    break 'repeats;
                }
            }
        }
    }
    drop(rig);
    Ok((out, findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(params: &[(&str, &str)]) -> crate::workload::SweepCaseSpec {
        let p = params.iter().copied().collect();
        (String::new(), p, Workload::default())
    }

    #[test]
    fn cases_that_differ_only_in_fixed_buffers_are_measured_as_pairs() {
        let cases = [
            case(&[("bs", "4k"), ("fixed_buffers", "false")]),
            case(&[("bs", "10M"), ("fixed_buffers", "false")]),
            case(&[("bs", "4k"), ("fixed_buffers", "true")]),
            case(&[("bs", "10M"), ("fixed_buffers", "true")]),
            case(&[("bs", "64k"), ("fixed_buffers", "false")]),
            case(&[("bs", "64k")]),
        ];
        assert_eq!(
            pin_partners(&cases),
            [Some(2), Some(3), None, None, None, None]
        );
    }
}
