//! Disturbers: threads that act on the workers' buffers while the I/O runs — split the
//! huge pages, collapse them back, page them out, fork — each timing its own calls and
//! logging when it acted, so that latency spikes line up with what caused them and the
//! vmstat deltas prove that the kernel did what was asked.

mod confirm;
pub mod fork;
mod madvise;
pub mod pinned;
mod pressure;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use hdrhistogram::Histogram;

use crate::buffer::IoBuffers;
use crate::measure::histogram::{new_histogram, summarize};
use crate::measure::now_ns;
use crate::result::{DisturberReport, Unavailable};
use crate::workload::{DisturbKind, DisturbSpec, SplitMethod, Workload};

/// The part of the buffer a disturber acts on, and its unit (one folio-sized block).
#[derive(Debug, Clone)]
pub struct Region {
    pub base: usize,
    pub len: usize,
    pub block: usize,
    /// Per block, the base pages that no worker's I/O uses (offsets into the block).
    pub idle_pages: Vec<Vec<usize>>,
}

impl Region {
    pub fn of(buffers: &IoBuffers) -> Region {
        let block = buffers.folio_bytes as usize;
        let blocks = buffers.len() / block;
        let page = crate::pages::base_page();
        let mut used = vec![false; buffers.len() / page];
        for segs in &buffers.segments {
            for s in segs {
                let pages = s.offset / page..(s.offset + s.len).div_ceil(page);
                used[pages].fill(true);
            }
        }
        let per_block = block / page;
        let idle_pages = (0..blocks)
            .map(|b| {
                (0..per_block)
                    .filter(|p| !used[b * per_block + p])
                    .map(|p| p * page)
                    .collect()
            })
            .collect();
        Region {
            base: buffers.base() as usize,
            len: buffers.len(),
            block,
            idle_pages,
        }
    }

    pub fn blocks(&self) -> usize {
        self.len / self.block
    }

    pub fn block_addr(&self, b: usize) -> usize {
        self.base + b * self.block
    }
}

/// One action on one block, or one round-level action (fork).
pub trait Action: Send {
    /// Acts on block `b`; Ok(true) when an action was taken, Ok(false) when the block
    /// had nothing to act on.
    fn act(&mut self, region: &Region, b: usize) -> std::io::Result<bool>;
    /// The address of the page whose folio shows the action's effect on block `b`.
    fn touched(&self, r: &Region, b: usize) -> usize {
        r.block_addr(b)
    }
    /// Whole-round actions (fork) return true and are called once per round with b = 0.
    fn per_round(&self) -> bool {
        false
    }
    /// Extra figures for the report.
    fn extra(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
    /// What this disturber's own verdict can and cannot see, where it gives one.
    fn scope(&self) -> Option<&'static str> {
        None
    }
}

/// The vmstat counters that prove a disturber did its job on buffers of `backing`:
/// every group must move, and a group moves when any of its counters does (`*`: any
/// mTHP size; the kernel counts PMD-sized folios in thp_* and every size in
/// mthp_<size>kB_*). With zswap enabled, a page swapped out into zswap is counted in
/// zswpout (mthp_<size>kB_zswpout per folio) and read back in zswpin, never in
/// pswpout/pswpin or thp_swpout (mm/page_io.c swap_writeout, swap_read_folio).
pub fn expected_counters(
    spec: &DisturbSpec,
    backing: crate::workload::Backing,
    zswap: bool,
) -> Vec<Vec<&'static str>> {
    let mut groups = device_swap_counters(spec, backing);
    if zswap {
        for group in &mut groups {
            let also: &[&'static str] = match group[0] {
                "pswpout" => &["zswpout"],
                "pswpin" => &["zswpin"],
                "thp_swpout" => &["mthp_*_zswpout"],
                _ => &[],
            };
            group.extend_from_slice(also);
        }
    }
    groups
}

