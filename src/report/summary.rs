//! The human summary of a result, printed after a run (and by `thpbench show`).

use std::fmt::Write;

use crate::result::{BenchResult, PerfReport, RunResult, RunRole};
use crate::units::{human_bytes, human_ns};

pub fn render(r: &BenchResult) -> String {
    let mut s = String::new();
    let w = &r.workload;
    let _ = writeln!(
        s,
        "{}: {} {} bs={} {} buffers ({}), {} on {}",
        w.name,
        format!("{:?}", w.engine).to_lowercase(),
        format!("{:?}", w.rw).to_lowercase(),
        w.bs,
        w.buffer,
        w.share,
        // No run (interrupted in setup): say so rather than "0 threads".
        r.first_measured_run()
            .map_or("no measured run".to_string(), |run| format!(
                "{} threads",
                run.threads.len()
            )),
        r.system.kernel.release
    );
    super::provenance::render(&mut s, r);
    render_collectors(&mut s, w);
    for (role, runs) in r.run_groups() {
        if let RunRole::Case(label) = role {
            let _ = writeln!(s, "  case {label}:");
        }
        let prefix = if role == RunRole::Baseline {
            "baseline "
        } else {
            ""
        };
        for run in runs {
            render_run(&mut s, run, prefix);
        }
    }
    render_scaling(&mut s, r);
    for f in &r.shared_folio {
        let _ = writeln!(
            s,
            "  shared-folio ratio [{}]: {:.3}{} (shared {} vs private {} per op, {} repeats)",
            if f.label.is_empty() {
                "all else equal"
            } else {
                &f.label
            },
            f.ratio,
            f.ci95.map_or(String::new(), |[lo, hi]| format!(
                " (95% CI {lo:.3}..{hi:.3})"
            )),
            human_ns(f.shared_ns_per_op),
            human_ns(f.private_ns_per_op),
            f.repeats
        );
    }
    render_pin_cost(&mut s, r);
    if !r.baseline_runs.is_empty() && !r.runs.is_empty() {
        let mean = |runs: &[RunResult], f: fn(&RunResult) -> f64| {
            runs.iter().map(f).sum::<f64>() / runs.len() as f64
        };
        let ops = mean(&r.runs, |x| x.ops_per_sec) / mean(&r.baseline_runs, |x| x.ops_per_sec);
        let p99 = mean(&r.runs, |x| x.latency_ns.p99 as f64)
            / mean(&r.baseline_runs, |x| x.latency_ns.p99 as f64);
        let _ = writeln!(
            s,
            "  disturbed vs baseline: ops/s x{ops:.3} ({:+.1}%), p99 x{p99:.2}",
            (ops - 1.0) * 100.0
        );
    }
    if !r.unavailable.is_empty() {
        let _ = writeln!(s, "unavailable:");
        for u in &r.unavailable {
            let _ = writeln!(s, "  {}: {} ({})", u.what, u.reason, u.remedy);
        }
    }
    if r.interrupted {
        let _ = writeln!(
            s,
            "INTERRUPTED: the result holds what was measured before the signal"
        );
    }
    if r.signal_in_teardown {
        let _ = writeln!(
            s,
            "note: a signal arrived after every repeat was measured, while the machine was being restored; the measurement is complete and the teardown finished"
        );
    }
    if !r.valid {
        let _ = writeln!(s, "INVALID:");
        for why in &r.invalid_reasons {
            let _ = writeln!(s, "  - {why}");
        }
    }
    s
}

/// Which of thpbench's own collectors were on (each has a cost per I/O: README,
/// scripts/observer-cost.sh), and which were off.
fn render_collectors(s: &mut String, w: &crate::workload::Workload) {
    let uring = w.engine == crate::workload::Engine::Uring;
    let verify = match w.verify_level {
        crate::workload::VerifyLevel::Pages => "verify (page headers)",
        crate::workload::VerifyLevel::Full => "verify (every byte)",
    };
    let all = [
        ("thread counters (read around the loop)", w.perf),
        (
            "hardware perf events (switched per context switch)",
            w.perf && w.hw_counters,
        ),
        ("io_uring punt counts", w.perf && uring),
        ("lock contention + GUP slow-path tracing", w.lock_contention),
        (verify, w.verify),
        ("action confirmation", !w.disturb.is_empty()),
    ];
    let pick = |on: bool| -> Vec<&str> {
        all.iter()
            .filter(|(name, o)| *o == on && (uring || !name.starts_with("io_uring")))
            .filter(|(name, _)| on || !name.starts_with("action"))
            .map(|(name, _)| *name)
            .collect()
    };
    let (on, off) = (pick(true), pick(false));
    let _ = writeln!(
        s,
        "  collectors on: {}{}",
        if on.is_empty() {
            "none".to_string()
        } else {
            on.join(", ")
        },
        if off.is_empty() {
            String::new()
        } else {
            format!("; off: {}", off.join(", "))
        }
    );
}

