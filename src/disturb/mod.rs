//! Disturbers: threads that act on the workers' buffers while the I/O runs — split the
//! huge pages, collapse them back, page them out, fork — each timing its own calls and
//! logging when it acted, so that latency spikes line up with what caused them and the
//! vmstat deltas prove that the kernel did what was asked.

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

pub use madvise::MADV_COLLAPSE;

/// The part of the buffer a disturber acts on, and its unit (one folio-sized block).
#[derive(Debug, Clone)]
pub struct Region {
    pub base: usize,
    pub len: usize,
    pub block: usize,
    /// Per block, the 4 KiB pages that no worker's I/O uses (offsets into the block).
    pub idle_pages: Vec<Vec<usize>>,
}

impl Region {
    pub fn of(buffers: &IoBuffers) -> Region {
        let block = buffers.folio_bytes as usize;
        let blocks = buffers.len() / block;
        let mut used = vec![false; buffers.len() / crate::buffer::PAGE];
        for segs in &buffers.segments {
            for s in segs {
                let pages = s.offset / crate::buffer::PAGE
                    ..(s.offset + s.len).div_ceil(crate::buffer::PAGE);
                used[pages].fill(true);
            }
        }
        let per_block = block / crate::buffer::PAGE;
        let idle_pages = (0..blocks)
            .map(|b| {
                (0..per_block)
                    .filter(|p| !used[b * per_block + p])
                    .map(|p| p * crate::buffer::PAGE)
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
    /// Whole-round actions (fork) return true and are called once per round with b = 0.
    fn per_round(&self) -> bool {
        false
    }
    /// Extra figures for the report.
    fn extra(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
}

/// The vmstat counters that prove a disturber did its job on buffers of `backing`:
/// every group must move, and a group moves when any of its counters does (`*`: any
/// mTHP size; the kernel counts PMD-sized folios in thp_* and every size in
/// mthp_<size>kB_*).
pub fn expected_counters(
    spec: &DisturbSpec,
    backing: crate::workload::Backing,
) -> Vec<Vec<&'static str>> {
    match (spec.kind, spec.method) {
        // 4 KiB pages swap out one by one: no huge-page counter can move.
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

/// Checks each asked-for disturber against the machine; the ones that cannot run are
/// recorded as unavailable. Fails when none of those asked for can run.
pub fn plan(
    w: &Workload,
    region: &Region,
    worker_cpus: &[usize],
    swap_ready: bool,
    cgroup: Option<&crate::system::cgroup::MemCgroup>,
    unavailable: &mut Vec<Unavailable>,
) -> anyhow::Result<Vec<Planned>> {
    let mut free_cpus: Vec<usize> = crate::system::cpu::allowed_cpus()
        .into_iter()
        .filter(|c| !worker_cpus.contains(c))
        .collect();
    let mut planned = Vec::new();
    let mut refused = Vec::new();
    let hugetlb = w.buffer == crate::workload::Backing::Hugetlb;
    let base_pages = w.buffer == crate::workload::Backing::Base;
    for spec in &w.disturb {
        let label = spec.label();
        let made: Result<ActionMaker, (String, String)> = match (spec.kind, spec.method) {
            // hugetlb pages are no THP: the kernel does not split, collapse, page out or
            // reclaim them (MADV_COLD/PAGEOUT/COLLAPSE answer EINVAL on a hugetlb VMA).
            (DisturbKind::Split | DisturbKind::Collapse | DisturbKind::SwapOut | DisturbKind::Pressure, _)
                if hugetlb =>
            {
                Err((
                    "the buffer is hugetlb, which the kernel never splits, collapses, pages out or reclaims".into(),
                    "use --buffer thp or mthp:SIZE for this disturber (fork works on hugetlb)".into(),
                ))
            }
            (DisturbKind::Split, _) if base_pages => Err((
                "the buffer is 4 KiB pages: there is no huge page to split".into(),
                "use --buffer thp or mthp:SIZE to split huge pages under the I/O".into(),
            )),
            (DisturbKind::Split, Some(method)) => madvise::split(method, region),
            (DisturbKind::Split, None) => Err(("split needs a method".into(), "set method".into())),
            (DisturbKind::Collapse, _) => madvise::collapse(region),
            (DisturbKind::SwapOut, _) => {
                if swap_ready {
                    madvise::swap_out()
                } else {
                    Err((
                        "no swap is active, so MADV_PAGEOUT cannot swap anonymous pages out".into(),
                        "set swap = \"zram:1G\" (root) in the workload or pass --swap zram:1G"
                            .into(),
                    ))
                }
            }
            (DisturbKind::Fork, _) => Ok(fork::maker(spec.hold.as_nanos())),
            (DisturbKind::Pressure, _) => match (cgroup, swap_ready) {
                (_, false) => Err((
                    "no swap is active, so reclaim cannot push anonymous buffers out".into(),
                    "set swap = \"zram:1G\" (root) or pass --swap zram:1G".into(),
                )),
                (None, true) => Err((
                    crate::system::cgroup::unavailable_reason()
                        .unwrap_or_else(|| "the memory cgroup could not be made".into()),
                    "run as root on a system with the memory cgroup controller".into(),
                )),
                (Some(cg), true) => {
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
    Ok(planned)
}

/// What a disturber thread hands back.
pub struct DisturberOutput {
    pub spec: DisturbSpec,
    pub cpu: Option<usize>,
    pub actions: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    pub latency: Histogram<u64>,
    /// When each action ended, ns since the epoch.
    pub action_times: Vec<u64>,
    pub extra: BTreeMap<String, u64>,
}

impl DisturberOutput {
    pub fn report(
        &self,
        vmstat_delta: &BTreeMap<String, i64>,
        backing: crate::workload::Backing,
    ) -> DisturberReport {
        let groups = expected_counters(&self.spec, backing);
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
        errors: 0,
        last_error: None,
        latency: new_histogram(),
        action_times: Vec::with_capacity(4096),
        extra: BTreeMap::new(),
    };
    let blocks = region.blocks().max(1);
    let per_round = if action.per_round() {
        1
    } else {
        ((blocks as f64 * spec.fraction).ceil() as usize).clamp(1, blocks)
    };
    let mut cursor = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let round_start = now_ns();
        for _ in 0..per_round {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let b = cursor % blocks;
            cursor += 1;
            let t0 = now_ns();
            let r = action.act(&region, b);
            let t1 = now_ns();
            match r {
                Ok(true) => {
                    out.actions += 1;
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

/// Puts the buffer back to fully huge before a measured run: collapse every block and
/// fault back anything swapped out. Best effort; coverage is measured afterwards.
pub fn restore(buffers: &IoBuffers) {
    if matches!(buffers.backing, crate::workload::Backing::Thp) {
        // SAFETY: the range is the buffer mapping.
        unsafe {
            libc::madvise(
                buffers.base() as *mut libc::c_void,
                buffers.len(),
                MADV_COLLAPSE,
            )
        };
    }
    buffers.prefault();
}