/// expected_counters when swapped pages go to the swap device (no zswap).
fn device_swap_counters(
    spec: &DisturbSpec,
    backing: crate::workload::Backing,
) -> Vec<Vec<&'static str>> {
    match (spec.kind, spec.method) {
        // Base pages swap out one by one: no huge-page counter can move.
        (DisturbKind::SwapOut, _) if backing == crate::workload::Backing::Base => {
            vec![vec!["pswpout"], vec!["pswpin", "swpin_zero", "swpin"]]
        }
        (
            DisturbKind::Split,
            Some(SplitMethod::Cold | SplitMethod::Pageout | SplitMethod::Debugfs),
        ) => {
            vec![vec!["thp_split_page", "mthp_*_split"]]
        }
        (DisturbKind::Split, Some(SplitMethod::Dontneed)) => {
            vec![vec![
                "thp_split_pmd",
                "thp_deferred_split_page",
                "mthp_*_split_deferred",
            ]]
        }
        (DisturbKind::Split, Some(SplitMethod::Mprotect)) => vec![vec!["thp_split_pmd"]],
        (DisturbKind::Split, None) => vec![],
        (DisturbKind::Collapse, _) => vec![vec!["thp_collapse_alloc"]],
        (DisturbKind::SwapOut, _) => vec![
            vec![
                "thp_swpout",
                "thp_swpout_fallback",
                "mthp_*_swpout",
                "mthp_*_swpout_fallback",
            ],
            vec!["pswpout"],
            vec!["pswpin", "swpin_zero", "swpin"],
        ],
        (DisturbKind::Fork, _) => vec![],
        (DisturbKind::Pressure, _) => vec![vec!["pswpout"]],
    }
}

/// Makes a disturber's action inside its own thread.
pub type ActionMaker = Box<dyn Fn() -> Box<dyn Action> + Send + Sync>;

/// A disturber that can run, with its action, chosen at setup.
pub struct Planned {
    pub spec: DisturbSpec,
    pub cpu: Option<usize>,
    make: ActionMaker,
}

/// Checks each asked-for disturber against the machine: the ones that can run, and the
/// ones that cannot as unavailable. Fails when none of those asked for can run.
pub fn plan(
    w: &Workload,
    region: &Region,
    worker_cpus: &[usize],
    swap_ready: bool,
    cgroup: Option<&crate::system::cgroup::MemCgroup>,
) -> anyhow::Result<(Vec<Planned>, Vec<Unavailable>)> {
    let mut unavailable = Vec::new();
    // Cores no worker uses first, then the workers' idle SMT siblings.
    let mut free_cpus = crate::system::topology::housekeeping(
        &crate::system::topology::Topology::current(),
        &crate::system::cpu::allowed_cpus(),
        worker_cpus,
    )
    .0;
    let mut planned = Vec::new();
    let mut refused = Vec::new();
    for spec in &w.disturb {
        let label = spec.label();
        let made: Result<ActionMaker, (String, String)> =
            if let Some(why) = refusal(spec, w.buffer, swap_ready) {
                Err(why)
            } else {
                match (spec.kind, spec.method) {
                    (DisturbKind::Split, Some(method)) => madvise::split(method, region),
                    (DisturbKind::Split, None) => {
                        Err(("split needs a method".into(), "set method".into()))
                    }
                    (DisturbKind::Collapse, _) => madvise::collapse(region),
                    (DisturbKind::SwapOut, _) => madvise::swap_out(),
                    (DisturbKind::Fork, _) => Ok(fork::maker(spec.hold.as_nanos())),
                    (DisturbKind::Pressure, _) => match cgroup {
                        None => Err((
                            crate::system::cgroup::unavailable_reason()
                                .unwrap_or_else(|| "the memory cgroup could not be made".into()),
                            "run as root on a system with the memory cgroup controller".into(),
                        )),
                        Some(cg) => {
                            let (knobs, fraction) = (cg.knobs.clone(), spec.fraction);
                            Ok(Box::new(move || -> Box<dyn Action> {
                                Box::new(pressure::Pressure {
                                    knobs: knobs.clone(),
                                    fraction,
                                    limit_not_reached: 0,
                                })
                            }) as ActionMaker)
                        }
                    },
                }
            };
        match made {
            Ok(make) => {
                let cpu = spec
                    .cpu
                    .or_else(|| (!free_cpus.is_empty()).then(|| free_cpus.remove(0)));
                planned.push(Planned {
                    spec: spec.clone(),
                    cpu,
                    make,
                });
            }
            Err((reason, remedy)) => {
                refused.push(format!("{label}: {reason}"));
                unavailable.push(Unavailable::new(
                    format!("disturber {label}"),
                    reason,
                    remedy,
                ));
            }
        }
    }
    if planned.is_empty() && !refused.is_empty() {
        anyhow::bail!(
            "no asked-for disturber can run here: {}",
            refused.join("; ")
        );
    }
    Ok((planned, unavailable))
}

