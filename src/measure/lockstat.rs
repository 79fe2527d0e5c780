//! Kernel lock contention during the measured window, from the `lock:contention_begin`
//! and `lock:contention_end` tracepoints (Linux 5.19+; include/trace/events/lock.h),
//! the way `perf lock contention` sees it, without perf:
//!
//! - one perf event per CPU and tracepoint, system-wide, sampling every event with TID,
//!   TIME (CLOCK_MONOTONIC, so it lines up with the run's timeline), CPU and RAW fields
//!   (lock_addr, flags), and the kernel callchain for `begin`;
//! - a reader thread drains the ring buffers while the run goes on and counts what the
//!   kernel had to drop (PERF_RECORD_LOST);
//! - begin and end are paired per task, giving the wait. The one real double begin is the
//!   mutex's (kernel/locking/mutex.c): `MUTEX|SPIN` before optimistic spinning, `MUTEX`
//!   before sleeping, and again in turn while it waits; those merge into one contention
//!   from the first timestamp. Any other repeated begin means an end was lost: the older
//!   begin counts as unmatched. Begins of other locks nest (a sleeping lock's slow path
//!   takes its wait_lock spinlock), so pending begins are kept per task as a stack;
//! - every wait is clipped to the measured window; a pair whose span overlaps a stretch
//!   in which a ring lost samples is dropped (it may have lost its end or its begin), so
//!   with lost samples the totals are a lower bound;
//! - each contention is attributed to its caller: the first callchain frame outside the
//!   locking code, which, as in perf (machine__is_lock_function), is the sched and lock
//!   text sections and the tracing glue; symbolized from /proc/kallsyms.
//!
//! compound_lock, which the 2011 patch was about, went away in 4.5; what this shows on
//! today's kernels is the contention on mmap_lock, page-table locks, the lruvec and
//! anon_vma locks and the split queue lock along the GUP, split, collapse and reclaim paths.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use perf_event::SampleFlag;

use super::trace_rings::{
    drain_until_stopped, open_per_cpu, u32_at, u64_at, RingRecord, TraceRing, TracepointSpec,
};

use crate::result::Unavailable;
use crate::system::mounts::{MountGuard, TRACEFS};

mod summarize;
pub use summarize::{summarize, Trace};

/// Callchain entries at or above this are context markers (PERF_CONTEXT_KERNEL, ...).
const PERF_CONTEXT_MAX: u64 = (-4095i64) as u64;
/// Ring buffer per event and CPU: up to 1024 pages of data (4 MiB, with which the seed's
/// torture lost no sample on 2 CPUs), within 64 MiB for all rings together, and at
/// least 128 pages, which is also the fallback where the larger ring cannot be locked.
const RING_PAGES_MAX: usize = 1024;
const RING_PAGES_FALLBACK: usize = 128;
const RINGS_TOTAL_PAGES: usize = 16384;

fn ring_pages(cpus: usize) -> usize {
    let share = RINGS_TOTAL_PAGES / (2 * cpus.max(1));
    // A power of two, as perf wants: the largest one within the share.
    let pow2 = if share.is_power_of_two() {
        share
    } else {
        share.next_power_of_two() / 2
    };
    pow2.clamp(RING_PAGES_FALLBACK, RING_PAGES_MAX)
}
/// Pending begins kept per task: nesting deeper than this does not happen in the kernel.
const MAX_NESTED: usize = 8;

const LCB_F_SPIN: u32 = 1 << 0;
const LCB_F_READ: u32 = 1 << 1;
const LCB_F_WRITE: u32 = 1 << 2;
const LCB_F_RT: u32 = 1 << 3;
const LCB_F_PERCPU: u32 = 1 << 4;
const LCB_F_MUTEX: u32 = 1 << 5;

/// The lock type names `perf lock contention` prints for the flags.
pub fn lock_type(flags: u32) -> &'static str {
    match flags {
        f if f == LCB_F_SPIN => "spinlock",
        f if f == LCB_F_SPIN | LCB_F_READ => "rwlock:R",
        f if f == LCB_F_SPIN | LCB_F_WRITE => "rwlock:W",
        f if f == LCB_F_READ => "rwsem:R",
        f if f == LCB_F_WRITE => "rwsem:W",
        f if f == LCB_F_RT => "rt-mutex",
        f if f == LCB_F_RT | LCB_F_READ => "rwlock-rt:R",
        f if f == LCB_F_RT | LCB_F_WRITE => "rwlock-rt:W",
        f if f == LCB_F_PERCPU | LCB_F_READ => "pcpu-sem:R",
        f if f == LCB_F_PERCPU | LCB_F_WRITE => "pcpu-sem:W",
        f if f == LCB_F_MUTEX || f == LCB_F_MUTEX | LCB_F_SPIN => "mutex",
        0 => "semaphore",
        _ => "unknown",
    }
}

