//! Disturbers that act through madvise(2), mprotect(2) and debugfs.
//!
//! What each does to an exclusive anonymous THP on 6.x kernels (mm/madvise.c,
//! mm/huge_memory.c; measured on this kind of machine, see KERNEL-FACTS.md):
//! - MADV_COLD / MADV_PAGEOUT on one base page of a huge page: madvise_cold_or_pageout_pte_range
//!   splits the folio at once (thp_split_page); PAGEOUT then reclaims that page where swap exists.
//! - MADV_DONTNEED on part of a huge page: zap_pmd_range splits the PMD (thp_split_pmd) and
//!   queues the folio for deferred split (thp_deferred_split_page). It discards the data of the
//!   range, so only pages that no worker's I/O uses are ever given to it, and they are refaulted.
//! - mprotect of a subrange (adding PROT_EXEC, then back): the VMA is split and the PMD with it
//!   (thp_split_pmd); write permission stays, so direct I/O in flight is not refused.
//! - MADV_COLLAPSE (6.1+): synchronous collapse into a new huge page (thp_collapse_alloc);
//!   fails with EAGAIN when pages are pinned by I/O in flight, which is counted, not fatal.
//! - MADV_PAGEOUT of a whole huge page: reclaim swaps it out whole (thp_swpout) or split
//!   (thp_swpout_fallback), pswpout per base page; pinned folios are skipped by reclaim.

use std::io;

use super::{Action, Region};
use crate::workload::SplitMethod;

type Maker = Box<dyn Fn() -> Box<dyn Action> + Send + Sync>;
type Refusal = (String, String);

