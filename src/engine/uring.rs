//! `uring`: O_DIRECT reads and writes through io_uring, `iodepth` in flight per worker,
//! on a registered file. Without `fixed_buffers` every I/O pins its pages
//! (io_import_iovec -> iov_iter_extract_pages, FOLL_PIN) and unpins them on completion,
//! as pread/pwrite do; with it the worker's buffers are registered once
//! (IORING_REGISTER_BUFFERS: pin_user_pages with FOLL_LONGTERM) and read/written with
//! READ_FIXED/WRITE_FIXED (READV_FIXED/WRITEV_FIXED for per-page iovecs), so no I/O pins.
//! The difference between the two is the cost of pinning on the direct-I/O path.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types, IoUring};

use super::{Completion, Engine, OpKind, QueuedEngine};
use crate::measure::uring_punts::PuntCounter;

/// The largest buffer IORING_REGISTER_BUFFERS accepts (io_uring/rsrc.c: SZ_1G).
const MAX_REGISTERED: usize = 1 << 30;

pub struct UringEngine {
    ring: IoUring,
    fixed: bool,
    /// Per slot, the iovecs of its buffer segments; the addresses stay put while the
    /// engine lives, since the kernel may read them after submission (io-wq).
    slots: Vec<Vec<libc::iovec>>,
    /// SQEs pushed since the last submit.
    queued: usize,
    in_flight: usize,
    punts: Option<PuntCounter>,
    punt_id: Result<u64, String>,
    /// Requests the kernel took from the ring (io_uring_enter's return), all told.
    submitted: u64,
    /// `submitted` when the measured loop began.
    submitted_at_start: u64,
    /// The ring's setup flags beyond the defaults, as the kernel took them.
    setup: &'static [&'static str],
    /// Made disabled (IORING_SETUP_R_DISABLED): enabled by the first I/O, on the
    /// worker's thread, which single issuer makes the ring's only submitter.
    disabled: bool,
}

/// The setup flags fio's io_uring engine asks for, most first, and what is left when
/// the kernel refuses them (EINVAL), as fio falls back. COOP_TASKRUN: a completion
/// does not interrupt the submitter (no IPI, no signal-based task work); DEFER_TASKRUN
/// (with SINGLE_ISSUER): completions are run when the submitter waits for them.
/// R_DISABLED lets the worker thread, not the thread that builds the engine, become the
/// single issuer (the ring is enabled on first use).
const SETUPS: [&[&str]; 3] = [
    &["COOP_TASKRUN", "SINGLE_ISSUER", "DEFER_TASKRUN"],
    &["COOP_TASKRUN"],
    &[],
];

