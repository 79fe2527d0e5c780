//! Pseudo filesystems thpbench needs (securityfs for the lockdown mode, tracefs for
//! tracepoints, debugfs for split_huge_pages), mounted on demand and unmounted after.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub const SECURITYFS: &str = "/sys/kernel/security";
pub const TRACEFS: &str = "/sys/kernel/tracing";
pub const DEBUGFS: &str = "/sys/kernel/debug";

/// One line of /proc/self/mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device or pseudo source (`/dev/vda1`, `tracefs`).
    pub source: String,
    pub mount_point: PathBuf,
    pub fstype: String,
}

/// The mount table as this process sees it; empty where it cannot be read.
pub fn mounts() -> Vec<Mount> {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|text| parse_mounts(&text))
        .unwrap_or_default()
}

/// Parses /proc/self/mounts text. The kernel writes space, tab, newline and backslash
/// in paths as octal escapes (`\040`; fs/proc_namespace.c, mangle()): they are undone.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(Mount {
                source: unescape_octal(fields.next()?),
                mount_point: PathBuf::from(unescape_octal(fields.next()?)),
                fstype: fields.next()?.to_string(),
            })
        })
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn is_mounted(path: &str) -> bool {
    mounts().iter().any(|m| m.mount_point.as_os_str() == path)
}

/// Filesystem type of the mount holding `path` (longest mount-point prefix).
pub fn filesystem_type(path: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(path).ok()?;
    mounts()
        .into_iter()
        .filter(|m| abs.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .map(|m| m.fstype)
}

/// Where the block device `device` (a canonical path) is mounted, if it is.
pub fn mount_point_of(device: &Path) -> Option<PathBuf> {
    mounts()
        .into_iter()
        .find(|m| Path::new(&m.source) == device)
        .map(|m| m.mount_point)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_with_spaces_are_unescaped() {
        let text = "/dev/vda1 / ext4 rw,relatime 0 0\n\
                    /dev/loop3 /mnt/my\\040disk xfs rw 0 0\n\
                    tracefs /sys/kernel/tracing tracefs rw 0 0\n";
        let m = parse_mounts(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].mount_point, PathBuf::from("/mnt/my disk"));
        assert_eq!(m[1].source, "/dev/loop3");
        assert_eq!(m[1].fstype, "xfs");
        assert_eq!(m[2].source, "tracefs");
    }

    #[test]
    fn a_backslash_not_followed_by_three_octal_digits_is_kept() {
        let m = parse_mounts("src /a\\9b\\ x 0 0\n");
        assert_eq!(m[0].mount_point, PathBuf::from("/a\\9b\\"));
    }

    #[test]
    fn short_lines_are_skipped() {
        assert!(parse_mounts("only two\n\n").is_empty());
    }
}
