//! The worker's loop for queued engines (uring): `iodepth` slots, each with its own
//! buffer segments, kept in flight as fio does. An I/O's latency runs from the
//! io_uring_enter that submits it to the return that reaps its completion. Every
//! completion is checked (a short or failed I/O stops the run with its offset); with
//! verify, a read is checked on completion and a write is read back (untimed) into the
//! same slot and checked.

use std::sync::atomic::Ordering;

use super::{check_segments, io_error_text, BarrierGuard, Loop, ProgressSlot, WorkerOutput};
use crate::engine::{Completion, Engine, OpKind, QueuedEngine};
use crate::measure::histogram::Recorder;
use crate::measure::now_ns;
use crate::measure::perfcount::ThreadCounters;
use crate::worker::Rendezvous;

#[derive(Clone, Copy)]
struct Slot {
    kind: OpKind,
    block: u64,
    submitted_ns: u64,
    /// The untimed read-back of a verified write.
    verify_read: bool,
    busy: bool,
}

/// Where the loop stops submitting.
struct Limits {
    deadline: u64,
    ops: u64,
    bytes: u64,
}

/// What the measured loop records into; the warm-up records nothing.
struct Sink<'a> {
    rec: Recorder,
    out: WorkerOutput,
    progress: &'a ProgressSlot,
    published_ticks: usize,
    epoch: u64,
}

/// Warm-up, barriers, measured loop: `run_worker`'s job for a queued engine.
pub(super) fn run(
    lp: &mut Loop,
    engine: &mut dyn Engine,
    rv: &Rendezvous,
    progress: &ProgressSlot,
    barriers: &mut BarrierGuard,
    mut counters: Option<ThreadCounters>,
) -> WorkerOutput {
    let plan = lp.plan;
    if !rv.stop.load(Ordering::Relaxed) && plan.warmup_ns > 0 {
        let limits = Limits {
            deadline: now_ns() + plan.warmup_ns,
            ops: u64::MAX,
            bytes: u64::MAX,
        };
        let q = engine.queued().expect("a queued engine");
        drive(lp, q, rv, &limits, None);
    }
    barriers.wait();
    barriers.wait();
    let epoch = rv.epoch_ns.load(Ordering::Relaxed);
    let limits = Limits {
        deadline: if plan.ops_budget.is_some() || plan.bytes_budget.is_some() {
            u64::MAX
        } else {
            epoch + plan.duration_ns
        },
        ops: plan.ops_budget.unwrap_or(u64::MAX),
        bytes: plan.bytes_budget.unwrap_or(u64::MAX),
    };
    let mut sink = Sink {
        rec: Recorder::new(epoch),
        out: WorkerOutput {
            cpu: plan.cpu,
            recorder: Recorder::new(epoch),
            end_ns: epoch,
            bytes_checked: 0,
            mismatches: 0,
            first_mismatches: Vec::new(),
            perf: None,
            pages_referenced: None,
            generations: Vec::new(),
            engine_figures: None,
            engine: None,
            io_ns: 0,
            verify_ns: 0,
        },
        progress,
        published_ticks: 0,
        epoch,
    };
    engine.measure_start();
    if let Some(c) = counters.as_mut() {
        c.enable();
    }
    let q = engine.queued().expect("a queued engine");
    let (ops, bytes, last) = drive(lp, q, rv, &limits, Some(&mut sink));
    if let Some(mut c) = counters.take() {
        c.disable();
        sink.out.perf = Some((c.read(), c));
    }
    sink.out.engine_figures = engine.measure_stop();
    sink.rec.finish();
    progress.ops.store(ops, Ordering::Relaxed);
    progress.bytes.store(bytes, Ordering::Relaxed);
    sink.out.end_ns = last.max(epoch);
    // With several I/Os in flight the latencies overlap: the I/O's own time is the
    // measured loop's wall time less what verify took.
    sink.out.io_ns = sink.out.end_ns.saturating_sub(epoch + sink.out.verify_ns);
    sink.out.recorder = sink.rec;
    sink.out
}

