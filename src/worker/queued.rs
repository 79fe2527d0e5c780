//! The worker's loop for queued engines (uring): `iodepth` slots, each with its own
//! buffer segments, kept in flight as fio does. An I/O's latency runs from the
//! io_uring_enter that submits it to the return that reaps its completion. Every
//! completion is checked (a short or failed I/O stops the run with its offset); with
//! verify, a read is checked on completion and a written block is read back (untimed)
//! and checked.
//!
//! The I/O's own time is its busy time: the union of the intervals in which at least one
//! measured I/O was in flight (from its submission to its reaping). Read-backs are not
//! measured I/Os, and they never overlap one: written blocks wait for their read-back
//! (no I/O picks them meanwhile) until enough have gathered, then the queue drains and
//! they are read back and checked while nothing measured is in flight. A read-back
//! beside measured writes would take its share of the device inside their busy time
//! (issue 17: 4 KiB random writes at qd 16 ran at a quarter of their rate without
//! verify). So verify on or off measures the same I/O. The time with read-backs in
//! flight is verify's time, as dio's read-back inside its verify step is.

use std::sync::atomic::Ordering;

use super::{check_slot, io_error_text, BarrierGuard, Limits, Loop, ProgressSlot, WorkerOutput};
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
        let limits = Limits::warmup(plan);
        let q = engine.queued().expect("a queued engine");
        drive(lp, q, rv, &limits, None);
    }
    barriers.wait();
    barriers.wait();
    let epoch = rv.epoch_ns.load(Ordering::Relaxed);
    let limits = Limits::measured(plan, epoch);
    let mut sink = Sink {
        rec: Recorder::new(epoch),
        out: WorkerOutput::new(plan.cpu, epoch),
        progress,
        published_ticks: 0,
        epoch,
    };
    engine.measure_start();
    if let Some(c) = counters.as_mut() {
        c.enable();
    }
    let q = engine.queued().expect("a queued engine");
    let (ops, bytes, end) = drive(lp, q, rv, &limits, Some(&mut sink));
    if let Some(mut c) = counters.take() {
        c.disable();
        sink.out.perf = Some((c.read(), c));
    }
    sink.out.engine_figures = engine.measure_stop();
    sink.rec.finish();
    progress.ops.store(ops, Ordering::Relaxed);
    progress.bytes.store(bytes, Ordering::Relaxed);
    sink.out.end_ns = end.max(epoch);
    sink.out.gaps.finish(sink.out.end_ns);
    // With several I/Os in flight the latencies overlap: the I/O's own time is the
    // time some measured I/O was in flight (drive kept it in sink.out.io_ns).
    sink.out.recorder = sink.rec;
    sink.out
}

/// The union of the intervals in which at least one I/O of its kind (measured I/Os, or
/// read-backs) was in flight.
#[derive(Default)]
struct BusyClock {
    in_flight: usize,
    since: u64,
    busy_ns: u64,
}

impl BusyClock {
    /// An I/O of the clock's kind was submitted at `t`.
    fn submitted(&mut self, t: u64) {
        if self.in_flight == 0 {
            self.since = t;
        }
        self.in_flight += 1;
    }

    /// An I/O of the clock's kind was reaped at `t`.
    fn completed(&mut self, t: u64) {
        self.in_flight -= 1;
        if self.in_flight == 0 {
            self.busy_ns += t - self.since;
        }
    }
}

/// The I/Os in flight and what the loop has counted so far.
struct Flight {
    slots: Vec<Slot>,
    /// Blocks that an I/O in flight uses, or whose write awaits its read-back: with
    /// verify up to depth + batch = 17 x depth of them (4,352 at depth 256), looked up at
    /// every pick and every completion: a hash set, not a scan.
    busy_blocks: BlockSet,
    /// Written blocks awaiting their read-back (verify), in completion order.
    unchecked: Vec<u64>,
    /// How many written blocks gather before the queue drains for their read-backs.
    batch: usize,
    /// No measured I/O starts until the blocks gathered are read back.
    draining: bool,
    started_ops: u64,
    started_bytes: u64,
    ops: u64,
    bytes: u64,
    stopping: bool,
    busy: BusyClock,
    /// The union of the intervals with a read-back in flight (never a measured I/O):
    /// verify's time, beside its stamping and checking.
    readback_clock: BusyClock,
}

