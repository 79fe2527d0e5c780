//! Confirmation of each disturber action on the buffer itself: the folio of the page
//! acted on, read from /proc/self/pagemap and /proc/kpageflags just before and just after
//! the call (outside its timing). madvise returns 0 without splitting when the folio is
//! shared with a fork child, cannot be locked, or is pinned by direct I/O in flight
//! (mm/madvise.c madvise_cold_or_pageout_pte_range), and the vmstat counters are
//! system-wide; a confirmed action is one whose page really changed folio.

use crate::system::pagemap::{FolioProbe, PageState};
use crate::workload::{DisturbKind, DisturbSpec, SplitMethod};

/// What an action is meant to do to the folio of the page it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The page leaves its large folio (split; pageout may also swap the page out).
    Split,
    /// The page ends in a PMD-sized folio it was not in before.
    Collapse,
    /// The page is swapped out (or, faulted back already, in another folio).
    SwapOut,
}

impl Effect {
    /// The effect to confirm for a disturber; None for those that change no folio of
    /// the buffer one action at a time (mprotect splits only the PMD mapping; fork and
    /// pressure act on the whole process or cgroup).
    pub fn of(spec: &DisturbSpec) -> Option<Effect> {
        match (spec.kind, spec.method) {
            (DisturbKind::Split, Some(SplitMethod::Mprotect) | None) => None,
            (DisturbKind::Split, Some(_)) => Some(Effect::Split),
            (DisturbKind::Collapse, _) => Some(Effect::Collapse),
            (DisturbKind::SwapOut, _) => Some(Effect::SwapOut),
            (DisturbKind::Fork | DisturbKind::Pressure, _) => None,
        }
    }

    /// Whether the page went from `before` to `after` as this effect means (`pmd_pages`:
    /// pages in a PMD-sized folio).
    pub fn confirmed_by(self, before: PageState, after: PageState, pmd_pages: u64) -> bool {
        match self {
            Effect::Split => {
                before.present
                    && before.folio_pages > 1
                    && (after.swapped
                        || (after.present
                            && after.folio_pages > 0
                            && after.folio_pages < before.folio_pages))
            }
            Effect::Collapse => {
                before.folio_pages < pmd_pages && after.present && after.folio_pages >= pmd_pages
            }
            Effect::SwapOut => {
                before.present
                    && (after.swapped
                        || (after.present && after.pfn != 0 && after.pfn != before.pfn))
            }
        }
    }
}

/// A disturber thread's confirmer: the probe and the effect it looks for.
pub struct Confirmer {
    probe: FolioProbe,
    effect: Effect,
    pmd_pages: u64,
}

impl Confirmer {
    /// None where the effect cannot be seen: no pagemap, or folio sizes hidden (not
    /// root) for a split or collapse. Swap-out shows in pagemap's swap bit to anyone.
    pub fn new(spec: &DisturbSpec) -> Option<Confirmer> {
        let effect = Effect::of(spec)?;
        let probe = FolioProbe::open().ok()?;
        if effect != Effect::SwapOut && !probe.sees_folios() {
            return None;
        }
        Some(Confirmer {
            probe,
            effect,
            pmd_pages: crate::pages::pmd_size() / crate::pages::base_page() as u64,
        })
    }

    pub fn look(&self, addr: usize) -> Option<PageState> {
        self.probe.page(addr).ok()
    }

    pub fn confirms(&self, before: PageState, addr: usize) -> bool {
        self.look(addr)
            .is_some_and(|after| self.effect.confirmed_by(before, after, self.pmd_pages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(folio_pages: u64, pfn: u64) -> PageState {
        PageState {
            present: true,
            swapped: false,
            pfn,
            folio_pages,
        }
    }
    const SWAPPED: PageState = PageState {
        present: false,
        swapped: true,
        pfn: 0,
        folio_pages: 0,
    };

    #[test]
    fn a_split_is_a_page_that_left_its_large_folio() {
        let e = Effect::Split;
        assert!(e.confirmed_by(page(512, 1000), page(1, 1000), 512));
        assert!(e.confirmed_by(page(16, 1000), page(4, 1000), 512));
        assert!(e.confirmed_by(page(512, 1000), SWAPPED, 512), "pageout");
        assert!(
            !e.confirmed_by(page(512, 1000), page(512, 1000), 512),
            "not split"
        );
        assert!(
            !e.confirmed_by(page(1, 1000), page(1, 1000), 512),
            "already split"
        );
        assert!(!e.confirmed_by(SWAPPED, SWAPPED, 512));
    }

    #[test]
    fn a_collapse_ends_in_a_pmd_folio_and_a_swap_out_leaves_the_page() {
        let c = Effect::Collapse;
        assert!(c.confirmed_by(page(1, 7), page(512, 9), 512));
        assert!(c.confirmed_by(SWAPPED, page(512, 9), 512));
        assert!(
            !c.confirmed_by(page(512, 7), page(512, 7), 512),
            "was whole"
        );
        assert!(!c.confirmed_by(page(1, 7), page(1, 7), 512));
        let s = Effect::SwapOut;
        assert!(s.confirmed_by(page(512, 7), SWAPPED, 512));
        assert!(
            s.confirmed_by(page(512, 7), page(512, 4096), 512),
            "refaulted"
        );
        assert!(!s.confirmed_by(page(512, 7), page(512, 7), 512), "stayed");
        assert!(!s.confirmed_by(page(0, 0), page(0, 0), 512), "PFNs hidden");
    }
}