/// Keeps every slot busy until a limit, a stop or an error, then drains what is in
/// flight. Returns (ops, bytes, time of the last measured completion).
fn drive(
    lp: &mut Loop,
    q: &mut dyn QueuedEngine,
    rv: &Rendezvous,
    limits: &Limits,
    mut sink: Option<&mut Sink>,
) -> (u64, u64, u64) {
    let plan = lp.plan;
    let depth = q.depth();
    let idle = Slot {
        kind: OpKind::Read,
        block: u64::MAX,
        submitted_ns: 0,
        verify_read: false,
        busy: false,
    };
    let mut slots = vec![idle; depth];
    let mut busy_blocks: Vec<u64> = Vec::with_capacity(depth);
    let mut done: Vec<Completion> = Vec::with_capacity(depth);
    let (mut started_ops, mut started_bytes) = (0u64, 0u64);
    let (mut ops, mut bytes, mut last) = (0u64, 0u64, 0u64);
    let mut stopping = false;
    let mut now = now_ns();
    loop {
        for (i, slot) in slots.iter_mut().enumerate() {
            if stopping || slot.busy {
                continue;
            }
            if now >= limits.deadline
                || started_ops >= limits.ops
                || started_bytes >= limits.bytes
                || rv.stop.load(Ordering::Relaxed)
                || crate::signals::received()
            {
                stopping = true;
                continue;
            }
            // Two I/Os in flight on one block would race (a read against a write, or two
            // writes of different generations): pick another block.
            let Some((kind, block)) = pick_free(lp, &busy_blocks) else {
                continue;
            };
            let offset = block * plan.bs;
            let v0 = now_ns();
            lp.prepare_segments(&plan.slots[i], kind, block);
            if let Some(sink) = sink.as_deref_mut() {
                sink.out.verify_ns += now_ns() - v0;
            }
            busy_blocks.push(block);
            if let Err(e) = q.push(i, kind, offset) {
                rv.fail(io_error_text(plan, kind, offset, &e));
                stopping = true;
                continue;
            }
            *slot = Slot {
                kind,
                block,
                submitted_ns: 0,
                verify_read: false,
                busy: true,
            };
            started_ops += 1;
            started_bytes += plan.bs;
        }
        if !slots.iter().any(|s| s.busy) {
            break;
        }
        // The submission time of everything pushed since the last call.
        let t0 = now_ns();
        for s in slots.iter_mut().filter(|s| s.busy && s.submitted_ns == 0) {
            s.submitted_ns = t0;
        }
        if let Err(e) = q.submit_and_wait(&mut done) {
            rv.fail(format!(
                "worker on CPU {}: io_uring_enter failed: {}",
                plan.cpu,
                crate::system::errno_text(&e)
            ));
            break;
        }
        let t1 = now_ns();
        now = t1;
        for (i, result) in done.drain(..) {
            let slot = slots[i];
            slots[i].busy = false;
            let offset = slot.block * plan.bs;
            let n = match result {
                Ok(n) if n as u64 == plan.bs => n as u64,
                Ok(n) => {
                    busy_blocks.retain(|&b| b != slot.block);
                    rv.fail(format!(
                        "worker on CPU {}: short {} of {n} bytes instead of {} at offset {}",
                        plan.cpu,
                        if slot.kind == OpKind::Read && !slot.verify_read {
                            "read"
                        } else if slot.verify_read {
                            "read-back"
                        } else {
                            "write"
                        },
                        plan.bs,
                        offset
                    ));
                    stopping = true;
                    continue;
                }
                Err(e) => {
                    busy_blocks.retain(|&b| b != slot.block);
                    let kind = if slot.verify_read {
                        OpKind::Read
                    } else {
                        slot.kind
                    };
                    rv.fail(io_error_text(plan, kind, offset, &e));
                    stopping = true;
                    continue;
                }
            };
            let Some(sink) = sink.as_deref_mut() else {
                busy_blocks.retain(|&b| b != slot.block);
                continue;
            };
            let at = t1 - sink.epoch;
            if slot.verify_read {
                let v0 = now_ns();
                check_segments(lp, &plan.slots[i], slot.block, at, &mut sink.out);
                sink.out.verify_ns += now_ns() - v0;
                busy_blocks.retain(|&b| b != slot.block);
                continue;
            }
            sink.rec.record(t1, t1 - slot.submitted_ns, n);
            ops += 1;
            bytes += n;
            last = t1;
            if !plan.verify {
                busy_blocks.retain(|&b| b != slot.block);
                continue;
            }
            let v0 = now_ns();
            {
                if slot.kind == OpKind::Write {
                    lp.prepare_segments(&plan.slots[i], OpKind::Read, slot.block);
                    match q.push(i, OpKind::Read, offset) {
                        Ok(()) => {
                            slots[i] = Slot {
                                verify_read: true,
                                busy: true,
                                submitted_ns: 0,
                                ..slot
                            }
                        }
                        Err(e) => {
                            rv.fail(io_error_text(plan, OpKind::Read, offset, &e));
                            stopping = true;
                            busy_blocks.retain(|&b| b != slot.block);
                        }
                    }
                } else {
                    check_segments(lp, &plan.slots[i], slot.block, at, &mut sink.out);
                    busy_blocks.retain(|&b| b != slot.block);
                }
            }
            sink.out.verify_ns += now_ns() - v0;
        }
        if let Some(sink) = sink.as_deref_mut() {
            if sink.rec.ticks_closed() != sink.published_ticks {
                sink.published_ticks = sink.rec.ticks_closed();
                sink.progress.ops.store(ops, Ordering::Relaxed);
                sink.progress.bytes.store(bytes, Ordering::Relaxed);
                sink.progress
                    .p99_ns
                    .store(sink.rec.last_tick_p99(), Ordering::Relaxed);
            }
        }
    }
    (ops, bytes, last)
}

/// A pick whose block no I/O in flight uses; None after a few tries (a region of few
/// blocks at a deep queue), leaving the slot idle until one completes.
fn pick_free(lp: &mut Loop, busy: &[u64]) -> Option<(OpKind, u64)> {
    (0..16)
        .map(|_| lp.pick())
        .find(|(_, block)| !busy.contains(block))
}
