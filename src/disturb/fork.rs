//! The fork disturber: fork while direct-I/O reads are in flight. Since 5.x the kernel
//! copies pinned (FOLL_PIN) anonymous pages for the child at fork time
//! (page_needs_cow_for_dma / folio_maybe_dma_pinned), so the parent keeps the page its
//! I/O lands in, and the child keeps a stable snapshot. Before that fix, data read by
//! O_DIRECT could land in the child's copy or vanish: the GUP-versus-COW bugs.
//!
//! Here the child first notes the sectors whose header still holds verify's poison (a
//! read was in flight, or about to be, at fork: the parent's I/O may land there), then
//! checksums the whole buffer, holds it for a while, checksums it again and looks at the
//! noted sectors once more: a change, or a poisoned sector filled in the child's copy,
//! means data meant for the parent reached the child. The verdict is a lower bound (see
//! SCOPE). The parent's side is checked by --verify: every read must land in its own
//! buffer. The child only computes, sleeps and writes its verdict to a pipe (no
//! allocation, no locks: it is a fork of a multithreaded process).

use std::collections::BTreeMap;
use std::io;

use super::{Action, Region};
use crate::result::ForkFigures;

#[derive(Default)]
struct Fork {
    hold_ns: u64,
    children: u64,
    child_saw_change: u64,
    child_failures: u64,
    /// The signal that last killed a child before its verdict (0: none did).
    child_last_signal: u64,
    /// Sectors that held verify's poison in the children's first look, and of them
    /// those filled in the child's copy by the end of its hold.
    inflight_sectors: u64,
    inflight_landed: u64,
    /// One bit per sector of the buffer, written by the child in its own copy: made
    /// before fork, since the child must not allocate.
    poisoned: Vec<u64>,
}

/// What a child's verdict can and cannot see; reported beside its figures.
pub const SCOPE: &str = "lower bound: a child sees data reach its copy (1) in sectors that held verify's poison (every sector with --verify-level full, the first of every base page with the default level) at its first look right after fork (a read in flight or about to be; child_inflight_sectors), at any time after that look, and (2) anywhere else only after its first checksum has passed that spot; it cannot see data that landed before those looks, reads that completed in the parent before fork, or (without --verify, which poisons) in-flight reads at all; the parent's own reads are judged by verify";

/// Marks the sectors of [base, base+len) whose first header word is verify's poison;
/// returns how many. Reads one word per sector: fast enough to come before the checksum.
fn mark_poisoned(base: usize, len: usize, bits: &mut [u64]) -> u64 {
    let sectors = len / crate::verify::SECTOR;
    let mut n = 0;
    for i in 0..sectors.min(bits.len() * 64) {
        // SAFETY: the sector lies in the buffer mapping, present in the child too.
        let w =
            unsafe { std::ptr::read_volatile((base + i * crate::verify::SECTOR) as *const u64) };
        let hit = w == crate::verify::POISON;
        bits[i / 64] = (bits[i / 64] & !(1 << (i % 64))) | (u64::from(hit) << (i % 64));
        n += u64::from(hit);
    }
    n
}

/// Of the sectors `mark_poisoned` noted, how many no longer hold the poison.
fn count_filled(base: usize, bits: &[u64]) -> u64 {
    let mut n = 0;
    for (j, &word) in bits.iter().enumerate() {
        let mut w = word;
        while w != 0 {
            let i = j * 64 + w.trailing_zeros() as usize;
            w &= w - 1;
            // SAFETY: as in mark_poisoned.
            let v = unsafe {
                std::ptr::read_volatile((base + i * crate::verify::SECTOR) as *const u64)
            };
            n += u64::from(v != crate::verify::POISON);
        }
    }
    n
}

/// The child's message: verdict byte, then the poisoned and filled sector counts.
const MESSAGE: usize = 17;

