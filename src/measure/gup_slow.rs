//! GUP slow-path fallbacks: the lockless fast path (gup_fast, mm/gup.c) gives up when it
//! meets a page table it cannot walk without the lock (a PMD being split or collapsed, a
//! swapped-out or not yet faulted page) and gup_fast_fallback continues in
//! __gup_longterm_locked -> __get_user_pages_locked, which takes mmap_lock for reading.
//! Counted from the `mmap_lock:mmap_lock_start_locking` tracepoint with kernel
//! callchains (as the lock tracer samples lock:contention_begin): an acquisition whose
//! callchain passes through those functions is a fallback; the wait runs to the same
//! task's `mmap_lock:mmap_lock_acquire_returned`. Only the run's own threads count
//! (workers, disturbers, and the uring engine's io-wq workers, all of this process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use perf_event::SampleFlag;

use super::lockstat::Kallsyms;
use super::trace_rings::{
    drain_until_stopped, open_per_cpu, u32_at, u64_at, RingRecord, TraceRing, TracepointSpec,
};
use crate::system::mounts::{MountGuard, TRACEFS};

const RING_PAGES: usize = 64;

/// Functions only the GUP slow path runs through on its way to mmap_lock.
const GUP_SLOW_FRAMES: &[&str] = &[
    "gup_fast_fallback",
    "__gup_longterm_locked",
    "__get_user_pages_locked",
    "get_user_pages_unlocked",
];

pub use crate::result::GupSlowPath;

/// One decoded sample: (pid, tid, time, on the GUP slow path).
type Sample = (u32, u32, u64, bool);

/// The index of mmap_lock_start_locking in the tracepoint list (acquire_returned is 1).
const START_SPEC: usize = 0;

#[derive(Default)]
struct Collected {
    starts: Vec<Sample>,
    acquired: Vec<Sample>,
    lost: u64,
}

pub struct GupSlowTracer {
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<Collected>>,
    _tracefs: MountGuard,
}

impl GupSlowTracer {
    /// Samples mmap_lock_start_locking (with callchain) and mmap_lock_acquire_returned on
    /// every online CPU.
    pub fn start() -> Result<GupSlowTracer, String> {
        if !crate::system::is_root() {
            return Err("system-wide tracepoint sampling needs root".into());
        }
        let tracefs = MountGuard::ensure("tracefs", TRACEFS).map_err(|e| format!("{e:#}"))?;
        let id = |t: &str| -> Result<u64, String> {
            let path = format!("{}/events/mmap_lock/{t}/id", tracefs.path());
            std::fs::read_to_string(&path)
                .map_err(|e| format!("{path}: {e} (kernel without the mmap_lock tracepoints?)"))?
                .trim()
                .parse()
                .map_err(|_| format!("{path}: not a tracepoint id"))
        };
        let (start_id, acquired_id) = (
            id("mmap_lock_start_locking")?,
            id("mmap_lock_acquire_returned")?,
        );
        let syms = Arc::new(Kallsyms::load()?);
        let specs = [
            TracepointSpec {
                id: start_id,
                name: "mmap_lock:mmap_lock_start_locking".into(),
                extra: SampleFlag::CALLCHAIN,
            },
            TracepointSpec {
                id: acquired_id,
                name: "mmap_lock:mmap_lock_acquire_returned".into(),
                extra: SampleFlag::empty(),
            },
        ];
        let rings = open_per_cpu(&specs, RING_PAGES, RING_PAGES)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let pid = std::process::id();
        let reader = std::thread::Builder::new()
            .name("thpbench-gupslow".into())
            .spawn(move || read_rings(rings, &stop2, &syms, pid))
            .map_err(|e| format!("spawning the reader thread: {e}"))?;
        Ok(GupSlowTracer {
            stop,
            reader: Some(reader),
            _tracefs: tracefs,
        })
    }

    /// Stops tracing; `ops` is the run's measured I/O count.
    pub fn stop(mut self, ops: u64) -> GupSlowPath {
        self.stop.store(true, Ordering::Relaxed);
        let got = self
            .reader
            .take()
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default();
        summarize(&got.starts, &got.acquired, got.lost, ops)
    }
}

