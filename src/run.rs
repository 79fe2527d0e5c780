//! Orchestration of `thpbench run`: plan, set up (target, buffers, swap), run each repeat
//! (pinned workers, disturbers, collectors), assemble the result, tear down. Teardown is
//! the guards' drops, in reverse order of setup, on success, error and Ctrl-C alike.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::buffer::IoBuffers;
use crate::engine::dio::DioEngine;
use crate::engine::Engine;
use crate::measure::histogram;
use crate::measure::now_ns;
use crate::result::{
    BenchResult, BufferReport, RunResult, ThreadResult, Unavailable, VerifyReport,
};
use crate::system::vmstat::Vmstat;
use crate::target::Target;
use crate::worker::{io_rates, run_worker, ProgressSlot, Rendezvous, WorkerOutput, WorkerPlan};
use crate::workload::{Backing, Workload};

/// The error that means "stopped by SIGINT/SIGTERM".
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

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
    /// Also measure the workload without its disturbers (`--baseline`).
    pub baseline: bool,
    /// Refuse instead of waiting while another run holds the machine lock.
    pub no_wait: bool,
    /// Undo a dead run's leftovers before starting (else refuse while they are there).
    pub cleanup_first: bool,
}

pub struct Outcome {
    pub result: BenchResult,
    pub path: PathBuf,
}

impl Outcome {
    /// 130 interrupted, 3 data mismatches, 4 invalid (a condition was not met), else 0.
    pub fn exit_code(&self) -> i32 {
        let r = &self.result;
        // A signal that came during teardown, after the result was complete, still
        // says the run was stopped.
        if r.interrupted || crate::signals::received() {
            130
        } else if r
            .runs
            .iter()
            .chain(&r.baseline_runs)
            .chain(r.sweep.iter().flat_map(|c| &c.runs))
            .any(|run| {
                run.verify.mismatches > 0
                    || run
                        .disturbers
                        .iter()
                        .any(|d| d.extra.get("child_saw_parent_data").is_some_and(|&n| n > 0))
            })
        {
            // Data went where it must not: into the wrong place for the parent, or into
            // a forked child's private copy.
            3
        } else if !r.valid {
            4
        } else {
            0
        }
    }
}

