//! Stalls: stretches of the measured phase in which the whole process did not run
//! (SIGSTOP, a frozen cgroup, a paused VM, a process starved of every CPU) or the system
//! was suspended. Such a stretch lands in the figures as one huge latency per worker and
//! a hole in the timeline; it measures the pause, not the I/O.
//!
//! A slow I/O looks the same from inside one worker (a long gap between two of its
//! completions, no CPU time used meanwhile), and so do all workers blocked together on
//! one lock (a disturber holding mmap_lock). What tells a stop apart is a second,
//! independent witness: the main thread, which only sleeps 50 ms at a time and touches
//! nothing the workers use, wakes late only when the process itself was not run. So a
//! stall is a stretch in which the main thread woke late *and* no worker completed an
//! operation; its length is the overlap of the two. One case holds up even the main
//! thread: a fork disturber's fork write-protects the whole address space under
//! mmap_lock, and the main thread's next write to its stack waits for it. But the fork
//! runs on a CPU meanwhile, and a stopped process uses none: a stretch in which the
//! process used more than a quarter of a CPU is no stall.
//!
//! The workers' side is [`Gaps`]: each keeps its longest gaps between consecutive
//! completions in a fixed array (one compare per operation, no allocation, nothing
//! shared). The main thread's side is [`Watch`]. [`find`] puts them together.

use crate::result::Stall;

/// Gaps a worker keeps: its longest. A stall longer than the 8 longest other gaps of
/// every worker would be missed, and with 8 such gaps the run is no evidence anyway.
pub const GAPS_KEPT: usize = 8;
/// Completion gaps shorter than this are ordinary latency, not kept.
const GAP_FLOOR_NS: u64 = 10_000_000;
/// A main-thread wake later than this past its sleep is kept for [`find`].
const LATE_FLOOR_NS: u64 = 50_000_000;
/// Within a stall the process may have used at most this share of one CPU.
const STALL_MAX_CPU_SHARE: u64 = 4;
/// The shortest stall that counts, whatever the latencies: 250 ms is far beyond a
/// scheduler's delays on a busy machine (tens of ms), and well under the SIGSTOP or VM
/// pause that distorts a run of seconds.
pub const STALL_MIN_NS: u64 = 250_000_000;
/// A stall must also be this many times the run's p99 latency: "much longer than the
/// operations".
pub const STALL_P99_FACTOR: u64 = 10;

/// A worker's longest gaps between consecutive completions (from the epoch to its first
/// completion, then completion to completion), as (from, to) in CLOCK_MONOTONIC ns.
#[derive(Debug, Clone, Copy)]
pub struct Gaps {
    spans: [(u64, u64); GAPS_KEPT],
    len: usize,
    /// Gaps must be longer than this to be kept: the floor, or the shortest kept once
    /// the array is full.
    keep_over: u64,
    /// The worker's last completion (its measured loop's end, once `finish`ed).
    last: u64,
    /// Set once the loop ended: after it the worker completes nothing, which is no
    /// progress either.
    ended: bool,
}

impl Gaps {
    pub fn new(epoch: u64) -> Gaps {
        Gaps {
            spans: [(0, 0); GAPS_KEPT],
            len: 0,
            keep_over: GAP_FLOOR_NS,
            last: epoch,
            ended: false,
        }
    }

    /// One completion at `t` (the hot loop: a subtraction and a compare).
    #[inline]
    pub fn completed(&mut self, t: u64) {
        if t.saturating_sub(self.last) > self.keep_over {
            self.keep(self.last, t);
        }
        self.last = t;
    }

    /// The loop ended at `t`: nothing completes after it.
    pub fn finish(&mut self, t: u64) {
        self.completed(t.max(self.last));
        self.ended = true;
    }

    #[cold]
    fn keep(&mut self, from: u64, to: u64) {
        if self.len < GAPS_KEPT {
            self.spans[self.len] = (from, to);
            self.len += 1;
        } else {
            let shortest = (0..GAPS_KEPT)
                .min_by_key(|&i| self.spans[i].1 - self.spans[i].0)
                .unwrap_or(0);
            self.spans[shortest] = (from, to);
        }
        if self.len == GAPS_KEPT {
            self.keep_over = self.spans.iter().map(|s| s.1 - s.0).min().unwrap_or(0);
        }
    }

