//! /proc/vmstat snapshots and the deltas that prove what happened during a run.

use std::collections::BTreeMap;

/// Counters kept in results: everything about THP, swap, compaction and faults.
pub fn is_tracked(name: &str) -> bool {
    ["thp_", "pswp", "swp", "compact_"]
        .iter()
        .any(|p| name.starts_with(p))
        || name == "pgfault"
        || name == "pgmajfault"
}

#[derive(Debug, Clone, Default)]
pub struct Vmstat(pub BTreeMap<String, u64>);

impl Vmstat {
    pub fn parse(text: &str) -> Vmstat {
        Vmstat(
            text.lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    Some((k.to_string(), v.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    pub fn snapshot() -> std::io::Result<Vmstat> {
        Ok(Vmstat::parse(&std::fs::read_to_string("/proc/vmstat")?))
    }

    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// The change of every tracked counter from `before` to `self` (zeros included, so
    /// that "did not move" is visible).
    pub fn delta_since(&self, before: &Vmstat) -> BTreeMap<String, i64> {
        self.0
            .iter()
            .filter(|(k, _)| is_tracked(k))
            .map(|(k, &after)| (k.clone(), after as i64 - before.get(k) as i64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_keeps_tracked_counters_only() {
        let a = Vmstat::parse("nr_free_pages 10\nthp_split_page 3\npswpout 100\npgfault 7\n");
        let b = Vmstat::parse("nr_free_pages 99\nthp_split_page 5\npswpout 100\npgfault 9\n");
        let d = b.delta_since(&a);
        assert_eq!(d.get("thp_split_page"), Some(&2));
        assert_eq!(d.get("pswpout"), Some(&0));
        assert_eq!(d.get("pgfault"), Some(&2));
        assert!(!d.contains_key("nr_free_pages"));
    }

    #[test]
    fn live_vmstat_has_thp_counters() {
        let v = Vmstat::snapshot().unwrap();
        assert!(
            v.0.contains_key("thp_fault_alloc"),
            "no thp_fault_alloc in /proc/vmstat"
        );
    }
}
