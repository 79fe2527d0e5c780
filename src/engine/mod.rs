//! Engines: what one measured operation is. One trait, one file per engine.

pub mod dio;
pub mod gup;

/// Direction of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Write,
}

/// One engine instance per worker thread. `execute` is the timed call; everything it
/// needs is prepared before the loop, so it neither allocates nor locks.
pub trait Engine: Send {
    fn name(&self) -> &'static str;
    /// Performs one operation of the iovecs' total size at target `offset`; returns the
    /// bytes moved.
    fn execute(&mut self, kind: OpKind, offset: u64, iov: &[libc::iovec])
        -> std::io::Result<usize>;
    /// Pages the engine took references on so far, where it counts them (gup).
    fn pages_referenced(&self) -> Option<u64> {
        None
    }
}

/// Test hook (`--drop-write`): an engine that answers its `nth` write (from 1, warm-up
/// included) as done without doing it, the way a write lost below the page cache looks
/// to the application; verify must see the block's older generation.
pub struct DropNthWrite {
    pub inner: Box<dyn Engine>,
    pub nth: u64,
    pub writes: u64,
}

impl Engine for DropNthWrite {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn execute(
        &mut self,
        kind: OpKind,
        offset: u64,
        iov: &[libc::iovec],
    ) -> std::io::Result<usize> {
        if kind == OpKind::Write {
            self.writes += 1;
            if self.writes == self.nth {
                return Ok(iov.iter().map(|v| v.iov_len).sum());
            }
        }
        self.inner.execute(kind, offset, iov)
    }

    fn pages_referenced(&self) -> Option<u64> {
        self.inner.pages_referenced()
    }
}
