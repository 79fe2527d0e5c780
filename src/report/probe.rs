//! `thpbench probe`'s table: one line a row, then why and the fix where there are any.

use crate::system::probe::ProbeRow;

pub fn render(rows: &[ProbeRow]) -> String {
    use std::fmt::Write;
    let w = rows.iter().map(|r| r.what.len()).max().unwrap_or(10);
    let mut s = String::new();
    for r in rows {
        let _ = writeln!(
            s,
            "{:w$}  {:3}  {}",
            r.what,
            if r.available { "yes" } else { "no" },
            r.value
        );
        if !r.reason.is_empty() {
            let _ = writeln!(s, "{:w$}       why: {}", "", r.reason);
        }
        if !r.available && !r.remedy.is_empty() {
            let _ = writeln!(s, "{:w$}       fix: {}", "", r.remedy);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(what: &str, available: bool, reason: &str, remedy: &str) -> ProbeRow {
        ProbeRow {
            what: what.into(),
            available,
            value: "v".into(),
            reason: reason.into(),
            remedy: remedy.into(),
        }
    }

    #[test]
    fn the_fix_is_shown_only_for_what_is_missing() {
        let text = render(&[
            row("perf hardware PMU", false, "no PMU", "bare metal"),
            row("perf software events", true, "", "lower paranoid"),
        ]);
        assert_eq!(
            text,
            "perf hardware PMU     no   v\n                           why: no PMU\n                           fix: bare metal\nperf software events  yes  v\n"
        );
    }
}
