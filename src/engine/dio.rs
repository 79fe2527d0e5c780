//! `dio`: pread/pwrite (preadv/pwritev for shared buffers) on a file descriptor opened
//! with O_DIRECT, as `dd iflag=direct` does: each call pins the user pages (FOLL_PIN),
//! the device DMAs or copies into them, and the pins are dropped.

use std::os::fd::RawFd;

use super::{Engine, OpKind};

pub struct DioEngine {
    fd: RawFd,
}

impl DioEngine {
    /// `fd` must stay open for the engine's life (the target owns it).
    pub fn new(fd: RawFd) -> DioEngine {
        DioEngine { fd }
    }
}

impl Engine for DioEngine {
    fn name(&self) -> &'static str {
        "dio"
    }

    #[inline]
    fn execute(
        &mut self,
        kind: OpKind,
        offset: u64,
        iov: &[libc::iovec],
    ) -> std::io::Result<usize> {
        // SAFETY: the iovecs point into the worker's own buffer segments, which outlive
        // the call; fd is open.
        let n = unsafe {
            match (kind, iov) {
                (OpKind::Read, [one]) => {
                    libc::pread(self.fd, one.iov_base, one.iov_len, offset as libc::off_t)
                }
                (OpKind::Write, [one]) => {
                    libc::pwrite(self.fd, one.iov_base, one.iov_len, offset as libc::off_t)
                }
                (OpKind::Read, many) => libc::preadv(
                    self.fd,
                    many.as_ptr(),
                    many.len() as libc::c_int,
                    offset as libc::off_t,
                ),
                (OpKind::Write, many) => libc::pwritev(
                    self.fd,
                    many.as_ptr(),
                    many.len() as libc::c_int,
                    offset as libc::off_t,
                ),
            }
        };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}
