//! Messages for people on stderr: warnings, verbose notes, and the run's progress bar.
//! Results go to stdout or files, never mixed with these. Writes to a closed stream
//! (EPIPE, EBADF) are dropped, never a panic: a message must not stand between a change
//! to the machine and its undo.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(v: bool) {
    VERBOSE.store(v, Ordering::Relaxed);
}

pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

pub fn warn(msg: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        to_stderr(&format!("thpbench: warning: {msg}\n"));
    }
}

pub fn info(msg: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        to_stderr(&format!("thpbench: {msg}\n"));
    }
}

pub fn debug(msg: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        to_stderr(&format!("thpbench: {msg}\n"));
    }
}

pub mod progress;

pub fn is_verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Writes to stderr, ignoring every error (closed, full, gone).
pub fn to_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes to stdout and flushes; false when it could not be written (closed pipe).
pub fn to_stdout(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}
