//! From begin/end samples to waits: pairing per task (the mutex's double begin merged,
//! nested begins kept), clipping to the measured window, dropping pairs across a loss,
//! and the totals by caller and lock type.

use std::collections::HashMap;

use super::{
    lock_type, CallerStat, Event, Kallsyms, LockReport, LCB_F_MUTEX, LCB_F_SPIN, MAX_NESTED,
};

/// What the tracer collected, and the measured window (CLOCK_MONOTONIC ns).
pub struct Trace<'a> {
    pub events: &'a [Event],
    pub lost: u64,
    /// Stretches (from, to) in which some ring lost samples.
    pub loss_gaps: &'a [(u64, u64)],
    pub window: (u64, u64),
    /// thpbench's own checks: per checking thread (tid), the spans (CLOCK_MONOTONIC ns,
    /// sorted) in which it checked. Its contentions that begin inside one are the
    /// tool's, not the measured system's.
    pub checks: &'a HashMap<u32, Vec<(u64, u64)>>,
}

/// Whether `tid`'s contention beginning at `t` lies in one of its checks.
fn in_check(checks: &HashMap<u32, Vec<(u64, u64)>>, tid: u32, t: u64) -> bool {
    checks.get(&tid).is_some_and(|spans| {
        let i = spans.partition_point(|&(from, _)| from <= t);
        i > 0 && t <= spans[i - 1].1
    })
}

/// Whether the wait [from, to] overlaps any thread's check: a wait the check may have
/// caused (a worker's fault or GUP behind the pagemap read's mmap_lock, say).
fn overlaps_a_check(spans: &[(u64, u64)], from: u64, to: u64) -> bool {
    // Sorted by start: only spans starting before `to` can overlap.
    spans[..spans.partition_point(|&(s, _)| s < to)]
        .iter()
        .any(|&(_, e)| from < e)
}

/// The kernel's one real double begin (kernel/locking/mutex.c, __mutex_lock_common):
/// a mutex waiter moving between optimistic spinning (`MUTEX|SPIN`) and sleeping
/// (`MUTEX`) on the same lock, with no end in between.
fn continues_mutex_wait(pending: &Event, next: &Event) -> bool {
    pending.lock_addr == next.lock_addr
        && pending.flags & LCB_F_MUTEX != 0
        && next.flags & LCB_F_MUTEX != 0
        && pending.flags ^ next.flags == LCB_F_SPIN
}

/// Begins and ends paired per task: (begin, end time) of each contention.
#[derive(Default)]
struct Pairing {
    pairs: Vec<(Event, u64)>,
    events: u64,
    end_events: u64,
    unmatched_begin: u64,
    unmatched_end: u64,
}

fn pair(events: &[Event]) -> Pairing {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.time);
    // Per task, the begins without an end yet, innermost last.
    let mut pending: HashMap<u32, Vec<Event>> = HashMap::new();
    let mut p = Pairing::default();
    for e in sorted {
        let stack = pending.entry(e.tid).or_default();
        if e.begin {
            p.events += 1;
            match stack.last_mut() {
                Some(top) if continues_mutex_wait(top, e) => top.flags = e.flags,
                // The same lock again, not the mutex's double begin: the end was lost.
                Some(top) if top.lock_addr == e.lock_addr => {
                    p.unmatched_begin += 1;
                    *top = *e;
                }
                _ => {
                    if stack.len() == MAX_NESTED {
                        stack.remove(0);
                        p.unmatched_begin += 1;
                    }
                    stack.push(*e);
                }
            }
            continue;
        }
        p.end_events += 1;
        match stack.iter().rposition(|b| b.lock_addr == e.lock_addr) {
            Some(i) => {
                // Begins nested inside this one that never saw their end.
                p.unmatched_begin += (stack.len() - i - 1) as u64;
                stack.truncate(i + 1);
                let b = stack.pop().expect("index found above");
                p.pairs.push((b, e.time));
            }
            None => p.unmatched_end += 1,
        }
    }
    p.unmatched_begin += pending.values().map(|s| s.len() as u64).sum::<u64>();
    p
}