/// For a thread sweep: ops/s per thread count and the scaling efficiency, i.e. ops/s at
/// N threads over N times ops/s at one thread (1.0 = perfect scaling).
fn render_scaling(s: &mut String, r: &BenchResult) {
    let point = |c: &crate::result::SweepCase| -> Option<(usize, f64)> {
        let n = c.params.threads?;
        let ops: Vec<f64> = c.runs.iter().map(|x| x.ops_per_sec).collect();
        Some((n, crate::stats::estimate(&ops)?.mean))
    };
    if r.sweep.is_empty() || !r.sweep.iter().all(|c| c.params.len() == 1) {
        return;
    }
    let points: Vec<(usize, f64)> = r.sweep.iter().filter_map(point).collect();
    let Some(&(_, one)) = points.iter().find(|(n, _)| *n == 1) else {
        return;
    };
    let _ = writeln!(s, "  scaling  threads  ops/s  efficiency");
    for (n, ops) in &points {
        let efficiency = crate::stats::scaling_efficiency(1.0, one, *n as f64, *ops)
            .map_or("-".to_string(), |e| format!("{e:.2}"));
        let _ = writeln!(s, "           {n:>7}  {ops:.0}  {efficiency}");
    }
}

fn render_run(s: &mut String, run: &RunResult, what: &str) {
    render_rates(s, run, what);
    render_stalls(s, run);
    super::provenance::render_host_activity(s, run);
    render_buffer(s, run);
    render_placement(s, run);
    render_verify(s, run);
    render_vmstat(s, run);
    render_locks(s, run);
    render_gup(s, run);
    render_gup_slow_path(s, run);
    if let Some(u) = &run.io_uring {
        render_io_uring(s, u);
    }
    render_per_op(s, run);
    render_disturbers(s, run);
}

/// The headline rates, where the run's time went, and the latency percentiles.
fn render_rates(s: &mut String, run: &RunResult, what: &str) {
    let l = &run.latency_ns;
    let _ = writeln!(
        s,
        "  {what}run {}: {:.0} ops/s, {}/s over {:.2}s ({} ops)",
        run.repeat,
        run.ops_per_sec,
        human_bytes(run.bytes_per_sec),
        run.duration_ns as f64 / 1e9,
        run.ops
    );
    if run.io_time_ns > 0 {
        // The rates above are over the time in the I/O calls; say where the rest went.
        let thread_ns = (run.duration_ns * run.threads.len().max(1) as u64) as f64;
        // A queued engine stamps or checks one slot while others are in flight: that
        // time is in both shares.
        let overlap = if (run.io_time_ns + run.verify_time_ns) as f64 > thread_ns {
            " (overlapping: verify works on one slot while others are in flight)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "    time     rates over the I/O's own time: the workers spent {:.1}% of the run in I/O calls, {:.1}% verifying{overlap}",
            run.io_time_ns as f64 / thread_ns * 100.0,
            run.verify_time_ns as f64 / thread_ns * 100.0
        );
    }
    let _ = writeln!(
        s,
        "    latency  min {}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        human_ns(l.min as f64),
        human_ns(l.p50 as f64),
        human_ns(l.p90 as f64),
        human_ns(l.p99 as f64),
        human_ns(l.p999 as f64),
        human_ns(l.max as f64)
    );
}

