//! One repeat: spawn the pinned workers, start the disturbers and collectors, wait,
//! collect, and hand what was collected to the figures (`figures.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::figures::{assemble, Collected};
use super::findings::Findings;
use super::rig::Setup;
use super::validity::coverage_complaint;
use super::{RunOptions, MIN_COVERAGE};
use crate::engine::EngineSpec;
use crate::measure::now_ns;
use crate::measure::stall;
use crate::result::{RunResult, RunRole};
use crate::system::vmstat::Vmstat;
use crate::target::Target;
use crate::worker::{run_worker, ProgressSlot, Rendezvous, WorkerOutput, WorkerPlan};
use crate::workload::{Backing, Workload};

/// The workers of one repeat, pinned and warming up.
struct Spawned {
    rv: Arc<Rendezvous>,
    slots: Vec<Arc<ProgressSlot>>,
    handles: Vec<JoinHandle<Option<WorkerOutput>>>,
}

/// How long the main thread sleeps between looks at the workers.
const WAIT_NS: u64 = 50_000_000;

/// One repeat of one workload on the rig: measured (with its disturbers) or, beside it,
/// a baseline run without them (`--baseline`).
pub(super) struct Repeat<'a> {
    pub rig: &'a Setup,
    pub w: &'a Workload,
    /// From 0.
    pub index: usize,
    pub role: RunRole<'a>,
    pub opts: &'a RunOptions,
}

impl Repeat<'_> {
    /// Spawn, drive, and the run's figures with what the repeat found.
    pub(super) fn run(self) -> Result<(RunResult, Findings)> {
        let spawned = self.spawn_workers()?;
        let collected = self.drive(spawned)?;
        Ok(assemble(
            self.rig,
            self.w,
            self.index,
            self.role,
            self.opts.keep_stalled,
            collected,
        ))
    }

    /// One pinned worker per CPU, each with its plan and engine.
    fn spawn_workers(&self) -> Result<Spawned> {
        let (rig, w, opts) = (self.rig, self.w, self.opts);
        let n = rig.cpus.len();
        let rv = Arc::new(Rendezvous::new(n));
        // gup has no device: every op "reads" offset 0, which it ignores.
        let region = rig
            .target
            .as_ref()
            .map_or(w.bs.bytes(), |t| t.size - t.size % w.bs.bytes());
        let share = |total: Option<u64>, i: usize| {
            total.map(|t| t / n as u64 + u64::from((i as u64) < t % n as u64))
        };
        let slots: Vec<Arc<ProgressSlot>> =
            (0..n).map(|_| Arc::new(ProgressSlot::default())).collect();
        let mut handles = Vec::with_capacity(n);
        for (i, &cpu) in rig.cpus.iter().enumerate() {
            let plan = WorkerPlan {
                index: i,
                threads: n,
                cpu,
                rw: w.rw,
                rwmix_read: w.rwmix_read,
                bs: w.bs.bytes(),
                region,
                seed: w.seed,
                nonce: rig.target.as_ref().and_then(|t| t.stamped).unwrap_or(0),
                verify: w.verify,
                verify_level: w.verify_level,
                page: crate::pages::base_page(),
                poison_every_read: w
                    .disturb
                    .iter()
                    .any(|d| d.kind == crate::workload::DisturbKind::Fork),
                generations: std::mem::take(
                    rig.generations
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(i)
                        .unwrap_or(&mut Vec::new()),
                ),
                base: rig.buffers.base() as usize,
                segments: rig.buffers.segments[i * w.slots_per_worker()].clone(),
                warmup_ns: w.warmup.as_nanos(),
                duration_ns: w.duration.as_nanos(),
                ops_budget: share(w.ops, i),
                bytes_budget: share(w.bytes.map(|b| b.bytes()), i).map(|b| b.max(w.bs.bytes())),
                perf: w.perf,
                hw_counters: w.hw_counters,
                slots: rig.worker_slots(w, i),
            };
            let engine = crate::engine::make(EngineSpec {
                kind: w.engine,
                target_fd: rig.target.as_ref().map(Target::fd),
                mock: opts.mock.as_ref(),
                slots: (0..plan.slots.len())
                    .map(|s| rig.buffers.iovecs(i * plan.slots.len() + s))
                    .collect(),
                fixed_buffers: w.fixed_buffers,
                perf: w.perf,
                bs: w.bs.bytes() as usize,
                worker: i,
                drop_write: opts.drop_write,
                drop_read: opts.drop_read,
            })
            .with_context(|| {
                format!(
                    "setting up the {} engine for the worker on CPU {cpu}",
                    w.engine.as_str()
                )
            })?;
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
    fn drive(&self, spawned: Spawned) -> Result<Collected> {
        let (rig, w, opts) = (self.rig, self.w, self.opts);
        let disturbed = self.role == RunRole::Measured;
        let mut findings = Findings::default();
        let Spawned { rv, slots, handles } = spawned;
        rv.pinned.wait();
        rv.warmed.wait();
        // Every measured run, disturbed or baseline, starts from whole folios of the
        // asked size, or is not evidence.
        let restore_notes = crate::disturb::restore(&rig.buffers, MIN_COVERAGE);
        // Between warm-up and measurement: the "before" side of every proof.
        let cov_before = rig.buffers.coverage()?;
        let run_name = self.role.run_name(self.index);
        if cov_before.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
            let mut why = coverage_complaint(w, cov_before.fraction, "at its start");
            for note in &restore_notes {
                why.push_str("; ");
                why.push_str(note);
            }
            findings.invalid(Some(&run_name), why);
        }
        let numa_before = rig.layout.locality(&rig.buffers, rig.cpus.len());
        let vm_before = Vmstat::snapshot().context("reading /proc/vmstat")?;
        // Ok(tracer), or Err(why it could not be traced), which the run's report carries.
        let tracer = w.lock_contention.then(|| {
            crate::measure::lockstat::LockTracer::start().inspect_err(|reason| {
                findings.unavailable(crate::measure::lockstat::unavailable(reason));
            })
        });
        let gup_slow = w
            .lock_contention
            .then(crate::measure::gup_slow::GupSlowTracer::start);
        let epoch = now_ns();
        rv.epoch_ns.store(epoch, Ordering::Relaxed);
        rv.go.wait();
        // Tests wait for this line before they interrupt a run that is measuring.
        crate::output::debug(&format!("{run_name}: measuring"));
        let mut activity = crate::system::activity::ActivityProbe::start(&rig.cpus);
        let disturbance = (disturbed && !rig.disturbers.is_empty())
            .then(|| crate::disturb::Disturbance::start(&rig.disturbers, &rig.region, epoch));

        let progress = opts.progress.then(|| {
            use crate::output::progress::{RunLength, RunProgress};
            let length = match (w.ops, w.bytes) {
                (Some(ops), _) => RunLength::Ops(ops),
                (None, Some(b)) => RunLength::Ops(b.bytes() / w.bs.bytes().max(1)),
                (None, None) => RunLength::Nanos(w.duration.as_nanos()),
            };
            RunProgress::new(&w.name, length, self.index, w.repeat)
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
        let cov_after = rig.buffers.coverage()?;
        let numa_after = rig.layout.locality(&rig.buffers, rig.cpus.len());
        {
            let mut kept = rig.generations.lock().unwrap_or_else(|e| e.into_inner());
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
        let final_pass = rig.final_pass(w, interrupted);
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
            findings,
        })
    }
}
