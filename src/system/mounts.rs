//! Pseudo filesystems thpbench needs (securityfs for the lockdown mode, tracefs for
//! tracepoints, debugfs for split_huge_pages), mounted on demand and unmounted after.

use std::path::Path;

use anyhow::{Context, Result};

pub const SECURITYFS: &str = "/sys/kernel/security";
pub const TRACEFS: &str = "/sys/kernel/tracing";
pub const DEBUGFS: &str = "/sys/kernel/debug";

pub fn is_mounted(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split_whitespace().nth(1) == Some(path)))
        .unwrap_or(false)
}

/// A filesystem that thpbench mounted and will unmount on drop. When it was already
/// mounted, nothing is done either way.
#[derive(Debug)]
pub struct MountGuard {
    path: String,
    mounted_by_us: bool,
    entry: Option<super::journal::Entry>,
}

impl MountGuard {
    pub fn ensure(fstype: &str, path: &str) -> Result<MountGuard> {
        if is_mounted(path) {
            return Ok(MountGuard {
                path: path.into(),
                mounted_by_us: false,
                entry: None,
            });
        }
        let entry = super::journal::record(super::journal::Change::Mount { path: path.into() })?;
        if let Err(e) = nix::mount::mount(
            Some(fstype),
            Path::new(path),
            Some(fstype),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        ) {
            entry.done();
            return Err(e).with_context(|| format!("mounting {fstype} on {path} (needs root)"));
        }
        let guard = MountGuard {
            path: path.into(),
            mounted_by_us: true,
            entry: Some(entry),
        };
        crate::output::debug(&format!("mounted {fstype} on {path}"));
        Ok(guard)
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self.mounted_by_us {
            match nix::mount::umount2(Path::new(&self.path), nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => self
                    .entry
                    .take()
                    .into_iter()
                    .for_each(super::journal::Entry::done),
                Err(e) => crate::output::warn(&format!("could not unmount {}: {e}", self.path)),
            }
        }
    }
}

/// The kernel lockdown mode: `none`, `integrity`, `confidentiality`, or `unknown`.
/// Mounts securityfs for the read when needed and unmounts it again.
pub fn lockdown_mode() -> String {
    let read = || super::read_selected(format!("{SECURITYFS}/lockdown")).ok();
    if let Some(m) = read() {
        return m;
    }
    if super::is_root() {
        if let Ok(_guard) = MountGuard::ensure("securityfs", SECURITYFS) {
            if let Some(m) = read() {
                return m;
            }
        }
    }
    "unknown".into()
}
