//! The rig: everything a workload's runs share, set up once and torn down by its
//! guards' drops (target, cgroup, buffers, swap, debugfs, disturber plan), the block
//! generations that writes with verify carry from one repeat to the next, and what the
//! rig answers about itself between repeats (the final verify pass, where the workers
//! ran, the kernel's GUP figures on its buffer).

use anyhow::{bail, Result};

use super::findings::Findings;
use super::validity::coverage_complaint;
use super::{RunOptions, MIN_COVERAGE};
use crate::buffer::IoBuffers;
use crate::measure::histogram;
use crate::result::ThreadResult;
use crate::signals::Interrupted;
use crate::target::Target;
use crate::worker::WorkerOutput;
use crate::workload::{Backing, Workload};

/// Per worker, the share of its buffer on its own node; the buffer's pages per node.
pub(super) type NumaLocality = (Vec<Option<f64>>, std::collections::BTreeMap<String, u64>);

/// What lives for the whole invocation. Field order is teardown order: buffers (and
/// their knob guards) go first, freeing their swap slots, then swap is turned off and
/// removed, then the target is closed and removed.
pub(super) struct Setup {
    pub(super) buffers: IoBuffers,
    pub(super) disturbers: Vec<crate::disturb::Planned>,
    pub(super) region: crate::disturb::Region,
    _cgroup: Option<crate::system::cgroup::MemCgroup>,
    _debugfs: Option<crate::system::mounts::MountGuard>,
    _swap: Option<crate::system::swap::SwapGuard>,
    /// None for engines that do no device I/O (gup).
    pub(super) target: Option<Target>,
    pub(super) cpus: Vec<usize>,
    /// Per worker, the generation of each block it owns (see WorkerPlan::generations);
    /// kept across repeats, since the target is filled once.
    pub(super) generations: std::sync::Mutex<Vec<Vec<u32>>>,
    /// Where the workers and their buffers are; dropped last (it holds the main
    /// thread's CPU affinity).
    pub(super) layout: crate::placement::Layout,
}

