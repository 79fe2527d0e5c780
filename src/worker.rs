//! The pinned worker: warm-up, then the measured loop. Everything the loop touches is
//! the worker's own (histogram, counters, rng, iovecs); the only shared memory it reads
//! is the stop flag, which nobody writes until the run ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use crate::buffer::Segment;
use crate::engine::{Engine, OpKind};
use crate::measure::histogram::Recorder;
use crate::measure::now_ns;
use crate::result::Mismatch;
use crate::verify;
use crate::workload::Rw;

mod queued;

pub use crate::output::progress::ProgressSlot;

pub struct WorkerPlan {
    pub index: usize,
    pub threads: usize,
    pub cpu: usize,
    pub rw: Rw,
    pub rwmix_read: u8,
    pub bs: u64,
    /// Usable bytes of the target, a multiple of bs.
    pub region: u64,
    pub seed: u64,
    /// The nonce of the target's fill (verify::Stamp).
    pub nonce: u32,
    pub verify: bool,
    pub verify_level: verify::Level,
    /// The base page size: the `Pages` level's stride.
    pub page: usize,
    /// Poison before every read, also where the buffer holds another block's headers:
    /// the fork disturber's children recognise the reads in flight by their poison.
    pub poison_every_read: bool,
    /// Generation of each block this worker owns (blocks index, index + threads, ...),
    /// when the workload writes with verify on; empty otherwise (every block is at
    /// generation 0, as the fill left it). Returned in WorkerOutput for the next repeat.
    pub generations: Vec<u32>,
    pub base: usize,
    pub segments: Vec<Segment>,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    /// This worker's share of a total ops/bytes budget.
    pub ops_budget: Option<u64>,
    pub bytes_budget: Option<u64>,
    /// Read the thread's counters around the measured loop.
    pub perf: bool,
    /// Also open its hardware perf events (they cost at every context switch).
    pub hw_counters: bool,
    /// Queued engines (uring): the segments of each of the `iodepth` I/Os in flight;
    /// slot 0 is `segments`. Empty for engines that do one I/O at a time.
    pub slots: Vec<Vec<Segment>>,
}

/// Where the workers meet the main thread: after pinning, after warm-up (main takes the
/// "before" snapshots and sets the epoch), and to start the measured loop.
pub struct Rendezvous {
    pub pinned: Barrier,
    pub warmed: Barrier,
    pub go: Barrier,
    pub epoch_ns: AtomicU64,
    pub stop: AtomicBool,
    pub errors: Mutex<Vec<String>>,
}

impl Rendezvous {
    pub fn new(workers: usize) -> Rendezvous {
        Rendezvous {
            pinned: Barrier::new(workers + 1),
            warmed: Barrier::new(workers + 1),
            go: Barrier::new(workers + 1),
            epoch_ns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            errors: Mutex::new(Vec::new()),
        }
    }