/// Keeps every slot busy until a limit, a stop or an error, then drains what is in
/// flight. Returns (ops, bytes, the time it ended): after the last read-backs and their
/// checks, as the one-at-a-time loop ends after its last write's read-back, so the run's
/// duration holds all of verify's time that `verify_ns` counts.
fn drive(
    lp: &mut Loop,
    q: &mut dyn QueuedEngine,
    rv: &Rendezvous,
    limits: &Limits,
    mut sink: Option<&mut Sink>,
) -> (u64, u64, u64) {
    let depth = q.depth();
    let idle = Slot {
        kind: OpKind::Read,
        block: u64::MAX,
        submitted_ns: 0,
        verify_read: false,
        busy: false,
    };
    // A batch several queues deep keeps the drain's partly filled queue to a small share
    // of the busy time; at most half the blocks wait, so that picks find free ones.
    let batch = (16 * depth).min((lp.blocks / 2) as usize).max(1);
    let mut f = Flight {
        slots: vec![idle; depth],
        busy_blocks: BlockSet::with_capacity_and_hasher(depth + batch, Default::default()),
        unchecked: Vec::with_capacity(batch),
        batch,
        draining: false,
        started_ops: 0,
        started_bytes: 0,
        ops: 0,
        bytes: 0,
        stopping: false,
        busy: BusyClock::default(),
        readback_clock: BusyClock::default(),
    };
    let mut done: Vec<Completion> = Vec::with_capacity(depth);
    let mut now = now_ns();
    loop {
        f.refill(lp, q, rv, limits, now, sink.as_deref_mut());
        if !f.slots.iter().any(|s| s.busy) {
            break;
        }
        // The submission time of everything pushed since the last call.
        let t0 = now_ns();
        for s in f.slots.iter_mut().filter(|s| s.busy && s.submitted_ns == 0) {
            s.submitted_ns = t0;
            if s.verify_read {
                f.readback_clock.submitted(t0);
            } else {
                f.busy.submitted(t0);
            }
        }
        if let Err(e) = q.submit_and_wait(&mut done) {
            rv.fail(format!(
                "worker on CPU {}: io_uring_enter failed: {}",
                lp.plan.cpu,
                crate::system::errno_text(&e)
            ));
            break;
        }
        let t1 = now_ns();
        now = t1;
        for (i, result) in done.drain(..) {
            f.complete(lp, rv, i, result, t1, sink.as_deref_mut());
        }
        if let Some(sink) = sink.as_deref_mut() {
            if sink.rec.ticks_closed() != sink.published_ticks {
                sink.published_ticks = sink.rec.ticks_closed();
                sink.progress.ops.store(f.ops, Ordering::Relaxed);
                sink.progress.bytes.store(f.bytes, Ordering::Relaxed);
                sink.progress
                    .p99_ns
                    .store(sink.rec.last_tick_p99(), Ordering::Relaxed);
            }
        }
    }
    if let Some(sink) = sink {
        sink.out.io_ns = f.busy.busy_ns;
        sink.out.verify_ns += f.readback_clock.busy_ns;
    }
    (f.ops, f.bytes, now_ns())
}

