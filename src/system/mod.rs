//! Reading and changing kernel state. Every change is made through a guard that puts the
//! old state back when dropped, so an error, a panic unwinding or Ctrl-C (which stops the
//! run and unwinds normally) leaves the machine as it was found.

pub mod activity;
pub mod blockdev;
pub mod cgroup;
pub mod cpu;
pub mod journal;
pub mod mounts;
pub mod numa;
pub mod pagemap;
pub mod preflight;
pub mod probe;
pub mod provenance;
pub mod recovery;
pub mod swap;
pub mod thp;
pub mod topology;
pub mod vmstat;
pub mod zram;

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// MADV_COLLAPSE, from include/uapi/asm-generic/mman-common.h (the same on every
/// architecture): the libc crate defines it only for some targets (not aarch64).
pub const MADV_COLLAPSE: libc::c_int = 25;

/// Reads a sysfs/procfs file, trimmed.
pub fn read_trimmed(path: impl AsRef<Path>) -> io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_string())
}

/// The selected value of a sysfs multiple-choice knob: `always [madvise] never` -> `madvise`.
pub fn selected(text: &str) -> String {
    match (text.find('['), text.find(']')) {
        (Some(a), Some(b)) if a < b => text[a + 1..b].to_string(),
        _ => text.trim().to_string(),
    }
}

pub fn read_selected(path: impl AsRef<Path>) -> io::Result<String> {
    read_trimmed(path).map(|t| selected(&t))
}

/// Writes a value to a sysfs/procfs file in one write(2), as the kernel expects.
pub fn write_knob(path: impl AsRef<Path>, value: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path.as_ref())?;
    f.write_all(value.as_bytes())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// CAP_SYS_ADMIN in the effective set (bit 21 of CapEff in /proc/self/status).
pub fn has_cap_sys_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 21) != 0)
}

/// A knob changed by thpbench; the old value is written back on drop.
#[derive(Debug)]
pub struct KnobGuard {
    path: PathBuf,
    old: String,
    entry: Option<journal::Entry>,
}

impl KnobGuard {
    /// Sets `path` to `value`, remembering the selected old value. No change, no guard.
    pub fn set(path: impl Into<PathBuf>, value: &str) -> Result<Option<KnobGuard>> {
        let path = path.into();
        let old = read_selected(&path).with_context(|| format!("reading {}", path.display()))?;
        if old == value {
            return Ok(None);
        }
        let entry = journal::record(journal::Change::Knob {
            path: path.clone(),
            old: old.clone(),
            new: Some(value.to_string()),
        })?;
        if let Err(e) = write_knob(&path, value) {
            entry.done();
            return Err(anyhow::Error::new(e).context(format!(
                "writing `{value}` to {} (needs root; the old value `{old}` is kept)",
                path.display()
            )));
        }
        let guard = KnobGuard {
            path,
            old,
            entry: Some(entry),
        };
        crate::output::debug(&format!(
            "set {} = {value} (was {})",
            guard.path.display(),
            guard.old
        ));
        Ok(Some(guard))
    }
}

impl Drop for KnobGuard {
    fn drop(&mut self) {
        match write_knob(&self.path, &self.old) {
            Ok(()) => self.entry.take().into_iter().for_each(journal::Entry::done),
            Err(e) => crate::output::warn(&format!(
                "could not restore {} to `{}`: {e}; `thpbench cleanup` retries once this run is gone",
                self.path.display(),
                self.old
            )),
        }
    }
}

/// Formats an errno for people, name and text once: `EPERM: Operation not permitted`.
pub fn errno_text(err: &io::Error) -> String {
    match err.raw_os_error() {
        // nix's Display is `EPERM: Operation not permitted`; io::Error's would repeat
        // the text with `(os error 1)`.
        Some(code) => nix::errno::Errno::from_raw(code).to_string(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errno_text_names_the_errno_and_says_its_text_once() {
        let e = std::io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(super::errno_text(&e), "EINVAL: Invalid argument");
        let plain = std::io::Error::other("no errno here");
        assert_eq!(super::errno_text(&plain), "no errno here");
    }
}