    /// The kept gaps, plus the time after the loop ended.
    fn spans(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let after = self.ended.then_some((self.last, u64::MAX));
        self.spans[..self.len].iter().copied().chain(after)
    }

    /// The part of [from, to) in which this worker completed nothing, where that is one
    /// kept gap: the longest overlap.
    fn idle_within(&self, from: u64, to: u64) -> Option<(u64, u64)> {
        self.spans()
            .map(|(a, b)| (a.max(from), b.min(to)))
            .filter(|(a, b)| a < b)
            .max_by_key(|(a, b)| b - a)
    }
}

/// One late wake of the main thread: it slept from `from` and woke at `to`, `late_ns`
/// after it asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Late {
    pub from: u64,
    pub to: u64,
    /// CPU time the whole process used meanwhile (CLOCK_PROCESS_CPUTIME_ID): near 0 for a
    /// stopped process.
    pub process_cpu_ns: u64,
}

/// A suspend of the system: CLOCK_BOOTTIME ran on while CLOCK_MONOTONIC stood still, at
/// monotonic time `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspend {
    pub at: u64,
    pub length_ns: u64,
}

/// The main thread's side: call `tick` after every sleep of the wait loop.
pub struct Watch {
    sleep_ns: u64,
    last: u64,
    last_cpu: u64,
    last_boot_offset: u64,
    pub late: Vec<Late>,
    pub suspends: Vec<Suspend>,
}

use crate::clock::ns as clock;

/// How far CLOCK_BOOTTIME is ahead of CLOCK_MONOTONIC: it grows only while suspended.
fn boot_offset() -> u64 {
    let mono = clock(libc::CLOCK_MONOTONIC);
    clock(libc::CLOCK_BOOTTIME).saturating_sub(mono)
}

impl Watch {
    /// Starts watching now; the loop sleeps `sleep_ns` between ticks.
    pub fn start(sleep_ns: u64) -> Watch {
        Watch {
            sleep_ns,
            last: crate::measure::now_ns(),
            last_cpu: clock(libc::CLOCK_PROCESS_CPUTIME_ID),
            last_boot_offset: boot_offset(),
            late: Vec::new(),
            suspends: Vec::new(),
        }
    }

    pub fn tick(&mut self) {
        let now = crate::measure::now_ns();
        let cpu = clock(libc::CLOCK_PROCESS_CPUTIME_ID);
        let offset = boot_offset();
        if now.saturating_sub(self.last) > self.sleep_ns + LATE_FLOOR_NS {
            self.late.push(Late {
                from: self.last,
                to: now,
                process_cpu_ns: cpu.saturating_sub(self.last_cpu),
            });
        }
        // Reading two clocks is not atomic: a few µs of jitter, far below the floor.
        let suspended = offset.saturating_sub(self.last_boot_offset);
        if suspended > LATE_FLOOR_NS {
            self.suspends.push(Suspend {
                at: now,
                length_ns: suspended,
            });
        }
        (self.last, self.last_cpu, self.last_boot_offset) = (now, cpu, offset);
    }
}

/// Where a stall was sought: the measured phase [epoch, end), the shortest stall that
/// counts, and how many threads the process could run at once (its threads: workers,
/// disturbers, collectors, main; at most the CPUs it may run on). The CPU it may have
/// used outside a stall is bounded by that many CPUs' worth, so an overestimate cannot
/// wipe out the CPU a busy process used inside the stretch.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub epoch: u64,
    pub end: u64,
    pub threshold_ns: u64,
    pub threads: u64,
}

