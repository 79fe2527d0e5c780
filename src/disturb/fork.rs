//! The fork disturber: fork while direct-I/O reads are in flight. Since 5.x the kernel
//! copies pinned (FOLL_PIN) anonymous pages for the child at fork time
//! (page_needs_cow_for_dma / folio_maybe_dma_pinned), so the parent keeps the page its
//! I/O lands in, and the child keeps a stable snapshot. Before that fix, data read by
//! O_DIRECT could land in the child's copy or vanish: the GUP-versus-COW bugs.
//!
//! Here the child checksums the whole buffer right after fork, holds it for a while,
//! and checksums it again: a change means data meant for the parent reached the child.
//! The parent's side is checked by --verify: every read must land in its own buffer.
//! The child only computes, sleeps and writes its verdict to a pipe (no allocation, no
//! locks: it is a fork of a multithreaded process).

use std::collections::BTreeMap;
use std::io;

use super::{Action, Region};

#[derive(Default)]
struct Fork {
    hold_ns: u64,
    children: u64,
    child_saw_change: u64,
    child_failures: u64,
    /// The signal that last killed a child before its verdict (0: none did).
    child_last_signal: u64,
}

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
            let first = checksum(base, len);
            let ts = libc::timespec {
                tv_sec: (hold / 1_000_000_000) as libc::time_t,
                tv_nsec: (hold % 1_000_000_000) as libc::c_long,
            };
            // SAFETY: async-signal-safe calls only.
            unsafe {
                libc::nanosleep(&ts, std::ptr::null_mut());
                let verdict: u8 = if checksum(base, len) == first {
                    b'S'
                } else {
                    b'C'
                };
                libc::write(fds[1], &verdict as *const u8 as *const libc::c_void, 1);
                libc::_exit(0);
            }
        }
        // SAFETY: parent side: close the write end, read the verdict, reap the child.
        unsafe {
            libc::close(fds[1]);
            let mut verdict = 0u8;
            let n = libc::read(fds[0], &mut verdict as *mut u8 as *mut libc::c_void, 1);
            libc::close(fds[0]);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            self.children += 1;
            match (n, verdict) {
                (1, b'S') => {}
                (1, b'C') => self.child_saw_change += 1,
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
        BTreeMap::from([
            ("children".to_string(), self.children),
            ("child_saw_parent_data".to_string(), self.child_saw_change),
            ("child_failures".to_string(), self.child_failures),
            ("child_last_signal".to_string(), self.child_last_signal),
        ])
    }
}

/// Why a run with this fork disturber's `extra` cannot count as evidence. A child that
/// saw its buffer change is kept apart from verify.mismatches (the parent's reads may
/// all be right while the child's private memory changed under it); a child with no
/// verdict checked nothing.
pub fn invalid_reasons(
    extra: &BTreeMap<String, u64>,
    backing: crate::workload::Backing,
    interrupted: bool,
) -> Vec<String> {
    let get = |k: &str| extra.get(k).copied().unwrap_or(0);
    let mut reasons = Vec::new();
    let failed = get("child_failures");
    if failed > 0 && !interrupted {
        let signal = get("child_last_signal");
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
            get("children")
        ));
    }
    let saw = get("child_saw_parent_data");
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

    #[test]
    fn children_without_a_verdict_or_with_a_changed_buffer_are_named() {
        let extra = |failed, signal, saw| {
            BTreeMap::from([
                ("children".to_string(), 10),
                ("child_failures".to_string(), failed),
                ("child_last_signal".to_string(), signal),
                ("child_saw_parent_data".to_string(), saw),
            ])
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