/// The buffer's backing and coverage, and the target's region.
fn render_buffer(s: &mut String, run: &RunResult) {
    let b = &run.buffer;
    let _ = writeln!(
        s,
        "    buffer   {} {} {}: {:.1}% backed as asked before, {:.1}% after ({})",
        b.backing,
        b.share,
        human_bytes(b.bytes as f64),
        b.thp_coverage_before * 100.0,
        b.thp_coverage_after * 100.0,
        b.coverage_method
    );
    if let Some(t) = &run.target {
        let _ = writeln!(
            s,
            "    target   {} {}: I/O over {} of {}{}",
            t.kind,
            t.path,
            human_bytes(t.region_bytes as f64),
            human_bytes(t.size_bytes as f64),
            if t.region_bytes < t.size_bytes {
                " (a region narrower than the target: `size` narrowed it)"
            } else {
                ""
            }
        );
    }
}

/// Stretches in which the process did not run: the figures above hold them.
fn render_stalls(s: &mut String, run: &RunResult) {
    for st in &run.stalls {
        let _ = writeln!(
            s,
            "    STALLED  {} for {} at {} ms ({}){}",
            if st.kind == "suspended" {
                "the system was suspended"
            } else {
                "the process did not run"
            },
            human_ns(st.length_ns as f64),
            st.t_ms,
            st.process_cpu_ns
                .map_or("CLOCK_BOOTTIME ran on".to_string(), |cpu| format!(
                    "the process used {} of CPU meanwhile",
                    human_ns(cpu as f64)
                )),
            if st.kept {
                "; kept as measured (--keep-stalled)"
            } else {
                ""
            }
        );
    }
}

/// What verify checked and the first mismatches.
fn render_verify(s: &mut String, run: &RunResult) {
    if run.verify.enabled {
        let _ = writeln!(
            s,
            "    verify   {} compared{}, {} mismatched sectors",
            human_bytes(run.verify.bytes_checked as f64),
            match run.verify.level {
                Some(crate::workload::VerifyLevel::Pages) =>
                    " (the header of every base page read)",
                Some(crate::workload::VerifyLevel::Full) => " (every byte read)",
                None => "",
            },
            run.verify.mismatches
        );
        if run.verify.readbacks > 0 {
            // The writes ran beside these reads; a --no-verify run's writes did not.
            let _ = writeln!(
                s,
                "             {} written blocks read back between the writes, outside their timed calls (write rates with verify on compare with verify on)",
                run.verify.readbacks
            );
        }
        for m in &run.verify.first_mismatches {
            let _ = writeln!(
                s,
                "      offset {} (cpu {}, t={}ms): expected {} got {}",
                m.offset, m.thread_cpu, m.t_ms, m.expected, m.actual
            );
        }
    }
    if let Some(f) = &run.verify.final_pass {
        let _ = writeln!(
            s,
            "    final    {} blocks ({}) read back after the run in {}: {} mismatched sectors in {} blocks{}",
            f.blocks_checked,
            human_bytes(f.bytes_checked as f64),
            human_ns(f.time_ns as f64),
            f.mismatches,
            f.mismatched_blocks,
            f.incomplete
                .as_ref()
                .map_or(String::new(), |why| format!("; incomplete: {why}"))
        );
        for m in &f.first_mismatches {
            let _ = writeln!(
                s,
                "      offset {} (generation {}): expected {} got {}",
                m.offset, m.generation, m.expected, m.actual
            );
        }
    }
}

/// The THP, mTHP and swap counters that moved.
fn render_vmstat(s: &mut String, run: &RunResult) {
    let moved: Vec<String> = run
        .vmstat_delta
        .iter()
        .filter(|(k, v)| {
            **v != 0
                && (k.starts_with("thp_") || k.starts_with("mthp_") || k.starts_with("pswp"))
                && !crate::system::vmstat::is_gauge(k)
        })
        .map(|(k, v)| format!("{k} {v:+}"))
        .collect();
    if !moved.is_empty() {
        let _ = writeln!(s, "    vmstat   {}", moved.join(", "));
    }
}

