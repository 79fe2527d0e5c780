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

/// What a worker's engine is made from.
pub struct EngineSpec<'a> {
    pub kind: crate::workload::Engine,
    /// The target's file; None for engines that do no device I/O (gup).
    pub target_fd: Option<std::os::fd::RawFd>,
    /// `--mock`: the mock engine over the (in-memory) target, whatever `kind` says.
    pub mock: Option<&'a crate::result::MockReport>,
    /// Per slot, the buffer segments a queued engine keeps in flight (uring).
    pub slots: Vec<Vec<libc::iovec>>,
    pub fixed_buffers: bool,
    /// The engine's own counters (uring's punts), as the workload's `perf` asks.
    pub perf: bool,
    pub bs: usize,
    /// The worker's index: only the first injects the test hooks' faults, so that each
    /// happens once.
    pub worker: usize,
    /// Test hook (`--drop-write`): the first worker's nth write is lost.
    pub drop_write: Option<u64>,
    /// Test hook (`--drop-read`): the first worker's nth read never lands.
    pub drop_read: Option<u64>,
}

/// The one place an engine is chosen: a worker's engine as its spec asks, wrapped by the
/// lost-write and lost-read hooks where they are set.
pub fn make(spec: EngineSpec) -> anyhow::Result<Box<dyn Engine>> {
    use anyhow::Context;
    let first = spec.worker == 0;
    let engine: Box<dyn Engine> = match (spec.target_fd, spec.mock) {
        (Some(fd), Some(report)) => Box::new(mock::MockEngine::new(fd, report, first)),
        (Some(fd), None) if spec.kind == crate::workload::Engine::Uring => Box::new(
            uring::UringEngine::new(fd, spec.slots, spec.fixed_buffers, spec.perf)?,
        ),
        (Some(fd), None) => Box::new(dio::DioEngine::new(fd)),
        (None, _) => {
            Box::new(gup::GupEngine::new(spec.bs).context("making the pipe for the gup engine")?)
        }
    };
    let hooks = [
        (OpKind::Write, spec.drop_write),
        (OpKind::Read, spec.drop_read),
    ];
    Ok(hooks
        .into_iter()
        .filter(|_| first)
        .fold(engine, |engine, (kind, nth)| match nth {
            Some(nth) => Box::new(DropNth::new(engine, kind, nth, spec.bs)),
            None => engine,
        }))
}

/// Test hooks (`--drop-write`, `--drop-read`): an engine that answers its `nth` write or
/// read (from 1, warm-up and read-backs included) as done without doing it. A lost
/// write is one lost below the page cache: verify must see the block's older
/// generation. A lost read is one whose DMA went to a page the buffer no longer maps:
/// the buffer keeps what it held, and verify must see that it is not the block read. It
/// wraps any engine: one-at-a-time engines through `execute`, queued ones (uring)
/// through their queue, where the lost I/O completes, whole, with the next reap and
/// never reaches the ring.
pub struct DropNth {
    pub inner: Box<dyn Engine>,
    /// What is dropped: writes or reads.
    pub kind: OpKind,
    pub nth: u64,
    /// I/Os of `kind` seen so far.
    pub seen: u64,
    /// Bytes one I/O moves (what a queued lost I/O claims to have moved).
    pub bs: usize,
    /// Queued: the slots whose I/O was dropped, completed at the next reap.
    dropped: Vec<usize>,
    /// The inner engine's queue depth; None for a one-at-a-time engine.
    depth: Option<usize>,
}

impl DropNth {
    pub fn new(mut inner: Box<dyn Engine>, kind: OpKind, nth: u64, bs: usize) -> DropNth {
        let depth = inner.queued().map(|q| q.depth());
        DropNth {
            inner,
            kind,
            nth,
            seen: 0,
            bs,
            dropped: Vec::new(),
            depth,
        }
    }

    /// Counts an I/O of the hook's kind; true for the one to drop.
    fn drops(&mut self, kind: OpKind) -> bool {
        if kind != self.kind {
            return false;
        }
        self.seen += 1;
        self.seen == self.nth
    }
}

impl QueuedEngine for DropNth {
    fn depth(&self) -> usize {
        self.depth.unwrap_or(1)
    }

    fn push(&mut self, slot: usize, kind: OpKind, offset: u64) -> std::io::Result<()> {
        if self.drops(kind) {
            self.dropped.push(slot);
            return Ok(());
        }
        self.inner_queue().push(slot, kind, offset)
    }

