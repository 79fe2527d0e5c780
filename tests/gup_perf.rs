//! The gup engine, the shared-folio ratio, and per-thread perf counters.

mod common;

use common::*;
use thpbench::result::{BenchResult, PerfReport};

fn run_typed(args: &[&str]) -> BenchResult {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["--warmup", "100ms", "--size", "8M"];
    all.extend_from_slice(args);
    result_of_run(run, &all, dir.path())
}

fn has_unavailable(r: &BenchResult, what: impl Fn(&str) -> bool) -> bool {
    r.unavailable.iter().any(|u| what(&u.what))
}

#[test]
fn gup_engine_figure_is_labelled_a_control_and_the_kernel_benchmark_is_reported() {
    let _l = machine_lock();
    let r = run_typed(&["--engine", "gup", "--bs", "64k", "--duration", "1s"]);
    assert!(r.valid, "{:?}", r.invalid_reasons);
    assert!(!r.workload.verify, "verify does not apply to gup");
    let run = &r.runs[0];
    let g = run.gup.as_ref().expect("a gup run reports gup");
    // The figure is named for what it measures: page references through vmsplice and
    // a pipe, a control beside the direct-I/O pin cost (uring's pin_cost). That the
    // pipe holds references and not copies is proven by the engine's unit test
    // (engine::gup::tests::vmsplice_references_the_user_pages_rather_than_copying_them).
    assert_eq!(g.figure, "vmsplice page references", "{g:?}");
    // The per-op figure is the run's own mean latency, not a separate clock.
    assert_eq!(g.ns_per_op, run.latency_ns.mean, "{g:?}");

    // The kernel's own benchmark on the same buffer, or why not.
    let k = g
        .kernel
        .as_ref()
        .expect("the kernel's gup_test figures, or why not");
    if k.available {
        let buffer_pages = run.buffer.bytes / 4096;
        for fig in [&k.gup_fast, &k.pin_fast] {
            let fig = fig.as_ref().expect("gup_fast and pin_fast");
            assert!(fig.calls > 0, "{k:?}");
            assert_eq!(fig.pages, fig.calls * buffer_pages, "{k:?}");
            let get = fig.get_ns_per_page;
            assert!(get.is_finite() && get > 0.0, "{k:?}");
        }
        assert_eq!(k.nr_pages_per_call, 16);
    } else {
        // Debian's kernels and this machine's have no CONFIG_GUP_TEST; lockdown
        // forbids it elsewhere. Either way the reason says which, and the result lists
        // it as unavailable.
        let reason = &k.reason;
        let root = is_root();
        assert!(
            reason.contains("CONFIG_GUP_TEST")
                || reason.contains("lockdown")
                || (!root && reason.contains("root")),
            "{k:?}"
        );
        assert!(
            has_unavailable(&r, |w| w.starts_with("gup_test")),
            "{:?}",
            r.unavailable
        );
    }
}

#[test]
fn gup_engine_refuses_block_sizes_that_are_not_whole_pages() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["run", "--engine", "gup", "--bs", "6k", "--print-workload"],
        dir.path(),
    );
    assert!(!out.status.success());
    // 6k is no whole number of base pages of any size (4K on x86-64, 16K on arm64 16K).
    let page = thpbench::units::format_size(thpbench::pages::base_page() as u64);
    assert_stderr_contains(&out, &format!("multiple of {page}"));
}

#[test]
fn share_sweep_yields_the_shared_folio_ratio_with_a_confidence_interval() {
    let _l = machine_lock();
    let r = run_typed(&[
        "--engine",
        "gup",
        "--bs",
        "64k",
        "--sweep",
        "share=private,shared",
        // Private I/O cut into per-page iovecs as shared I/O is: the ratio then compares
        // sharing alone (without it, a 64k private op is one iovec and no ratio is made).
        "--sweep",
        "per_page_iovecs=true",
        "--repeat",
        "2",
        "--duration",
        "500ms",
    ]);
    assert_eq!(r.shared_folio.len(), 1, "{:?}", r.shared_folio);
    let f = &r.shared_folio[0];
    let ratio = f.ratio;
    assert!(ratio.is_finite() && ratio > 0.0);
    // The ratio is the mean of the paired per-repeat ratios, inside its interval.
    let [lo, hi] = f.ci95.expect("two repeats give an interval");
    assert!(lo <= ratio && ratio <= hi, "{lo} <= {ratio} <= {hi}");
    assert_eq!(f.repeats, 2);
}

