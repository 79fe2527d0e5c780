//! Engines: what one measured operation is. One trait, one file per engine.

pub mod dio;
pub mod gup;
pub mod mock;
pub mod uring;

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
    /// The engine's queued interface, where it keeps several I/Os in flight (uring).
    /// The worker then drives it through [`QueuedEngine`] instead of `execute`.
    fn queued(&mut self) -> Option<&mut dyn QueuedEngine> {
        None
    }
    /// Called in the worker thread right before the measured loop.
    fn measure_start(&mut self) {}
    /// Called in the worker thread right after the measured loop: the engine's own
    /// figures for it (uring: submissions and io-wq punts), where it has any.
    fn measure_stop(&mut self) -> Option<crate::result::IoUringReport> {
        None
    }
}

/// One completed operation: the slot it ran in and its result (bytes moved or error).
pub type Completion = (usize, std::io::Result<usize>);

/// An engine with `depth()` slots, each a fixed set of buffer segments, that can all be
/// in flight at once.
pub trait QueuedEngine {
    fn depth(&self) -> usize;
    /// Queues one operation on `slot` (its buffers, at target `offset`); it is submitted
    /// by the next `submit_and_wait`.
    fn push(&mut self, slot: usize, kind: OpKind, offset: u64) -> std::io::Result<()>;
    /// Submits what was queued and waits for at least one completion when any I/O is in
    /// flight; appends every completion available to `done`.
    fn submit_and_wait(&mut self, done: &mut Vec<Completion>) -> std::io::Result<()>;
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
