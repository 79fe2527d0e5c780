//! Disturbers against long-term pinned buffers (uring with registered buffers). A folio
//! pinned with FOLL_LONGTERM cannot be split (split_folio sees the extra references and
//! fails: thp_split_page_failed, mthp_<size>kB_split_failed), migrated, or unmapped for
//! reclaim (try_to_unmap fails on a maybe-DMA-pinned exclusive anon page), so it is never
//! swapped out and read back; with the huge pages kept whole, a collapse has nothing to
//! do. Such a disturber acted but did not get its effect: the run records that the pin
//! defeated it, with the counters that show it, instead of calling the run broken.

use std::collections::BTreeMap;

use crate::result::DisturberReport;
use crate::workload::DisturbKind;

/// The vmstat counters that tell what happened to a disturber's attempts on pinned
/// buffers: failed splits, swap writes that never came back, collapses.
const EVIDENCE: &[&str] = &[
    "thp_split_page_failed",
    "mthp_*_split_failed",
    "thp_split_page",
    "thp_split_pmd",
    "pswpout",
    "pswpin",
    "thp_swpout",
    "thp_collapse_alloc",
];

/// For a disturber that acted on registered (long-term pinned) buffers and whose proof
/// counters did not move: marks it defeated by the pin and keeps the evidence. Returns
/// whether it did.
pub fn mark_defeated_by_pin(
    kind: DisturbKind,
    report: &mut DisturberReport,
    vmstat_delta: &BTreeMap<String, i64>,
) -> bool {
    let pin_stops_it = matches!(
        kind,
        DisturbKind::Split | DisturbKind::SwapOut | DisturbKind::Pressure | DisturbKind::Collapse
    );
    if !pin_stops_it || report.actions == 0 || report.counters_moved {
        return false;
    }
    report.defeated_by_pin = true;
    report.pin_evidence = vmstat_delta
        .iter()
        .filter(|(name, _)| {
            EVIDENCE
                .iter()
                .any(|p| crate::system::vmstat::counter_matches(p, name))
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_that_failed_on_pinned_folios_is_defeated_with_its_counters() {
        let mut r = DisturberReport {
            name: "split:cold".into(),
            actions: 179,
            counters_moved: false,
            ..Default::default()
        };
        let delta: BTreeMap<String, i64> = [
            ("thp_split_page_failed".to_string(), 179),
            ("mthp_2048kB_split_failed".to_string(), 179),
            ("thp_split_page".to_string(), 0),
            ("pgfault".to_string(), 12),
        ]
        .into();
        assert!(mark_defeated_by_pin(DisturbKind::Split, &mut r, &delta));
        assert!(r.defeated_by_pin);
        assert_eq!(r.pin_evidence["thp_split_page_failed"], 179);
        assert_eq!(r.pin_evidence["mthp_2048kB_split_failed"], 179);
        assert_eq!(r.pin_evidence["thp_split_page"], 0);
        assert!(!r.pin_evidence.contains_key("pgfault"));
        // A disturber that got its effect, or never acted, or a fork: not defeated.
        let mut moved = DisturberReport {
            actions: 5,
            counters_moved: true,
            ..Default::default()
        };
        assert!(!mark_defeated_by_pin(
            DisturbKind::Split,
            &mut moved,
            &delta
        ));
        let mut fork = DisturberReport {
            actions: 5,
            ..Default::default()
        };
        assert!(!mark_defeated_by_pin(DisturbKind::Fork, &mut fork, &delta));
        assert!(!fork.defeated_by_pin);
    }
}