#[test]
fn perf_counters_count_software_events_and_mark_missing_hardware() {
    let _l = machine_lock();
    let r = run_typed(&["--duration", "1s"]);
    let perf = &r.runs[0]
        .perf
        .as_ref()
        .expect("perf counters are on by default")
        .0;
    assert_eq!(perf.len(), r.runs[0].threads.len());
    for (thread, c) in perf {
        assert!(thread.starts_with("cpu"));
        assert!(
            c.get(PerfReport::TASK_CLOCK).is_some_and(|&t| t > 0),
            "{c:?}"
        );
        assert!(
            c.contains_key("context-switches") && c.contains_key("minor-faults"),
            "{c:?}"
        );
    }
    // Hardware counters cost at every context switch: off unless asked, and said so.
    let (_, first) = perf.iter().next().unwrap();
    assert!(!first.contains_key("cycles"), "{first:?}");
    assert!(
        r.unavailable
            .iter()
            .any(|u| u.what == "hardware perf counters" && u.reason.contains("--hw-counters")),
        "{:?}",
        r.unavailable
    );
    // Asked for: taken where a PMU exists, else marked unavailable with the reason.
    let hw = run_typed(&["--duration", "500ms", "--hw-counters"]);
    let pmu = thpbench::system::probe::hardware_pmu();
    let cycles_unavailable = has_unavailable(&hw, |w| w == "perf counter cycles");
    let hw_perf = &hw.runs[0].perf.as_ref().expect("perf counters").0;
    let (_, first) = hw_perf.iter().next().unwrap();
    match pmu {
        Ok(()) => {
            assert!(!cycles_unavailable);
            assert!(first.get("cycles").is_some_and(|&c| c > 0), "{first:?}");
        }
        Err(why) => {
            assert!(
                cycles_unavailable,
                "no PMU ({why}) but cycles not marked unavailable"
            );
            assert!(!first.contains_key("cycles"));
        }
    }
    let off = run_typed(&["--duration", "500ms", "--no-perf"]);
    assert!(off.runs[0].perf.is_none());
}

/// The probe row that shows the capability a run's unavailable measurement lacked.
fn probe_row_for(what: &str) -> Option<&'static str> {
    let hardware = ["cycles", "instructions", "cache-references", "cache-misses"];
    if let Some(counter) = what.strip_prefix("perf counter ") {
        return Some(if hardware.contains(&counter) {
            "perf hardware PMU"
        } else {
            "perf software events"
        });
    }
    if what.starts_with("lock contention") {
        return Some("lock:contention_begin/end");
    }
    what.starts_with("gup_test").then_some("debugfs gup_test")
}

#[test]
fn a_run_gives_the_same_remedies_as_probe() {
    let _l = machine_lock();
    // Unprivileged, so that lock contention (which needs root) is surely unavailable.
    let as_user = if is_root() { run_as_nobody } else { run };
    let dir = world_writable_tempdir();
    let probe = as_user(&["probe", "--json"], dir.path());
    let rows = probe_rows(&probe);
    let remedy_of = |what: &str| probe_row(&rows, what).remedy.clone();
    let args = [
        "--engine",
        "gup",
        "--bs",
        "64k",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--size",
        "8M",
    ];
    let r = result_of_run(as_user, &args, dir.path());
    let mut compared = Vec::new();
    for u in &r.unavailable {
        let what = u.what.as_str();
        if let Some(row) = probe_row_for(what) {
            assert_eq!(u.remedy, remedy_of(row), "run's {what} vs probe's {row}");
            compared.push(what.to_string());
        }
    }
    assert!(
        compared.iter().any(|w| w.starts_with("lock contention")),
        "an unprivileged run records lock contention unavailable: {:?}",
        r.unavailable
    );
}
