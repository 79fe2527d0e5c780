//! `mock` (hidden `--mock TIME`): an engine over an in-memory target (a memfd, no
//! O_DIRECT, no root) that takes TIME per operation and can inject a fault at a given
//! operation, so that the run loop, verify, validity and exit codes are tested anywhere.
//! The data really moves: stamped blocks go in and are read back and checked.

use std::os::fd::RawFd;

use super::{Engine, OpKind};
use crate::result::MockReport;

pub struct MockEngine {
    fd: RawFd,
    spec: MockReport,
    /// Operations so far (warm-up and verify read-backs included), from 1.
    ops: u64,
    /// Only the first worker injects faults, so that each fault happens once.
    injects: bool,
}

impl MockEngine {
    /// `fd` must stay open for the engine's life (the target owns it).
    pub fn new(fd: RawFd, spec: &MockReport, injects: bool) -> MockEngine {
        MockEngine {
            fd,
            spec: spec.clone(),
            ops: 0,
            injects,
        }
    }

    fn at(&self, nth: Option<u64>) -> bool {
        self.injects && nth == Some(self.ops)
    }
}

/// Busy-waits `ns`: sleeping would take at least the scheduler's slack (tens of µs).
fn spin_for(ns: u64) {
    let end = crate::measure::now_ns() + ns;
    while crate::measure::now_ns() < end {
        std::hint::spin_loop();
    }
}

impl Engine for MockEngine {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn execute(
        &mut self,
        kind: OpKind,
        offset: u64,
        iov: &[libc::iovec],
    ) -> std::io::Result<usize> {
        self.ops += 1;
        spin_for(self.spec.op_ns);
        if self.at(self.spec.error_at) {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        // SAFETY: the iovecs point into the worker's own buffer segments, which outlive
        // the call; fd is open.
        let n = unsafe {
            match kind {
                OpKind::Read => libc::preadv(
                    self.fd,
                    iov.as_ptr(),
                    iov.len() as libc::c_int,
                    offset as libc::off_t,
                ),
                OpKind::Write => libc::pwritev(
                    self.fd,
                    iov.as_ptr(),
                    iov.len() as libc::c_int,
                    offset as libc::off_t,
                ),
            }
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if kind == OpKind::Read && self.at(self.spec.mismatch_at) {
            if let Some(first) = iov.first().filter(|v| v.iov_len > 0) {
                // SAFETY: the first segment is the worker's, at least one byte long.
                unsafe { *first.iov_base.cast::<u8>() ^= 0xff };
            }
        }
        if self.at(self.spec.short_at) {
            return Ok(n as usize / 2);
        }
        Ok(n as usize)
    }
}