    pub fn fail(&self, msg: String) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub struct WorkerOutput {
    pub cpu: usize,
    pub recorder: Recorder,
    pub end_ns: u64,
    pub bytes_checked: u64,
    pub mismatches: u64,
    pub first_mismatches: Vec<Mismatch>,
    /// Perf counter values over the measured loop, and the counters that could not open.
    pub perf: Option<(
        std::collections::BTreeMap<String, u64>,
        crate::measure::perfcount::ThreadCounters,
    )>,
    /// Pages the engine referenced in the measured loop (gup).
    pub pages_referenced: Option<u64>,
    /// WorkerPlan::generations after this run's writes.
    pub generations: Vec<u32>,
    /// The engine's own figures for the measured loop (uring: submissions, io-wq punts).
    pub engine_figures: Option<crate::result::IoUringReport>,
    /// A queued engine, kept open until the main thread drops the output: registered
    /// buffers stay pinned until the disturbers have stopped and the "after" snapshots
    /// are taken, so that no disturber acts on them unpinned at the end of the run.
    pub engine: Option<Box<dyn Engine>>,
    /// Time spent inside the timed I/O calls: the sum of the recorded latencies.
    pub io_ns: u64,
    /// Time spent on verify: stamping or poisoning before the call, the read-back of a
    /// write and the check after it.
    pub verify_ns: u64,
    /// The longest gaps between the measured loop's completions (stall detection).
    pub gaps: crate::measure::stall::Gaps,
    /// Verify's read-backs of written blocks in the measured loop (I/Os not measured).
    pub readbacks: u64,
}

impl WorkerOutput {
    /// What a worker on `cpu` has before its measured loop: nothing counted yet.
    pub fn new(cpu: usize, epoch: u64) -> WorkerOutput {
        WorkerOutput {
            cpu,
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
            gaps: crate::measure::stall::Gaps::new(epoch),
            readbacks: 0,
        }
    }
}

/// The I/O's own rate (ops/s, bytes/s): each worker's ops and bytes over the time it
/// spent in the timed calls, summed over the workers (which run side by side). The
/// harness's work between calls (verify, bookkeeping) does not count.
pub fn io_rates(outputs: &[WorkerOutput]) -> (f64, f64) {
    outputs
        .iter()
        .filter(|o| o.io_ns > 0)
        .fold((0.0, 0.0), |(ops, bytes), o| {
            let secs = o.io_ns as f64 / 1e9;
            (
                ops + o.recorder.ops as f64 / secs,
                bytes + o.recorder.bytes as f64 / secs,
            )
        })
}

/// xorshift64*: a tiny per-thread generator; quality is ample for picking offsets.
struct Rng(u64);

impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Loop<'a> {
    plan: &'a WorkerPlan,
    iov: Vec<libc::iovec>,
    rng: Rng,
    next_block: u64,
    /// Blocks this worker picks from: all of the region, or its own (generations).
    blocks: u64,
    generations: Vec<u32>,
    /// Per slot (one for the synchronous loop): the block and generation whose headers
    /// every page of the slot's buffer is known to hold (stamped for a write, or read and
    /// checked clean); None when unknown. A read poisons only when this is its own block
    /// at its own generation: any other block's headers carry other target offsets (or
    /// another tag), so a read that never lands already fails the check, as poison would.
    held: Vec<Option<(u64, u32)>>,
}

impl<'a> Loop<'a> {
    /// Picks the next operation and its block (the block's index in the region).
    #[inline]
    fn pick(&mut self) -> (OpKind, u64) {
        let nth = if self.plan.rw.is_random() {
            self.rng.next() % self.blocks
        } else {
            let b = self.next_block;
            self.next_block = (b + 1) % self.blocks;
            b
        };
        let block = if self.generations.is_empty() {
            nth
        } else {
            self.plan.index as u64 + nth * self.plan.threads as u64
        };
        let kind = match self.plan.rw {
            Rw::Read | Rw::RandRead => OpKind::Read,
            Rw::Write | Rw::RandWrite => OpKind::Write,
            Rw::ReadWrite => {
                if self.rng.next() % 100 < u64::from(self.plan.rwmix_read) {
                    OpKind::Read
                } else {
                    OpKind::Write
                }
            }
        };
        (kind, block)
    }

    #[inline]
    fn stamp_of(&self, block: u64) -> verify::Stamp {
        verify::Stamp {
            seed: self.plan.seed,
            nonce: self.plan.nonce,
            generation: self
                .generations
                .get((block / self.plan.threads as u64) as usize)
                .copied()
                .unwrap_or(0),
        }
    }

    fn segment_slice(&self, s: &Segment) -> &'static mut [u8] {
        // SAFETY: the segment lies in the buffer mapping, which outlives the workers,
        // and belongs to this worker alone (see buffer::layout).
        unsafe { std::slice::from_raw_parts_mut((self.plan.base + s.offset) as *mut u8, s.len) }
    }

    /// Before the timed call: stamp what a write will carry (the block's next
    /// generation), poison what a read fills.
    #[inline]
    fn prepare(&mut self, kind: OpKind, block: u64) {
        self.prepare_slot(0, kind, block);
    }

    /// The buffer segments of `slot`: a queued engine's own slot, or the one buffer of the
    /// synchronous loop (slot 0).
    fn segments_of(&self, slot: usize) -> &'a [Segment] {
        let plan: &'a WorkerPlan = self.plan;
        plan.slots.get(slot).unwrap_or(&plan.segments)
    }

    /// `prepare` for one slot of a queued engine.
    #[inline]
    fn prepare_slot(&mut self, slot: usize, kind: OpKind, block: u64) {
        if !self.plan.verify {
            return;
        }
        if kind == OpKind::Write {
            let own = (block / self.plan.threads as u64) as usize;
            if let Some(g) = self.generations.get_mut(own) {
                *g = g.wrapping_add(1);
            }
        }
        let st = self.stamp_of(block);
        let offset = block * self.plan.bs;
        let held = self.held[slot].take();
        let segments = self.segments_of(slot);
        match kind {
            OpKind::Write => {
                for s in segments {
                    verify::stamp(self.segment_slice(s), offset + s.io_offset as u64, &st);
                }
                self.held[slot] = Some((block, st.generation));
            }
            // Until its check, what the buffer holds is unknown (held stays None).
            OpKind::Read
                if must_poison(self.plan.poison_every_read, held, block, st.generation) =>
            {
                for s in segments {
                    let buf = self.segment_slice(s);
                    verify::poison_for(buf, self.plan.verify_level, self.plan.page);
                }
            }
            OpKind::Read => {}
        }
    }
}