impl Flight {
    /// Starts an I/O in every idle slot, unless a limit or a stop was reached.
    fn refill(
        &mut self,
        lp: &mut Loop,
        q: &mut dyn QueuedEngine,
        rv: &Rendezvous,
        limits: &Limits,
        now: u64,
        mut sink: Option<&mut Sink>,
    ) {
        let plan = lp.plan;
        if self.draining && self.unchecked.is_empty() && !self.slots.iter().any(|s| s.busy) {
            self.draining = false;
        }
        for i in 0..self.slots.len() {
            if self.stopping || self.draining || self.slots[i].busy {
                continue;
            }
            if now >= limits.deadline
                || self.started_ops >= limits.ops
                || self.started_bytes >= limits.bytes
                || rv.stop.load(Ordering::Relaxed)
                || crate::signals::received()
            {
                self.stopping = true;
                continue;
            }
            // Two I/Os in flight on one block would race (a read against a write, or two
            // writes of different generations): pick another block.
            let Some((kind, block)) = pick_free(lp, &self.busy_blocks) else {
                // Blocks awaiting their read-back may be what fills the region.
                if !self.unchecked.is_empty() {
                    self.draining = true;
                }
                continue;
            };
            let offset = block * plan.bs;
            // Verify's stamping or poisoning, timed only where there is any: without
            // verify the clock pair would be the only work here.
            if plan.verify {
                let v0 = now_ns();
                lp.prepare_slot(i, kind, block);
                if let Some(sink) = sink.as_deref_mut() {
                    sink.out.verify_ns += now_ns() - v0;
                }
            }
            if let Err(e) = q.push(i, kind, offset) {
                rv.fail(io_error_text(plan, kind, offset, &e));
                self.stopping = true;
                continue;
            }
            self.busy_blocks.insert(block);
            self.slots[i] = Slot {
                kind,
                block,
                submitted_ns: 0,
                verify_read: false,
                busy: true,
            };
            self.started_ops += 1;
            self.started_bytes += plan.bs;
        }
        if (self.draining || self.stopping) && self.busy.in_flight == 0 {
            self.start_readbacks(lp, q, rv, sink);
        }
    }

    /// Reads written blocks back into the idle slots, once nothing measured is in flight.
    fn start_readbacks(
        &mut self,
        lp: &mut Loop,
        q: &mut dyn QueuedEngine,
        rv: &Rendezvous,
        sink: Option<&mut Sink>,
    ) {
        let Some(sink) = sink else { return };
        for i in 0..self.slots.len() {
            if self.slots[i].busy {
                continue;
            }
            let Some(block) = self.unchecked.pop() else {
                return;
            };
            let offset = block * lp.plan.bs;
            let v0 = now_ns();
            lp.prepare_slot(i, OpKind::Read, block);
            sink.out.verify_ns += now_ns() - v0;
            if let Err(e) = q.push(i, OpKind::Read, offset) {
                rv.fail(io_error_text(lp.plan, OpKind::Read, offset, &e));
                self.stopping = true;
                self.unchecked.clear();
                self.release(block);
                return;
            }
            sink.out.readbacks += 1;
            self.slots[i] = Slot {
                kind: OpKind::Write,
                block,
                submitted_ns: 0,
                verify_read: true,
                busy: true,
            };
        }
    }