pub fn maker(hold_ns: u64) -> Box<dyn Fn() -> Box<dyn Action> + Send + Sync> {
    Box::new(move || {
        Box::new(Fork {
            hold_ns,
            ..Fork::default()
        })
    })
}

fn checksum(base: usize, len: usize) -> u64 {
    let words = len / 8;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for i in 0..words {
        // SAFETY: the buffer mapping is [base, base+len) in the child too.
        let w = unsafe { std::ptr::read_volatile((base + i * 8) as *const u64) };
        h = (h ^ w).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Action for Fork {
    fn per_round(&self) -> bool {
        true
    }

    fn act(&mut self, r: &Region, _b: usize) -> io::Result<bool> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let (base, len, hold) = (r.base, r.len, self.hold_ns);
        self.poisoned
            .resize((len / crate::verify::SECTOR).div_ceil(64), 0);
        let bits = self.poisoned.as_mut_ptr();
        let bits_len = self.poisoned.len();
        // SAFETY: the child runs only async-signal-safe code below and _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: closing the fds we made.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            return Err(e);
        }
        if pid == 0 {
            // SAFETY: the child's own copy of the bitmap, which nothing else touches.
            let bits = unsafe { std::slice::from_raw_parts_mut(bits, bits_len) };
            let poisoned = mark_poisoned(base, len, bits);
            let first = checksum(base, len);
            let ts = libc::timespec {
                tv_sec: (hold / 1_000_000_000) as libc::time_t,
                tv_nsec: (hold % 1_000_000_000) as libc::c_long,
            };
            // SAFETY: async-signal-safe calls only.
            unsafe {
                libc::nanosleep(&ts, std::ptr::null_mut());
                let changed = checksum(base, len) != first;
                let filled = count_filled(base, bits);
                let mut msg = [0u8; MESSAGE];
                msg[0] = if changed || filled > 0 { b'C' } else { b'S' };
                msg[1..9].copy_from_slice(&poisoned.to_le_bytes());
                msg[9..17].copy_from_slice(&filled.to_le_bytes());
                libc::write(fds[1], msg.as_ptr().cast(), MESSAGE);
                libc::_exit(0);
            }
        }
        // SAFETY: parent side: close the write end, read the verdict, reap the child.
        unsafe {
            libc::close(fds[1]);
            let mut msg = [0u8; MESSAGE];
            let n = libc::read(fds[0], msg.as_mut_ptr().cast(), MESSAGE);
            libc::close(fds[0]);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            self.children += 1;
            if n == MESSAGE as isize {
                let count =
                    |at: usize| u64::from_le_bytes(msg[at..at + 8].try_into().unwrap_or_default());
                self.inflight_sectors += count(1);
                self.inflight_landed += count(9);
            }
            match (n, msg[0]) {
                (n, b'S') if n == MESSAGE as isize => {}
                (n, b'C') if n == MESSAGE as isize => self.child_saw_change += 1,
                _ => {
                    self.child_failures += 1;
                    if libc::WIFSIGNALED(status) {
                        self.child_last_signal = libc::WTERMSIG(status) as u64;
                    }
                }
            }
        }
        Ok(true)
    }

    fn extra(&self) -> BTreeMap<String, u64> {
        ForkFigures {
            children: self.children,
            saw_parent_data: self.child_saw_change,
            failures: self.child_failures,
            last_signal: self.child_last_signal,
            inflight_sectors: self.inflight_sectors,
            inflight_landed: self.inflight_landed,
        }
        .to_extra()
    }

    fn scope(&self) -> Option<&'static str> {
        Some(SCOPE)
    }
}

/// Forked children that saw their buffer change (data meant for the parent reached
/// the child), from a fork disturber's `extra`; 0 for any other disturber.
pub fn children_saw_parent_data(extra: &BTreeMap<String, u64>) -> u64 {
    ForkFigures::from_extra(extra).map_or(0, |f| f.saw_parent_data)
}