/// Why `spec` cannot act on a buffer of `backing`, whatever the machine offers beyond
/// `swap_ready`, as (reason, remedy); None when only the machine can tell.
fn refusal(
    spec: &DisturbSpec,
    backing: crate::workload::Backing,
    swap_ready: bool,
) -> Option<(String, String)> {
    use crate::workload::Backing;
    let (reason, remedy) = match spec.kind {
        // hugetlb pages are no THP: the kernel does not split, collapse, page out or
        // reclaim them (MADV_COLD/PAGEOUT/COLLAPSE answer EINVAL on a hugetlb VMA).
        DisturbKind::Split | DisturbKind::Collapse | DisturbKind::SwapOut | DisturbKind::Pressure
            if backing == Backing::Hugetlb =>
        {
            (
                "the buffer is hugetlb, which the kernel never splits, collapses, pages out or reclaims",
                "use --buffer thp or mthp:SIZE for this disturber (fork works on hugetlb)",
            )
        }
        DisturbKind::Split if backing == Backing::Base => (
            "the buffer is base pages: there is no huge page to split",
            "use --buffer thp or mthp:SIZE to split huge pages under the I/O",
        ),
        DisturbKind::SwapOut if !swap_ready => (
            "no swap is active, so MADV_PAGEOUT cannot swap anonymous pages out",
            "set swap = \"zram:1G\" (root) in the workload or pass --swap zram:1G",
        ),
        DisturbKind::Pressure if !swap_ready => (
            "no swap is active, so reclaim cannot push anonymous buffers out",
            "set swap = \"zram:1G\" (root) or pass --swap zram:1G",
        ),
        _ => return None,
    };
    Some((reason.to_string(), remedy.to_string()))
}

/// What a disturber thread hands back.
pub struct DisturberOutput {
    pub spec: DisturbSpec,
    pub cpu: Option<usize>,
    pub actions: u64,
    /// Actions seen to change the folio of the page acted on; None where that cannot be
    /// seen (not root) or the disturber changes no folio one action at a time.
    pub confirmed: Option<u64>,
    pub errors: u64,
    pub last_error: Option<String>,
    pub latency: Histogram<u64>,
    /// When each action ended, ns since the epoch.
    pub action_times: Vec<u64>,
    pub extra: BTreeMap<String, u64>,
    pub scope: Option<&'static str>,
    /// The disturber thread's tid, and when (CLOCK_MONOTONIC ns, in order) it was
    /// checking the buffer (confirmation's pagemap reads, which take mmap_lock): the
    /// lock report keeps the waits inside these apart, as the tool's own.
    pub tid: u32,
    pub check_spans: Vec<(u64, u64)>,
}

impl DisturberOutput {
    pub fn report(
        &self,
        vmstat_delta: &BTreeMap<String, i64>,
        backing: crate::workload::Backing,
        zswap: bool,
    ) -> DisturberReport {
        let groups = expected_counters(&self.spec, backing, zswap);
        let moved = |g: &&Vec<&str>| {
            g.iter().any(|pattern| {
                vmstat_delta.iter().any(|(name, v)| {
                    *v > 0 && crate::system::vmstat::counter_matches(pattern, name)
                })
            })
        };
        let not_moved: Vec<String> = groups
            .iter()
            .filter(|g| !moved(g))
            .map(|g| g.join("|"))
            .collect();
        DisturberReport {
            name: self.spec.label(),
            cpu: self.cpu,
            actions: self.actions,
            confirmed: self.confirmed,
            errors: self.errors,
            last_error: self.last_error.clone(),
            latency_ns: summarize(&self.latency),
            histogram: crate::measure::histogram::encode_compressed(&self.latency),
            expected_counters: groups.iter().map(|g| g.join("|")).collect(),
            // No expected counters (fork): acting is the proof.
            counters_moved: self.actions > 0 && not_moved.is_empty(),
            counters_not_moved: not_moved,
            extra: self.extra.clone(),
            defeated_by_pin: false,
            pin_evidence: BTreeMap::new(),
            verdict_scope: self.scope.map(str::to_string),
        }
    }
}

