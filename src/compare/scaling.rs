//! Thread scaling of a group whose sweep cases differ in `threads`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::grouping::{Group, Input};
use crate::stats::{estimate, scaling_efficiency, Estimate};

/// ops/s at each thread count of a thread sweep, for one group.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingPoint {
    pub threads: usize,
    pub case: String,
    pub ops_per_sec: Estimate,
    /// ops/s at N threads / (N / N0 * ops/s at N0 threads), N0 the smallest count (1 when
    /// the sweep has it).
    pub efficiency: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    pub group: usize,
    /// The thread count efficiency is measured against.
    pub reference_threads: usize,
    pub points: Vec<ScalingPoint>,
}

/// Thread scaling of one group, when its sweep cases differ in `threads`.
pub(super) fn thread_scaling(gi: usize, group: &Group, inputs: &[Input]) -> Option<Scaling> {
    // Case label -> thread count, from the cases' params.
    let mut threads_of: BTreeMap<&str, usize> = BTreeMap::new();
    for input in inputs {
        if !group.files.contains(&input.path.display().to_string()) {
            continue;
        }
        for case in &input.result.sweep {
            if let Some(t) = case.params.threads {
                threads_of.insert(case.label.as_str(), t);
            }
        }
    }
    let mut points: Vec<ScalingPoint> = group
        .sections
        .iter()
        .filter_map(|(name, runs)| {
            let threads = *threads_of.get(name.as_str())?;
            let ops: Vec<f64> = runs.iter().map(|r| r.ops_per_sec).collect();
            Some(ScalingPoint {
                threads,
                case: name.clone(),
                ops_per_sec: estimate(&ops)?,
                efficiency: None,
            })
        })
        .collect();
    let mut counts: Vec<usize> = points.iter().map(|p| p.threads).collect();
    counts.sort();
    counts.dedup();
    // A sweep over something else (buffer, share) at several thread counts mixes cases at
    // one count; efficiency is only defined when each count is one case.
    if counts.len() < 2 || counts.len() != points.len() {
        return None;
    }
    points.sort_by_key(|p| p.threads);
    let reference = points[0].clone();
    for p in &mut points {
        p.efficiency = scaling_efficiency(
            reference.threads as f64,
            reference.ops_per_sec.mean,
            p.threads as f64,
            p.ops_per_sec.mean,
        );
    }
    Some(Scaling {
        group: gi,
        reference_threads: reference.threads,
        points,
    })
}
