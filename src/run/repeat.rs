//! One repeat: spawn the pinned workers, start the disturbers and collectors, wait,
//! collect, and assemble the run's figures.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::rig::Setup;
use super::validity::{
    corrupted_data_reason, coverage_complaint, disturber_reasons, final_pass_reason, stall_reason,
};
use super::{RunOptions, MIN_COVERAGE};
use crate::disturb::DisturberOutput;
use crate::engine::dio::DioEngine;
use crate::engine::Engine;
use crate::measure::histogram;
use crate::measure::now_ns;
use crate::measure::stall;
use crate::result::{BenchResult, BufferReport, LockReport, RunResult, ThreadResult, VerifyReport};
use crate::system::pagemap::Coverage;
use crate::system::vmstat::Vmstat;
use crate::target::Target;
use crate::worker::{io_rates, run_worker, ProgressSlot, Rendezvous, WorkerOutput, WorkerPlan};
use crate::workload::{Backing, Workload};

/// The workers of one repeat, pinned and warming up.
struct Spawned {
    rv: Arc<Rendezvous>,
    slots: Vec<Arc<ProgressSlot>>,
    handles: Vec<JoinHandle<Option<WorkerOutput>>>,
}

/// How invalid reasons name a repeat: "run N", or "baseline run N" for the
/// undisturbed runs measured beside disturbed ones (`--baseline`).
fn run_name(repeat: usize, disturbed: bool) -> String {
    let role = if disturbed {
        crate::result::RunRole::Measured
    } else {
        crate::result::RunRole::Baseline
    };
    role.run_name(repeat)
}

/// What one repeat left once its workers, disturbers and collectors stopped.
struct Collected {
    outputs: Vec<WorkerOutput>,
    epoch: u64,
    interrupted: bool,
    cov_before: Coverage,
    cov_after: Coverage,
    vmstat_delta: BTreeMap<String, i64>,
    disturber_outputs: Vec<DisturberOutput>,
    lock_report: Option<LockReport>,
    gup_slow_path: Option<crate::result::GupSlowPath>,
    numa_before: NumaLocality,
    numa_after: NumaLocality,
    /// The main thread's late wakes and the system's suspends over the wait.
    watch: stall::Watch,
    final_pass: Option<crate::result::FinalVerify>,
    host_activity: Option<crate::result::HostActivity>,
}

/// How long the main thread sleeps between looks at the workers.
const WAIT_NS: u64 = 50_000_000;

/// Per worker, the share of its buffer on its own node; the buffer's pages per node.
type NumaLocality = (Vec<Option<f64>>, BTreeMap<String, u64>);

impl Setup {
    /// One repeat: spawn, drive, assemble.
    pub(super) fn measure(
        &self,
        w: &Workload,
        repeat: usize,
        disturbed: bool,
        opts: &RunOptions,
        result: &mut BenchResult,
    ) -> Result<RunResult> {
        let spawned = self.spawn_workers(w, opts)?;
        let collected = self.drive(w, repeat, disturbed, opts, spawned, result)?;
        self.assemble(w, repeat, disturbed, opts.keep_stalled, collected, result)
    }

    /// Worker `i`'s slots' segments for a queued engine; empty for the others.
    fn worker_slots(&self, w: &Workload, i: usize) -> Vec<Vec<crate::buffer::Segment>> {
        if w.engine != crate::workload::Engine::Uring {
            return Vec::new();
        }
        let n = w.slots_per_worker();
        self.buffers.segments[i * n..(i + 1) * n].to_vec()
    }