/// A ring of `entries` with the first of `SETUPS` the kernel accepts; true when made
/// disabled.
fn build_ring(entries: u32) -> io::Result<(IoUring, &'static [&'static str], bool)> {
    let mut last = None;
    for flags in SETUPS {
        let mut b = IoUring::builder();
        let deferred = flags.contains(&"DEFER_TASKRUN");
        if deferred {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_r_disabled();
        }
        if flags.contains(&"COOP_TASKRUN") {
            b.setup_coop_taskrun();
        }
        match b.build(entries) {
            Ok(ring) => return Ok((ring, flags, deferred)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("SETUPS is not empty"))
}

// SAFETY: the iovecs point into the worker's own buffer segments; the engine is moved
// into its worker thread once and used only there.
unsafe impl Send for UringEngine {}

impl UringEngine {
    /// A ring of `slots.len()` entries on `fd` (registered as fixed file 0); with `fixed`,
    /// one registered buffer spanning every slot's segments.
    /// `count_punts`: count io-wq punts with a tracepoint counter for the worker thread
    /// (CPU-wide on its CPU, filtered on its tid; off with `perf = false`).
    pub fn new(
        fd: RawFd,
        slots: Vec<Vec<libc::iovec>>,
        fixed: bool,
        count_punts: bool,
    ) -> anyhow::Result<Self> {
        let depth = slots.len().max(1) as u32;
        let (ring, setup, disabled) = build_ring(depth.next_power_of_two()).map_err(|e| {
            anyhow::anyhow!(
                "io_uring_setup({depth} entries) failed: {}; io_uring may be disabled (sysctl kernel.io_uring_disabled) or the kernel too old",
                crate::system::errno_text(&e)
            )
        })?;
        ring.submitter().register_files(&[fd]).map_err(|e| {
            anyhow::anyhow!(
                "registering the target with io_uring failed: {}",
                crate::system::errno_text(&e)
            )
        })?;
        if fixed {
            let span = registered_span(&slots);
            if span.iov_len > MAX_REGISTERED {
                anyhow::bail!(
                    "fixed_buffers: one worker's buffers span {}, above the 1 GiB io_uring registers as one buffer; lower iodepth or bs, or use share = \"private\"",
                    crate::units::format_size(span.iov_len as u64)
                );
            }
            // SAFETY: the span lies in the buffer mapping, which outlives the ring (the
            // workers, which own the engines, are joined before the buffers go).
            unsafe { ring.submitter().register_buffers(&[span]) }.map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(libc::ENOMEM) | Some(libc::EPERM) => ": registered buffers count against RLIMIT_MEMLOCK (ulimit -l) unless the process has CAP_IPC_LOCK; run as root or raise the limit",
                    _ => "",
                };
                anyhow::anyhow!(
                    "registering {} of buffers with io_uring (IORING_REGISTER_BUFFERS) failed: {}{hint}",
                    crate::units::format_size(span.iov_len as u64),
                    crate::system::errno_text(&e)
                )
            })?;
        }
        Ok(UringEngine {
            ring,
            fixed,
            slots,
            queued: 0,
            in_flight: 0,
            punts: None,
            submitted: 0,
            submitted_at_start: 0,
            punt_id: if count_punts {
                crate::measure::uring_punts::tracepoint_id()
            } else {
                Err("not counted: perf = false (--no-perf)".into())
            },
            setup,
            disabled,
        })
    }

    /// Enables a ring made disabled, on the calling thread (the worker's), which becomes
    /// its single issuer; a no-op after the first call.
    fn enable(&mut self) -> io::Result<()> {
        if self.disabled {
            self.ring.submitter().register_enable_rings().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "enabling the io_uring ring on the worker's thread (IORING_REGISTER_ENABLE_RINGS): {e}"
                    ),
                )
            })?;
            self.disabled = false;
        }
        Ok(())
    }

    fn entry(&self, slot: usize, kind: OpKind, offset: u64) -> squeue::Entry {
        let iov = &self.slots[slot];
        let file = types::Fixed(0);
        let entry = match (kind, self.fixed, iov.as_slice()) {
            (OpKind::Read, true, [one]) => {
                opcode::ReadFixed::new(file, one.iov_base as *mut u8, one.iov_len as u32, 0)
                    .offset(offset)
                    .build()
            }
            (OpKind::Write, true, [one]) => {
                opcode::WriteFixed::new(file, one.iov_base as *const u8, one.iov_len as u32, 0)
                    .offset(offset)
                    .build()
            }
            (OpKind::Read, true, many) => {
                opcode::ReadvFixed::new(file, many.as_ptr(), many.len() as u32, 0)
                    .offset(offset)
                    .build()
            }
            (OpKind::Write, true, many) => {
                opcode::WritevFixed::new(file, many.as_ptr(), many.len() as u32, 0)
                    .offset(offset)
                    .build()
            }
            (OpKind::Read, false, [one]) => {
                opcode::Read::new(file, one.iov_base as *mut u8, one.iov_len as u32)
                    .offset(offset)
                    .build()
            }
            (OpKind::Write, false, [one]) => {
                opcode::Write::new(file, one.iov_base as *const u8, one.iov_len as u32)
                    .offset(offset)
                    .build()
            }
            (OpKind::Read, false, many) => {
                opcode::Readv::new(file, many.as_ptr(), many.len() as u32)
                    .offset(offset)
                    .build()
            }
            (OpKind::Write, false, many) => {
                opcode::Writev::new(file, many.as_ptr(), many.len() as u32)
                    .offset(offset)
                    .build()
            }
        };
        entry.user_data(slot as u64)
    }
}