/// Why a run with these fork disturber's figures cannot count as evidence. A child that
/// saw its buffer change is kept apart from verify.mismatches (the parent's reads may
/// all be right while the child's private memory changed under it); a child with no
/// verdict checked nothing.
pub fn invalid_reasons(
    fork: &ForkFigures,
    backing: crate::workload::Backing,
    interrupted: bool,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let failed = fork.failures;
    if failed > 0 && !interrupted {
        let signal = fork.last_signal;
        let how = match signal {
            0 => String::new(),
            s => format!(
                ", killed by {}",
                nix::sys::signal::Signal::try_from(s as i32)
                    .map_or_else(|_| format!("signal {s}"), |sig| sig.as_str().to_string())
            ),
        };
        let hint = if signal == libc::SIGBUS as u64 && backing == crate::workload::Backing::Hugetlb
        {
            " (on a MAP_PRIVATE hugetlb mapping a copy-on-write that finds no free huge page takes the page from the child: mm/hugetlb.c, unmap_ref_private)"
        } else {
            ""
        };
        reasons.push(format!(
            "{failed} of {} forked children gave no verdict{how}{hint}",
            fork.children
        ));
    }
    let saw = fork.saw_parent_data;
    if saw > 0 {
        reasons.push(format!(
            "{saw} forked children saw their buffer change: data meant for the parent reached the child"
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Backing;

    /// Data that reaches the child's copy before its first checksum passes that spot
    /// leaves the two checksums equal (the old verdict: stable); the sectors noted as
    /// poisoned at the first look still show it.
    #[test]
    fn a_read_landing_before_the_first_checksum_is_seen_through_the_poison() {
        let mut buf = vec![0u8; 16 * crate::verify::SECTOR];
        let st = crate::verify::Stamp {
            seed: 1,
            nonce: 2,
            generation: 0,
        };
        crate::verify::stamp(&mut buf, 0, &st);
        crate::verify::poison(&mut buf[4 * 512..7 * 512]);
        let (base, len) = (buf.as_ptr() as usize, buf.len());
        let mut bits = vec![0u64; 1];
        assert_eq!(mark_poisoned(base, len, &mut bits), 3);
        assert_eq!(bits[0], 0b111 << 4);
        // The in-flight read lands in the child's copy, then the child's checksums.
        crate::verify::stamp(&mut buf[4 * 512..7 * 512], 4 * 512, &st);
        let (base, len) = (buf.as_ptr() as usize, buf.len());
        let first = checksum(base, len);
        assert_eq!(checksum(base, len), first, "the checksums alone miss it");
        assert_eq!(count_filled(base, &bits), 3);
        // Nothing landed: nothing filled.
        crate::verify::poison(&mut buf[4 * 512..7 * 512]);
        assert_eq!(count_filled(buf.as_ptr() as usize, &bits), 0);
    }

    #[test]
    fn children_without_a_verdict_or_with_a_changed_buffer_are_named() {
        let extra = |failures, last_signal, saw_parent_data| ForkFigures {
            children: 10,
            failures,
            last_signal,
            saw_parent_data,
            ..Default::default()
        };
        assert!(invalid_reasons(&extra(0, 0, 0), Backing::Thp, false).is_empty());
        let r = invalid_reasons(&extra(3, libc::SIGBUS as u64, 0), Backing::Hugetlb, false);
        assert_eq!(r.len(), 1);
        assert!(r[0].starts_with("3 of 10 forked children gave no verdict, killed by SIGBUS (on a MAP_PRIVATE hugetlb"), "{r:?}");
        let r = invalid_reasons(&extra(1, 0, 2), Backing::Thp, false);
        assert_eq!(r, vec![
            "1 of 10 forked children gave no verdict".to_string(),
            "2 forked children saw their buffer change: data meant for the parent reached the child".to_string(),
        ]);
        // An interrupted run's children may die with the run: not held against it.
        assert_eq!(
            invalid_reasons(&extra(1, 9, 0), Backing::Thp, true).len(),
            0
        );
    }
}
