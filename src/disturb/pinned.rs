//! Disturbers against long-term pinned buffers (uring with registered buffers). A folio
//! pinned with FOLL_LONGTERM cannot be split (split_folio sees the extra references and
//! fails: thp_split_page_failed, mthp_<size>kB_split_failed), migrated, or unmapped for
//! reclaim (try_to_unmap fails on a maybe-DMA-pinned exclusive anon page), so it is never
//! swapped out and read back; with the huge pages kept whole, a collapse has nothing to
//! do. Such a disturber acted but did not get its effect: the run records that the pin
//! defeated it, with the evidence that shows it, instead of calling the run broken.
//!
//! Only on evidence of the disturber's own failure: a split, failed splits
//! (thp_split_page_failed, mthp_*_split_failed, which no other disturber here causes
//! without its own splits showing); a swap-out, its own actions confirmed on the buffer
//! none of them (the pages it paged out stayed). A collapse is never defeated by the pin
//! (the pin stops the splits it would undo, not the collapse: with nothing split it has
//! nothing to do, and says so as any idle collapse does), nor is pressure (no counter
//! tells a pinned page passed over from reclaim that did not reach the buffer).

use std::collections::BTreeMap;

use crate::result::DisturberReport;
use crate::workload::DisturbKind;

/// A split's failures on pinned folios (the evidence), and its successes beside them.
const SPLIT_FAILED: &[&str] = &["thp_split_page_failed", "mthp_*_split_failed"];
const SPLIT_DONE: &[&str] = &["thp_split_page", "thp_split_pmd"];
/// What a swap-out would have moved.
const SWAPPED: &[&str] = &["pswpout", "thp_swpout"];

fn counters(vmstat_delta: &BTreeMap<String, i64>, patterns: &[&str]) -> BTreeMap<String, i64> {
    vmstat_delta
        .iter()
        .filter(|(name, _)| {
            patterns
                .iter()
                .any(|p| crate::system::vmstat::counter_matches(p, name))
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// For a disturber that acted on registered (long-term pinned) buffers, did not get its
/// effect, and has evidence of its own that the pin stopped it: marks it defeated by the
/// pin and keeps the evidence. Returns whether it did.
pub fn mark_defeated_by_pin(
    kind: DisturbKind,
    report: &mut DisturberReport,
    vmstat_delta: &BTreeMap<String, i64>,
) -> bool {
    if report.actions == 0 || report.counters_moved || report.confirmed.is_some_and(|c| c > 0) {
        return false;
    }
    let evidence = match kind {
        DisturbKind::Split => {
            let failed = counters(vmstat_delta, SPLIT_FAILED);
            if !failed.values().any(|&v| v > 0) {
                return false;
            }
            let mut e = failed;
            e.extend(counters(vmstat_delta, SPLIT_DONE));
            e
        }
        DisturbKind::SwapOut if report.confirmed == Some(0) => {
            let mut e = counters(vmstat_delta, SWAPPED);
            e.insert("actions_confirmed_on_buffer".into(), 0);
            e.insert("actions".into(), report.actions as i64);
            e
        }
        _ => return false,
    };
    report.defeated_by_pin = true;
    report.pin_evidence = evidence;
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

    #[test]
    fn a_collapse_never_claims_a_splits_failures_and_nothing_is_defeated_on_no_evidence() {
        // Split + collapse on registered buffers: the split failed 179 times; the
        // collapse changed nothing (nothing was split) and is not "defeated by the pin".
        let delta: BTreeMap<String, i64> = [
            ("thp_split_page_failed".to_string(), 179),
            ("thp_collapse_alloc".to_string(), 0),
        ]
        .into();
        let idle = || DisturberReport {
            actions: 40,
            confirmed: Some(0),
            ..Default::default()
        };
        let mut collapse = idle();
        assert!(!mark_defeated_by_pin(
            DisturbKind::Collapse,
            &mut collapse,
            &delta
        ));
        assert!(collapse.pin_evidence.is_empty());
        // A split with no failed split anywhere: no evidence, not defeated.
        let mut split = idle();
        let none: BTreeMap<String, i64> = [("thp_split_page_failed".to_string(), 0)].into();
        assert!(!mark_defeated_by_pin(DisturbKind::Split, &mut split, &none));
        // A swap-out whose own actions all left the page in place: its evidence is its
        // confirmations on the buffer.
        let mut swap = idle();
        assert!(mark_defeated_by_pin(DisturbKind::SwapOut, &mut swap, &none));
        assert_eq!(swap.pin_evidence["actions_confirmed_on_buffer"], 0);
        assert_eq!(swap.pin_evidence["actions"], 40);
        // Pressure has no evidence of its own.
        let mut pressure = idle();
        pressure.confirmed = None;
        assert!(!mark_defeated_by_pin(
            DisturbKind::Pressure,
            &mut pressure,
            &delta
        ));
    }
}
