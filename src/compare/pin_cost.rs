//! Pin cost per group: the `fixed_buffers` pairs of a group's sweep, recomputed over the
//! group's pooled repeats (as every other figure of `compare`), for groups whose results
//! carry `pin_cost`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::grouping::{Group, Input};
use crate::result::{PinCost, SweepCase};

#[derive(Debug, Clone, Serialize)]
pub struct GroupPinCost {
    pub group: usize,
    /// One per pair label (`bs=10M buffer=thp`), as in a result's `pin_cost[]`.
    pub pairs: Vec<PinCost>,
}

/// The pin cost of one group, when any of its results has `pin_cost`.
pub(super) fn group_pin_cost(gi: usize, group: &Group, inputs: &[Input]) -> Option<GroupPinCost> {
    let mine: Vec<&Input> = inputs
        .iter()
        .filter(|i| group.files.contains(&i.path.display().to_string()))
        .collect();
    if mine.iter().all(|i| i.result.pin_cost.is_empty()) {
        return None;
    }
    // Case label -> its params, from the results' sweeps; the runs are the group's pooled
    // (evidence-filtered) runs of that section.
    let mut params: BTreeMap<&str, &crate::workload::SweepParams> = BTreeMap::new();
    for input in &mine {
        for case in &input.result.sweep {
            params.insert(case.label.as_str(), &case.params);
        }
    }
    let cases: Vec<SweepCase> = group
        .sections
        .iter()
        .filter_map(|(name, runs)| {
            Some(SweepCase {
                label: name.clone(),
                params: (*params.get(name.as_str())?).clone(),
                runs: runs.clone(),
            })
        })
        .collect();
    let default_bs = mine[0].result.workload.bs.bytes();
    // Pooled runs pair up by index only if every result measured its pairs alternately.
    let paired = mine
        .iter()
        .all(|i| i.result.pin_cost.iter().all(|p| p.paired));
    let page = mine[0].result.system.base_page_bytes;
    let pairs = crate::measure::pin_cost::pin_costs(&cases, default_bs, paired, page);
    (!pairs.is_empty()).then_some(GroupPinCost { group: gi, pairs })
}
