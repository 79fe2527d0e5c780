//! thpbench: a benchmark for Linux memory management. Pinned threads run O_DIRECT I/O
//! into buffers backed by transparent huge pages while those pages are split, collapsed
//! and swapped underneath; thpbench measures the latency, the kernel's costs, and that
//! no byte was harmed. See DESIGN.md in the shared folder and README.md.

pub mod aligned;
pub mod bisect;
pub mod buffer;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod compare;
pub mod digest;
pub mod disturb;
pub mod engine;
pub mod exit;
pub mod export;
pub mod kernels;
pub mod measure;
pub mod output;
pub mod pages;
pub mod placement;
pub mod plot;
pub mod report;
pub mod result;
pub mod run;
pub mod safe_fs;
pub mod signals;
pub mod stats;
pub mod system;
pub mod target;
/// Synthetic results for tests, the crate's own and tests/ (not a public interface).
#[doc(hidden)]
pub mod test_support;
pub mod units;
pub mod util;
pub mod verify;
pub mod worker;
pub mod workload;