    fn submit_and_wait(&mut self, done: &mut Vec<Completion>) -> std::io::Result<()> {
        // With only the dropped I/O outstanding the inner queue has nothing in flight
        // and returns at once.
        self.inner_queue().submit_and_wait(done)?;
        let bs = self.bs;
        done.extend(self.dropped.drain(..).map(|slot| (slot, Ok(bs))));
        Ok(())
    }
}

impl DropNth {
    fn inner_queue(&mut self) -> &mut dyn QueuedEngine {
        self.inner
            .queued()
            .expect("queued() answered Some only for a queued inner engine")
    }
}

impl Engine for DropNth {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn execute(
        &mut self,
        kind: OpKind,
        offset: u64,
        iov: &[libc::iovec],
    ) -> std::io::Result<usize> {
        if self.drops(kind) {
            return Ok(iov.iter().map(|v| v.iov_len).sum());
        }
        self.inner.execute(kind, offset, iov)
    }

    fn pages_referenced(&self) -> Option<u64> {
        self.inner.pages_referenced()
    }

    fn queued(&mut self) -> Option<&mut dyn QueuedEngine> {
        if self.depth.is_some() {
            Some(self)
        } else {
            None
        }
    }

    fn measure_start(&mut self) {
        self.inner.measure_start();
    }

    fn measure_stop(&mut self) -> Option<crate::result::IoUringReport> {
        self.inner.measure_stop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A queued engine that completes what it was given at the next reap, and logs the
    /// I/Os it was given.
    #[derive(Default)]
    struct Recording {
        given: Arc<Mutex<Vec<(OpKind, u64)>>>,
        pending: Vec<usize>,
    }

    impl Engine for Recording {
        fn name(&self) -> &'static str {
            "recording"
        }
        fn execute(&mut self, _: OpKind, _: u64, _: &[libc::iovec]) -> std::io::Result<usize> {
            unreachable!("driven through its queue")
        }
        fn queued(&mut self) -> Option<&mut dyn QueuedEngine> {
            Some(self)
        }
    }

    impl QueuedEngine for Recording {
        fn depth(&self) -> usize {
            4
        }
        fn push(&mut self, slot: usize, kind: OpKind, offset: u64) -> std::io::Result<()> {
            self.given.lock().unwrap().push((kind, offset));
            self.pending.push(slot);
            Ok(())
        }
        fn submit_and_wait(&mut self, done: &mut Vec<Completion>) -> std::io::Result<()> {
            done.extend(self.pending.drain(..).map(|s| (s, Ok(4096))));
            Ok(())
        }
    }

    /// Pushes a write, a read, a write, a read into `e`'s queue (slots 0..4, offsets 4k
    /// apart), reaps, and returns what reached the inner engine.
    fn through_the_queue(drop: OpKind) -> Vec<(OpKind, u64)> {
        let inner = Recording::default();
        let given = Arc::clone(&inner.given);
        let mut e = DropNth::new(Box::new(inner), drop, 2, 4096);
        let q = e
            .queued()
            .expect("a queued engine stays queued when wrapped");
        assert_eq!(q.depth(), 4);
        let kinds = [OpKind::Write, OpKind::Read, OpKind::Write, OpKind::Read];
        for (slot, kind) in kinds.into_iter().enumerate() {
            q.push(slot, kind, slot as u64 * 4096).unwrap();
        }
        let mut done = Vec::new();
        q.submit_and_wait(&mut done).unwrap();
        let mut slots: Vec<usize> = done.iter().map(|(s, _)| *s).collect();
        slots.sort_unstable();
        assert_eq!(slots, [0, 1, 2, 3], "every I/O completes, the lost one too");
        assert!(done.iter().all(|(_, r)| matches!(r, Ok(4096))));
        let given = given.lock().unwrap().clone();
        given
    }

    #[test]
    fn a_queued_engines_lost_write_never_reaches_it_and_completes_whole() {
        assert_eq!(
            through_the_queue(OpKind::Write),
            [
                (OpKind::Write, 0),
                (OpKind::Read, 4096),
                (OpKind::Read, 12288)
            ],
            "the 2nd write, at 8192, is the lost one"
        );
    }

    #[test]
    fn a_queued_engines_lost_read_never_reaches_it_and_completes_whole() {
        assert_eq!(
            through_the_queue(OpKind::Read),
            [
                (OpKind::Write, 0),
                (OpKind::Read, 4096),
                (OpKind::Write, 8192)
            ],
            "the 2nd read, at 12288, is the lost one"
        );
    }
}