    /// One pinned worker per CPU, each with its plan and engine.
    fn spawn_workers(&self, w: &Workload, opts: &RunOptions) -> Result<Spawned> {
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
                verify_level: w.verify_level,
                page: crate::pages::base_page(),
                generations: std::mem::take(
                    self.generations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(i)
                        .unwrap_or(&mut Vec::new()),
                ),
                base: self.buffers.base() as usize,
                segments: self.buffers.segments[i * w.slots_per_worker()].clone(),
                warmup_ns: w.warmup.as_nanos(),
                duration_ns: w.duration.as_nanos(),
                ops_budget: share(w.ops, i),
                bytes_budget: share(w.bytes.map(|b| b.bytes()), i).map(|b| b.max(w.bs.bytes())),
                perf: w.perf,
                hw_counters: w.hw_counters,
                slots: self.worker_slots(w, i),
            };
            let mut engine: Box<dyn Engine> = match &self.target {
                Some(t) if opts.mock.is_some() => Box::new(crate::engine::mock::MockEngine::new(
                    t.fd(),
                    opts.mock.as_ref().unwrap_or(&Default::default()),
                    i == 0,
                )),
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
                engine = Box::new(crate::engine::DropNthWrite::new(
                    engine,
                    nth,
                    w.bs.bytes() as usize,
                ));
            }
            let (rv, slot) = (Arc::clone(&rv), Arc::clone(&slots[i]));
            handles.push(
                std::thread::Builder::new()
                    .name(format!("thpbench-w{cpu}"))
                    .spawn(move || run_worker(plan, engine, rv, slot))
                    .context("spawning a worker thread")?,
            );
        }
        Ok(Spawned { rv, slots, handles })
    }

    /// Takes the "before" proofs, releases the workers with the disturbers and the lock
    /// tracer, waits for them (stopping them on a signal), and takes the "after" proofs.
    fn drive(
        &self,
        w: &Workload,
        repeat: usize,
        disturbed: bool,
        opts: &RunOptions,
        spawned: Spawned,
        result: &mut BenchResult,
    ) -> Result<Collected> {
        let Spawned { rv, slots, handles } = spawned;
        rv.pinned.wait();
        rv.warmed.wait();
        // Every measured run, disturbed or baseline, starts from whole folios of the
        // asked size, or is not evidence.
        let restore_notes = crate::disturb::restore(&self.buffers, MIN_COVERAGE);
        // Between warm-up and measurement: the "before" side of every proof.
        let cov_before = self.buffers.coverage()?;
        let run_name = run_name(repeat, disturbed);
        if cov_before.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
            let mut why = coverage_complaint(w, cov_before.fraction, "at its start");
            for note in &restore_notes {
                why.push_str("; ");
                why.push_str(note);
            }
            result.invalid_reasons.push(format!("{run_name}: {why}"));
        }
        let numa_before = self.layout.locality(&self.buffers, self.cpus.len());
        let vm_before = Vmstat::snapshot().context("reading /proc/vmstat")?;
        // Ok(tracer), or Err(why it could not be traced), which the run's report carries.
        let tracer = w.lock_contention.then(|| {
            crate::measure::lockstat::LockTracer::start().inspect_err(|reason| {
                let u = crate::measure::lockstat::unavailable(reason);
                if !result.unavailable.contains(&u) {
                    result.unavailable.push(u);
                }
            })
        });
        let gup_slow = w
            .lock_contention
            .then(crate::measure::gup_slow::GupSlowTracer::start);
        let epoch = now_ns();
        rv.epoch_ns.store(epoch, Ordering::Relaxed);
        rv.go.wait();
        let mut activity = crate::system::activity::ActivityProbe::start(&self.cpus);
        let disturbance = (disturbed && !self.disturbers.is_empty())
            .then(|| crate::disturb::Disturbance::start(&self.disturbers, &self.region, epoch));

        let progress = opts.progress.then(|| {
            use crate::output::progress::{RunLength, RunProgress};
            let length = match (w.ops, w.bytes) {
                (Some(ops), _) => RunLength::Ops(ops),
                (None, Some(b)) => RunLength::Ops(b.bytes() / w.bs.bytes().max(1)),
                (None, None) => RunLength::Nanos(w.duration.as_nanos()),
            };
            RunProgress::new(&w.name, length, repeat, w.repeat)
        });
        let mut interrupted = false;
        // The main thread is the stall watch's witness: it sleeps, touching nothing the
        // workers use, so it wakes late only when the process was not run.
        let mut watch = stall::Watch::start(WAIT_NS);
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_nanos(WAIT_NS));
            watch.tick();
            if crate::signals::received() && !interrupted {
                interrupted = true;
                rv.stop.store(true, Ordering::Relaxed);
            }
            if let Some(p) = &progress {
                p.update(&slots, now_ns() - epoch);
            }
            // Only while every worker runs: a finished one's time is gone from /proc.
            if handles.iter().all(|h| !h.is_finished()) {
                activity.sample();
            }
        }
        let host_activity = activity.finish();
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
        let window_end = outputs.iter().map(|o| o.end_ns).max().unwrap_or(epoch);
        // The disturbers stop first: their check spans tell the lock report which waits
        // were thpbench's own checking.
        let disturber_outputs = disturbance.map(|d| d.stop()).unwrap_or_default();
        let checks: std::collections::HashMap<u32, Vec<(u64, u64)>> = disturber_outputs
            .iter()
            .filter(|o| !o.check_spans.is_empty())
            .map(|o| (o.tid, o.check_spans.clone()))
            .collect();
        let lock_report = tracer.map(|t| match t {
            Ok(t) => t.stop(epoch, window_end, &checks),
            Err(reason) => crate::result::LockReport::unavailable(reason),
        });
        // Every I/O the workers issued: verify's read-backs pin pages as the measured
        // I/O does, and their fallbacks are in the count.
        let issued: u64 = outputs.iter().map(|o| o.recorder.ops + o.readbacks).sum();
        let gup_slow_path = gup_slow.map(|t| match t {
            Ok(t) => t.stop(issued),
            Err(reason) => crate::result::GupSlowPath::unavailable(reason),
        });
        let vmstat_delta = Vmstat::snapshot()
            .context("reading /proc/vmstat")?
            .delta_since(&vm_before);
        let cov_after = self.buffers.coverage()?;
        let numa_after = self.layout.locality(&self.buffers, self.cpus.len());
        {
            let mut kept = self.generations.lock().unwrap_or_else(|e| e.into_inner());
            // By position, so only when every worker came back: a missing one would shift
            // the tables onto the wrong workers (the run then stops, so none is needed).
            if outputs.len() == kept.len() {
                for (g, o) in kept.iter_mut().zip(outputs.iter_mut()) {
                    *g = std::mem::take(&mut o.generations);
                }
            }
        }
        let errors = std::mem::take(&mut *rv.errors.lock().unwrap_or_else(|e| e.into_inner()));
        if !errors.is_empty() && !interrupted {
            bail!("{}", errors.join("\n"));
        }
        // After the disturbers stopped and the "after" proofs were taken: not measured.
        let final_pass = self.final_pass(w, interrupted);
        Ok(Collected {
            outputs,
            epoch,
            interrupted,
            cov_before,
            cov_after,
            vmstat_delta,
            disturber_outputs,
            lock_report,
            gup_slow_path,
            numa_before,
            numa_after,
            watch,
            final_pass,
            host_activity,
        })
    }

    /// The final verify pass of a write workload with verify: every block of the
    /// region read back and checked against the generation its owner (worker
    /// `block % n`, the only one that writes it) last wrote, so that data written by
    /// anyone else at any time in the run is found, with its offset.
    fn final_pass(&self, w: &Workload, interrupted: bool) -> Option<crate::result::FinalVerify> {
        let t = self.target.as_ref()?;
        let nonce = t.stamped?;
        if !w.verify || !w.rw.writes() {
            return None;
        }
        if interrupted {
            return Some(crate::result::FinalVerify {
                incomplete: Some("not made: the run was interrupted".into()),
                ..Default::default()
            });
        }
        let bs = w.bs.bytes();
        let workers = self.cpus.len() as u64;
        let kept = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let stamp_of = |block: u64| crate::verify::Stamp {
            seed: w.seed,
            nonce,
            generation: kept
                .get((block % workers) as usize)
                .and_then(|own| own.get((block / workers) as usize))
                .copied()
                .unwrap_or(0),
        };
        Some(crate::verify::final_pass(
            t.fd(),
            t.size / bs,
            bs,
            &stamp_of,
            &crate::signals::received,
        ))
    }

    /// The run's figures from what the repeat collected, and the reasons it is not
    /// evidence, if any.
    fn assemble(
        &self,
        w: &Workload,
        repeat: usize,
        disturbed: bool,
        keep_stalled: bool,
        collected: Collected,
        result: &mut BenchResult,
    ) -> Result<RunResult> {
        let Collected {
            outputs,
            epoch,
            interrupted,
            cov_before,
            cov_after,
            vmstat_delta,
            disturber_outputs,
            lock_report,
            gup_slow_path,
            numa_before,
            numa_after,
            watch,
            final_pass,
            host_activity,
        } = collected;
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
        // A run with disturbers splits on purpose; the others must end as they started.
        let disturbed_run = disturbed && !self.disturbers.is_empty();
        let run_name = run_name(repeat, disturbed);
        if !disturbed_run && cov_after.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
            let why = coverage_complaint(w, cov_after.fraction, "at its end");
            result.invalid_reasons.push(format!("{run_name}: {why}"));
        }
        let nonce = self.target.as_ref().and_then(|t| t.stamped).unwrap_or(0);
        let mut verify = verify_report(w.verify, nonce, &outputs);
        if w.verify {
            verify.level = Some(w.verify_level);
        }
        verify.final_pass = final_pass;
        if let Some(why) = corrupted_data_reason(&verify) {
            result.invalid_reasons.push(format!("{run_name}: {why}"));
        }
        if let Some(why) = final_pass_reason(&verify, interrupted) {
            result.invalid_reasons.push(format!("{run_name}: {why}"));
        }
        let latency = histogram::summarize(&merged.total);
        let gaps: Vec<stall::Gaps> = outputs.iter().map(|o| o.gaps).collect();
        let phase = stall::Phase {
            epoch,
            end,
            threshold_ns: stall::threshold(latency.p99),
            // The main thread, the workers, the disturbers, and one for the collectors.
            // The process cannot use more CPU than it has CPUs, whatever its threads.
            threads: ((outputs.len() + disturber_outputs.len() + 2) as u64)
                .min(crate::system::cpu::allowed_cpus().len().max(1) as u64),
        };
        let mut stalls = stall::find(&watch.late, &watch.suspends, &gaps, phase);
        for s in &mut stalls {
            s.kept = keep_stalled;
        }
        if let Some(why) = stall_reason(&stalls) {
            if keep_stalled {
                crate::output::warn(&format!(
                    "{run_name}: {why}; kept as measured (--keep-stalled)"
                ));
            } else {
                result.invalid_reasons.push(format!(
                    "{run_name}: {why}; pass --keep-stalled to keep such a run as measured"
                ));
            }
        }
        let mut timeline = merged.timeline;
        let zswap = crate::system::swap::zswap_enabled();
        let disturbers = disturber_reports(w, &disturber_outputs, &vmstat_delta, zswap);
        for (o, report) in disturber_outputs.iter().zip(&disturbers) {
            attribute_actions(
                &report.name,
                &o.action_times,
                &mut timeline,
                &mut verify.first_mismatches,
            );
            for why in disturber_reasons(report, w.buffer, interrupted) {
                result.invalid_reasons.push(format!("{run_name}: {why}"));
            }
        }
        let threads = self.thread_results(&outputs, &numa_before, &numa_after);
        if !interrupted {
            let complaints = crate::placement::locality_complaints(w.numa, &run_name, &threads);
            result.invalid_reasons.extend(complaints);
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
            latency_ns: latency.clone(),
            histogram: histogram::encode_compressed(&merged.total),
            interval_histograms: merged.intervals,
            timeline,
            disturbers,
            gup: gup_value(&outputs, w, ops, latency.mean, &run_name, result)
                .map(|g| self.with_kernel_gup_figures(w, g)),
            perf: perf_value(&outputs, result),
            gup_slow_path,
            io_uring: crate::measure::uring_punts::merge(
                &outputs
                    .iter()
                    .filter_map(|o| o.engine_figures.clone())
                    .collect::<Vec<_>>(),
            ),
            target: self.target.as_ref().map(Target::report),
            lock_contention: lock_report,
            threads,
            buffer: BufferReport {
                backing: w.buffer,
                share: w.share,
                bytes: self.buffers.len() as u64,
                folio_bytes: self.buffers.folio_bytes,
                thp_coverage_before: cov_before.fraction,
                thp_coverage_after: cov_after.fraction,
                coverage_method: cov_before.method.to_string(),
                numa: Some(w.numa),
                numa_nodes_before: numa_before.1,
                numa_nodes_after: numa_after.1,
            },
            vmstat_delta,
            verify,
            interrupted,
            stalls,
            placement: Some(self.layout.placement.clone()),
            host_activity,
        })
    }

    /// Each worker's own figures, with where it ran and how local its pages were.
    fn thread_results(
        &self,
        outputs: &[WorkerOutput],
        numa_before: &NumaLocality,
        numa_after: &NumaLocality,
    ) -> Vec<ThreadResult> {
        let mut threads: Vec<ThreadResult> = outputs
            .iter()
            .map(|o| ThreadResult {
                cpu: o.cpu,
                ops: o.recorder.ops,
                bytes: o.recorder.bytes,
                io_time_ns: o.io_ns,
                verify_time_ns: o.verify_ns,
                latency_ns: histogram::summarize(&o.recorder.total),
                ..ThreadResult::default()
            })
            .collect();
        for t in &mut threads {
            let i = self.cpus.iter().position(|&c| c == t.cpu).unwrap_or(0);
            self.layout.annotate(t, numa_before.0[i], numa_after.0[i]);
        }
        threads
    }

    /// The gup engine's figures with the kernel's own on the same buffer, now that the
    /// workers are done with it.
    fn with_kernel_gup_figures(
        &self,
        w: &Workload,
        mut g: crate::result::GupReport,
    ) -> crate::result::GupReport {
        let kernel = crate::measure::gup_test::run(
            self.buffers.base() as usize,
            self.buffers.len(),
            (w.bs.bytes() / crate::pages::base_page() as u64).max(1) as u32,
        );
        g.kernel = Some(kernel);
        g
    }
}

