//! `gup`: a control, not the direct-I/O path. Each operation vmsplices the worker's
//! iovecs (bs bytes: bs / base page size pages) into a pipe and splices the pipe empty into
//! /dev/null. vmsplice without SPLICE_F_GIFT takes a reference on every user page
//! (iov_iter_extract_pages with FOLL_GET, in batches of 16), the pipe holds one
//! pipe_buffer per page, and draining drops them: the figure is "vmsplice page
//! references", dominated by pipe handling, not the FOLL_PIN cost direct I/O pays (for
//! that, the uring engine's pin_cost). That the pipe holds references to the user pages
//! and not copies is proven by a test: the buffer changed between vmsplice and drain
//! shows in the drained data.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Engine, OpKind};

pub struct GupEngine {
    pipe_r: OwnedFd,
    pipe_w: OwnedFd,
    /// Where the pipe is drained to: /dev/null (a test drains into a file).
    sink: std::fs::File,
    /// Bytes the pipe holds; larger operations go through it in several rounds.
    capacity: usize,
    /// Base pages referenced so far (vmspliced bytes / base page size), checked against
    /// the ops.
    pub pages: u64,
    scratch: Vec<libc::iovec>,
}

impl GupEngine {
    pub fn new(bs: usize) -> io::Result<GupEngine> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 just returned these descriptors; they are owned here.
        let (pipe_r, pipe_w) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let max: usize = crate::system::read_trimmed("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 20);
        let want = bs
            .next_power_of_two()
            .min(max)
            .max(crate::pages::base_page());
        // SAFETY: fcntl on our pipe.
        let got =
            unsafe { libc::fcntl(pipe_w.as_raw_fd(), libc::F_SETPIPE_SZ, want as libc::c_int) };
        let capacity = if got > 0 { got as usize } else { 65536 };
        let sink = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        Ok(GupEngine {
            pipe_r,
            pipe_w,
            sink,
            capacity,
            pages: 0,
            scratch: Vec::new(),
        })
    }

    fn drain(&self, mut n: usize) -> io::Result<()> {
        while n > 0 {
            // SAFETY: splicing between our own descriptors.
            let r = unsafe {
                libc::splice(
                    self.pipe_r.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.sink.as_raw_fd(),
                    std::ptr::null_mut(),
                    n,
                    libc::SPLICE_F_MOVE,
                )
            };
            if r <= 0 {
                return Err(if r == 0 {
                    io::Error::other("splice from the pipe returned 0")
                } else {
                    io::Error::last_os_error()
                });
            }
            n -= r as usize;
        }
        Ok(())
    }

    fn vmsplice(&self, iov: &[libc::iovec]) -> io::Result<usize> {
        // SAFETY: the iovecs point into the worker's buffer, which outlives the call.
        let r = unsafe { libc::vmsplice(self.pipe_w.as_raw_fd(), iov.as_ptr(), iov.len(), 0) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }
}

// SAFETY: the scratch iovecs point into the worker's own buffer segments; the engine is
// moved into its worker thread once and used only there.
unsafe impl Send for GupEngine {}

impl Engine for GupEngine {
    fn name(&self) -> &'static str {
        "gup"
    }

    fn pages_referenced(&self) -> Option<u64> {
        Some(self.pages)
    }

    fn execute(&mut self, _kind: OpKind, _offset: u64, iov: &[libc::iovec]) -> io::Result<usize> {
        let total: usize = iov.iter().map(|v| v.iov_len).sum();
        let mut done = 0;
        if total <= self.capacity {
            // The usual case: the whole operation fits the pipe at once.
            done = self.vmsplice(iov)?;
            self.drain(done)?;
        }
        if done < total {
            // Larger than the pipe (or a short vmsplice): go on in pieces. The scratch
            // list keeps its capacity, so this allocates only the first time.
            self.scratch.clear();
            self.scratch.extend_from_slice(iov);
            advance(&mut self.scratch, done);
            while done < total {
                let n = self.vmsplice(&self.scratch)?;
                if n == 0 {
                    return Err(io::Error::other(format!(
                        "vmsplice made no progress after {done} of {total} bytes"
                    )));
                }
                self.drain(n)?;
                done += n;
                advance(&mut self.scratch, n);
            }
        }
        self.pages += (done / crate::pages::base_page()) as u64;
        Ok(done)
    }
}

/// Drops the first `n` bytes from an iovec list.
fn advance(iov: &mut Vec<libc::iovec>, mut n: usize) {
    while n > 0 && !iov.is_empty() {
        if iov[0].iov_len <= n {
            n -= iov[0].iov_len;
            iov.remove(0);
        } else {
            // SAFETY: moving the base forward within the same iovec.
            iov[0].iov_base = unsafe { (iov[0].iov_base as *mut u8).add(n) } as *mut libc::c_void;
            iov[0].iov_len -= n;
            n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    #[test]
    fn vmsplice_references_the_user_pages_rather_than_copying_them() {
        let mut engine = GupEngine::new(8192).unwrap();
        engine.sink = tempfile::tempfile().unwrap();
        let mut buf = crate::buffer::AlignedBuf::new(8192);
        buf.as_mut_slice().fill(b'a');
        let iov = [libc::iovec {
            iov_base: buf.as_mut_slice().as_mut_ptr() as *mut libc::c_void,
            iov_len: 8192,
        }];
        let n = engine.vmsplice(&iov).unwrap();
        assert_eq!(n, 8192);
        // After vmsplice, before the drain: a copy would not see this.
        buf.as_mut_slice()[..4096].fill(b'b');
        engine.drain(n).unwrap();
        let mut drained = Vec::new();
        engine.sink.rewind().unwrap();
        engine.sink.read_to_end(&mut drained).unwrap();
        assert_eq!(drained.len(), 8192);
        assert!(
            drained[..4096].iter().all(|&b| b == b'b'),
            "the pipe held a copy, not a reference: the change made after vmsplice is missing"
        );
        assert!(drained[4096..].iter().all(|&b| b == b'a'));
    }
}