/// Running disturbers; `stop` ends them and collects their outputs.
pub struct Disturbance {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<DisturberOutput>>,
}

impl Disturbance {
    pub fn start(planned: &[Planned], region: &Region, epoch_ns: u64) -> Disturbance {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = planned
            .iter()
            .map(|p| {
                let (stop, region, spec, cpu) =
                    (Arc::clone(&stop), region.clone(), p.spec.clone(), p.cpu);
                let action = (p.make)();
                std::thread::Builder::new()
                    .name(format!("thpbench-{}", spec.label()))
                    .spawn(move || disturb_loop(spec, cpu, action, region, stop, epoch_ns))
                    .expect("spawning a disturber thread")
            })
            .collect();
        Disturbance { stop, threads }
    }

    pub fn stop(self) -> Vec<DisturberOutput> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .filter_map(|t| t.join().ok())
            .collect()
    }
}

fn disturb_loop(
    spec: DisturbSpec,
    cpu: Option<usize>,
    mut action: Box<dyn Action>,
    region: Region,
    stop: Arc<AtomicBool>,
    epoch: u64,
) -> DisturberOutput {
    let pinned = cpu.filter(|&c| crate::system::cpu::pin_current_thread(c).is_ok());
    let mut out = DisturberOutput {
        spec: spec.clone(),
        cpu: pinned,
        actions: 0,
        confirmed: None,
        errors: 0,
        last_error: None,
        latency: new_histogram(),
        action_times: Vec::with_capacity(4096),
        extra: BTreeMap::new(),
        scope: action.scope(),
        // SAFETY: gettid has no preconditions.
        tid: unsafe { libc::gettid() as u32 },
        check_spans: Vec::new(),
    };
    let blocks = region.blocks().max(1);
    let per_round = if action.per_round() {
        1
    } else {
        ((blocks as f64 * spec.fraction).ceil() as usize).clamp(1, blocks)
    };
    let confirmer = confirm::Confirmer::new(&spec);
    out.confirmed = confirmer.as_ref().map(|_| 0);
    let mut cursor = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let round_start = now_ns();
        for _ in 0..per_round {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let b = cursor % blocks;
            cursor += 1;
            let (r, t0, t1, confirmed) = act_and_confirm(
                action.as_mut(),
                confirmer.as_ref(),
                &region,
                b,
                &mut out.check_spans,
            );
            match r {
                Ok(true) => {
                    out.actions += 1;
                    if let Some(c) = out.confirmed.as_mut() {
                        *c += u64::from(confirmed);
                    }
                    out.latency.saturating_record((t1 - t0).max(1));
                    out.action_times.push(t1.saturating_sub(epoch));
                }
                Ok(false) => {}
                Err(e) => {
                    out.errors += 1;
                    out.last_error = Some(crate::system::errno_text(&e));
                }
            }
        }
        // Sleep the rest of the interval in short steps, so that stop is seen quickly.
        let next = round_start + spec.every.as_nanos();
        loop {
            let now = now_ns();
            if now >= next || stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_nanos(
                (next - now).min(10_000_000),
            ));
        }
    }
    out.extra = action.extra();
    out
}

/// One action on block `b`, timed, with the folio of the page it touches looked at
/// before and after (outside the timing): (outcome, start, end, confirmed). The spans
/// of the two looks go to `checks`.
fn act_and_confirm(
    action: &mut dyn Action,
    confirmer: Option<&confirm::Confirmer>,
    region: &Region,
    b: usize,
    checks: &mut Vec<(u64, u64)>,
) -> (std::io::Result<bool>, u64, u64, bool) {
    let addr = action.touched(region, b);
    let before = confirmer.and_then(|c| {
        let from = now_ns();
        let s = c.look(addr);
        checks.push((from, now_ns()));
        s
    });
    let t0 = now_ns();
    let r = action.act(region, b);
    let t1 = now_ns();
    let confirmed = match (confirmer, before, &r) {
        (Some(c), Some(before), Ok(true)) => {
            let from = now_ns();
            let yes = c.confirms(before, addr);
            checks.push((from, now_ns()));
            yes
        }
        _ => false,
    };
    (r, t0, t1, confirmed)
}