/// Lock contention over the run and its top callers.
fn render_locks(s: &mut String, run: &RunResult) {
    if let Some(lc) = &run.lock_contention {
        if lc.available {
            let _ = writeln!(
                s,
                "    locks    {} contentions ({} paired, {} lost samples{}), {} total wait ({}){}",
                lc.events,
                lc.paired,
                lc.lost_samples,
                match lc.totals_bound.as_deref() {
                    Some(bound) => format!(
                        ": the totals are a {bound} bound, {} pairs across a loss dropped",
                        lc.dropped_near_loss
                    ),
                    None => String::new(),
                },
                human_ns(lc.total_wait_ns as f64),
                lc.scope,
                lc.run_total_wait_ns.map_or(String::new(), |own| format!(
                    "; thpbench's own threads: {} paired, {} wait",
                    lc.run_paired,
                    human_ns(own as f64)
                )),
            );
            for c in lc.by_caller.iter().take(5) {
                let _ = writeln!(
                    s,
                    "      {:>8} {:>10} total {:>10} max  {:<12} {} ({} by thpbench's threads)",
                    c.count,
                    human_ns(c.total_wait_ns as f64),
                    human_ns(c.max_wait_ns as f64),
                    c.lock_type,
                    c.caller,
                    c.run_count
                );
            }
            if let Some(own) = &lc.own_checks {
                let _ = writeln!(
                    s,
                    "      thpbench's own checks (pagemap reads confirming disturber actions), not counted above: {} contentions, {} total wait{}; other tasks' waits during a check, counted above and possibly caused by it: {}, {}",
                    own.paired,
                    human_ns(own.total_wait_ns as f64),
                    own.by_caller
                        .first()
                        .map_or(String::new(), |c| format!(", most in {}", c.caller)),
                    own.overlapping_paired,
                    human_ns(own.overlapping_wait_ns as f64),
                );
            }
        }
    }
}

/// The gup engine's page references and the kernel's gup_test figures.
fn render_gup(s: &mut String, run: &RunResult) {
    if let Some(g) = &run.gup {
        let _ = writeln!(
            s,
            "    gup      vmsplice page references (a control: pipe handling included, not the direct-I/O pin cost): {} base pages per op, {:.1} ns per base page referenced ({} pages, {} expected)",
            g.pages_per_op, g.ns_per_page, g.pages_referenced, g.pages_expected
        );
        if let Some(k) = &g.kernel {
            match (&k.gup_fast, &k.pin_fast) {
                (Some(get), Some(pin)) if k.available => {
                    let _ = writeln!(
                        s,
                        "    kernel   gup_test, {} base pages per call: get_user_pages_fast {:.1} + put {:.1} ns per base page, pin_user_pages_fast {:.1} + unpin {:.1} ns per base page",
                        k.nr_pages_per_call,
                        get.get_ns_per_page,
                        get.put_ns_per_page,
                        pin.get_ns_per_page,
                        pin.put_ns_per_page
                    );
                }
                _ => {
                    let _ = writeln!(s, "    kernel   gup_test unavailable: {}", k.reason);
                }
            }
        }
    }
}

/// GUP-fast's fallbacks to the mmap_lock slow path.
fn render_gup_slow_path(s: &mut String, run: &RunResult) {
    if let Some(g) = &run.gup_slow_path {
        if g.available {
            let _ = writeln!(
                s,
                "    gup slow {} mmap_lock acquisitions on the GUP slow path (fallbacks of GUP-fast, a retry after a dropped lock counting again; {:.2} per 1000 I/Os), {} waiting for the lock{}",
                g.count,
                g.per_1000_io,
                human_ns(g.wait_ns as f64),
                if g.lost_samples > 0 || g.unpaired > 0 {
                    format!(
                        " ({} samples lost: a lower bound; waits left out: {} without their acquire, {} across a loss)",
                        g.lost_samples, g.unpaired, g.dropped_near_loss
                    )
                } else {
                    String::new()
                }
            );
        } else {
            let _ = writeln!(s, "    gup slow unavailable: {}", g.reason);
        }
    }
}

/// Perf counters per operation.
fn render_per_op(s: &mut String, run: &RunResult) {
    if let Some(sums) = run.perf.as_ref().and_then(|p| p.per_op(run.ops)) {
        let per_op: Vec<String> = sums
            .iter()
            .map(|(k, v)| {
                if k.ends_with("task-clock") {
                    format!("{k} {}", human_ns(*v))
                } else {
                    format!("{k} {v:.3}")
                }
            })
            .collect();
        if !per_op.is_empty() {
            let _ = writeln!(s, "    per op   {}", per_op.join(", "));
        }
        if let (Some(t), Some(w)) = (
            sums.get(PerfReport::TASK_CLOCK),
            sums.get(PerfReport::IO_WQ_TASK_CLOCK),
        ) {
            let exited: u64 = run.perf.iter().map(PerfReport::io_wq_exited).sum();
            let _ = writeln!(
                s,
                "    cpu      {}{} per op: the worker {} and its io-wq threads {}, which do the device work of punted requests{}",
                if exited > 0 { "at least " } else { "" },
                human_ns(t + w),
                human_ns(*t),
                human_ns(*w),
                if exited > 0 {
                    format!(" ({exited} io-wq threads exited during the run: their time is not in it)")
                } else {
                    String::new()
                }
            );
        }
    }
}

