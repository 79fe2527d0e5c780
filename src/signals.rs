//! SIGINT, SIGTERM, SIGHUP (an SSH disconnect), SIGQUIT and SIGPIPE (a closed output
//! pipe; the write itself then fails with EPIPE, which is ignored): the handler only sets a flag; the run polls it, stops its workers
//! within a second, undoes its changes through the normal guards, saves the partial
//! result marked interrupted and exits with 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers once; later calls are no-ops.
pub fn install() {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        use signal_hook::consts::{SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM};
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] {
            if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&flag)) {
                crate::output::warn(&format!(
                    "cannot handle signal {sig}: {e}; Ctrl-C will not clean up"
                ));
            }
        }
        flag
    });
}

/// True once one of the handled signals arrived.
pub fn received() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
