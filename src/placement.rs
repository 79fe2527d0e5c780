//! Where a run lives on the machine: worker CPUs (chosen in src/system/topology.rs),
//! the housekeeping CPUs for disturbers and collectors, the NUMA policy of the buffers,
//! and the proof of where the buffer pages are.

use std::cell::RefCell;
use std::collections::BTreeMap;

use anyhow::Result;

use crate::buffer::IoBuffers;
use crate::result::{Placement, ThreadResult, Unavailable};
use crate::system::cpu::AffinityGuard;
use crate::system::numa::{self, Numa};
use crate::system::topology::{self, Selection, Topology};
use crate::workload::{Share, Workload};

/// The layout of one workload's run, held while it runs.
pub struct Layout {
    pub placement: Placement,
    pub topo: Topology,
    /// Per worker, its NUMA node.
    pub nodes: Vec<u32>,
    pub housekeeping: Vec<usize>,
    /// The main thread (collectors, and every thread it starts unpinned) stays on the
    /// housekeeping CPUs until this drops.
    _affinity: Option<AffinityGuard>,
}

impl Layout {
    pub fn new(sel: &Selection) -> Layout {
        let topo = Topology::current();
        let allowed = crate::system::cpu::allowed_cpus();
        let (housekeeping, which) = topology::housekeeping(&topo, &allowed, &sel.cpus);
        let affinity = (!housekeeping.is_empty())
            .then(|| AffinityGuard::restrict_current(&housekeeping).ok())
            .flatten();
        let list = crate::units::format_cpu_list;
        crate::output::info(&format!(
            "workers on CPUs {}: {}; disturbers and collectors on {} ({which})",
            list(&sel.cpus),
            sel.why,
            if housekeeping.is_empty() {
                "the workers' CPUs".into()
            } else {
                list(&housekeeping)
            }
        ));
        Layout {
            placement: Placement {
                worker_cpus: list(&sel.cpus),
                why: sel.why.clone(),
                housekeeping_cpus: list(&housekeeping),
                housekeeping: which.to_string(),
            },
            nodes: sel
                .cpus
                .iter()
                .map(|&c| topo.cpu(c).map_or(0, |x| x.node))
                .collect(),
            topo,
            housekeeping,
            _affinity: affinity,
        }
    }

    /// Makes the buffers with the workload's NUMA policy applied before they are
    /// faulted; a policy the kernel refuses comes back as unavailable.
    pub fn make_buffers(
        &self,
        w: &Workload,
        threads: usize,
    ) -> Result<(IoBuffers, Option<Unavailable>)> {
        let refused = RefCell::new(None);
        let slots = w.slots_per_worker();
        let place = |b: &IoBuffers| {
            let ranges: Vec<(usize, usize)> =
                (0..threads).map(|t| b.thread_range(t, slots)).collect();
            let shared = w.share == Share::Shared;
            if let Err(e) = numa::place(
                w.numa,
                b.base() as usize,
                b.len(),
                &ranges,
                &self.nodes,
                shared,
            ) {
                *refused.borrow_mut() = Some(e);
            }
            Ok(())
        };
        let buffers = IoBuffers::new_placed(
            w.buffer,
            w.share,
            threads * slots,
            w.bs.bytes() as usize,
            w.per_page_iovecs,
            &place,
        )?;
        let refused = refused.into_inner().map(|reason| {
            crate::output::warn(&format!("numa = \"{}\": {reason}", w.numa));
            Unavailable::new(
                format!("NUMA placement numa = \"{}\"", w.numa),
                reason,
                "run on a kernel with CONFIG_NUMA, or set numa = \"any\"",
            )
        });
        Ok((buffers, refused))
    }

    /// Per worker, the share of its part of a private buffer on its node; and the whole
    /// buffer's present pages per node. Unmeasurable (no move_pages): Nones, empty map.
    pub fn locality(
        &self,
        b: &IoBuffers,
        threads: usize,
    ) -> (Vec<Option<f64>>, BTreeMap<String, u64>) {
        let Ok(status) = numa::page_nodes(b.base() as usize, b.len()) else {
            return (vec![None; threads], BTreeMap::new());
        };
        let per_worker = (0..threads)
            .map(|t| {
                if b.share == Share::Shared {
                    return None;
                }
                let (off, len) = b.thread_range(t, b.segments.len() / threads.max(1));
                let page = crate::pages::base_page();
                let pages = &status[off / page..(off + len) / page];
                numa::local_share(pages, self.nodes[t])
            })
            .collect();
        (per_worker, numa::node_pages(&status))
    }

    /// Fills a thread's topology and locality fields (threads are in worker order).
    pub fn annotate(&self, t: &mut ThreadResult, before: Option<f64>, after: Option<f64>) {
        if let Some(c) = self.topo.cpu(t.cpu) {
            (t.core, t.package, t.numa_node) = (Some(c.core_id), Some(c.package), Some(c.node));
        }
        (t.numa_local_before, t.numa_local_after) = (before, after);
    }
}

/// Why a `numa = "local"` run is not evidence: workers whose buffer is below 99 % on
/// their node, before or after the run.
pub fn locality_complaints(numa: Numa, run_name: &str, threads: &[ThreadResult]) -> Vec<String> {
    if numa != Numa::Local {
        return Vec::new();
    }
    threads
        .iter()
        .flat_map(|t| {
            [("after set-up", t.numa_local_before), ("after the run", t.numa_local_after)]
                .into_iter()
                .filter_map(move |(when, share)| {
                    share.filter(|&s| s < numa::MIN_LOCAL).map(|s| {
                        format!(
                            "{run_name}: only {:.1}% of the buffer of the worker on CPU {} is on its NUMA node {} {when} (need {:.0}%); free memory on that node, or set numa = \"interleave\" or \"any\" to measure without placement",
                            s * 100.0,
                            t.cpu,
                            t.numa_node.map_or("?".into(), |n| n.to_string()),
                            numa::MIN_LOCAL * 100.0
                        )
                    })
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_below_99_percent_local_makes_a_local_run_invalid_only() {
        let t = |cpu, before, after| ThreadResult {
            cpu,
            numa_node: Some(1),
            numa_local_before: before,
            numa_local_after: after,
            ..ThreadResult::default()
        };
        let threads = [
            t(0, Some(1.0), Some(1.0)),
            t(4, Some(0.995), Some(0.5)),
            t(5, None, None),
        ];
        let why = locality_complaints(Numa::Local, "run 2", &threads);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].starts_with("run 2: only 50.0% of the buffer of the worker on CPU 4 is on its NUMA node 1 after the run"), "{}", why[0]);
        assert!(locality_complaints(Numa::Interleave, "run 2", &threads).is_empty());
        assert!(locality_complaints(Numa::Any, "run 2", &threads).is_empty());
    }
}