fn madvise(addr: usize, len: usize, advice: libc::c_int) -> io::Result<()> {
    // SAFETY: callers pass ranges inside the buffer mapping, which outlives the disturbers.
    if unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mprotect(addr: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
    // SAFETY: as for madvise.
    if unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// madvise(advice) on one base page of the block (the last one, a page I/O rarely
/// starts in; the data stays, only the mapping size changes).
struct OnePage(libc::c_int);

impl Action for OnePage {
    fn act(&mut self, r: &Region, b: usize) -> io::Result<bool> {
        madvise(self.touched(r, b), crate::pages::base_page(), self.0).map(|_| true)
    }
    fn touched(&self, r: &Region, b: usize) -> usize {
        r.block_addr(b) + r.block - crate::pages::base_page()
    }
}

/// MADV_DONTNEED on one idle page of the block, then refault it.
struct DontNeed;

impl Action for DontNeed {
    fn act(&mut self, r: &Region, b: usize) -> io::Result<bool> {
        let Some(&off) = r.idle_pages[b].last() else {
            return Ok(false);
        };
        let addr = r.block_addr(b) + off;
        madvise(addr, crate::pages::base_page(), libc::MADV_DONTNEED)?;
        // SAFETY: addr is an idle page of the buffer; the write faults it back in.
        unsafe { std::ptr::write_volatile(addr as *mut u8, 0) };
        Ok(true)
    }
    fn touched(&self, r: &Region, b: usize) -> usize {
        r.block_addr(b) + r.idle_pages[b].last().copied().unwrap_or(0)
    }
}

/// Adds PROT_EXEC to the block's last page and takes it away again.
struct Mprotect;

impl Action for Mprotect {
    fn act(&mut self, r: &Region, b: usize) -> io::Result<bool> {
        let page = crate::pages::base_page();
        let addr = r.block_addr(b) + r.block - page;
        mprotect(
            addr,
            page,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
        )?;
        mprotect(addr, page, libc::PROT_READ | libc::PROT_WRITE)?;
        Ok(true)
    }
}

/// Writes `<pid>,0x<start>,0x<end>` to /sys/kernel/debug/split_huge_pages.
struct Debugfs {
    file: std::fs::File,
}

impl Action for Debugfs {
    fn act(&mut self, r: &Region, b: usize) -> io::Result<bool> {
        use std::io::Write;
        let start = r.block_addr(b);
        let line = format!(
            "{},0x{:x},0x{:x}",
            std::process::id(),
            start,
            start + r.block
        );
        self.file.write_all(line.as_bytes()).map(|_| true)
    }
}

struct Collapse;

impl Action for Collapse {
    fn act(&mut self, r: &Region, b: usize) -> io::Result<bool> {
        madvise(r.block_addr(b), r.block, crate::system::MADV_COLLAPSE).map(|_| true)
    }
}

struct SwapOut;

impl Action for SwapOut {
    fn act(&mut self, r: &Region, b: usize) -> io::Result<bool> {
        madvise(r.block_addr(b), r.block, libc::MADV_PAGEOUT).map(|_| true)
    }
}

pub fn split(method: SplitMethod, region: &Region) -> Result<Maker, Refusal> {
    match method {
        SplitMethod::Cold => Ok(Box::new(|| Box::new(OnePage(libc::MADV_COLD)))),
        SplitMethod::Pageout => Ok(Box::new(|| Box::new(OnePage(libc::MADV_PAGEOUT)))),
        SplitMethod::Mprotect => Ok(Box::new(|| Box::new(Mprotect))),
        SplitMethod::Dontneed => {
            if region.idle_pages.iter().all(|p| p.is_empty()) {
                return Err((
                    "every base page of every huge page carries I/O, and MADV_DONTNEED would discard data in flight".into(),
                    format!("use a bs that leaves part of each huge page idle (bs below the folio size, {}), or split method cold or pageout", crate::units::format_size(region.block as u64)),
                ));
            }
            Ok(Box::new(|| Box::new(DontNeed)))
        }
        SplitMethod::Debugfs => {
            if !crate::system::is_root() {
                return Err((
                    "writing /sys/kernel/debug/split_huge_pages needs root".into(),
                    "run as root, or use split method cold".into(),
                ));
            }
            crate::system::probe::split_huge_pages_writable().map_err(|why| {
                (
                    why,
                    "split with madvise instead: --split cold (or pageout, dontneed, mprotect)"
                        .to_string(),
                )
            })?;
            Ok(Box::new(|| {
                // debugfs was mountable and writable a moment ago (checked above); the
                // run keeps it mounted through its own guard.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(format!(
                        "{}/split_huge_pages",
                        crate::system::mounts::DEBUGFS
                    ))
                    .expect("split_huge_pages was writable at plan time");
                Box::new(Debugfs { file })
            }))
        }
    }
}

pub fn collapse(region: &Region) -> Result<Maker, Refusal> {
    // MADV_COLLAPSE makes PMD-sized THPs only (mm/khugepaged.c, madvise_collapse) and
    // answers EINVAL for a range that holds no whole PMD: every call would fail.
    let pmd = crate::system::thp::pmd_size() as usize;
    if region.block < pmd {
        return Err((
            format!(
                "MADV_COLLAPSE builds PMD-sized ({} KiB) THPs only, and this buffer's folios are {} KiB, so it has no PMD-sized range to collapse",
                pmd / 1024,
                region.block / 1024
            ),
            "use --buffer thp with the collapse disturber".to_string(),
        ));
    }
    crate::system::probe::try_madvise(crate::system::MADV_COLLAPSE).map_err(|why| {
        (
            format!("MADV_COLLAPSE: {why}"),
            "needs Linux 6.1+".to_string(),
        )
    })?;
    Ok(Box::new(|| Box::new(Collapse)))
}

pub fn swap_out() -> Result<Maker, Refusal> {
    crate::system::probe::try_madvise(libc::MADV_PAGEOUT).map_err(|why| {
        (
            format!("MADV_PAGEOUT: {why}"),
            "needs Linux 5.4+".to_string(),
        )
    })?;
    Ok(Box::new(|| Box::new(SwapOut)))
}
