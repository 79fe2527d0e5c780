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

/// Progress a worker publishes every 100 ms tick (two relaxed stores, off the hot path).
#[derive(Default)]
#[repr(align(64))]
pub struct ProgressSlot {
    pub ops: AtomicU64,
    pub bytes: AtomicU64,
    pub p99_ns: AtomicU64,
}

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
    pub verify: bool,
    pub base: usize,
    pub segments: Vec<Segment>,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    /// This worker's share of a total ops/bytes budget.
    pub ops_budget: Option<u64>,
    pub bytes_budget: Option<u64>,
    /// Open per-thread perf counters for the measured loop.
    pub perf: bool,
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
    /// The engine's own figures for the measured loop (uring: submissions, io-wq punts).
    pub engine_figures: Option<serde_json::Value>,
    /// A queued engine, kept open until the main thread drops the output: registered
    /// buffers stay pinned until the disturbers have stopped and the "after" snapshots
    /// are taken, so that no disturber acts on them unpinned at the end of the run.
    pub engine: Option<Box<dyn Engine>>,
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
    blocks: u64,
}

impl Loop<'_> {
    #[inline]
    fn pick(&mut self) -> (OpKind, u64) {
        let block = if self.plan.rw.is_random() {
            self.rng.next() % self.blocks
        } else {
            let b = self.next_block;
            self.next_block = (b + 1) % self.blocks;
            b
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
        (kind, block * self.plan.bs)
    }

    fn segment_slice(&self, s: &Segment) -> &'static mut [u8] {
        // SAFETY: the segment lies in the buffer mapping, which outlives the workers,
        // and belongs to this worker alone (see buffer::layout).
        unsafe { std::slice::from_raw_parts_mut((self.plan.base + s.offset) as *mut u8, s.len) }
    }

    /// Before the timed call: stamp what a write will carry, poison what a read fills.
    #[inline]
    fn prepare(&self, kind: OpKind, offset: u64) {
        self.prepare_segments(&self.plan.segments, kind, offset);
    }

    /// `prepare` for the given segments (one slot of a queued engine).
    #[inline]
    fn prepare_segments(&self, segments: &[Segment], kind: OpKind, offset: u64) {
        if !self.plan.verify {
            return;
        }
        for s in segments {
            let buf = self.segment_slice(s);
            match kind {
                OpKind::Write => verify::stamp(buf, offset + s.io_offset as u64, self.plan.seed),
                OpKind::Read => verify::poison(buf),
            }
        }
    }
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
    plan: WorkerPlan,
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
    let blocks = plan.region / plan.bs;
    let mut lp = Loop {
        iov: Vec::new(),
        rng: Rng(plan.seed ^ (plan.index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        next_block: blocks * plan.index as u64 / plan.threads as u64,
        blocks,
        plan: &plan,
    };
    lp.iov = plan
        .segments
        .iter()
        .map(|s| libc::iovec {
            iov_base: (plan.base + s.offset) as *mut libc::c_void,
            iov_len: s.len,
        })
        .collect();
    let mut counters = plan
        .perf
        .then(crate::measure::perfcount::ThreadCounters::open);
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
        out.engine = Some(engine);
        return Some(out);
    }

    // Warm-up: the same loop, recorded nowhere.
    if !rv.stop.load(Ordering::Relaxed) && plan.warmup_ns > 0 {
        let end = now_ns() + plan.warmup_ns;
        while now_ns() < end && !rv.stop.load(Ordering::Relaxed) && !crate::signals::received() {
            let (kind, offset) = lp.pick();
            lp.prepare(kind, offset);
            if let Err(e) = engine.execute(kind, offset, &lp.iov) {
                rv.fail(io_error_text(&plan, kind, offset, &e));
                break;
            }
        }
    }
    barriers.wait();
    barriers.wait();
    let epoch = rv.epoch_ns.load(Ordering::Relaxed);
    let mut rec = Recorder::new(epoch);
    let mut out = WorkerOutput {
        cpu: plan.cpu,
        recorder: Recorder::new(epoch),
        end_ns: epoch,
        bytes_checked: 0,
        mismatches: 0,
        first_mismatches: Vec::new(),
        perf: None,
        pages_referenced: None,
        engine_figures: None,
        engine: None,
    };
    let pages_before = engine.pages_referenced();
    let deadline = if plan.ops_budget.is_some() || plan.bytes_budget.is_some() {
        u64::MAX
    } else {
        epoch + plan.duration_ns
    };
    let ops_budget = plan.ops_budget.unwrap_or(u64::MAX);
    let bytes_budget = plan.bytes_budget.unwrap_or(u64::MAX);
    let (mut ops, mut bytes) = (0u64, 0u64);
    let mut published_ticks = 0;
    if let Some(c) = counters.as_mut() {
        c.enable();
    }
    let mut now = now_ns();
    while now < deadline
        && ops < ops_budget
        && bytes < bytes_budget
        && !rv.stop.load(Ordering::Relaxed)
    {
        let (kind, offset) = lp.pick();
        lp.prepare(kind, offset);
        let t0 = now_ns();
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
                rv.fail(io_error_text(&plan, kind, offset, &e));
                break;
            }
        };
        rec.record(t1, t1 - t0, n);
        ops += 1;
        bytes += n;
        if plan.verify {
            if kind == OpKind::Write {
                // Read the block back (untimed) so that a write that went astray shows.
                lp.prepare(OpKind::Read, offset);
                if let Err(e) = engine.execute(OpKind::Read, offset, &lp.iov) {
                    rv.fail(io_error_text(&plan, OpKind::Read, offset, &e));
                    break;
                }
            }
            check_read(&lp, offset, t1 - epoch, &mut out);
        }
        if rec.ticks_closed() != published_ticks {
            published_ticks = rec.ticks_closed();
            progress.ops.store(ops, Ordering::Relaxed);
            progress.bytes.store(bytes, Ordering::Relaxed);
            progress
                .p99_ns
                .store(rec.last_tick_p99(), Ordering::Relaxed);
        }
        now = t1;
    }
    out.pages_referenced = engine
        .pages_referenced()
        .zip(pages_before)
        .map(|(after, before)| after - before);
    if let Some(mut c) = counters.take() {
        c.disable();
        out.perf = Some((c.read(), c));
    }
    rec.finish();
    progress.ops.store(ops, Ordering::Relaxed);
    progress.bytes.store(bytes, Ordering::Relaxed);
    // The measured phase of this worker ends when its last operation did.
    out.end_ns = now;
    out.recorder = rec;
    Some(out)
}

fn check_read(lp: &Loop, offset: u64, t_ns: u64, out: &mut WorkerOutput) {
    check_segments(lp, &lp.plan.segments, offset, t_ns, out);
}

/// `check_read` for the given segments (one slot of a queued engine).
fn check_segments(lp: &Loop, segments: &[Segment], offset: u64, t_ns: u64, out: &mut WorkerOutput) {
    for s in segments {
        let buf = lp.segment_slice(s);
        let at = offset + s.io_offset as u64;
        let (bad, first) = verify::check(buf, at, lp.plan.seed);
        out.bytes_checked += buf.len() as u64;
        if bad > 0 {
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