/// What the workers' verify checked and found, the earliest 16 mismatches first.
fn verify_report(enabled: bool, nonce: u32, outputs: &[WorkerOutput]) -> VerifyReport {
    let mut verify = VerifyReport {
        enabled,
        nonce,
        ..VerifyReport::default()
    };
    for o in outputs {
        verify.bytes_checked += o.bytes_checked;
        verify.mismatches += o.mismatches;
        verify
            .first_mismatches
            .extend(o.first_mismatches.iter().cloned());
    }
    verify.first_mismatches.sort_by_key(|m| m.t_ms);
    verify.first_mismatches.truncate(16);
    verify
}

/// Each disturber's report against the run's vmstat deltas.
fn disturber_reports(
    w: &Workload,
    disturber_outputs: &[DisturberOutput],
    vmstat_delta: &BTreeMap<String, i64>,
    zswap: bool,
) -> Vec<crate::result::DisturberReport> {
    disturber_outputs
        .iter()
        .map(|o| {
            let mut report = o.report(vmstat_delta, w.buffer, zswap);
            if w.fixed_buffers {
                // Registered buffers are pinned long-term: what the pin stops is
                // recorded as defeated, not as a broken run.
                crate::disturb::pinned::mark_defeated_by_pin(
                    o.spec.kind,
                    &mut report,
                    vmstat_delta,
                );
            }
            report
        })
        .collect()
}