pub use crate::result::kernel::{CallerStat, LockReport, TypeStat};

/// One decoded sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub begin: bool,
    /// The task's process (thread group) id.
    pub pid: u32,
    pub tid: u32,
    pub time: u64,
    pub lock_addr: u64,
    pub flags: u32,
    /// First callchain address outside the locking code (begin only; 0 if unknown).
    pub caller: u64,
}

/// Kernel text symbols and the address ranges that count as locking code.
pub struct Kallsyms {
    /// (address, name), sorted.
    symbols: Vec<(u64, String)>,
    lock_ranges: Vec<(u64, u64)>,
}

impl Kallsyms {
    pub fn load() -> Result<Kallsyms, String> {
        let text = std::fs::read_to_string("/proc/kallsyms")
            .map_err(|e| format!("/proc/kallsyms: {e}"))?;
        Kallsyms::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Kallsyms, String> {
        let mut symbols = Vec::new();
        let mut marks: HashMap<&str, u64> = HashMap::new();
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            if matches!(
                name,
                "__sched_text_start" | "__sched_text_end" | "__lock_text_start" | "__lock_text_end"
            ) {
                marks.insert(name, addr);
            }
            symbols.push((addr, name.to_string()));
        }
        if symbols.iter().all(|(a, _)| *a == 0) {
            return Err("/proc/kallsyms shows zero addresses (kptr_restrict, or not root): callers cannot be symbolized".into());
        }
        symbols.sort_unstable_by_key(|(a, _)| *a);
        let mut lock_ranges = Vec::new();
        for (start, end) in [
            ("__sched_text_start", "__sched_text_end"),
            ("__lock_text_start", "__lock_text_end"),
        ] {
            if let (Some(&a), Some(&b)) = (marks.get(start), marks.get(end)) {
                lock_ranges.push((a, b));
            }
        }
        Ok(Kallsyms {
            symbols,
            lock_ranges,
        })
    }

    /// Whether a text symbol of that name is in the table (not inlined away).
    pub fn has(&self, name: &str) -> bool {
        self.symbols.iter().any(|(_, n)| n == name)
    }

    pub fn symbol(&self, addr: u64) -> Option<&str> {
        let i = self.symbols.partition_point(|(a, _)| *a <= addr);
        (i > 0).then(|| self.symbols[i - 1].1.as_str())
    }

    /// Locking code, in perf's sense: the sched and lock text sections (mutex, rwsem,
    /// spinlock slow paths), and the tracepoint glue the callchain starts in.
    pub fn is_lock_function(&self, addr: u64) -> bool {
        if self.lock_ranges.iter().any(|&(a, b)| a <= addr && addr < b) {
            return true;
        }
        match self.symbol(addr) {
            Some(name) => {
                name.starts_with("__traceiter_")
                    || name.starts_with("perf_trace_")
                    || name.starts_with("trace_contention")
                    || name.starts_with("__bpf_trace_")
                    || (self.lock_ranges.is_empty() && is_lock_name(name))
            }
            None => false,
        }
    }

    /// The first frame that is not locking code.
    pub fn caller(&self, chain: &[u64]) -> u64 {
        chain
            .iter()
            .copied()
            .filter(|&ip| ip < PERF_CONTEXT_MAX)
            .find(|&ip| !self.is_lock_function(ip))
            .unwrap_or(0)
    }
}

