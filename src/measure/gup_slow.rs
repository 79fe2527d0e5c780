//! GUP slow-path fallbacks: the lockless fast path (gup_fast, mm/gup.c) gives up when it
//! meets a page table it cannot walk without the lock (a PMD being split or collapsed, a
//! swapped-out or not yet faulted page) and gup_fast_fallback continues in
//! __gup_longterm_locked -> __get_user_pages_locked, which takes mmap_lock for reading.
//! Counted from the `mmap_lock:mmap_lock_start_locking` tracepoint with kernel
//! callchains (as the lock tracer samples lock:contention_begin): an acquisition whose
//! callchain passes through those functions is a fallback; the wait runs to the same
//! task's `mmap_lock:mmap_lock_acquire_returned`, when that is the task's next event (a
//! start followed by another start lost its acquire: no wait) and no ring lost samples
//! in between (as the lock tracer drops pairs across a loss). Only the run's own threads
//! count (workers, disturbers, and the uring engine's io-wq workers, all of this
//! process). `per_1000_io` is per 1000 I/Os the workers issued in the window, verify's
//! read-backs included, since their GUP falls back as the measured I/O's does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use perf_event::SampleFlag;

use super::lockstat::{Kallsyms, LossTracker};
use super::trace_rings::{
    drain_until_stopped, open_per_cpu, u32_at, u64_at, RingRecord, TraceRing, TracepointSpec,
};
use crate::system::mounts::{MountGuard, TRACEFS};

const RING_PAGES: usize = 64;

/// Functions only the GUP slow path runs through on its way to mmap_lock. The static
/// ones may be inlined (on 6.18 here `__get_user_pages_locked` is), so the exported
/// entry points that call them are listed too: under `pin_user_pages_fast` and
/// `get_user_pages_fast` mmap_lock is taken only by the fallback (the lockless walk takes
/// no lock), and `*_unlocked` are slow-path entries. `internal_get_user_pages_fast` is
/// the fallback's name before 6.6.
const GUP_SLOW_FRAMES: &[&str] = &[
    "gup_fast_fallback",
    "internal_get_user_pages_fast",
    "__gup_longterm_locked",
    "__get_user_pages_locked",
    "get_user_pages_unlocked",
    "pin_user_pages_unlocked",
    "pin_user_pages_fast",
    "get_user_pages_fast",
];