    /// Takes one completion: checks it, records a measured I/O, and with verify checks
    /// a read or a read-back, or sets a written block aside for its read-back.
    fn complete(
        &mut self,
        lp: &mut Loop,
        rv: &Rendezvous,
        i: usize,
        result: std::io::Result<usize>,
        t1: u64,
        sink: Option<&mut Sink>,
    ) {
        let plan = lp.plan;
        let slot = self.slots[i];
        self.slots[i].busy = false;
        if slot.verify_read {
            self.readback_clock.completed(t1);
        } else {
            self.busy.completed(t1);
        }
        let offset = slot.block * plan.bs;
        let n = match result {
            Ok(n) if n as u64 == plan.bs => n as u64,
            Ok(n) => {
                self.release(slot.block);
                let what = match (slot.verify_read, slot.kind) {
                    (true, _) => "read-back",
                    (false, OpKind::Read) => "read",
                    (false, OpKind::Write) => "write",
                };
                rv.fail(format!(
                    "worker on CPU {}: short {what} of {n} bytes instead of {} at offset {offset}",
                    plan.cpu, plan.bs
                ));
                self.stopping = true;
                return;
            }
            Err(e) => {
                self.release(slot.block);
                let kind = if slot.verify_read {
                    OpKind::Read
                } else {
                    slot.kind
                };
                rv.fail(io_error_text(plan, kind, offset, &e));
                self.stopping = true;
                return;
            }
        };
        let Some(sink) = sink else {
            self.release(slot.block);
            return;
        };
        let at = t1 - sink.epoch;
        if !slot.verify_read {
            sink.rec.record(t1, t1 - slot.submitted_ns, n);
            sink.out.gaps.completed(t1);
            self.ops += 1;
            self.bytes += n;
        }
        if !plan.verify {
            self.release(slot.block);
            return;
        }
        if slot.kind == OpKind::Write && !slot.verify_read {
            // Read back later, with nothing measured in flight; the block stays busy.
            self.unchecked.push(slot.block);
            if self.unchecked.len() >= self.batch {
                self.draining = true;
            }
            return;
        }
        let v0 = now_ns();
        check_slot(lp, i, slot.block, at, &mut sink.out);
        self.release(slot.block);
        sink.out.verify_ns += now_ns() - v0;
    }

    fn release(&mut self, block: u64) {
        self.busy_blocks.remove(&block);
    }
}

/// A pick whose block no I/O in flight uses; None after a few tries (a region of few
/// blocks at a deep queue), leaving the slot idle until one completes.
fn pick_free(lp: &mut Loop, busy: &BlockSet) -> Option<(OpKind, u64)> {
    (0..16)
        .map(|_| lp.pick())
        .find(|(_, block)| !busy.contains(block))
}

/// Block numbers, hashed by rustc-hash's multiply-and-rotate: SipHash's resistance to
/// chosen keys buys nothing for the loop's own picks. The rotation matters: the table
/// takes its bucket from the low bits, and one worker's blocks share their low bits when
/// threads interleave (block = index + n x threads).
type BlockSet = rustc_hash::FxHashSet<u64>;

#[cfg(test)]
mod tests {
    use super::BusyClock;

    #[test]
    fn one_workers_interleaved_blocks_spread_over_the_buckets() {
        use std::hash::BuildHasher;
        let build = rustc_hash::FxBuildHasher;
        // Worker 1 of 4: blocks 1, 5, 9, ...; a table of 256 buckets takes the low 8 bits.
        let mut buckets: Vec<u64> = (0..256u64)
            .map(|n| build.hash_one(1 + 4 * n) & 0xff)
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        // A product left unrotated keeps blocks = 1 mod 4 at = K mod 4: 64 buckets at most.
        assert!(buckets.len() > 128, "{} of 256 buckets used", buckets.len());
    }

    /// Replays submissions (+) and completions (-) of measured I/Os.
    fn busy(events: &[(char, u64)]) -> u64 {
        let mut c = BusyClock::default();
        for &(e, t) in events {
            match e {
                '+' => c.submitted(t),
                _ => c.completed(t),
            }
        }
        c.busy_ns
    }

    #[test]
    fn busy_time_is_the_union_of_the_measured_ios_in_flight() {
        // Two overlapping I/Os 0..10 and 5..12, a gap (verify's read-back and checks,
        // not measured), then one I/O 30..34: busy 12 + 4, not the wall time 34 and not
        // the sum of latencies 10 + 7 + 4.
        assert_eq!(
            busy(&[
                ('+', 0),
                ('+', 5),
                ('-', 10),
                ('-', 12),
                ('+', 30),
                ('-', 34)
            ]),
            16
        );
        // The same measured I/Os with verify off (no gap): the same busy time per I/O.
        assert_eq!(
            busy(&[
                ('+', 0),
                ('+', 5),
                ('-', 10),
                ('-', 12),
                ('+', 12),
                ('-', 16)
            ]),
            16
        );
    }
}