/// The stalls of a measured phase: each late wake of the main thread in which every
/// worker was idle too, as long as their overlap, when that is at least the threshold
/// and the process used next to no CPU in it; and every suspend of the system in the
/// phase.
pub fn find(late: &[Late], suspends: &[Suspend], workers: &[Gaps], phase: Phase) -> Vec<Stall> {
    let Phase {
        epoch,
        end,
        threshold_ns,
        threads,
    } = phase;
    let mut stalls = Vec::new();
    for l in late {
        let mut span = (l.from.max(epoch), l.to.min(end));
        for w in workers {
            // A worker that completed something in the stretch was running: only the
            // main thread was held up (starved of a CPU), which the I/O did not see.
            match w.idle_within(span.0, span.1) {
                Some(idle) => span = idle,
                None => {
                    span = (0, 0);
                    break;
                }
            }
        }
        if workers.is_empty() || span.1 <= span.0 || span.1 - span.0 < threshold_ns {
            continue;
        }
        // The CPU time covers the whole late sleep: every thread may have run in the
        // part of it outside the stall.
        let outside = (l.to - l.from) - (span.1 - span.0);
        let inside_cpu = l
            .process_cpu_ns
            .saturating_sub(outside.saturating_mul(threads));
        if inside_cpu > (span.1 - span.0) / STALL_MAX_CPU_SHARE {
            continue;
        }
        stalls.push(Stall {
            kind: "stopped".into(),
            t_ms: (span.0 - epoch) / 1_000_000,
            length_ns: span.1 - span.0,
            process_cpu_ns: Some(l.process_cpu_ns),
            kept: false,
        });
    }
    for s in suspends.iter().filter(|s| (epoch..=end).contains(&s.at)) {
        stalls.push(Stall {
            kind: "suspended".into(),
            t_ms: (s.at - epoch) / 1_000_000,
            length_ns: s.length_ns,
            process_cpu_ns: None,
            kept: false,
        });
    }
    stalls.sort_by_key(|s| s.t_ms);
    stalls
}