/// The gup engine's figures for one run: pages referenced (checked against what was
/// vmspliced), ns per op and per page.
fn gup_value(
    outputs: &[WorkerOutput],
    w: &Workload,
    ops: u64,
    mean_ns: f64,
    run_name: &str,
    result: &mut BenchResult,
) -> Option<crate::result::GupReport> {
    let pages: u64 = outputs
        .iter()
        .map(|o| o.pages_referenced)
        .sum::<Option<u64>>()?;
    let pages_per_op = w.bs.bytes() / crate::pages::base_page() as u64;
    let expected = ops * pages_per_op;
    if pages != expected {
        result.invalid_reasons.push(format!(
            "{run_name}: the gup engine referenced {pages} pages, but {ops} ops of {} should reference {expected}",
            w.bs
        ));
    }
    Some(crate::result::GupReport {
        engine: "gup".into(),
        figure: "vmsplice page references".into(),
        pages_referenced: pages,
        pages_expected: expected,
        pages_per_op,
        ns_per_op: mean_ns,
        ns_per_page: mean_ns / pages_per_op as f64,
        kernel: None,
    })
}

/// The per-thread perf counters as the result stores them ({"cpu<N>": {counter: value}}),
/// recording counters that could not be opened as unavailable (once).
fn perf_value(
    outputs: &[WorkerOutput],
    result: &mut BenchResult,
) -> Option<crate::result::PerfReport> {
    let mut threads = std::collections::BTreeMap::new();
    for o in outputs {
        let Some((values, counters)) = &o.perf else {
            continue;
        };
        threads.insert(format!("cpu{}", o.cpu), values.clone());
        for (name, why) in &counters.unavailable {
            let u = if why == crate::measure::perfcount::HARDWARE_OFF {
                // One entry for the four counters not asked for.
                crate::result::Unavailable::new(
                    "hardware perf counters",
                    why.clone(),
                    "--hw-counters (hw_counters = true), on a machine with a PMU",
                )
            } else {
                crate::system::probe::capability::perf(name)
                    .unavailable(format!("perf counter {name}"), why.clone())
            };
            if !result.unavailable.contains(&u) {
                result.unavailable.push(u);
            }
        }
        if !counters.kernel_included && counters.hardware_taken() {
            let u = crate::system::probe::capability::perf_kernel_mode().unavailable(
                "kernel-mode perf counts",
                "perf_event_paranoid > 1 and not root: counters exclude kernel mode",
            );
            if !result.unavailable.contains(&u) {
                result.unavailable.push(u);
            }
        }
    }
    (!threads.is_empty()).then_some(crate::result::PerfReport(threads))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{Mismatch, TimelinePoint};

    #[test]
    fn actions_land_in_their_100ms_interval_and_beside_their_mismatch() {
        let mut timeline: Vec<TimelinePoint> = (0..3)
            .map(|i| TimelinePoint {
                t_ms: i * 100,
                ..Default::default()
            })
            .collect();
        let mut mismatches = vec![Mismatch {
            t_ms: 150,
            ..Default::default()
        }];
        // 50 ms, 120 ms, 199 ms, and 5 s (past the timeline: counted nowhere).
        let times = [50_000_000, 120_000_000, 199_000_000, 5_000_000_000];
        attribute_actions("split", &times, &mut timeline, &mut mismatches);
        let counts: Vec<u64> = timeline
            .iter()
            .map(|p| p.disturb_actions.get("split").copied().unwrap_or(0))
            .collect();
        assert_eq!(counts, [1, 2, 0]);
        assert_eq!(mismatches[0].disturb_actions["split"], 2);
    }
}
