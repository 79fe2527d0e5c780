//! Messages for people on stderr: warnings, verbose notes, and the run's progress bar.
//! Results go to stdout or files, never mixed with these.

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
        eprintln!("thpbench: warning: {msg}");
    }
}

pub fn info(msg: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("thpbench: {msg}");
    }
}

pub fn debug(msg: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        eprintln!("thpbench: {msg}");
    }
}

pub mod progress;
pub mod summary;

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}