/// The CPUs to run workers on.
pub fn resolve_cpus(w: &Workload) -> Result<Vec<usize>> {
    let allowed = crate::system::cpu::allowed_cpus();
    if !w.cpus.is_empty() {
        let cpus = crate::units::parse_cpu_list(&w.cpus).map_err(anyhow::Error::msg)?;
        if let Some(bad) = cpus.iter().find(|c| !allowed.contains(c)) {
            bail!(
                "cpus = \"{}\": CPU {bad} is not online or not in this process's affinity mask (allowed: {})",
                w.cpus,
                crate::units::format_cpu_list(&allowed)
            );
        }
        return Ok(cpus);
    }
    match w.threads {
        0 => Ok(allowed),
        n if n <= allowed.len() => Ok(allowed[..n].to_vec()),
        n => bail!(
            "threads = {n} but only {} CPUs are available ({}); thpbench runs one pinned worker per CPU",
            allowed.len(),
            crate::units::format_cpu_list(&allowed)
        ),
    }
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

/// Saves the result: `-o` is written as asked; a generated name never overwrites (a
/// counter is added). If saving fails, the result goes to a fallback path in the temp
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
        crate::util::write_atomic(path, text.as_bytes()).map(|()| path.to_path_buf())
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
    if w.engine == crate::workload::Engine::Gup && w.verify {
        // vmsplice moves no data: there is nothing to check.
        crate::output::info("the gup engine reads no data, so verify is off");
        w.verify = false;
    }
    let w = &w;
    w.validate()
        .map_err(|e| anyhow::anyhow!("workload `{}`: {e}", w.name))?;
    let cases = crate::workload::sweep_cases(w)
        .map_err(|e| anyhow::anyhow!("workload `{}`: {e}", w.name))?;
    crate::signals::install();
    // Root runs change shared state: one at a time, and never over a dead run's changes.
    let _machine_lock = if crate::system::is_root() {
        let lock = crate::system::journal::MachineLock::acquire(!opts.no_wait)?;
        crate::system::journal::check_leftovers(opts.cleanup_first)?;
        Some(lock)
    } else {
        None
    };
    let sweeping = !w.sweep.is_empty();
    // Check every case's CPUs, layout and resources before measuring anything.
    for (label, _, case) in &cases {
        let threads = resolve_cpus(case)?.len();
        crate::system::preflight::check_case(case)
            .with_context(|| format!("sweep case {label}, checked before measuring any"))?;
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
    crate::util::check_writable_dir(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    let mut result = BenchResult::new(system, w.clone());
    if !w.sweep.contains_key("threads") {
        // The worker count actually used, not 0 ("every allowed CPU"): compare groups on it.
        result.workload.threads = resolve_cpus(w)?.len();
    }
    if !crate::system::is_root() {
        result.unavailable.push(Unavailable::new(
            "exact folio sizes (kpageflags)",
            "not root: /proc/kpageflags is root-only and pagemap hides PFNs",
            "run as root; THP coverage is taken from smaps AnonHugePages instead",
        ));
    }
    if opts.baseline && w.disturb.is_empty() {
        crate::output::warn("--baseline compares a disturbed run with an undisturbed one, and this workload has no disturbers; ignoring it");
    }
    for (label, params, case) in &cases {
        if sweeping {
            crate::output::info(&format!("sweep case {label}"));
        }
        let (runs, baseline_runs) = match measure_workload(case, opts, &mut result) {
            Ok(r) => r,
            Err(e) if e.is::<Interrupted>() => {
                result.interrupted = true;
                result
                    .invalid_reasons
                    .push("interrupted during setup, before any measurement".into());
                break;
            }
            // Keep what earlier sweep cases measured: save it, marked invalid.
            Err(e) if !result.sweep.is_empty() => {
                crate::output::warn(&format!(
                    "sweep case {label} failed: {e:#}; saving the cases measured before it"
                ));
                result
                    .invalid_reasons
                    .push(format!("sweep case {label} failed: {e:#}"));
                break;
            }
            Err(e) => return Err(e),
        };
        if sweeping {
            result.sweep.push(crate::result::SweepCase {
                label: label.clone(),
                params: params.clone(),
                runs,
            });
        } else {
            result.runs = runs;
            result.baseline_runs = baseline_runs;
        }
        if result.interrupted {
            break;
        }
    }
    // Private cases cut their I/O as shared ones do only with per_page_iovecs (or when
    // bs is one chunk): elsewhere a ratio would mix the iovec count with sharing.
    let same_iovecs: std::collections::BTreeMap<&str, bool> = cases
        .iter()
        .map(|(label, _, c)| {
            let bs = c.bs.bytes() as usize;
            (
                label.as_str(),
                crate::buffer::private_cut_as_shared(bs, c.per_page_iovecs),
            )
        })
        .collect();
    result.shared_folio = shared_folio_ratios(&result.sweep, |c| {
        same_iovecs.get(c.label.as_str()).copied().unwrap_or(false)
    });
    result.pin_cost = crate::measure::pin_cost::pin_costs(&result.sweep, w.bs.bytes());
    if w.engine == crate::workload::Engine::Gup || w.sweep.contains_key("engine") {
        if let Some(u) = crate::measure::gup_test::unavailable() {
            result.unavailable.push(u);
        }
    }
    finalize_validity(&mut result);
    let path = save_result(&result, &path, opts.output.is_none())?;
    Ok(Outcome { result, path })
}

/// Buffer slots per worker: uring keeps `iodepth` I/Os in flight, each in its own slot.
fn slots_per_worker(w: &Workload) -> usize {
    if w.engine == crate::workload::Engine::Uring {
        w.iodepth as usize
    } else {
        1
    }
}

/// Sets up for one workload (one sweep case), measures its repeats (alternating with
/// baseline runs when asked), and tears down. Returns (runs, baseline runs).
fn measure_workload(
    w: &Workload,
    opts: &RunOptions,
    result: &mut BenchResult,
) -> Result<(Vec<RunResult>, Vec<RunResult>)> {
    let cpus = resolve_cpus(w)?;
    let setup = Setup::new(w, &cpus, opts, result)?;
    let with_baseline = opts.baseline && !w.disturb.is_empty();
    let (mut runs, mut baseline_runs) = (Vec::new(), Vec::new());
    'repeats: for repeat in 0..w.repeat {
        // Baseline and disturbed runs alternate, so that drift hits both alike.
        let kinds: &[bool] = if with_baseline {
            &[false, true]
        } else {
            &[true]
        };
        for &disturbed in kinds {
            let run = setup.measure(w, repeat, disturbed, opts, result)?;
            let stop = run.interrupted;
            if disturbed {
                runs.push(run);
            } else {
                baseline_runs.push(run);
            }
            if stop {
                result.interrupted = true;
                break 'repeats;
            }
        }
    }
    drop(setup);
    Ok((runs, baseline_runs))
}

fn finalize_validity(result: &mut BenchResult) {
    if result.interrupted {
        result
            .invalid_reasons
            .push("interrupted by a signal: the runs are partial".into());
    }
    for run in result
        .runs
        .iter()
        .chain(result.sweep.iter().flat_map(|c| &c.runs))
    {
        if run.ops == 0 && !run.interrupted {
            result
                .invalid_reasons
                .push(format!("run {} completed no operation", run.repeat));
        }
    }
    result.valid = result.invalid_reasons.is_empty();
}

/// What lives for the whole invocation. Field order is teardown order: buffers (and
/// their knob guards) go first, freeing their swap slots, then swap is turned off and
/// removed, then the target is closed and removed.
struct Setup {
    buffers: IoBuffers,
    disturbers: Vec<crate::disturb::Planned>,
    region: crate::disturb::Region,
    _cgroup: Option<crate::system::cgroup::MemCgroup>,
    _debugfs: Option<crate::system::mounts::MountGuard>,
    _swap: Option<crate::system::swap::SwapGuard>,
    /// None for engines that do no device I/O (gup).
    target: Option<Target>,
    cpus: Vec<usize>,
    /// Per worker, the generation of each block it owns (see WorkerPlan::generations);
    /// kept across repeats, since the target is filled once.
    generations: std::sync::Mutex<Vec<Vec<u32>>>,
}

impl Setup {
    fn new(
        w: &Workload,
        cpus: &[usize],
        opts: &RunOptions,
        result: &mut BenchResult,
    ) -> Result<Setup> {
        let stop = || crate::signals::received();
        let target = if w.engine == crate::workload::Engine::Gup {
            None
        } else {
            let target = Target::setup(w, &stop)?;
            if w.verify && target.stamped.is_none() {
                bail!(
                    "--verify needs a target holding thpbench's pattern, and {} was not written",
                    target.path.display()
                );
            }
            if target.size < w.bs.bytes() {
                bail!(
                    "target {} holds {} bytes, less than bs = {}",
                    target.path.display(),
                    target.size,
                    w.bs
                );
            }
            if let Some(off) = opts.inject_corruption_at {
                target.corrupt(off.min(target.size - 4096), 4096)?;
            }
            Some(target)
        };
        // The memory cgroup comes before the buffers, so that they are charged to it.
        let wants_cgroup = w
            .disturb
            .iter()
            .any(|d| d.kind == crate::workload::DisturbKind::Pressure);
        let cgroup = if wants_cgroup && crate::system::cgroup::unavailable_reason().is_none() {
            Some(crate::system::cgroup::MemCgroup::create()?)
        } else {
            None
        };
        let buffers = IoBuffers::new(
            w.buffer,
            w.share,
            // uring: one set of segments per I/O in flight (worker i has slots
            // i*iodepth..(i+1)*iodepth).
            cpus.len() * slots_per_worker(w),
            w.bs.bytes() as usize,
            w.per_page_iovecs,
        )?;
        if stop() {
            bail!(Interrupted);
        }
        let cov = buffers.coverage()?;
        if cov.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
            let msg = coverage_complaint(w, cov.fraction, "after prefault");
            if !w.allow_fallback {
                bail!("{msg}; pass --allow-fallback to measure anyway (the result is then marked invalid)");
            }
            result.invalid_reasons.push(msg);
        }
        let swap = match &w.swap {
            Some(spec) => Some(crate::system::swap::SwapGuard::setup(
                &crate::system::swap::SwapSpec::parse(spec).map_err(anyhow::Error::msg)?,
            )?),
            None => None,
        };
        let swap_ready = swap.is_some() || !crate::system::swap::active_swaps().is_empty();
        let wants_debugfs = w
            .disturb
            .iter()
            .any(|d| d.method == Some(crate::workload::SplitMethod::Debugfs));
        let debugfs = if wants_debugfs && crate::system::is_root() {
            crate::system::mounts::MountGuard::ensure("debugfs", crate::system::mounts::DEBUGFS)
                .ok()
        } else {
            None
        };
        let region = crate::disturb::Region::of(&buffers);
        let disturbers = crate::disturb::plan(
            w,
            &region,
            cpus,
            swap_ready,
            cgroup.as_ref(),
            &mut result.unavailable,
        )?;
        let generations = block_generations(w, target.as_ref(), cpus.len())?;
        Ok(Setup {
            buffers,
            disturbers,
            region,
            _cgroup: cgroup,
            _debugfs: debugfs,
            _swap: swap,
            target,
            cpus: cpus.to_vec(),
            generations: std::sync::Mutex::new(generations),
        })
    }

    /// Worker `i`'s slots' segments for a queued engine; empty for the others.
    fn worker_slots(&self, w: &Workload, i: usize) -> Vec<Vec<crate::buffer::Segment>> {
        if w.engine != crate::workload::Engine::Uring {
            return Vec::new();
        }
        let n = slots_per_worker(w);
        self.buffers.segments[i * n..(i + 1) * n].to_vec()
    }

    fn measure(
        &self,
        w: &Workload,
        repeat: usize,
        disturbed: bool,
        opts: &RunOptions,
        result: &mut BenchResult,
    ) -> Result<RunResult> {
        let n = self.cpus.len();
        let rv = Arc::new(Rendezvous::new(n));
        // gup has no device: every op "reads" offset 0, which it ignores.
        let region = self
            .target
            .as_ref()
            .map_or(w.bs.bytes(), |t| t.size - t.size % w.bs.bytes());
        let share = |total: Option<u64>, i: usize| {
            total.map(|t| t / n as u64 + u64::from((i as u64) < t % n as u64))
        };
        let slots: Vec<Arc<ProgressSlot>> =
            (0..n).map(|_| Arc::new(ProgressSlot::default())).collect();
        let mut handles = Vec::with_capacity(n);
        for (i, &cpu) in self.cpus.iter().enumerate() {
            let plan = WorkerPlan {
                index: i,
                threads: n,
                cpu,
                rw: w.rw,
                rwmix_read: w.rwmix_read,
                bs: w.bs.bytes(),
                region,
                seed: w.seed,
                nonce: self.target.as_ref().and_then(|t| t.stamped).unwrap_or(0),
                verify: w.verify,
                generations: std::mem::take(
                    self.generations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(i)
                        .unwrap_or(&mut Vec::new()),
                ),
                base: self.buffers.base() as usize,
                segments: self.buffers.segments[i * slots_per_worker(w)].clone(),
                warmup_ns: w.warmup.as_nanos(),
                duration_ns: w.duration.as_nanos(),
                ops_budget: share(w.ops, i),
                bytes_budget: share(w.bytes.map(|b| b.bytes()), i).map(|b| b.max(w.bs.bytes())),
                perf: w.perf,
                slots: self.worker_slots(w, i),
            };
            let mut engine: Box<dyn Engine> = match &self.target {
                Some(t) if w.engine == crate::workload::Engine::Uring => {
                    let iov = (0..plan.slots.len())
                        .map(|s| self.buffers.iovecs(i * plan.slots.len() + s))
                        .collect();
                    Box::new(
                        crate::engine::uring::UringEngine::new(
                            t.fd(),
                            iov,
                            w.fixed_buffers,
                            w.perf,
                        )
                        .with_context(|| {
                            format!("setting up io_uring for the worker on CPU {cpu}")
                        })?,
                    )
                }
                Some(t) => Box::new(DioEngine::new(t.fd())),
                None => Box::new(
                    crate::engine::gup::GupEngine::new(w.bs.bytes() as usize)
                        .context("making the pipe for the gup engine")?,
                ),
            };
            if let (Some(nth), 0) = (opts.drop_write, i) {
                engine = Box::new(crate::engine::DropNthWrite {
                    inner: engine,
                    nth,
                    writes: 0,
                });
            }
            let (rv, slot) = (Arc::clone(&rv), Arc::clone(&slots[i]));
            handles.push(
                std::thread::Builder::new()
                    .name(format!("thpbench-w{cpu}"))
                    .spawn(move || run_worker(plan, engine, rv, slot))
                    .context("spawning a worker thread")?,
            );
        }
        rv.pinned.wait();
        rv.warmed.wait();
        // Every measured run, disturbed or baseline, starts from whole folios of the
        // asked size, or is not evidence.
        let restore_notes = crate::disturb::restore(&self.buffers, MIN_COVERAGE);
        // Between warm-up and measurement: the "before" side of every proof.
        let cov_before = self.buffers.coverage()?;
        let run_name = if disturbed || w.disturb.is_empty() {
            format!("run {repeat}")
        } else {
            format!("baseline run {repeat}")
        };
        if cov_before.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
            let mut why = coverage_complaint(w, cov_before.fraction, "at its start");
            for note in &restore_notes {
                why.push_str("; ");
                why.push_str(note);
            }
            result.invalid_reasons.push(format!("{run_name}: {why}"));
        }
        let vm_before = Vmstat::snapshot().context("reading /proc/vmstat")?;
        let tracer = if w.lock_contention {
            match crate::measure::lockstat::LockTracer::start() {
                Ok(t) => Some(t),
                Err(reason) => {
                    let u = crate::measure::lockstat::unavailable(&reason);
                    if !result.unavailable.contains(&u) {
                        result.unavailable.push(u);
                    }
                    None
                }
            }
        } else {
            None
        };
        let gup_slow = w
            .lock_contention
            .then(crate::measure::gup_slow::GupSlowTracer::start);
        let epoch = now_ns();
        rv.epoch_ns.store(epoch, Ordering::Relaxed);
        rv.go.wait();
        let disturbance = (disturbed && !self.disturbers.is_empty())
            .then(|| crate::disturb::Disturbance::start(&self.disturbers, &self.region, epoch));

        let progress = opts
            .progress
            .then(|| crate::output::progress::RunProgress::new(w, repeat));
        let mut interrupted = false;
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            if crate::signals::received() && !interrupted {
                interrupted = true;
                rv.stop.store(true, Ordering::Relaxed);
            }
            if let Some(p) = &progress {
                p.update(&slots, now_ns() - epoch);
            }
        }
        if let Some(p) = progress {
            p.finish();
        }
        let mut outputs: Vec<WorkerOutput> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a worker thread panicked"))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let disturbed_run = disturbance.is_some();
        let window_end = outputs.iter().map(|o| o.end_ns).max().unwrap_or(epoch);
        let lock_report = tracer.map(|t| t.stop(epoch, window_end));
        let measured_ops: u64 = outputs.iter().map(|o| o.recorder.ops).sum();
        let gup_slow_path = gup_slow.map(|t| match t {
            Ok(t) => t.stop(measured_ops),
            Err(reason) => crate::measure::gup_slow::GupSlowPath::unavailable(reason),
        });
        let disturber_outputs = disturbance.map(|d| d.stop()).unwrap_or_default();
        let vm_after = Vmstat::snapshot().context("reading /proc/vmstat")?;
        let cov_after = self.buffers.coverage()?;
        {
            let mut kept = self.generations.lock().unwrap_or_else(|e| e.into_inner());
            for (i, o) in outputs.iter_mut().enumerate() {
                if let Some(g) = kept.get_mut(i) {
                    *g = std::mem::take(&mut o.generations);
                }
            }
        }
        let errors = std::mem::take(&mut *rv.errors.lock().unwrap_or_else(|e| e.into_inner()));
        if !errors.is_empty() && !interrupted {
            bail!("{}", errors.join("\n"));
        }
        let end = outputs
            .iter()
            .map(|o| o.end_ns)
            .max()
            .unwrap_or(epoch)
            .max(epoch + 1);
        let duration_ns = end - epoch;
        let recorders: Vec<&histogram::Recorder> = outputs.iter().map(|o| &o.recorder).collect();
        let merged = histogram::merge(&recorders);
        let ops: u64 = outputs.iter().map(|o| o.recorder.ops).sum();
        let bytes: u64 = outputs.iter().map(|o| o.recorder.bytes).sum();
        // Undisturbed runs must also end as they started; disturbed ones split on purpose.
        if !disturbed_run && cov_after.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
            let why = coverage_complaint(w, cov_after.fraction, "at its end");
            result.invalid_reasons.push(format!("{run_name}: {why}"));
        }
        let mut verify = VerifyReport {
            enabled: w.verify,
            nonce: self.target.as_ref().and_then(|t| t.stamped).unwrap_or(0),
            ..VerifyReport::default()
        };
        for o in &outputs {
            verify.bytes_checked += o.bytes_checked;
            verify.mismatches += o.mismatches;
            verify
                .first_mismatches
                .extend(o.first_mismatches.iter().cloned());
        }
        verify.first_mismatches.sort_by_key(|m| m.t_ms);
        verify.first_mismatches.truncate(16);
        if let Some(why) = corrupted_data_reason(&verify) {
            let kind = if disturbed { "run" } else { "baseline run" };
            result
                .invalid_reasons
                .push(format!("{kind} {repeat}: {why}"));
        }
        let vmstat_delta = vm_after.delta_since(&vm_before);
        let mut timeline = merged.timeline;
        let zswap = crate::system::swap::zswap_enabled();
        let disturbers: Vec<crate::result::DisturberReport> = disturber_outputs
            .iter()
            .map(|o| {
                let mut report = o.report(&vmstat_delta, w.buffer, zswap);
                if w.fixed_buffers {
                    // Registered buffers are pinned long-term: what the pin stops is
                    // recorded as defeated, not as a broken run.
                    crate::disturb::pinned::mark_defeated_by_pin(
                        o.spec.kind,
                        &mut report,
                        &vmstat_delta,
                    );
                }
                report
            })
            .collect();
        for (o, report) in disturber_outputs.iter().zip(&disturbers) {
            attribute_actions(
                &report.name,
                &o.action_times,
                &mut timeline,
                &mut verify.first_mismatches,
            );
            // Confirmed actions on the buffer prove a disturbance where they can be seen;
            // the system-wide counters then only support it.
            if report.actions > 0
                && report.confirmed == Some(0)
                && !report.defeated_by_pin
                && !interrupted
            {
                result.invalid_reasons.push(format!(
                    "run {repeat}: disturber {} acted {} times but none of its actions changed the folio of the page it acted on (pagemap + kpageflags before and after each){}",
                    report.name,
                    report.actions,
                    if report.counters_moved { "; the system-wide vmstat counters moved, from other activity" } else { "" }
                ));
            } else if report.actions > 0
                && report.confirmed.is_none()
                && !report.counters_moved
                && !report.defeated_by_pin
                && !interrupted
            {
                result.invalid_reasons.push(format!(
                    "run {repeat}: disturber {} acted {} times but the vmstat counters that prove it did not all move: none of {} moved",
                    report.name,
                    report.actions,
                    report.counters_not_moved.join(", nor ")
                ));
            }
            if report.actions == 0 && !interrupted {
                result.invalid_reasons.push(format!(
                    "run {repeat}: disturber {} never acted ({} errors, last: {})",
                    report.name,
                    report.errors,
                    report.last_error.as_deref().unwrap_or("none")
                ));
            }
            // The fork disturber's children report through `extra`.
            for why in crate::disturb::fork::invalid_reasons(&report.extra, w.buffer, interrupted) {
                result.invalid_reasons.push(format!("run {repeat}: {why}"));
            }
        }
        Ok(RunResult {
            repeat,
            duration_ns,
            ops,
            bytes,
            ops_per_sec: io_rates(&outputs).0,
            bytes_per_sec: io_rates(&outputs).1,
            io_time_ns: outputs.iter().map(|o| o.io_ns).sum(),
            verify_time_ns: outputs.iter().map(|o| o.verify_ns).sum(),
            latency_ns: histogram::summarize(&merged.total),
            histogram: histogram::encode_compressed(&merged.total),
            interval_histograms: merged.intervals,
            timeline,
            disturbers,
            gup: gup_value(
                &outputs,
                w,
                ops,
                histogram::summarize(&merged.total).mean,
                repeat,
                result,
            )
            .map(|mut g| {
                // The kernel's own figure on the same buffer, now that the workers
                // are done with it.
                let kernel = crate::measure::gup_test::run(
                    self.buffers.base() as usize,
                    self.buffers.len(),
                    (w.bs.bytes() / 4096).max(1) as u32,
                );
                g["kernel"] = serde_json::to_value(kernel).unwrap_or_default();
                g
            }),
            perf: perf_value(&outputs, result),
            gup_slow_path,
            io_uring: crate::measure::uring_punts::merge(
                &outputs
                    .iter()
                    .filter_map(|o| o.engine_figures.clone())
                    .collect::<Vec<_>>(),
            ),
            target: self.target.as_ref().map(Target::report),
            lock_contention: match lock_report {
                Some(r) => Some(serde_json::to_value(r)?),
                None if w.lock_contention => Some(serde_json::json!({
                    "available": false,
                    "reason": result.unavailable.iter().find(|u| u.what.starts_with("lock contention")).map_or("", |u| u.reason.as_str()),
                })),
                None => None,
            },
            threads: outputs
                .iter()
                .map(|o| ThreadResult {
                    cpu: o.cpu,
                    ops: o.recorder.ops,
                    bytes: o.recorder.bytes,
                    io_time_ns: o.io_ns,
                    verify_time_ns: o.verify_ns,
                    latency_ns: histogram::summarize(&o.recorder.total),
                })
                .collect(),
            buffer: BufferReport {
                backing: w.buffer.to_string(),
                share: w.share.to_string(),
                bytes: self.buffers.len() as u64,
                folio_bytes: self.buffers.folio_bytes,
                thp_coverage_before: cov_before.fraction,
                thp_coverage_after: cov_after.fraction,
                coverage_method: cov_before.method.to_string(),
            },
            vmstat_delta,
            verify,
            interrupted,
        })
    }
}