/// Whether a read of `block` at `generation` must poison its buffer first: yes when
/// `always` (a fork disturber's children look for the poison), else unless the buffer
/// is known to hold the headers of another block or generation.
///
/// What the skip assumes: between a clean check (or a stamp) and the next read, only the
/// slot's own I/O writes its buffer. A stray write of exactly this block's headers at
/// this generation into it in that window, followed by a read that never lands, would
/// check clean here where poison would have wiped it: two faults at once.
fn must_poison(always: bool, held: Option<(u64, u32)>, block: u64, generation: u32) -> bool {
    always || held.is_none_or(|h| h == (block, generation))
}

/// Counts the barriers a worker has passed; if the worker panics, the drop passes the
/// rest, so the main thread is never left waiting, and records the failure.
struct BarrierGuard<'a> {
    rv: &'a Rendezvous,
    passed: u8,
    cpu: usize,
}

impl BarrierGuard<'_> {
    fn wait(&mut self) {
        match self.passed {
            0 => self.rv.pinned.wait(),
            1 => self.rv.warmed.wait(),
            _ => self.rv.go.wait(),
        };
        self.passed += 1;
    }
}

impl Drop for BarrierGuard<'_> {
    fn drop(&mut self) {
        if self.passed < 3 {
            self.rv.fail(format!(
                "worker on CPU {} failed before the measured phase",
                self.cpu
            ));
            while self.passed < 3 {
                self.wait();
            }
        }
    }
}

/// Runs one worker: pin, warm up, measure. Never leaves a barrier unpassed, so the
/// main thread cannot be left waiting.
pub fn run_worker(
    mut plan: WorkerPlan,
    mut engine: Box<dyn Engine>,
    rv: Arc<Rendezvous>,
    progress: Arc<ProgressSlot>,
) -> Option<WorkerOutput> {
    let mut barriers = BarrierGuard {
        rv: &rv,
        passed: 0,
        cpu: plan.cpu,
    };
    if let Err(e) = crate::system::cpu::pin_current_thread(plan.cpu) {
        rv.fail(format!("{e:#}"));
    }
    let generations = std::mem::take(&mut plan.generations);
    let mut lp = Loop::new(&plan, generations);
    lp.stamp_unverified_writes();
    let io_wq = engine.queued().is_some();
    let counters = plan
        .perf
        .then(|| crate::measure::perfcount::ThreadCounters::open(plan.hw_counters, io_wq));
    barriers.wait();
    if engine.queued().is_some() {
        let mut out = queued::run(
            &mut lp,
            engine.as_mut(),
            &rv,
            &progress,
            &mut barriers,
            counters,
        );
        out.generations = lp.generations;
        out.engine = Some(engine);
        return Some(out);
    }
    warm_up(&mut lp, engine.as_mut(), &rv);
    barriers.wait();
    barriers.wait();
    let mut out = measure(&mut lp, engine.as_mut(), &rv, &progress, counters);
    out.generations = lp.generations;
    Some(out)
}