/// Puts the buffer back to whole folios of its size before a measured run: collapse
/// PMD THPs (MADV_COLLAPSE), and where that is not enough, or for mTHP buffers, which
/// MADV_COLLAPSE cannot rebuild (it makes PMD-sized THPs only), drop the whole buffer
/// (MADV_DONTNEED) and fault it in again, so that the fault path allocates folios of
/// the asked size. Returns what did not work, for the caller's verdict on coverage; the
/// buffer's contents are not kept (every I/O writes or stamps its data afresh).
pub fn restore(buffers: &IoBuffers, min_coverage: f64) -> Vec<String> {
    use crate::workload::Backing;
    let mut notes = Vec::new();
    if matches!(buffers.backing, Backing::Base | Backing::Hugetlb) {
        buffers.prefault();
        return notes;
    }
    let covered = || buffers.coverage().is_ok_and(|c| c.fraction >= min_coverage);
    if covered() {
        return notes;
    }
    let madvise = |advice: libc::c_int| {
        // SAFETY: the range is the buffer mapping; no worker does I/O while it runs.
        let rc =
            unsafe { libc::madvise(buffers.base() as *mut libc::c_void, buffers.len(), advice) };
        (rc != 0).then(std::io::Error::last_os_error)
    };
    if buffers.backing == Backing::Thp {
        if let Some(e) = madvise(crate::system::MADV_COLLAPSE) {
            notes.push(format!(
                "MADV_COLLAPSE of the buffer failed: {}",
                crate::system::errno_text(&e)
            ));
        }
        buffers.prefault();
        if covered() {
            return notes;
        }
    }
    if let Some(e) = madvise(libc::MADV_DONTNEED) {
        notes.push(format!(
            "MADV_DONTNEED of the buffer (to fault it in again) failed: {}",
            crate::system::errno_text(&e)
        ));
    }
    buffers.prefault();
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Backing;

    fn spec(kind: DisturbKind) -> DisturbSpec {
        DisturbSpec {
            kind,
            method: None,
            every: crate::units::Duration(2_000_000),
            fraction: 1.0,
            cpu: None,
            hold: crate::units::Duration(0),
        }
    }

    fn output(kind: DisturbKind) -> DisturberOutput {
        DisturberOutput {
            spec: spec(kind),
            cpu: None,
            actions: 10,
            confirmed: None,
            errors: 0,
            last_error: None,
            latency: new_histogram(),
            action_times: Vec::new(),
            extra: BTreeMap::new(),
            scope: None,
            tid: 0,
            check_spans: Vec::new(),
        }
    }

    /// The rules that need no machine: hugetlb takes only fork, base pages no split, and
    /// swap-out and pressure need swap. (Refusals only the machine can tell, such as
    /// MADV_COLLAPSE on folios smaller than a PMD, are run in tests/in_process.rs.)
    #[test]
    fn what_cannot_act_on_the_buffer_is_refused_with_a_remedy() {
        let split = DisturbSpec {
            method: Some(SplitMethod::Cold),
            ..spec(DisturbKind::Split)
        };
        let kinds = [
            split.clone(),
            spec(DisturbKind::Collapse),
            spec(DisturbKind::SwapOut),
            spec(DisturbKind::Pressure),
        ];
        for s in &kinds {
            let (reason, remedy) = refusal(s, Backing::Hugetlb, true)
                .unwrap_or_else(|| panic!("{:?} on hugetlb", s.kind));
            assert!(reason.starts_with("the buffer is hugetlb"), "{reason}");
            assert!(remedy.contains("fork works on hugetlb"), "{remedy}");
        }
        assert_eq!(
            refusal(&spec(DisturbKind::Fork), Backing::Hugetlb, false),
            None
        );
        let (reason, _) = refusal(&split, Backing::Base, true).expect("split on base pages");
        assert!(reason.contains("no huge page to split"), "{reason}");
        for backing in [Backing::Thp, Backing::Mthp(64 << 10)] {
            assert_eq!(refusal(&split, backing, false), None, "{backing}");
        }
        // Base pages swap out, one by one, and feel pressure; both need swap.
        for s in [spec(DisturbKind::SwapOut), spec(DisturbKind::Pressure)] {
            assert_eq!(refusal(&s, Backing::Base, true), None, "{:?}", s.kind);
            let (reason, remedy) = refusal(&s, Backing::Thp, false).expect("no swap");
            assert!(reason.starts_with("no swap is active"), "{reason}");
            assert!(remedy.contains("--swap zram:1G"), "{remedy}");
        }
        assert_eq!(
            refusal(&spec(DisturbKind::Collapse), Backing::Base, false),
            None
        );
    }

    /// Base pages swap one at a time: swap-out on them is proven by pswpout and a swap-in
    /// alone, as no huge-page counter can move.
    #[test]
    fn swap_out_of_base_pages_expects_no_huge_page_counter() {
        let s = spec(DisturbKind::SwapOut);
        assert_eq!(
            expected_counters(&s, Backing::Base, false),
            [vec!["pswpout"], vec!["pswpin", "swpin_zero", "swpin"]]
        );
        let on_thp = expected_counters(&s, Backing::Thp, false);
        assert_eq!(on_thp.len(), 3, "{on_thp:?}");
        assert!(on_thp[0].contains(&"thp_swpout"), "{on_thp:?}");
    }

    /// What a swap-out into zswap moves (mm/page_io.c swap_writeout: zswap_store
    /// returns before __swap_writepage counts pswpout and thp_swpout).
    fn zswap_delta() -> BTreeMap<String, i64> {
        [
            ("pswpout", 0),
            ("pswpin", 0),
            ("thp_swpout", 0),
            ("zswpout", 5120),
            ("zswpin", 4096),
            ("mthp_2048kB_zswpout", 10),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn swap_into_zswap_proves_swap_out_and_pressure_only_where_zswap_is_enabled() {
        for kind in [DisturbKind::SwapOut, DisturbKind::Pressure] {
            let out = output(kind);
            let with = out.report(&zswap_delta(), Backing::Thp, true);
            assert!(with.counters_moved, "{kind:?} with zswap: {with:?}");
            let without = out.report(&zswap_delta(), Backing::Thp, false);
            assert!(
                !without.counters_moved,
                "{kind:?} without zswap cannot have swapped into it: {without:?}"
            );
            assert!(without.counters_not_moved.iter().any(|g| g == "pswpout"));
        }
        let base = output(DisturbKind::SwapOut).report(&zswap_delta(), Backing::Base, true);
        assert!(base.counters_moved, "{base:?}");
        assert_eq!(
            base.expected_counters,
            vec!["pswpout|zswpout", "pswpin|swpin_zero|swpin|zswpin"]
        );
    }

    #[test]
    fn a_split_of_a_folio_shared_with_a_fork_child_is_not_confirmed() {
        let test = "a_split_of_a_folio_shared_with_a_fork_child_is_not_confirmed";
        if !crate::test_support::require_root(test, "/proc/kpageflags") {
            return;
        }
        let buffers = IoBuffers::new(
            Backing::Thp,
            crate::workload::Share::Private,
            1,
            4096,
            false,
        )
        .unwrap();
        let region = Region::of(&buffers);
        let mut split_spec = spec(DisturbKind::Split);
        split_spec.method = Some(SplitMethod::Cold);
        let confirmer = confirm::Confirmer::new(&split_spec).expect("root sees folios");
        let mut action = madvise::split(SplitMethod::Cold, &region).unwrap()();
        // SAFETY: the child only sleeps until it is killed (async-signal-safe calls).
        let child = unsafe { libc::fork() };
        if child == 0 {
            loop {
                // SAFETY: pause(2) in the forked child.
                unsafe { libc::pause() };
            }
        }
        assert!(child > 0, "fork failed");
        // MADV_COLD skips a THP that another process maps (mm/madvise.c): it answers 0.
        let (shared, _, _, confirmed) = act_and_confirm(
            action.as_mut(),
            Some(&confirmer),
            &region,
            0,
            &mut Vec::new(),
        );
        // SAFETY: the child made above.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
        assert!(shared.unwrap(), "madvise answered 0");
        assert!(!confirmed, "the shared THP was not split, yet confirmed");
        let (alone, _, _, confirmed) = act_and_confirm(
            action.as_mut(),
            Some(&confirmer),
            &region,
            0,
            &mut Vec::new(),
        );
        assert!(alone.unwrap());
        assert!(
            confirmed,
            "the THP, no longer shared, is split and confirmed"
        );
    }

    #[test]
    fn zswap_counters_are_kept_in_the_vmstat_delta() {
        assert!(crate::system::vmstat::is_tracked("zswpout"));
        assert!(crate::system::vmstat::is_tracked("zswpin"));
    }
}