/// One iovec from the lowest to the highest address any slot uses.
fn registered_span(slots: &[Vec<libc::iovec>]) -> libc::iovec {
    let all = slots.iter().flatten();
    let start = all.clone().map(|v| v.iov_base as usize).min().unwrap_or(0);
    let end = all
        .map(|v| v.iov_base as usize + v.iov_len)
        .max()
        .unwrap_or(0);
    libc::iovec {
        iov_base: start as *mut libc::c_void,
        iov_len: end - start,
    }
}

impl QueuedEngine for UringEngine {
    fn depth(&self) -> usize {
        self.slots.len()
    }

    fn push(&mut self, slot: usize, kind: OpKind, offset: u64) -> io::Result<()> {
        self.enable()?;
        let entry = self.entry(slot, kind, offset);
        // SAFETY: the entry's buffers and iovecs live as long as the engine, and a slot is
        // pushed again only after its completion was reaped.
        unsafe { self.ring.submission().push(&entry) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        self.queued += 1;
        Ok(())
    }

    fn submit_and_wait(&mut self, done: &mut Vec<Completion>) -> io::Result<()> {
        // A wrapper that answered the first I/O itself (the lost-I/O hooks) calls this
        // before any push: a disabled ring answers io_uring_enter with EBADFD.
        self.enable()?;
        let want = usize::from(self.in_flight + self.queued > 0);
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(n) => {
                    self.submitted += n as u64;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        self.in_flight += self.queued;
        self.queued = 0;
        for cqe in self.ring.completion() {
            let slot = cqe.user_data() as usize;
            let res = cqe.result();
            done.push((
                slot,
                if res < 0 {
                    Err(io::Error::from_raw_os_error(-res))
                } else {
                    Ok(res as usize)
                },
            ));
            self.in_flight -= 1;
        }
        Ok(())
    }
}

impl Engine for UringEngine {
    fn name(&self) -> &'static str {
        "uring"
    }

    /// One operation on slot 0, waited for (the worker uses the queued interface; this
    /// serves callers that want one synchronous I/O).
    fn execute(&mut self, kind: OpKind, offset: u64, _iov: &[libc::iovec]) -> io::Result<usize> {
        self.push(0, kind, offset)?;
        let mut done = Vec::with_capacity(1);
        while done.is_empty() {
            self.submit_and_wait(&mut done)?;
        }
        done.pop().map_or(Ok(0), |(_, r)| r)
    }

    fn queued(&mut self) -> Option<&mut dyn QueuedEngine> {
        Some(self)
    }

    fn measure_start(&mut self) {
        self.submitted_at_start = self.submitted;
        self.punts = match &self.punt_id {
            Ok(id) => match PuntCounter::open(*id) {
                Ok(c) => Some(c),
                Err(reason) => {
                    self.punt_id = Err(reason);
                    None
                }
            },
            Err(_) => None,
        };
        if let Some(p) = &mut self.punts {
            p.enable();
        }
    }

    fn measure_stop(&mut self) -> Option<crate::result::IoUringReport> {
        let punted = self.punts.take().map(|mut p| p.stop());
        let mut figures = crate::measure::uring_punts::figures(
            self.slots.len(),
            self.fixed,
            self.submitted - self.submitted_at_start,
            punted,
            self.punt_id.as_ref().err().map(String::as_str),
        );
        figures.setup_flags = self.setup.iter().map(|f| f.to_string()).collect();
        Some(figures)
    }
}