/// The shortest stall that counts for a run whose p99 latency is `p99_ns`.
pub fn threshold(p99_ns: u64) -> u64 {
    STALL_MIN_NS.max(p99_ns.saturating_mul(STALL_P99_FACTOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const EPOCH: u64 = 1_000 * MS;

    /// A worker completing an op every `every` ms from the epoch to `end` ms, except in
    /// [hole.0, hole.1) ms.
    fn worker(every: u64, end: u64, hole: Option<(u64, u64)>) -> Gaps {
        let mut g = Gaps::new(EPOCH);
        let mut t = every;
        while t <= end {
            if hole.is_none_or(|(a, b)| t < a || t >= b) {
                g.completed(EPOCH + t * MS);
            }
            t += every;
        }
        g.finish(EPOCH + end * MS);
        g
    }

    fn late(from_ms: u64, to_ms: u64) -> Late {
        Late {
            from: EPOCH + from_ms * MS,
            to: EPOCH + to_ms * MS,
            process_cpu_ns: 3 * MS,
        }
    }

    /// A phase of `ms` from the epoch, with 4 threads.
    fn phase(ms: u64, threshold_ns: u64) -> Phase {
        Phase {
            epoch: EPOCH,
            end: EPOCH + ms * MS,
            threshold_ns,
            threads: 4,
        }
    }

    #[test]
    fn a_stop_of_every_thread_is_a_stall_as_long_as_the_overlap() {
        // Stopped from 1400 ms to 6400 ms: the main thread slept from 1390 ms.
        let workers = [
            worker(1, 8000, Some((1400, 6400))),
            worker(3, 8000, Some((1400, 6400))),
        ];
        let stalls = find(
            &[late(1390, 6401)],
            &[],
            &workers,
            phase(8000, threshold(MS)),
        );
        assert_eq!(stalls.len(), 1, "{stalls:?}");
        let s = &stalls[0];
        assert_eq!(s.kind, "stopped");
        // The first worker's last completion before the stop was at 1399 ms, its first
        // after it at 6400 ms (the second's: 1398 ms and 6402 ms).
        assert_eq!(s.t_ms, 1399);
        assert_eq!(s.length_ns, 6400 * MS - 1399 * MS);
        assert_eq!(s.process_cpu_ns, Some(3 * MS));
    }

    #[test]
    fn one_slow_io_or_a_lock_on_all_workers_without_a_late_main_thread_is_no_stall() {
        // Every worker blocked for 2 s (a disturber holding mmap_lock), the main thread
        // on time: nothing late, no stall.
        let workers = [worker(1, 5000, Some((1000, 3000)))];
        assert!(find(&[], &[], &workers, phase(5000, STALL_MIN_NS)).is_empty());
    }

    #[test]
    fn a_late_main_thread_while_a_worker_ran_is_no_stall() {
        // Main starved of a CPU for 1 s while the second worker kept completing.
        let workers = [worker(1, 5000, Some((1000, 2000))), worker(1, 5000, None)];
        assert!(find(
            &[late(1000, 2000)],
            &[],
            &workers,
            phase(5000, STALL_MIN_NS)
        )
        .is_empty());
    }

    #[test]
    fn a_stop_shorter_than_the_threshold_or_outside_the_phase_is_no_stall() {
        let workers = [worker(1, 5000, Some((1000, 1200)))];
        let p = phase(5000, STALL_MIN_NS);
        assert!(find(&[late(999, 1201)], &[], &workers, p).is_empty());
        // With latencies of 1 s, a 2 s stop is not "much longer".
        let workers = [worker(1000, 9000, Some((2000, 4000)))];
        let p = phase(9000, threshold(1000 * MS));
        assert!(find(&[late(1999, 4001)], &[], &workers, p).is_empty());
        // A stop after the phase (the workers all ended at 5 s) is outside it.
        let workers = [worker(1, 5000, None)];
        let p = phase(5000, STALL_MIN_NS);
        assert!(find(&[late(5100, 9000)], &[], &workers, p).is_empty());
    }

    #[test]
    fn a_stretch_in_which_the_process_ran_is_no_stall() {
        // A fork disturber's 400 ms fork holds mmap_lock: the workers and the main
        // thread (faulting on its stack) wait, but the fork runs on a CPU.
        // The workers' last completion before it at 1010 ms, the next at 1411 ms.
        let workers = [worker(1, 3000, Some((1011, 1411)))];
        let forked = Late {
            process_cpu_ns: 420 * MS,
            ..late(1000, 1410)
        };
        let p = phase(3000, STALL_MIN_NS);
        assert!(find(&[forked], &[], &workers, p).is_empty());
        // The 10 ms of the late sleep before the workers stopped may hold 4 threads'
        // CPU (40 ms) and a quarter of the 400 ms stall (100 ms); more is no stop.
        let stopped = Late {
            process_cpu_ns: 140 * MS,
            ..forked
        };
        assert_eq!(find(&[stopped], &[], &workers, p).len(), 1);
        let busier = Late {
            process_cpu_ns: 141 * MS,
            ..forked
        };
        assert!(find(&[busier], &[], &workers, p).is_empty());
    }

    #[test]
    fn a_worker_that_had_ended_counts_as_idle() {
        // One worker finished its share at 1 s; the other was stopped from 2 s to 4 s.
        let workers = [worker(1, 1000, None), worker(1, 6000, Some((2000, 4000)))];
        let stalls = find(
            &[late(1990, 4000)],
            &[],
            &workers,
            phase(6000, STALL_MIN_NS),
        );
        assert_eq!(stalls.len(), 1, "{stalls:?}");
        assert_eq!(stalls[0].length_ns, 4000 * MS - 1999 * MS);
    }

    #[test]
    fn a_suspend_in_the_phase_is_a_stall() {
        let s = Suspend {
            at: EPOCH + 700 * MS,
            length_ns: 30_000 * MS,
        };
        let stalls = find(&[], &[s], &[], phase(1000, STALL_MIN_NS));
        assert_eq!(stalls.len(), 1);
        assert_eq!(
            (stalls[0].kind.as_str(), stalls[0].t_ms, stalls[0].length_ns),
            ("suspended", 700, 30_000 * MS)
        );
    }

    #[test]
    fn gaps_keep_the_longest_without_growing() {
        let mut g = Gaps::new(0);
        let mut t = 0;
        // 20 gaps of 11..=30 ms, then short ones.
        for i in 11..=30u64 {
            t += i * MS;
            g.completed(t);
        }
        for _ in 0..1000 {
            t += 1000;
            g.completed(t);
        }
        let mut kept: Vec<u64> = g.spans().map(|(a, b)| (b - a) / MS).collect();
        kept.sort_unstable();
        assert_eq!(kept, (23..=30).collect::<Vec<u64>>());
    }

    #[test]
    fn the_watch_sees_a_sleep_far_longer_than_asked() {
        let mut w = Watch::start(1);
        std::thread::sleep(std::time::Duration::from_millis(80));
        w.tick();
        assert_eq!(w.late.len(), 1, "an 80 ms sleep asked as 1 ns is late");
        assert!(w.late[0].to - w.late[0].from >= 80 * MS);
        let mut w = Watch::start(1_000 * MS);
        w.tick();
        assert!(w.late.is_empty());
    }
}