impl<'a> Loop<'a> {
    /// The loop's state before its first pick: sequential workers start at their own
    /// share of the region; with generations a worker picks among its own blocks.
    fn new(plan: &'a WorkerPlan, generations: Vec<u32>) -> Loop<'a> {
        let region_blocks = plan.region / plan.bs;
        let (blocks, next_block) = if generations.is_empty() {
            (
                region_blocks,
                region_blocks * plan.index as u64 / plan.threads as u64,
            )
        } else {
            (generations.len() as u64, 0)
        };
        let iov = plan
            .segments
            .iter()
            .map(|s| libc::iovec {
                iov_base: (plan.base + s.offset) as *mut libc::c_void,
                iov_len: s.len,
            })
            .collect();
        Loop {
            iov,
            rng: Rng(plan.seed ^ (plan.index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            next_block,
            blocks,
            generations,
            held: vec![None; plan.slots.len().max(1)],
            plan,
        }
    }

    /// Writes carry the pattern's kind of data with verify off too (stamped once, here):
    /// a zero-filled buffer would let zram store same-filled pages without compressing,
    /// and verify on or off would measure different I/O. Every buffer a write can come
    /// from: the one-at-a-time loop's and each queued slot's (issue 17: uring's slots were
    /// left zero, and its 4 KiB random writes at qd 16 ran 4 times as fast without
    /// verify). The pattern is what verify's first write of a block in the region's
    /// middle would carry (generation 1 under the nonce of the fill, 0 where thpbench did
    /// not fill the target): compressors are fast or slow by content, and the pattern of
    /// the region's first bytes with a zero tag, which this stamped before, kept zram's
    /// LZO busy about three times as long as verify's data (25% of perf samples against
    /// 9%), and 4 KiB random writes to zram ran slower without verify than with it
    /// (results/observer/2026-12-03-verify-off-write-pattern.txt).
    fn stamp_unverified_writes(&self) {
        if self.plan.verify || !self.plan.rw.writes() {
            return;
        }
        let st = verify::Stamp {
            seed: self.plan.seed,
            nonce: self.plan.nonce,
            generation: 1,
        };
        let base = (self.blocks / 2) * self.plan.bs;
        for s in self
            .plan
            .segments
            .iter()
            .chain(self.plan.slots.iter().flatten())
        {
            verify::stamp(self.segment_slice(s), base + s.io_offset as u64, &st);
        }
    }
}

/// Warm-up: the same loop as the measured one, recorded nowhere.
fn warm_up(lp: &mut Loop, engine: &mut dyn Engine, rv: &Rendezvous) {
    let plan = lp.plan;
    if rv.stop.load(Ordering::Relaxed) || plan.warmup_ns == 0 {
        return;
    }
    let end = now_ns() + plan.warmup_ns;
    while now_ns() < end && !rv.stop.load(Ordering::Relaxed) && !crate::signals::received() {
        let (kind, block) = lp.pick();
        lp.prepare(kind, block);
        let offset = block * plan.bs;
        if let Err(e) = engine.execute(kind, offset, &lp.iov) {
            rv.fail(io_error_text(plan, kind, offset, &e));
            break;
        }
    }
}

/// A phase's epoch, and where its loop stops: the deadline, or the worker's share of a
/// budget. Every engine's loop (one at a time here, queued in queued.rs) stops by these.
#[derive(Clone, Copy)]
struct Limits {
    epoch: u64,
    deadline: u64,
    ops: u64,
    bytes: u64,
}

impl Limits {
    /// The measured phase from `epoch`: a budget of ops or bytes when the plan has one,
    /// else the duration.
    fn measured(plan: &WorkerPlan, epoch: u64) -> Limits {
        let budgeted = plan.ops_budget.is_some() || plan.bytes_budget.is_some();
        Limits {
            epoch,
            deadline: if budgeted {
                u64::MAX
            } else {
                epoch + plan.duration_ns
            },
            ops: plan.ops_budget.unwrap_or(u64::MAX),
            bytes: plan.bytes_budget.unwrap_or(u64::MAX),
        }
    }

    /// The warm-up from now: its duration alone.
    fn warmup(plan: &WorkerPlan) -> Limits {
        let now = now_ns();
        Limits {
            epoch: now,
            deadline: now + plan.warmup_ns,
            ops: u64::MAX,
            bytes: u64::MAX,
        }
    }
}

/// What the measured loop did: its counts and when its last operation ended.
struct Tally {
    ops: u64,
    bytes: u64,
    end_ns: u64,
}

/// The measured phase: set up from the epoch main published, run the timed loop, then
/// collect what the engine and the counters saw.
fn measure(
    lp: &mut Loop,
    engine: &mut dyn Engine,
    rv: &Rendezvous,
    progress: &ProgressSlot,
    mut counters: Option<crate::measure::perfcount::ThreadCounters>,
) -> WorkerOutput {
    let plan = lp.plan;
    let epoch = rv.epoch_ns.load(Ordering::Relaxed);
    let mut rec = Recorder::new(epoch);
    let mut out = WorkerOutput::new(plan.cpu, epoch);
    let pages_before = engine.pages_referenced();
    let limits = Limits::measured(plan, epoch);
    if let Some(c) = counters.as_mut() {
        c.enable();
    }
    let tally = timed_loop(lp, engine, rv, progress, limits, &mut rec, &mut out);
    out.pages_referenced = engine
        .pages_referenced()
        .zip(pages_before)
        .map(|(after, before)| after - before);
    if let Some(mut c) = counters.take() {
        c.disable();
        out.perf = Some((c.read(), c));
    }
    rec.finish();
    progress.ops.store(tally.ops, Ordering::Relaxed);
    progress.bytes.store(tally.bytes, Ordering::Relaxed);
    // The measured phase of this worker ends when its last operation did.
    out.end_ns = tally.end_ns;
    out.gaps.finish(tally.end_ns);
    out.recorder = rec;
    out
}

/// The timed loop: one I/O at a time until a limit, a stop or an error. Per op: two
/// clock reads around the call (two more with verify on), the record, a compare for
/// the gaps, and a progress publish only when a 100 ms tick has closed.
#[inline]
fn timed_loop(
    lp: &mut Loop,
    engine: &mut dyn Engine,
    rv: &Rendezvous,
    progress: &ProgressSlot,
    limits: Limits,
    rec: &mut Recorder,
    out: &mut WorkerOutput,
) -> Tally {
    let plan = lp.plan;
    let (mut ops, mut bytes) = (0u64, 0u64);
    let mut published_ticks = 0;
    let mut now = now_ns();
    while now < limits.deadline
        && ops < limits.ops
        && bytes < limits.bytes
        && !rv.stop.load(Ordering::Relaxed)
    {
        let (kind, block) = lp.pick();
        let offset = block * plan.bs;
        // Verify's work is timed apart from the I/O, and only when verify is on.
        let t0 = if plan.verify {
            let v0 = now_ns();
            lp.prepare(kind, block);
            let t0 = now_ns();
            out.verify_ns += t0 - v0;
            t0
        } else {
            now_ns()
        };
        let r = engine.execute(kind, offset, &lp.iov);
        let t1 = now_ns();
        let n = match r {
            Ok(n) if n as u64 == plan.bs => n as u64,
            Ok(n) => {
                rv.fail(format!(
                    "worker on CPU {}: short {} of {n} bytes instead of {} at offset {offset}",
                    plan.cpu,
                    if kind == OpKind::Read {
                        "read"
                    } else {
                        "write"
                    },
                    plan.bs
                ));
                break;
            }
            Err(e) => {
                rv.fail(io_error_text(plan, kind, offset, &e));
                break;
            }
        };
        rec.record(t1, t1 - t0, n);
        out.gaps.completed(t1);
        out.io_ns += t1 - t0;
        ops += 1;
        bytes += n;
        now = t1;
        if plan.verify {
            if kind == OpKind::Write {
                // Read the block back (untimed) so that a write that went astray shows.
                lp.prepare(OpKind::Read, block);
                if let Err(e) = engine.execute(OpKind::Read, offset, &lp.iov) {
                    rv.fail(io_error_text(plan, OpKind::Read, offset, &e));
                    break;
                }
                out.readbacks += 1;
            }
            check_read(lp, block, t1 - limits.epoch, out);
            now = now_ns();
            out.verify_ns += now - t1;
        }
        if rec.ticks_closed() != published_ticks {
            published_ticks = rec.ticks_closed();
            progress.ops.store(ops, Ordering::Relaxed);
            progress.bytes.store(bytes, Ordering::Relaxed);
            progress
                .p99_ns
                .store(rec.last_tick_p99(), Ordering::Relaxed);
        }
    }
    Tally {
        ops,
        bytes,
        end_ns: now,
    }
}

fn check_read(lp: &mut Loop, block: u64, t_ns: u64, out: &mut WorkerOutput) {
    check_slot(lp, 0, block, t_ns, out);
}

/// `check_read` for one slot of a queued engine.
fn check_slot(lp: &mut Loop, slot: usize, block: u64, t_ns: u64, out: &mut WorkerOutput) {
    let st = lp.stamp_of(block);
    let segments = lp.segments_of(slot);
    let mut clean = true;
    for s in segments {
        let buf = lp.segment_slice(s);
        let at = block * lp.plan.bs + s.io_offset as u64;
        let (bad, first, compared) =
            verify::check_at(buf, at, &st, lp.plan.verify_level, lp.plan.page);
        out.bytes_checked += compared;
        if bad > 0 {
            clean = false;
            out.mismatches += bad;
            if let Some(d) = first {
                if out.first_mismatches.len() < 16 {
                    out.first_mismatches.push(Mismatch {
                        offset: d.offset,
                        thread_cpu: lp.plan.cpu,
                        expected: verify::hex(&d.expected),
                        actual: verify::hex(&d.actual),
                        t_ms: t_ns / 1_000_000,
                        disturb_actions: Default::default(),
                    });
                }
            }
        }
    }
    lp.held[slot] = clean.then_some((block, st.generation));
}

fn io_error_text(plan: &WorkerPlan, kind: OpKind, offset: u64, e: &std::io::Error) -> String {
    let op = if kind == OpKind::Read {
        "read"
    } else {
        "write"
    };
    let hint = match e.raw_os_error() {
        Some(libc::EINVAL) => format!(
            ": O_DIRECT needs the offset ({offset}), the size ({}) and the buffer address aligned to the device's logical block size; check bs and the target's filesystem",
            plan.bs
        ),
        Some(libc::EFAULT) => ": the buffer was not mapped (a disturber unmapped it?)".to_string(),
        _ => String::new(),
    };
    format!(
        "worker on CPU {}: {op} of {} bytes at offset {offset} failed: {}{hint}",
        plan.cpu,
        plan.bs,
        crate::system::errno_text(e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_poisons_unless_its_buffer_holds_another_blocks_headers() {
        // Unknown content (first use, after a warm-up read, after a mismatch): poison.
        assert!(must_poison(false, None, 7, 1));
        // The same block at the same generation: a read that never lands would check
        // clean, so only the poison shows it.
        assert!(must_poison(false, Some((7, 1)), 7, 1));
        // Another block's offsets, or another generation's tag, fail the check anyway.
        assert!(!must_poison(false, Some((6, 1)), 7, 1));
        assert!(!must_poison(false, Some((7, 0)), 7, 1));
        // While a fork disturber runs, every read poisons: its children look for it.
        assert!(must_poison(true, Some((6, 1)), 7, 1));
    }

    fn output(ops: u64, latency_ns: u64, io_ns: u64, verify_ns: u64) -> WorkerOutput {
        let mut recorder = Recorder::new(0);
        for i in 0..ops {
            recorder.record(i * latency_ns, latency_ns, 4096);
        }
        recorder.finish();
        WorkerOutput {
            recorder,
            io_ns,
            verify_ns,
            ..WorkerOutput::new(0, 0)
        }
    }

    #[test]
    fn io_rates_sum_each_workers_ops_over_its_own_io_time() {
        // 1000 ops in 1 ms of I/O (and 3 ms of verify) plus 500 ops in 1 ms: 1.5M ops/s;
        // the verify time changes nothing.
        let outs = [
            output(1000, 1000, 1_000_000, 3_000_000),
            output(500, 2000, 1_000_000, 0),
        ];
        let (ops, bytes) = io_rates(&outs);
        assert!((ops - 1.5e6).abs() < 1e-6, "{ops}");
        assert!((bytes - 1.5e6 * 4096.0).abs() < 1e-3, "{bytes}");
        // A worker that did no I/O adds nothing (and divides by nothing).
        let (ops, _) = io_rates(&[output(0, 0, 0, 0)]);
        assert_eq!(ops, 0.0);
    }
}