/// Pairs begin and end per task and aggregates by caller and by lock type; contentions
/// of tasks of process `run_pid` are also counted apart (`run_*`). Waits are clipped to
/// the window; pairs whose span overlaps a loss are dropped.
pub fn summarize(trace: &Trace, syms: &Kallsyms, run_pid: u32) -> LockReport {
    let p = pair(trace.events);
    let mut report = LockReport {
        available: true,
        scope: "system-wide".into(),
        lost_samples: trace.lost,
        totals_bound: (trace.lost > 0).then(|| "lower".to_string()),
        events: p.events,
        end_events: p.end_events,
        unmatched_begin: p.unmatched_begin,
        unmatched_end: p.unmatched_end,
        run_total_wait_ns: Some(0),
        ..LockReport::default()
    };
    let (window_start, window_end) = trace.window;
    let mut run_tids = std::collections::HashSet::new();
    let mut by_caller: HashMap<(u64, &'static str), CallerStat> = HashMap::new();
    let mut check_callers: HashMap<(u64, &'static str), CallerStat> = HashMap::new();
    let mut all_checks: Vec<(u64, u64)> = trace.checks.values().flatten().copied().collect();
    all_checks.sort_unstable();
    for (b, end) in p.pairs {
        if trace
            .loss_gaps
            .iter()
            .any(|&(from, to)| from < end && b.time < to)
        {
            report.dropped_near_loss += 1;
            continue;
        }
        if end < window_start || b.time > window_end {
            report.outside_window += 1;
            continue;
        }
        let wait = end.min(window_end).saturating_sub(b.time.max(window_start));
        if in_check(trace.checks, b.tid, b.time) {
            let c = report.own_checks.get_or_insert_with(Default::default);
            c.paired += 1;
            c.total_wait_ns += wait;
            c.max_wait_ns = c.max_wait_ns.max(wait);
            let s = check_callers
                .entry((b.caller, lock_type(b.flags)))
                .or_default();
            s.count += 1;
            s.total_wait_ns += wait;
            s.max_wait_ns = s.max_wait_ns.max(wait);
            continue;
        }
        if overlaps_a_check(&all_checks, b.time, end) {
            let c = report.own_checks.get_or_insert_with(Default::default);
            c.overlapping_paired += 1;
            c.overlapping_wait_ns += wait;
        }
        let own = b.pid == run_pid;
        report.paired += 1;
        report.total_wait_ns += wait;
        if own {
            report.run_paired += 1;
            *report.run_total_wait_ns.get_or_insert(0) += wait;
            run_tids.insert(b.tid);
        }
        let ty = lock_type(b.flags);
        let t = report.by_type.entry(ty.to_string()).or_default();
        t.count += 1;
        t.total_wait_ns += wait;
        t.max_wait_ns = t.max_wait_ns.max(wait);
        let c = by_caller.entry((b.caller, ty)).or_default();
        c.count += 1;
        c.total_wait_ns += wait;
        c.max_wait_ns = c.max_wait_ns.max(wait);
        if own {
            c.run_count += 1;
            c.run_total_wait_ns += wait;
        }
    }
    report.run_tasks = run_tids.len() as u64;
    if let Some(c) = report.own_checks.as_mut() {
        c.by_caller = top_callers(check_callers, syms, 5);
    }
    report.by_caller = top_callers(by_caller, syms, 20);
    report
}

/// Callers by symbol (call sites inside one symbol merged, as perf does), the top `n`
/// by total wait.
fn top_callers(
    by_caller: HashMap<(u64, &'static str), CallerStat>,
    syms: &Kallsyms,
    n: usize,
) -> Vec<CallerStat> {
    let mut callers: Vec<CallerStat> = by_caller
        .into_iter()
        .map(|((addr, ty), mut c)| {
            c.caller = if addr == 0 {
                "[unknown]".into()
            } else {
                syms.symbol(addr).unwrap_or("[unknown]").to_string()
            };
            c.lock_type = ty.to_string();
            c.avg_wait_ns = c.total_wait_ns / c.count.max(1);
            c
        })
        .collect();
    // Same caller symbol from different call sites inside it: merge, as perf does.
    callers.sort_by(|a, b| (&a.caller, &a.lock_type).cmp(&(&b.caller, &b.lock_type)));
    let mut merged: Vec<CallerStat> = Vec::new();
    for c in callers {
        match merged.last_mut() {
            Some(m) if m.caller == c.caller && m.lock_type == c.lock_type => {
                m.count += c.count;
                m.total_wait_ns += c.total_wait_ns;
                m.run_count += c.run_count;
                m.run_total_wait_ns += c.run_total_wait_ns;
                m.max_wait_ns = m.max_wait_ns.max(c.max_wait_ns);
                m.avg_wait_ns = m.total_wait_ns / m.count.max(1);
            }
            _ => merged.push(c),
        }
    }
    merged.sort_by(|a, b| {
        b.total_wait_ns
            .cmp(&a.total_wait_ns)
            .then(b.count.cmp(&a.count))
    });
    merged.truncate(n);
    merged
}

#[cfg(test)]
mod tests {
    use super::super::tests::KALLSYMS;
    use super::super::{LCB_F_READ, LCB_F_WRITE};
    use super::*;

    /// Tasks 1-3 belong to process 1 (the run), others to process 9.
    fn ev(begin: bool, tid: u32, time: u64, lock: u64, flags: u32, caller: u64) -> Event {
        Event {
            begin,
            pid: if tid <= 3 { 1 } else { 9 },
            tid,
            time,
            lock_addr: lock,
            flags,
            caller,
        }
    }

    /// Everything inside the window, nothing lost.
    fn whole(events: &[Event], lost: u64, s: &Kallsyms, run_pid: u32) -> LockReport {
        let trace = Trace {
            events,
            lost,
            loss_gaps: &[],
            window: (0, u64::MAX),
            checks: &HashMap::new(),
        };
        summarize(&trace, s, run_pid)
    }

    #[test]
    fn pairs_per_task_and_never_goes_negative() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let pte = 0xffffffff81100010;
        let gup = 0xffffffff81100410;
        let events = [
            ev(true, 1, 100, 0xa, LCB_F_SPIN, pte),
            ev(true, 2, 110, 0xb, LCB_F_READ, gup),
            ev(false, 1, 160, 0xa, 0, 0),
            // A mutex spinning then sleeping: two begins, one end.
            ev(true, 3, 200, 0xc, LCB_F_MUTEX | LCB_F_SPIN, gup),
            ev(true, 3, 250, 0xc, LCB_F_MUTEX, gup),
            ev(false, 3, 400, 0xc, 0, 0),
            ev(false, 2, 1110, 0xb, 0, 0),
            // An end whose begin was lost.
            ev(false, 4, 500, 0xd, 0, 0),
        ];
        let r = whole(&events, 7, &s, 1);
        assert_eq!(r.events, 4);
        assert_eq!(r.paired, 3);
        assert_eq!(r.unmatched_end, 1);
        assert_eq!(r.lost_samples, 7);
        assert_eq!(r.total_wait_ns, 60 + 200 + 1000);
        assert_eq!(r.by_caller[0].caller, "gup_fast_fallback");
        assert_eq!(r.by_caller[0].lock_type, "rwsem:R");
        assert_eq!(r.by_caller[0].total_wait_ns, 1000);
        assert_eq!(r.by_type["mutex"].count, 1);
        assert_eq!(r.by_type["mutex"].total_wait_ns, 200);
        assert_eq!(r.by_type["spinlock"].max_wait_ns, 60);
        assert_eq!((r.run_paired, r.run_total_wait_ns), (3, Some(1260)));
    }

    #[test]
    fn the_runs_own_share_is_kept_apart_per_caller() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let gup = 0xffffffff81100410;
        let events = [
            // Task 2 of the run and task 7 of another process wait on the same lock.
            ev(true, 2, 100, 0xb, LCB_F_READ, gup),
            ev(true, 7, 105, 0xb, LCB_F_READ, gup),
            ev(false, 2, 130, 0xb, 0, 0),
            ev(false, 7, 505, 0xb, 0, 0),
        ];
        let r = whole(&events, 0, &s, 1);
        assert_eq!((r.paired, r.total_wait_ns), (2, 430));
        assert_eq!((r.run_paired, r.run_total_wait_ns), (1, Some(30)));
        let c = &r.by_caller[0];
        assert_eq!((c.count, c.run_count, c.run_total_wait_ns), (2, 1, 30));
        // Seen from the other process, the split is the other way round.
        let r9 = whole(&events, 0, &s, 9);
        assert_eq!((r9.run_paired, r9.run_total_wait_ns), (1, Some(400)));
    }

    #[test]
    fn a_repeated_begin_is_merged_only_for_the_mutex_spin_then_sleep() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let pte = 0xffffffff81100010;
        let (m, ms) = (LCB_F_MUTEX, LCB_F_MUTEX | LCB_F_SPIN);
        let events = [
            // A spinlock whose end was lost, contended again 900 ns later: the second
            // contention waits 10 ns, not 910.
            ev(true, 1, 100, 0xa, LCB_F_SPIN, pte),
            ev(true, 1, 1000, 0xa, LCB_F_SPIN, pte),
            ev(false, 1, 1010, 0xa, 0, 0),
            // A mutex: spin, sleep, spin again when first in line, sleep, then the end:
            // one contention from the first begin.
            ev(true, 2, 2000, 0xc, ms, pte),
            ev(true, 2, 2050, 0xc, m, pte),
            ev(true, 2, 2100, 0xc, ms, pte),
            ev(true, 2, 2150, 0xc, m, pte),
            ev(false, 2, 2300, 0xc, 0, 0),
            // Two spinning begins in a row are two acquisitions: an end was lost.
            ev(true, 3, 3000, 0xd, ms, pte),
            ev(true, 3, 3500, 0xd, ms, pte),
            ev(false, 3, 3520, 0xd, 0, 0),
        ];
        let r = whole(&events, 0, &s, 1);
        assert_eq!((r.paired, r.unmatched_begin, r.unmatched_end), (3, 2, 0));
        assert_eq!(r.by_type["spinlock"].total_wait_ns, 10);
        assert_eq!(r.by_type["mutex"].count, 2);
        assert_eq!(r.by_type["mutex"].total_wait_ns, 300 + 20);
    }

    #[test]
    fn a_spinlock_contended_inside_a_sleeping_lock_nests() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let gup = 0xffffffff81100410;
        // rwsem_down_write_slowpath: begin on the rwsem, then its wait_lock spins.
        let events = [
            ev(true, 1, 100, 0xa, LCB_F_WRITE, gup),
            ev(true, 1, 110, 0xb, LCB_F_SPIN, gup),
            ev(false, 1, 130, 0xb, 0, 0),
            ev(false, 1, 600, 0xa, 0, 0),
        ];
        let r = whole(&events, 0, &s, 1);
        assert_eq!((r.paired, r.unmatched_begin, r.unmatched_end), (2, 0, 0));
        assert_eq!(r.by_type["rwsem:W"].total_wait_ns, 500);
        assert_eq!(r.by_type["spinlock"].total_wait_ns, 20);
    }

    #[test]
    fn waits_are_clipped_to_the_window_and_pairs_across_a_loss_are_dropped() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let pte = 0xffffffff81100010;
        let events = [
            // Began before the window: only the part inside counts.
            ev(true, 1, 500, 0xa, LCB_F_SPIN, pte),
            ev(false, 1, 1200, 0xa, 0, 0),
            // Wholly before the window.
            ev(true, 2, 100, 0xb, LCB_F_SPIN, pte),
            ev(false, 2, 200, 0xb, 0, 0),
            // Spans a stretch in which a ring lost samples: its end may be another's.
            ev(true, 2, 1500, 0xb, LCB_F_SPIN, pte),
            ev(false, 2, 3000, 0xb, 0, 0),
            // Ends after the window.
            ev(true, 3, 4500, 0xc, LCB_F_SPIN, pte),
            ev(false, 3, 6000, 0xc, 0, 0),
        ];
        let trace = Trace {
            events: &events,
            lost: 4,
            loss_gaps: &[(1800, 2100)],
            window: (1000, 5000),
            checks: &HashMap::new(),
        };
        let r = summarize(&trace, &s, 1);
        assert_eq!((r.paired, r.outside_window, r.dropped_near_loss), (2, 1, 1));
        assert_eq!(r.total_wait_ns, 200 + 500);
        assert_eq!(r.totals_bound.as_deref(), Some("lower"));
        assert_eq!((r.run_paired, r.run_tasks), (2, 2));
        // Without loss there is no bound to state.
        assert_eq!(whole(&events, 0, &s, 1).totals_bound, None);
    }

    #[test]
    fn the_waits_of_thpbenchs_own_checks_are_kept_apart() {
        let s = Kallsyms::parse(KALLSYMS).unwrap();
        let gup = 0xffffffff81100410;
        let pte = 0xffffffff81100010;
        let events = [
            // Task 2 (a disturber) waits inside its check 140..200: the tool's own.
            ev(true, 2, 150, 0xb, LCB_F_READ, gup),
            ev(false, 2, 190, 0xb, 0, 0),
            // The same task waits outside its checks (its action): measured.
            ev(true, 2, 300, 0xb, LCB_F_READ, gup),
            ev(false, 2, 340, 0xb, 0, 0),
            // Task 1 (a worker) waits during task 2's check: measured.
            ev(true, 1, 160, 0xa, LCB_F_SPIN, pte),
            ev(false, 1, 180, 0xa, 0, 0),
        ];
        let checks = HashMap::from([(2u32, vec![(100, 120), (140, 200)])]);
        let trace = Trace {
            events: &events,
            lost: 0,
            loss_gaps: &[],
            window: (0, u64::MAX),
            checks: &checks,
        };
        let r = summarize(&trace, &s, 1);
        assert_eq!((r.paired, r.total_wait_ns), (2, 40 + 20));
        assert_eq!((r.run_paired, r.run_total_wait_ns), (2, Some(60)));
        assert_eq!(r.by_caller.iter().map(|c| c.count).sum::<u64>(), 2);
        let own = r.own_checks.expect("the check's wait");
        assert_eq!(
            (own.paired, own.total_wait_ns, own.max_wait_ns),
            (1, 40, 40)
        );
        // Task 1's wait 160..180 lies in task 2's check: counted above, and named as
        // one the check may have caused; task 2's own wait at 300 overlaps no check.
        assert_eq!((own.overlapping_paired, own.overlapping_wait_ns), (1, 20));
        assert_eq!(own.by_caller[0].caller, "gup_fast_fallback");
        // Without checks nothing is set apart.
        assert!(whole(&events, 0, &s, 1).own_checks.is_none());
    }
}