impl Setup {
    /// Sets everything up for `w`'s runs, with what setting up found (unavailable NUMA
    /// placement or disturbers; a buffer measured anyway below its coverage).
    pub(super) fn new(
        w: &Workload,
        cpus: &[usize],
        layout: crate::placement::Layout,
        opts: &RunOptions,
    ) -> Result<(Setup, Findings)> {
        let mut findings = Findings::default();
        let stop = || crate::signals::received();
        let target = if w.engine == crate::workload::Engine::Gup && opts.mock.is_none() {
            None
        } else {
            let target = if opts.mock.is_some() {
                Target::in_memory(w, &stop)?
            } else {
                Target::setup(w, &stop)?
            };
            if w.verify && target.stamped.is_none() {
                bail!(
                    "--verify needs a target holding thpbench's pattern, and {} was not written",
                    target.path.display()
                );
            }
            if target.size < w.bs.bytes() {
                bail!(
                    "target {} holds {} bytes, less than bs = {}",
                    target.path.display(),
                    target.size,
                    w.bs
                );
            }
            if let Some(off) = opts.inject_corruption_at {
                let page = crate::pages::base_page();
                target.corrupt(off.min(target.size - page as u64), page)?;
            }
            Some(target)
        };
        // The memory cgroup comes before the buffers, so that they are charged to it.
        let wants_cgroup = w
            .disturb
            .iter()
            .any(|d| d.kind == crate::workload::DisturbKind::Pressure);
        let cgroup = if wants_cgroup && crate::system::cgroup::unavailable_reason().is_none() {
            Some(crate::system::cgroup::MemCgroup::create()?)
        } else {
            None
        };
        let (buffers, refused) = layout.make_buffers(w, cpus.len())?;
        if let Some(u) = refused {
            findings.unavailable(u);
        }
        if stop() {
            bail!(Interrupted);
        }
        let cov = buffers.coverage()?;
        if cov.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
            let msg = coverage_complaint(w, cov.fraction, "after prefault");
            if !w.allow_fallback {
                bail!("{msg}; pass --allow-fallback to measure anyway (the result is then marked invalid)");
            }
            findings.invalid(None, msg);
        }
        let swap = match &w.swap {
            Some(spec) => Some(crate::system::swap::SwapGuard::setup(
                &crate::system::swap::SwapSpec::parse(spec).map_err(anyhow::Error::msg)?,
            )?),
            None => None,
        };
        let swap_ready = swap.is_some() || !crate::system::swap::active_swaps().is_empty();
        let wants_debugfs = w
            .disturb
            .iter()
            .any(|d| d.method == Some(crate::workload::SplitMethod::Debugfs));
        let debugfs = if wants_debugfs && crate::system::is_root() {
            crate::system::mounts::MountGuard::ensure("debugfs", crate::system::mounts::DEBUGFS)
                .ok()
        } else {
            None
        };
        let region = crate::disturb::Region::of(&buffers);
        let (disturbers, unavailable) =
            crate::disturb::plan(w, &region, cpus, swap_ready, cgroup.as_ref())?;
        for u in unavailable {
            findings.unavailable(u);
        }
        let generations = block_generations(w, target.as_ref(), cpus.len())?;
        let setup = Setup {
            buffers,
            disturbers,
            region,
            _cgroup: cgroup,
            _debugfs: debugfs,
            _swap: swap,
            target,
            cpus: cpus.to_vec(),
            generations: std::sync::Mutex::new(generations),
            layout,
        };
        Ok((setup, findings))
    }

    /// Worker `i`'s slots' segments for a queued engine; empty for the others.
    pub(super) fn worker_slots(&self, w: &Workload, i: usize) -> Vec<Vec<crate::buffer::Segment>> {
        if w.engine != crate::workload::Engine::Uring {
            return Vec::new();
        }
        let n = w.slots_per_worker();
        self.buffers.segments[i * n..(i + 1) * n].to_vec()
    }

    /// The final verify pass of a write workload with verify: every block of the
    /// region read back and checked against the generation its owner (worker
    /// `block % n`, the only one that writes it) last wrote, so that data written by
    /// anyone else at any time in the run is found, with its offset.
    pub(super) fn final_pass(
        &self,
        w: &Workload,
        interrupted: bool,
    ) -> Option<crate::result::FinalVerify> {
        let t = self.target.as_ref()?;
        let nonce = t.stamped?;
        if !w.verify || !w.rw.writes() {
            return None;
        }
        if interrupted {
            return Some(crate::result::FinalVerify {
                incomplete: Some("not made: the run was interrupted".into()),
                ..Default::default()
            });
        }
        let bs = w.bs.bytes();
        let workers = self.cpus.len() as u64;
        let kept = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let stamp_of = |block: u64| crate::verify::Stamp {
            seed: w.seed,
            nonce,
            generation: kept
                .get((block % workers) as usize)
                .and_then(|own| own.get((block / workers) as usize))
                .copied()
                .unwrap_or(0),
        };
        Some(crate::verify::final_pass(
            t.fd(),
            t.size / bs,
            bs,
            &stamp_of,
            &crate::signals::received,
        ))
    }

    /// Each worker's own figures, with where it ran and how local its pages were.
    pub(super) fn thread_results(
        &self,
        outputs: &[WorkerOutput],
        numa_before: &NumaLocality,
        numa_after: &NumaLocality,
    ) -> Vec<ThreadResult> {
        let mut threads: Vec<ThreadResult> = outputs
            .iter()
            .map(|o| ThreadResult {
                cpu: o.cpu,
                ops: o.recorder.ops,
                bytes: o.recorder.bytes,
                io_time_ns: o.io_ns,
                verify_time_ns: o.verify_ns,
                latency_ns: histogram::summarize(&o.recorder.total),
                ..ThreadResult::default()
            })
            .collect();
        for t in &mut threads {
            let i = self.cpus.iter().position(|&c| c == t.cpu).unwrap_or(0);
            self.layout.annotate(t, numa_before.0[i], numa_after.0[i]);
        }
        threads
    }

    /// The gup engine's figures with the kernel's own on the same buffer, now that the
    /// workers are done with it.
    pub(super) fn with_kernel_gup_figures(
        &self,
        w: &Workload,
        mut g: crate::result::GupReport,
    ) -> crate::result::GupReport {
        let kernel = crate::measure::gup_test::run(
            self.buffers.base() as usize,
            self.buffers.len(),
            (w.bs.bytes() / crate::pages::base_page() as u64).max(1) as u32,
        );
        g.kernel = Some(kernel);
        g
    }
}

/// The block generation tables the workers start from: when the workload writes with
/// verify on, each worker owns every n-th block of the region (so that it alone knows
/// which generation a block holds) and one u32 per owned block, all at 0 (the fill).
fn block_generations(
    w: &Workload,
    target: Option<&Target>,
    workers: usize,
) -> Result<Vec<Vec<u32>>> {
    let writes = !matches!(
        w.rw,
        crate::workload::Rw::Read | crate::workload::Rw::RandRead
    );
    let Some(t) = target.filter(|_| w.verify && writes) else {
        return Ok(vec![Vec::new(); workers]);
    };
    let blocks = t.size / w.bs.bytes();
    if blocks < workers as u64 {
        bail!(
            "rw = {:?} with verify: each of the {workers} workers writes blocks of its own, but the target {} holds only {blocks} blocks of {}; raise size, lower bs or threads",
            w.rw,
            t.path.display(),
            w.bs
        );
    }
    Ok((0..workers as u64)
        .map(|i| vec![0u32; ((blocks - i).div_ceil(workers as u64)) as usize])
        .collect())
}