/// Why the slow path cannot be told apart in this kernel's symbols, if it cannot: no
/// frame of `GUP_SLOW_FRAMES` is there (all inlined or renamed), so every count would
/// be 0 whatever happened.
fn frames_missing(syms: &Kallsyms) -> Option<String> {
    (!GUP_SLOW_FRAMES.iter().any(|f| syms.has(f))).then(|| {
        format!(
            "none of the GUP slow-path functions ({}) is in /proc/kallsyms (inlined or renamed in this kernel), so a fallback cannot be told from other mmap_lock acquisitions",
            GUP_SLOW_FRAMES.join(", ")
        )
    })
}

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
    /// Stretches (from, to) in which some ring lost samples.
    loss_gaps: Vec<(u64, u64)>,
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
        let id = |t: &str| {
            super::trace_rings::tracepoint_id(
                tracefs.path(),
                "mmap_lock",
                t,
                "kernel without the mmap_lock tracepoints?",
            )
        };
        let (start_id, acquired_id) = (
            id("mmap_lock_start_locking")?,
            id("mmap_lock_acquire_returned")?,
        );
        let syms = Arc::new(Kallsyms::load()?);
        if let Some(why) = frames_missing(&syms) {
            return Err(why);
        }
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

    /// Stops tracing; `ios` is the I/Os the workers issued in the window (measured and
    /// verify read-backs).
    pub fn stop(mut self, ios: u64) -> GupSlowPath {
        self.stop.store(true, Ordering::Relaxed);
        let got = self
            .reader
            .take()
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default();
        summarize(&got, ios)
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
    let mut losses: Vec<LossTracker> = rings.iter().map(|_| LossTracker::default()).collect();
    let mut got = Collected::default();
    drain_until_stopped(&mut rings, stop, |ring, record| match record {
        RingRecord::Sample(data) => {
            let start = is_start[ring];
            let s = decode(data, start, syms);
            if let Some(s) = s {
                // Every sample bounds a loss, whoever's it is.
                losses[ring].sample(s.2, &mut got.loss_gaps);
            }
            match s {
                Some(s) if s.0 == pid && start => got.starts.push(s),
                Some(s) if s.0 == pid => got.acquired.push(s),
                _ => {}
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

/// One task's mmap_lock event: a start (on the GUP slow path or not) or an acquire.
#[derive(Clone, Copy)]
enum Step {
    Start { gup: bool },
    Acquired,
}

/// Counts the GUP slow-path acquisitions; the wait of each is to its task's next event
/// when that is an acquire_returned and no ring lost samples in between.
fn summarize(got: &Collected, ios: u64) -> GupSlowPath {
    let mut by_task: HashMap<u32, Vec<(u64, Step)>> = HashMap::new();
    for &(_, tid, time, gup) in &got.starts {
        by_task
            .entry(tid)
            .or_default()
            .push((time, Step::Start { gup }));
    }
    for &(_, tid, time, _) in &got.acquired {
        by_task.entry(tid).or_default().push((time, Step::Acquired));
    }
    let mut out = GupSlowPath {
        available: true,
        lost_samples: got.lost,
        bound: (got.lost > 0).then(|| "lower".to_string()),
        ..GupSlowPath::default()
    };
    for steps in by_task.values_mut() {
        steps.sort_by_key(|&(t, _)| t);
        for (i, &(t0, step)) in steps.iter().enumerate() {
            if !matches!(step, Step::Start { gup: true }) {
                continue;
            }
            out.count += 1;
            match steps.get(i + 1) {
                Some(&(t1, Step::Acquired)) => {
                    if got.loss_gaps.iter().any(|&(from, to)| from < t1 && t0 < to) {
                        out.dropped_near_loss += 1;
                    } else {
                        out.wait_ns += t1 - t0;
                    }
                }
                _ => out.unpaired += 1,
            }
        }
    }
    out.per_1000_io = out.count as f64 * 1000.0 / ios.max(1) as f64;
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
    fn a_kernel_whose_gup_frames_are_all_inlined_is_unavailable_not_zero() {
        let inlined =
            Kallsyms::parse("ffffffff81000000 T _stext\nffffffff81100000 T lock_mm_and_find_vma\n")
                .unwrap();
        assert!(frames_missing(&inlined).is_some_and(|w| w.contains("inlined")));
        // Only the exported entry point left (the static fallback inlined into it): the
        // chain through it still counts.
        let exported =
            Kallsyms::parse("ffffffff81000000 T _stext\nffffffff81100000 T pin_user_pages_fast\n")
                .unwrap();
        assert_eq!(frames_missing(&exported), None);
        let chain = sample(&[0xffffffff81100010]);
        assert_eq!(decode(&chain, true, &exported), Some((7, 8, 1000, true)));
    }

    #[test]
    fn waits_pair_with_the_same_tasks_next_acquire() {
        let got = Collected {
            starts: vec![
                (1, 10, 100, true),
                (1, 11, 150, true),
                (1, 10, 500, false), // a page fault: not counted
                (1, 10, 900, true),
            ],
            acquired: vec![
                (1, 10, 130, false),
                (1, 11, 400, false),
                (1, 10, 510, false),
                (1, 10, 905, false),
            ],
            ..Collected::default()
        };
        let r = summarize(&got, 3000);
        assert_eq!(r.count, 3);
        assert_eq!(r.wait_ns, 30 + 250 + 5);
        assert_eq!(r.per_1000_io, 1.0);
        assert_eq!((r.unpaired, r.dropped_near_loss, r.lost_samples), (0, 0, 0));
        assert_eq!(r.bound, None);
        assert!(r.available);
    }

    #[test]
    fn a_lost_acquire_or_a_loss_between_never_makes_a_wait() {
        let got = Collected {
            starts: vec![
                // Task 10's first acquire was lost: the next event is its next start,
                // and pairing it with the acquire at 905 would make an 800 ns wait.
                (1, 10, 100, true),
                (1, 10, 900, true),
                // Task 11 waits across a stretch in which a ring lost samples.
                (1, 11, 2000, true),
                // Task 12 pairs cleanly.
                (1, 12, 3000, true),
            ],
            acquired: vec![
                (1, 10, 905, false),
                (1, 11, 2600, false),
                (1, 12, 3010, false),
            ],
            lost: 3,
            loss_gaps: vec![(2100, 2200)],
        };
        let r = summarize(&got, 4000);
        assert_eq!(r.count, 4);
        assert_eq!(r.wait_ns, 5 + 10);
        assert_eq!((r.unpaired, r.dropped_near_loss), (1, 1));
        assert_eq!(r.bound.as_deref(), Some("lower"));
    }
}
