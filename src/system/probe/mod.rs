//! `thpbench probe`: what this machine lets thpbench do, each finding with the reason
//! and the remedy, by area. The same checks decide, during a run, what is recorded
//! unavailable, and `capability` holds the remedies both use.

pub mod capability;
mod filesystem;
mod kernel;
mod leftovers;
mod madvise;
mod memory;
mod perf;
mod topology;
pub mod tracing;

use serde::{Deserialize, Serialize};

pub use capability::Capability;
pub use filesystem::check_o_direct;
pub use kernel::{kernel_info, system_info};
pub use madvise::try_madvise;
pub use perf::{hardware_pmu, perf_event_paranoid, software_events};
pub use tracing::{contention_tracepoints, split_huge_pages_writable, tracefs_mounted};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeRow {
    pub what: String,
    pub available: bool,
    /// What was found (a setting, a version, a list).
    pub value: String,
    pub reason: String,
    pub remedy: String,
}

fn row(
    what: &str,
    available: bool,
    value: impl Into<String>,
    reason: impl Into<String>,
    remedy: impl Into<String>,
) -> ProbeRow {
    ProbeRow {
        what: what.into(),
        available,
        value: value.into(),
        reason: reason.into(),
        remedy: remedy.into(),
    }
}

fn info(what: &str, value: impl Into<String>) -> ProbeRow {
    row(what, true, value, "", "")
}

/// A capability's row: its remedy is shown only where it is missing.
fn capability_row(
    cap: Capability,
    available: bool,
    value: impl Into<String>,
    reason: impl Into<String>,
) -> ProbeRow {
    row(
        cap.what,
        available,
        value,
        reason,
        if available { "" } else { cap.remedy },
    )
}

/// A capability's row that always carries its remedy (the table prints it only where
/// the capability is missing; JSON readers have always seen it).
fn capability_row_with_remedy(cap: Capability, check: Result<(), String>, value: &str) -> ProbeRow {
    row(
        cap.what,
        check.is_ok(),
        value,
        check.err().unwrap_or_default(),
        cap.remedy,
    )
}

/// Every row, in the order the table shows them.
pub fn probe(target_dir: &std::path::Path) -> Vec<ProbeRow> {
    let mut rows = kernel::rows();
    rows.extend(memory::rows());
    rows.extend(perf::rows());
    rows.extend(tracing::rows());
    rows.extend(madvise::rows());
    rows.push(filesystem::row(target_dir));
    rows.push(topology::row());
    rows.push(leftovers::probe_row());
    rows.push(topology::topology_row(&super::topology::Topology::current()));
    rows
}