/// Fallback by name when the section markers are missing from kallsyms.
fn is_lock_name(name: &str) -> bool {
    [
        "_raw_spin_",
        "_raw_read_",
        "_raw_write_",
        "queued_spin_lock",
        "queued_read_lock",
        "queued_write_lock",
        "__mutex_lock",
        "mutex_lock",
        "rwsem_down_",
        "down_read",
        "down_write",
        "percpu_down_",
        "__percpu_down",
        "rt_mutex",
        "rt_spin",
        "__down",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Byte offsets of the tracepoint fields in the RAW data, read from tracefs' format file.
#[derive(Debug, Clone, Copy)]
struct Fields {
    lock_addr: usize,
    flags: usize,
}

fn field_offset(format: &str, field: &str) -> Option<usize> {
    format.lines().find_map(|l| {
        let l = l.trim();
        let decl = l.strip_prefix("field:")?.split(';').next()?;
        if decl.split_whitespace().last()? != field {
            return None;
        }
        l.split(';')
            .find_map(|p| p.trim().strip_prefix("offset:")?.parse().ok())
    })
}

/// Decodes one PERF_RECORD_SAMPLE body (sample_type TID|TIME|CPU[|CALLCHAIN]|RAW).
fn decode_sample(
    data: &[u8],
    begin: bool,
    with_chain: bool,
    fields: Fields,
    syms: Option<&Kallsyms>,
) -> Option<Event> {
    let u32_at = |o| u32_at(data, o);
    let u64_at = |o| u64_at(data, o);
    let pid = u32_at(0)?;
    let tid = u32_at(4)?;
    let time = u64_at(8)?;
    // cpu, res: 16..24
    let mut o = 24;
    let mut caller = 0;
    if with_chain {
        let nr = u64_at(o)? as usize;
        o += 8;
        let chain: Vec<u64> = (0..nr).filter_map(|i| u64_at(o + 8 * i)).collect();
        o += 8 * nr;
        caller = syms.map_or(0, |s| s.caller(&chain));
    }
    let size = u32_at(o)? as usize;
    let raw = data.get(o + 4..o + 4 + size)?;
    let lock_addr = super::trace_rings::u64_at(raw, fields.lock_addr)?;
    let flags = super::trace_rings::u32_at(raw, fields.flags)?;
    Some(Event {
        begin,
        pid,
        tid,
        time,
        lock_addr,
        flags,
        caller,
    })
}

/// The index of contention_begin in the tracepoint list (contention_end is 1).
const BEGIN_SPEC: usize = 0;

/// Drains the rings until told to stop; the rings are returned so that they are
/// dropped after the report is built, not while the reader is still running.
fn read_rings(
    mut rings: Vec<TraceRing>,
    stop: &AtomicBool,
    begin_fields: Fields,
    end_fields: Fields,
    syms: &Kallsyms,
) -> (Vec<TraceRing>, Collected) {
    let is_begin: Vec<bool> = rings.iter().map(|r| r.spec == BEGIN_SPEC).collect();
    let mut losses: Vec<LossTracker> = rings.iter().map(|_| LossTracker::default()).collect();
    let mut got = Collected::default();
    drain_until_stopped(&mut rings, stop, |ring, record| match record {
        RingRecord::Sample(data) => {
            let begin = is_begin[ring];
            let fields = if begin { begin_fields } else { end_fields };
            if let Some(e) = decode_sample(data, begin, begin, fields, Some(syms)) {
                losses[ring].sample(e.time, &mut got.loss_gaps);
                got.events.push(e);
            }
        }
        RingRecord::Lost(n) => {
            got.lost += n;
            losses[ring].loss();
        }
    });
    for loss in &mut losses {
        loss.finish(&mut got.loss_gaps);
    }
    (rings, got)
}

#[derive(Default)]
struct Collected {
    events: Vec<Event>,
    lost: u64,
    /// Stretches (from, to) of time in which some ring lost samples.
    loss_gaps: Vec<(u64, u64)>,
}

/// Where a ring lost samples: a loss record sits between the samples before and after
/// it, so the lost events happened between those two times.
#[derive(Default)]
pub(crate) struct LossTracker {
    last_time: u64,
    lost_since: Option<u64>,
}

impl LossTracker {
    pub(crate) fn loss(&mut self) {
        self.lost_since.get_or_insert(self.last_time);
    }

    pub(crate) fn sample(&mut self, time: u64, gaps: &mut Vec<(u64, u64)>) {
        if let Some(from) = self.lost_since.take() {
            gaps.push((from, time));
        }
        self.last_time = time;
    }

    /// A loss with no sample after it lasts to the end of the trace.
    pub(crate) fn finish(&mut self, gaps: &mut Vec<(u64, u64)>) {
        if let Some(from) = self.lost_since.take() {
            gaps.push((from, u64::MAX));
        }
    }
}

/// Tracing in progress; `stop` ends it and builds the report.
pub struct LockTracer {
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<(Vec<TraceRing>, Collected)>>,
    syms: Arc<Kallsyms>,
    _tracefs: MountGuard,
}

/// Why tracing cannot run here, with the remedy.
pub fn unavailable(reason: impl Into<String>) -> Unavailable {
    crate::system::probe::capability::lock_contention()
        .unavailable("lock contention (lock:contention_begin/end)", reason)
}

impl LockTracer {
    /// Opens and enables the tracepoints on every online CPU.
    pub fn start() -> Result<LockTracer, String> {
        if !crate::system::is_root()
            && crate::system::probe::perf_event_paranoid().is_none_or(|p| p > -1)
        {
            return Err(
                "system-wide tracepoint sampling needs root (or perf_event_paranoid = -1)".into(),
            );
        }
        let tracefs = MountGuard::ensure("tracefs", TRACEFS).map_err(|e| format!("{e:#}"))?;
        let dir = |t: &str| format!("{}/events/lock/{t}", tracefs.path());
        let read = |t: &str, f: &str| {
            std::fs::read_to_string(format!("{}/{f}", dir(t))).map_err(|e| {
                format!(
                    "{}/{f}: {e} (kernel without the lock tracepoints, before 5.19?)",
                    dir(t)
                )
            })
        };
        let fields = |t: &str, second: &str| -> Result<Fields, String> {
            let fmt = read(t, "format")?;
            Ok(Fields {
                lock_addr: field_offset(&fmt, "lock_addr")
                    .ok_or("no lock_addr field in the tracepoint format")?,
                flags: field_offset(&fmt, second)
                    .ok_or("no flags/ret field in the tracepoint format")?,
            })
        };
        let (begin_fields, end_fields) = (
            fields("contention_begin", "flags")?,
            fields("contention_end", "ret")?,
        );
        let id = |t: &str| {
            super::trace_rings::tracepoint_id(
                tracefs.path(),
                "lock",
                t,
                "kernel without the lock tracepoints, before 5.19?",
            )
        };
        let (begin_id, end_id) = (id("contention_begin")?, id("contention_end")?);
        let syms = Arc::new(Kallsyms::load()?);
        let raw = SampleFlag::CPU | SampleFlag::RAW;
        let specs = [
            TracepointSpec {
                id: begin_id,
                name: "lock:contention_begin".into(),
                extra: raw | SampleFlag::CALLCHAIN,
            },
            TracepointSpec {
                id: end_id,
                name: "lock:contention_end".into(),
                extra: raw,
            },
        ];
        let pages = ring_pages(crate::system::cpu::online_cpus().len());
        let rings = open_per_cpu(&specs, pages, RING_PAGES_FALLBACK)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, syms2) = (Arc::clone(&stop), Arc::clone(&syms));
        let reader = std::thread::Builder::new()
            .name("thpbench-locks".into())
            .spawn(move || read_rings(rings, &stop2, begin_fields, end_fields, &syms2))
            .map_err(|e| format!("spawning the reader thread: {e}"))?;
        Ok(LockTracer {
            stop,
            reader: Some(reader),
            syms,
            _tracefs: tracefs,
        })
    }

    /// Ends tracing; waits are clipped to the measured window [window_start, window_end]
    /// (CLOCK_MONOTONIC ns); those of thpbench's own checks (`checks`: tid -> sorted
    /// spans) are kept apart.
    pub fn stop(
        mut self,
        window_start: u64,
        window_end: u64,
        checks: &HashMap<u32, Vec<(u64, u64)>>,
    ) -> LockReport {
        self.stop.store(true, Ordering::Relaxed);
        let (rings, got) = self
            .reader
            .take()
            .expect("stopped once")
            .join()
            .unwrap_or_default_pair();
        drop(rings);
        let trace = Trace {
            events: &got.events,
            lost: got.lost,
            loss_gaps: &got.loss_gaps,
            window: (window_start, window_end),
            checks,
        };
        summarize(&trace, &self.syms, std::process::id())
    }
}

trait JoinDefault {
    fn unwrap_or_default_pair(self) -> (Vec<TraceRing>, Collected);
}

impl JoinDefault for std::thread::Result<(Vec<TraceRing>, Collected)> {
    fn unwrap_or_default_pair(self) -> (Vec<TraceRing>, Collected) {
        self.unwrap_or_else(|_| (Vec::new(), Collected::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const KALLSYMS: &str = "\
ffffffff81000000 T _stext
ffffffff81100000 T follow_page_pte
ffffffff81100400 T gup_fast_fallback
ffffffff81200000 t perf_trace_contention_begin
ffffffff81300000 T __sched_text_start
ffffffff81300100 T rwsem_down_read_slowpath
ffffffff81300400 T __sched_text_end
ffffffff81400000 T __lock_text_start
ffffffff81400100 T _raw_spin_lock
ffffffff81400200 T queued_spin_lock_slowpath
ffffffff81400400 T __lock_text_end
";

    #[test]
    fn caller_is_the_first_frame_outside_locking_code() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let chain = [
            PERF_CONTEXT_MAX + 3,
            0xffffffff81200010,
            0xffffffff81400210,
            0xffffffff81400110,
            0xffffffff81100010,
        ];
        assert_eq!(s.symbol(s.caller(&chain)), Some("follow_page_pte"));
        assert!(s.is_lock_function(0xffffffff81300150));
        assert!(!s.is_lock_function(0xffffffff81100410));
    }

    #[test]
    fn rings_are_large_on_few_cpus_and_bounded_in_total_on_many() {
        assert_eq!(ring_pages(2), 1024);
        assert_eq!(ring_pages(24), 256);
        assert_eq!(ring_pages(64), 128);
        assert_eq!(ring_pages(512), 128);
        for cpus in 1..300 {
            let p = ring_pages(cpus);
            assert!(p.is_power_of_two());
            assert!(p == RING_PAGES_FALLBACK || 2 * cpus * p <= RINGS_TOTAL_PAGES);
        }
    }

    #[test]
    fn a_loss_becomes_a_gap_between_the_samples_around_it() {
        let (mut t, mut gaps) = (LossTracker::default(), Vec::new());
        t.sample(10, &mut gaps);
        t.loss();
        t.loss();
        t.sample(50, &mut gaps);
        t.sample(60, &mut gaps);
        t.finish(&mut gaps);
        assert_eq!(gaps, vec![(10, 50)]);
        // A loss before any sample starts at 0; one after the last sample never ends.
        let (mut t, mut gaps) = (LossTracker::default(), Vec::new());
        t.loss();
        t.sample(70, &mut gaps);
        t.loss();
        t.finish(&mut gaps);
        assert_eq!(gaps, vec![(0, 70), (70, u64::MAX)]);
    }

    #[test]
    fn decodes_a_sample_with_callchain_and_raw_fields() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let mut d = Vec::new();
        d.extend_from_slice(&10u32.to_ne_bytes()); // pid
        d.extend_from_slice(&11u32.to_ne_bytes()); // tid
        d.extend_from_slice(&12345u64.to_ne_bytes()); // time
        d.extend_from_slice(&1u32.to_ne_bytes()); // cpu
        d.extend_from_slice(&0u32.to_ne_bytes());
        d.extend_from_slice(&2u64.to_ne_bytes()); // nr
        d.extend_from_slice(&0xffffffff81400210u64.to_ne_bytes());
        d.extend_from_slice(&0xffffffff81100010u64.to_ne_bytes());
        let mut raw = vec![0u8; 20];
        raw[8..16].copy_from_slice(&0xdeadu64.to_ne_bytes());
        raw[16..20].copy_from_slice(&LCB_F_WRITE.to_ne_bytes());
        d.extend_from_slice(&(raw.len() as u32).to_ne_bytes());
        d.extend_from_slice(&raw);
        let e = decode_sample(
            &d,
            true,
            true,
            Fields {
                lock_addr: 8,
                flags: 16,
            },
            Some(&s),
        )
        .unwrap();
        assert_eq!(
            (e.pid, e.tid, e.time, e.lock_addr, e.flags),
            (10, 11, 12345, 0xdead, LCB_F_WRITE)
        );
        assert_eq!(s.symbol(e.caller), Some("follow_page_pte"));
        assert_eq!(lock_type(e.flags), "rwsem:W");
    }

    #[test]
    fn field_offsets_come_from_the_format_file() {
        let fmt = "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:void * lock_addr;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:unsigned int flags;\toffset:16;\tsize:4;\tsigned:0;\n";
        assert_eq!(field_offset(fmt, "lock_addr"), Some(8));
        assert_eq!(field_offset(fmt, "flags"), Some(16));
        assert_eq!(field_offset(fmt, "ret"), None);
    }
}
