//! The rig: everything a workload's runs share, set up once and torn down by its
//! guards' drops (target, cgroup, buffers, swap, debugfs, disturber plan), and the
//! block generations that writes with verify carry from one repeat to the next.

use anyhow::{bail, Result};

use super::validity::coverage_complaint;
use super::{RunOptions, MIN_COVERAGE};
use crate::buffer::IoBuffers;
use crate::result::BenchResult;
use crate::signals::Interrupted;
use crate::target::Target;
use crate::workload::{Backing, Workload};

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
    pub(super) fn new(
        w: &Workload,
        cpus: &[usize],
        layout: crate::placement::Layout,
        opts: &RunOptions,
        result: &mut BenchResult,
    ) -> Result<Setup> {
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
        let buffers = layout.make_buffers(w, cpus.len(), &mut result.unavailable)?;
        if stop() {
            bail!(Interrupted);
        }
        let cov = buffers.coverage()?;
        if cov.fraction < MIN_COVERAGE && w.buffer != Backing::Base {
            let msg = coverage_complaint(w, cov.fraction, "after prefault");
            if !w.allow_fallback {
                bail!("{msg}; pass --allow-fallback to measure anyway (the result is then marked invalid)");
            }
            result.invalid_reasons.push(msg);
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
        let disturbers = crate::disturb::plan(
            w,
            &region,
            cpus,
            swap_ready,
            cgroup.as_ref(),
            &mut result.unavailable,
        )?;
        let generations = block_generations(w, target.as_ref(), cpus.len())?;
        Ok(Setup {
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
        })
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