/// Drains the rings until told to stop, keeping only the samples of process `pid`.
fn read_rings(
    mut rings: Vec<TraceRing>,
    stop: &AtomicBool,
    syms: &Kallsyms,
    pid: u32,
) -> Collected {
    let is_start: Vec<bool> = rings.iter().map(|r| r.spec == START_SPEC).collect();
    let mut got = Collected::default();
    drain_until_stopped(&mut rings, stop, |ring, record| match record {
        RingRecord::Sample(data) => {
            let start = is_start[ring];
            match decode(data, start, syms) {
                Some(s) if s.0 == pid && start => got.starts.push(s),
                Some(s) if s.0 == pid => got.acquired.push(s),
                _ => {}
            }
        }
        RingRecord::Lost(n) => got.lost += n,
    });
    got
}

/// Decodes a sample of sample_type TID|TIME[|CALLCHAIN].
fn decode(data: &[u8], with_chain: bool, syms: &Kallsyms) -> Option<Sample> {
    let u32_at = |o| u32_at(data, o);
    let u64_at = |o| u64_at(data, o);
    let (pid, tid, time) = (u32_at(0)?, u32_at(4)?, u64_at(8)?);
    let gup = with_chain && {
        let nr = u64_at(16)? as usize;
        (0..nr).filter_map(|i| u64_at(24 + 8 * i)).any(|ip| {
            syms.symbol(ip)
                .is_some_and(|s| GUP_SLOW_FRAMES.contains(&s))
        })
    };
    Some((pid, tid, time, gup))
}

/// Counts the GUP slow-path acquisitions and pairs each with its task's next
/// acquire_returned for the wait.
fn summarize(starts: &[Sample], acquired: &[Sample], lost: u64, ops: u64) -> GupSlowPath {
    let mut by_task: HashMap<u32, Vec<u64>> = HashMap::new();
    for &(_, tid, time, _) in acquired {
        by_task.entry(tid).or_default().push(time);
    }
    for times in by_task.values_mut() {
        times.sort_unstable();
    }
    let mut out = GupSlowPath {
        available: true,
        lost_samples: lost,
        ..GupSlowPath::default()
    };
    for &(_, tid, time, gup) in starts.iter().filter(|s| s.3) {
        debug_assert!(gup);
        out.count += 1;
        if let Some(times) = by_task.get(&tid) {
            let i = times.partition_point(|&t| t < time);
            if let Some(&t) = times.get(i) {
                out.wait_ns += t - time;
            }
        }
    }
    out.per_1000_io = out.count as f64 * 1000.0 / ops.max(1) as f64;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
ffffffff81000000 T _stext
ffffffff81100000 T __mmap_lock_do_trace_start_locking
ffffffff81100400 T __get_user_pages_locked
ffffffff81100800 T gup_fast_fallback
ffffffff81100c00 T lock_mm_and_find_vma
ffffffff81101000 T iov_iter_extract_pages
";

    fn sample(chain: &[u64]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&7u32.to_ne_bytes());
        d.extend_from_slice(&8u32.to_ne_bytes());
        d.extend_from_slice(&1000u64.to_ne_bytes());
        d.extend_from_slice(&(chain.len() as u64).to_ne_bytes());
        for ip in chain {
            d.extend_from_slice(&ip.to_ne_bytes());
        }
        d
    }

    #[test]
    fn only_chains_through_the_gup_slow_path_count() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let gup = sample(&[0xffffffff81100010, 0xffffffff81100410, 0xffffffff81100810]);
        let fault = sample(&[0xffffffff81100010, 0xffffffff81100c10]);
        assert_eq!(decode(&gup, true, &s), Some((7, 8, 1000, true)));
        assert_eq!(decode(&fault, true, &s), Some((7, 8, 1000, false)));
        assert_eq!(decode(&gup[..16], false, &s), Some((7, 8, 1000, false)));
    }

    #[test]
    fn waits_pair_with_the_same_tasks_next_acquire() {
        let starts = [
            (1, 10, 100, true),
            (1, 11, 150, true),
            (1, 10, 500, false), // a page fault: not counted
            (1, 10, 900, true),
        ];
        let acquired = [
            (1, 10, 130, false),
            (1, 11, 400, false),
            (1, 10, 510, false),
            (1, 10, 905, false),
        ];
        let r = summarize(&starts, &acquired, 2, 3000);
        assert_eq!(r.count, 3);
        assert_eq!(r.wait_ns, 30 + 250 + 5);
        assert_eq!(r.per_1000_io, 1.0);
        assert_eq!(r.lost_samples, 2);
        assert!(r.available);
    }
}