/// Each disturber's actions, errors, latency and whether its counters moved.
fn render_disturbers(s: &mut String, run: &RunResult) {
    for d in &run.disturbers {
        let _ = writeln!(
            s,
            "    disturb  {}: {} actions{}, {} errors, p50 {} p99 {}{}",
            d.name,
            d.actions,
            d.confirmed
                .map(|c| format!(" ({c} confirmed on the buffer)"))
                .unwrap_or_default(),
            d.errors,
            human_ns(d.latency_ns.p50 as f64),
            human_ns(d.latency_ns.p99 as f64),
            if d.counters_moved {
                String::new()
            } else if d.defeated_by_pin {
                format!(
                    "  (defeated by the long-term pin of the registered buffers: {})",
                    d.pin_evidence
                        .iter()
                        .filter(|(_, v)| **v != 0)
                        .map(|(k, v)| format!("{k} {v:+}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!("  (none of {} moved)", d.counters_not_moved.join(", nor "))
            }
        );
        if let Some(fork) = d.fork() {
            let (children, saw) = (fork.children, fork.saw_parent_data);
            let _ = writeln!(
                s,
                "             {children} children held the buffer; {saw} saw it change after fork{}",
                if saw > 0 { " (COW isolation broken: the parent's I/O reached the child)" } else { "" }
            );
        }
    }
}

/// Which CPUs ran what and why, and where the buffer pages were.
fn render_placement(s: &mut String, run: &RunResult) {
    if let Some(p) = &run.placement {
        let _ = writeln!(s, "    cpus     workers on {}: {}", p.worker_cpus, p.why);
        let _ = writeln!(
            s,
            "             disturbers and collectors on {} ({})",
            if p.housekeeping_cpus.is_empty() {
                "the workers' CPUs"
            } else {
                &p.housekeeping_cpus
            },
            p.housekeeping
        );
    }
    let b = &run.buffer;
    let Some(numa) = b.numa else {
        return;
    };
    let nodes = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(n, p)| format!("{n} {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let local: Vec<String> = run
        .threads
        .iter()
        .filter_map(|t| {
            let (before, after) = (t.numa_local_before?, t.numa_local_after?);
            Some(format!(
                "cpu{} (node {}) {:.1}%/{:.1}%",
                t.cpu,
                t.numa_node.map_or("?".into(), |n| n.to_string()),
                before * 100.0,
                after * 100.0
            ))
        })
        .collect();
    let _ = writeln!(
        s,
        "    numa     {}: pages per node before [{}], after [{}]{}",
        numa,
        nodes(&b.numa_nodes_before),
        nodes(&b.numa_nodes_after),
        if local.is_empty() {
            String::new()
        } else {
            format!("; on own node before/after: {}", local.join(", "))
        }
    );
}

/// The uring engine's line: queue depth, how buffers were pinned, and the io-wq punts,
/// which explain a low rate at queue depth 1 on a device without a nowait path.
fn render_io_uring(s: &mut String, u: &crate::result::IoUringReport) {
    let pins = if u.fixed_buffers {
        "registered buffers (pinned once, long-term)"
    } else {
        "per-I/O pins"
    };
    let punts = match (u.submitted, u.punted_to_io_wq, u.punted_share) {
        (Some(sub), Some(punted), Some(share)) => {
            let why = if share > 0.5 {
                ": the device offers no nowait path, so each I/O goes through an io-wq worker thread (a hand-off per I/O; at qd 1 slower than pread)"
            } else {
                ""
            };
            format!(
                "{punted} of {sub} requests ({:.0}%) punted to io-wq{why}",
                share * 100.0
            )
        }
        _ => format!(
            "io-wq punts not counted: {}",
            u.punts_unavailable.as_deref().unwrap_or("unknown")
        ),
    };
    let setup = if u.setup_flags.is_empty() {
        String::new()
    } else {
        format!(", setup {}", u.setup_flags.join("|"))
    };
    let _ = writeln!(s, "    io_uring qd {}{setup}, {pins}; {punts}", u.iodepth);
}

/// The pin cost table of a sweep over fixed_buffers.
fn render_pin_cost(s: &mut String, r: &BenchResult) {
    if r.pin_cost.is_empty() {
        return;
    }
    let basis = r
        .pin_cost
        .first()
        .map(|p| p.basis.as_str())
        .filter(|b| !b.is_empty())
        .unwrap_or("mean latency per I/O");
    let _ = writeln!(
        s,
        "  pin cost (per-I/O pins minus registered buffers; {basis}, which at queue depth > 1 is the inverse of the throughput, not one I/O's latency):"
    );
    for p in &r.pin_cost {
        let ci = |c: Option<[f64; 2]>| {
            c.map_or(" (one repeat: no CI)".to_string(), |[lo, hi]| {
                format!(" (95% CI {}..{})", signed_ns(lo), signed_ns(hi))
            })
        };
        let _ = writeln!(
            s,
            "    [{}] {} per I/O{}, {} per {} base page{}; x{:.3} ({} pinned vs {} registered){}",
            if p.label.is_empty() {
                "all else equal"
            } else {
                &p.label
            },
            signed_ns(p.ns_per_io),
            ci(p.ci95_ns_per_io),
            signed_ns(p.ns_per_page),
            crate::units::format_size(r.system.base_page_bytes),
            ci(p.ci95_ns_per_page),
            p.ratio,
            human_ns(p.pinned_ns_per_io),
            human_ns(p.fixed_ns_per_io),
            p.latency_diff_ns.map_or(String::new(), |l| format!(
                "; mean latency {}",
                signed_ns(l)
            ))
        );
    }
}

/// A difference in ns, negative ones with their sign (registered buffers slower).
fn signed_ns(ns: f64) -> String {
    if ns < 0.0 {
        format!("-{}", human_ns(-ns))
    } else {
        human_ns(ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_interrupted_in_setup_is_not_zero_threads() {
        let r = crate::result::BenchResult::new(
            crate::system::probe::system_info(),
            crate::workload::Workload::default(),
        );
        let text = super::render(&r);
        assert!(text.contains("no measured run"), "{text}");
        assert!(!text.contains("0 threads"), "{text}");
    }

    /// The time line's shares: apart, they are said as they are; summing past the run
    /// (a queued engine verifying one slot while others are in flight), it says why.
    #[test]
    fn io_and_verify_shares_that_overlap_are_said_to() {
        let mut r = crate::test_support::synthetic("6.18.0", &[1000.0]);
        let run = &mut r.runs[0];
        run.duration_ns = 1_000_000_000;
        run.threads.truncate(1);
        run.io_time_ns = 600_000_000;
        run.verify_time_ns = 300_000_000;
        let text = super::render(&r);
        assert!(
            text.contains("60.0% of the run in I/O calls, 30.0% verifying\n"),
            "{text}"
        );
        r.runs[0].verify_time_ns = 450_000_000;
        let text = super::render(&r);
        assert!(
            text.contains("45.0% verifying (overlapping: verify works on one slot"),
            "{text}"
        );
    }

    /// What only a root run on a kernel with the tracepoints collects (GUP slow path,
    /// lock contention, io_uring punts, a split defeated by a pin, the pin cost), as the
    /// summary words it: the privileged tests check that the kernel fills these in, this
    /// checks what the summary makes of them.
    #[test]
    fn the_summary_renders_what_the_kernel_reported() {
        use crate::result::{
            kernel::CallerStat, DisturberReport, GupSlowPath, IoUringReport, LockReport, PinCost,
        };
        let mut r = crate::test_support::synthetic("6.18.0", &[1000.0]);
        let run = &mut r.runs[0];
        run.gup_slow_path = Some(GupSlowPath {
            available: true,
            count: 46,
            per_1000_io: 46.0,
            wait_ns: 2_000_000,
            ..Default::default()
        });
        run.lock_contention = Some(LockReport {
            available: true,
            scope: "system-wide".into(),
            events: 12,
            paired: 11,
            total_wait_ns: 3_000,
            by_caller: vec![CallerStat {
                caller: "do_mprotect_pkey".into(),
                lock_type: "rwsem:W".into(),
                count: 11,
                total_wait_ns: 3_000,
                max_wait_ns: 900,
                avg_wait_ns: 272,
                run_count: 0,
                run_total_wait_ns: 0,
            }],
            ..Default::default()
        });
        run.io_uring = Some(IoUringReport {
            iodepth: 16,
            fixed_buffers: true,
            submitted: Some(1000),
            punted_to_io_wq: Some(0),
            punted_share: Some(0.0),
            punts_unavailable: None,
            setup_flags: vec!["COOP_TASKRUN".into(), "SINGLE_ISSUER".into()],
        });
        run.disturbers = vec![DisturberReport {
            name: "split:cold".into(),
            actions: 20,
            defeated_by_pin: true,
            pin_evidence: [("thp_split_page_failed".to_string(), 20)].into(),
            ..Default::default()
        }];
        r.pin_cost = vec![PinCost {
            label: "bs=1M".into(),
            bs_bytes: 1 << 20,
            pinned_ns_per_io: 9_000.0,
            fixed_ns_per_io: 8_000.0,
            ns_per_io: 1_000.0,
            ns_per_page: 1_000.0 / 256.0,
            ci95_ns_per_io: Some([500.0, 1_500.0]),
            ratio: 1.125,
            repeats: [2, 2],
            basis: "time per I/O (I/O time over I/Os)".into(),
            paired: true,
            ..Default::default()
        }];
        let text = render(&r);
        let line = |start: &str| {
            text.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no line `{start}`: {text}"))
        };
        let gup = line("    gup slow 46 mmap_lock acquisitions");
        assert!(
            gup.contains("fallbacks of GUP-fast") && gup.contains("46.00 per 1000 I/Os"),
            "{gup}"
        );
        assert!(!gup.contains("lower bound"), "no sample was lost: {gup}");
        assert!(line("    locks    12 contentions (11 paired").contains("system-wide"));
        assert!(line("            11 ")
            .ends_with("rwsem:W      do_mprotect_pkey (0 by thpbench's threads)"));
        assert!(
            line("    io_uring qd 16, setup COOP_TASKRUN|SINGLE_ISSUER, registered buffers")
                .contains("0 of 1000 requests (0%) punted")
        );
        assert!(line("    disturb  split:cold: 20 actions").ends_with(
            "(defeated by the long-term pin of the registered buffers: thp_split_page_failed +20)"
        ));
        assert!(
            line("  pin cost (per-I/O pins minus registered buffers; time per I/O")
                .contains("inverse of the throughput")
        );
        assert!(line("    [bs=1M] ").contains("x1.125"), "{text}");

        // Lost samples make the count a lower bound, and a collector that could not run
        // says why.
        let run = &mut r.runs[0];
        run.gup_slow_path = Some(GupSlowPath {
            lost_samples: 3,
            ..run.gup_slow_path.clone().unwrap()
        });
        run.io_uring.as_mut().unwrap().punts_unavailable = Some("not root".into());
        let u = run.io_uring.as_mut().unwrap();
        (u.punted_to_io_wq, u.punted_share) = (None, None);
        let text = render(&r);
        assert!(text.contains("(3 samples lost: a lower bound;"), "{text}");
        assert!(text.contains("io-wq punts not counted: not root"), "{text}");
        r.runs[0].gup_slow_path = Some(GupSlowPath::unavailable("needs root (tracefs)"));
        assert!(render(&r).contains("    gup slow unavailable: needs root (tracefs)"));
    }

    #[test]
    fn the_summary_says_which_collectors_were_on() {
        let mut w = crate::workload::Workload {
            engine: crate::workload::Engine::Uring,
            verify: false,
            ..Default::default()
        };
        let mut s = String::new();
        render_collectors(&mut s, &w);
        assert!(
            s.contains(
                "on: thread counters (read around the loop), io_uring punt counts, lock contention"
            ),
            "{s}"
        );
        assert!(s.contains("off: hardware perf events"), "{s}");
        assert!(s.contains("verify") && !s.contains("action"), "{s}");
        w.engine = crate::workload::Engine::Dio;
        w.perf = false;
        w.lock_contention = false;
        let mut s = String::new();
        render_collectors(&mut s, &w);
        assert!(
            s.starts_with("  collectors on: none; off: thread counters"),
            "{s}"
        );
        assert!(!s.contains("io_uring"), "{s}");
    }
}