/// The gup engine's figures for one run: pages referenced (checked against what was
/// vmspliced), ns per op and per page.
fn gup_value(
    outputs: &[WorkerOutput],
    w: &Workload,
    ops: u64,
    mean_ns: f64,
    repeat: usize,
    result: &mut BenchResult,
) -> Option<serde_json::Value> {
    let pages: u64 = outputs
        .iter()
        .map(|o| o.pages_referenced)
        .sum::<Option<u64>>()?;
    let pages_per_op = w.bs.bytes() / 4096;
    let expected = ops * pages_per_op;
    if pages != expected {
        result.invalid_reasons.push(format!(
            "run {repeat}: the gup engine referenced {pages} pages, but {ops} ops of {} should reference {expected}",
            w.bs
        ));
    }
    Some(serde_json::json!({
        "engine": "gup",
        "figure": "vmsplice page references",
        "pages_referenced": pages,
        "pages_expected": expected,
        "pages_per_op": pages_per_op,
        "ns_per_op": mean_ns,
        "ns_per_page": mean_ns / pages_per_op as f64,
    }))
}

/// For every pair of sweep cases that differ only in `share`, and whose private case
/// cuts its I/O into the same iovecs as the shared one (`same_iovecs`): the latency per
/// op with all threads on the same folios over the latency with private folios, the
/// mean of the per-repeat ratios (paired by index) with its 95% confidence interval.
pub fn shared_folio_ratios(
    sweep: &[crate::result::SweepCase],
    same_iovecs: impl Fn(&crate::result::SweepCase) -> bool,
) -> Vec<crate::result::SharedFolioRatio> {
    let rest = |c: &crate::result::SweepCase| {
        c.params
            .iter()
            .filter(|(k, _)| k.as_str() != "share")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mean_lat = |runs: &[RunResult]| {
        runs.iter().map(|r| r.latency_ns.mean).sum::<f64>() / runs.len().max(1) as f64
    };
    let mut out = Vec::new();
    for private in sweep
        .iter()
        .filter(|c| c.params.get("share").map(String::as_str) == Some("private"))
    {
        let label = rest(private);
        let Some(shared) = sweep.iter().find(|c| {
            c.params.get("share").map(String::as_str) == Some("shared") && rest(c) == label
        }) else {
            continue;
        };
        if !same_iovecs(private) {
            continue;
        }
        let (p, sh) = (mean_lat(&private.runs), mean_lat(&shared.runs));
        if p <= 0.0 || private.runs.is_empty() || shared.runs.is_empty() {
            continue;
        }
        let paired: Vec<f64> = private
            .runs
            .iter()
            .zip(&shared.runs)
            .filter(|(a, _)| a.latency_ns.mean > 0.0)
            .map(|(a, b)| b.latency_ns.mean / a.latency_ns.mean)
            .collect();
        // The point and its interval from the same estimator: the mean of the paired
        // ratios (a ratio of the means would not lie at the interval's centre).
        let Some(estimate) = crate::stats::estimate(&paired) else {
            continue;
        };
        let ci95 = estimate
            .ci95
            .map(|h| [estimate.mean - h, estimate.mean + h]);
        out.push(crate::result::SharedFolioRatio {
            label,
            private_ns_per_op: p,
            shared_ns_per_op: sh,
            ratio: estimate.mean,
            ci95,
            repeats: paired.len(),
        });
    }
    out
}

/// The per-thread perf counters as the result stores them ({"cpu<N>": {counter: value}}),
/// recording counters that could not be opened as unavailable (once).
fn perf_value(outputs: &[WorkerOutput], result: &mut BenchResult) -> Option<serde_json::Value> {
    let mut threads = serde_json::Map::new();
    for o in outputs {
        let Some((values, counters)) = &o.perf else {
            continue;
        };
        threads.insert(format!("cpu{}", o.cpu), serde_json::to_value(values).ok()?);
        for (name, why) in &counters.unavailable {
            let u = Unavailable::new(
                format!("perf counter {name}"),
                why.clone(),
                if crate::measure::perfcount::is_hardware(name) {
                    "run on bare metal or in a VM with a virtual PMU for hardware counters"
                } else {
                    "lower /proc/sys/kernel/perf_event_paranoid or run as root"
                },
            );
            if !result.unavailable.contains(&u) {
                result.unavailable.push(u);
            }
        }
        if !counters.kernel_included {
            let u = Unavailable::new(
                "kernel-mode perf counts",
                "perf_event_paranoid > 1 and not root: counters exclude kernel mode",
                "run as root or set /proc/sys/kernel/perf_event_paranoid to 1",
            );
            if !result.unavailable.contains(&u) {
                result.unavailable.push(u);
            }
        }
    }
    (!threads.is_empty()).then_some(serde_json::Value::Object(threads))
}

/// Counts a disturber's actions into the 100 ms timeline and into the interval of each
/// mismatch, so that spikes and corruption line up with what caused them.
fn attribute_actions(
    name: &str,
    times_ns: &[u64],
    timeline: &mut [crate::result::TimelinePoint],
    mismatches: &mut [crate::result::Mismatch],
) {
    let tick_ms = histogram::TICK_NS / 1_000_000;
    for &t in times_ns {
        let t_ms = t / 1_000_000 / tick_ms * tick_ms;
        if let Ok(i) = timeline.binary_search_by_key(&t_ms, |p| p.t_ms) {
            *timeline[i]
                .disturb_actions
                .entry(name.to_string())
                .or_default() += 1;
        }
        for m in mismatches.iter_mut() {
            if m.t_ms / tick_ms == t_ms / tick_ms {
                *m.disturb_actions.entry(name.to_string()).or_default() += 1;
            }
        }
    }
}

/// The block generation tables the workers start from: when the workload writes with
/// verify on, each worker owns every n-th block of the region (so that it alone knows
/// which generation a block holds) and one u32 per owned block, all at 0 (the fill).
fn block_generations(
    w: &Workload,
    target: Option<&Target>,
    workers: usize,
) -> Result<Vec<Vec<u32>>> {
    let writes = !matches!(
        w.rw,
        crate::workload::Rw::Read | crate::workload::Rw::RandRead
    );
    let Some(t) = target.filter(|_| w.verify && writes) else {
        return Ok(vec![Vec::new(); workers]);
    };
    let blocks = t.size / w.bs.bytes();
    if blocks < workers as u64 {
        bail!(
            "rw = {:?} with verify: each of the {workers} workers writes blocks of its own, but the target {} holds only {blocks} blocks of {}; raise size, lower bs or threads",
            w.rw,
            t.path.display(),
            w.bs
        );
    }
    Ok((0..workers as u64)
        .map(|i| vec![0u32; ((blocks - i).div_ceil(workers as u64)) as usize])
        .collect())
}

/// Why a run whose reads did not all verify is not evidence: its rate and latency
/// describe I/O that lost data.
fn corrupted_data_reason(verify: &VerifyReport) -> Option<String> {
    if verify.mismatches == 0 {
        return None;
    }
    let first = verify.first_mismatches.first().map_or_else(
        || " (no details were recorded: a bug in thpbench, please report it)".to_string(),
        |m| {
            format!(
                ", the first at target offset {} on CPU {} at {} ms",
                m.offset, m.thread_cpu, m.t_ms
            )
        },
    );
    Some(format!(
        "verify found {} mismatched sectors{first}: corrupted data is not evidence",
        verify.mismatches
    ))
}

fn coverage_complaint(w: &Workload, fraction: f64, when: &str) -> String {
    let knob = match w.buffer {
        Backing::Thp => format!(
            "/sys/kernel/mm/transparent_hugepage/enabled is `{}` and defrag is `{}`; with too little free contiguous memory the kernel falls back to 4 KiB pages (try defrag = madvise, echo 1 > /proc/sys/vm/compact_memory)",
            crate::system::thp::info().enabled,
            crate::system::thp::info().defrag
        ),
        Backing::Mthp(sz) => format!("check /sys/kernel/mm/transparent_hugepage/hugepages-{}kB/enabled", sz / 1024),
        Backing::Hugetlb => "check /proc/sys/vm/nr_hugepages".into(),
        Backing::Base => String::new(),
    };
    format!(
        "only {:.1}% of the {} buffer is backed as asked {when} (need {:.0}%): {knob}",
        fraction * 100.0,
        w.buffer,
        MIN_COVERAGE * 100.0
    )
}

/// Default results directory: `results/` under the current directory.
pub fn default_results_dir() -> PathBuf {
    Path::new("results").to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::SweepCase;

    fn case(label: &str, share: &str, means: &[f64]) -> SweepCase {
        SweepCase {
            label: label.into(),
            params: [("share", share), ("threads", "2")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            runs: means
                .iter()
                .map(|&mean| RunResult {
                    latency_ns: crate::result::LatencySummary {
                        mean,
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn the_shared_folio_ratio_is_the_estimate_its_interval_belongs_to() {
        // Paired ratios 2, 1, 1.5: their mean is 1.5; the ratio of the means would be
        // 420/300 = 1.4, away from the interval's centre.
        let sweep = [
            case("p", "private", &[100.0, 100.0, 100.0]),
            case("s", "shared", &[200.0, 100.0, 150.0]),
        ];
        let r = shared_folio_ratios(&sweep, |_| true);
        assert_eq!(r.len(), 1);
        assert!((r[0].ratio - 1.5).abs() < 1e-12, "{:?}", r[0]);
        let [lo, hi] = r[0].ci95.unwrap();
        assert!(((lo + hi) / 2.0 - r[0].ratio).abs() < 1e-12, "{:?}", r[0]);
        assert_eq!(r[0].repeats, 3);
    }

    #[test]
    fn no_shared_folio_ratio_where_the_iovecs_differ_too() {
        let sweep = [
            case("p", "private", &[100.0]),
            case("s", "shared", &[200.0]),
        ];
        assert!(shared_folio_ratios(&sweep, |_| false).is_empty());
        // 2 MiB in one iovec privately, in 512 when shared: not sharing alone.
        assert!(!crate::buffer::private_cut_as_shared(2 << 20, false));
        assert!(crate::buffer::private_cut_as_shared(2 << 20, true));
        assert!(crate::buffer::private_cut_as_shared(4096, false));
    }
}
