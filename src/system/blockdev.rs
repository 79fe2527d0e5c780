//! Whether a block device may be written: it must hold nothing. Asked of the kernel
//! (an exclusive open, the sysfs holders, partitions, other loop devices over the same
//! backing) and of util-linux's libblkid through `blkid -p` and `wipefs`, which know far
//! more signatures than any hand-written list. Anything found, and any check that cannot
//! be made, is a reason to refuse; there is no "looks blank" fallback.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every reason not to write `path`; empty when the device holds nothing we can see.
pub fn reasons_not_to_write(path: &Path) -> Vec<String> {
    let mut reasons = Vec::new();
    let canon = match std::fs::canonicalize(path) {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot resolve {}: {e}", path.display())],
    };
    let name = canon
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if let Err(e) = exclusive_open(&canon) {
        reasons.push(e);
    }
    reasons.extend(sysfs_users(&name));
    reasons.extend(loop_overlaps(&name));
    reasons.extend(blkid_signatures(&canon));
    reasons.extend(wipefs_signatures(&canon));
    reasons
}

/// Opens the device with O_EXCL, which the kernel refuses (EBUSY) while the device is
/// mounted, an active swap, or claimed by device-mapper, md, bcache or another user.
pub fn exclusive_open(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                format!(
                    "the kernel refuses an exclusive open (EBUSY): something holds it ({})",
                    mount_or_swap(path).unwrap_or_else(|| {
                        "a mount, a swap, device-mapper, md or another exclusive user".into()
                    })
                )
            } else {
                format!(
                    "an exclusive open failed ({}), so whether it is in use cannot be told",
                    super::errno_text(&e)
                )
            }
        })
}

/// Names the mount point or swap that uses `canon`, for the EBUSY message.
fn mount_or_swap(canon: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mounted = mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next().map(Path::new) == Some(canon)).then(|| f.next().unwrap_or("?").to_string())
    });
    if let Some(at) = mounted {
        return Some(format!("mounted on {at}"));
    }
    super::swap::active_swaps()
        .iter()
        .any(|s| Path::new(&s.name) == canon)
        .then(|| "an active swap".into())
}

/// Stacked users (holders/: dm, md, bcache) and partitions, from /sys/class/block/NAME.
fn sysfs_users(name: &str) -> Vec<String> {
    let dir = PathBuf::from(format!("/sys/class/block/{name}"));
    let mut reasons = Vec::new();
    let holders = entries(&dir.join("holders"));
    if !holders.is_empty() {
        reasons.push(format!(
            "{}/holders lists {}",
            dir.display(),
            holders.join(", ")
        ));
    }
    let partitions: Vec<String> = entries(&dir)
        .into_iter()
        .filter(|e| e.starts_with(name) && dir.join(e).join("partition").exists())
        .collect();
    if !partitions.is_empty() {
        reasons.push(format!("it has partitions: {}", partitions.join(", ")));
    }
    reasons
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// What a loop device maps: its backing file, and the byte range of it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopMap {
    pub name: String,
    pub backing: PathBuf,
    pub offset: u64,
    /// Bytes mapped; `u64::MAX` to the end of the backing.
    pub len: u64,
}

impl LoopMap {
    fn read(name: &str) -> Option<LoopMap> {
        let dir = format!("/sys/block/{name}/loop");
        let backing = super::read_trimmed(format!("{dir}/backing_file")).ok()?;
        let num = |f: &str| {
            super::read_trimmed(format!("{dir}/{f}"))
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let len = match num("sizelimit") {
            0 => u64::MAX,
            n => n,
        };
        Some(LoopMap {
            name: name.into(),
            // The kernel shows the path the backing was opened with; canonical where it
            // still exists, so that two spellings of one file compare equal.
            backing: std::fs::canonicalize(&backing).unwrap_or_else(|_| backing.into()),
            offset: num("offset"),
            len,
        })
    }

    fn overlaps(&self, other: &LoopMap) -> bool {
        self.backing == other.backing
            && self.offset < other.offset.saturating_add(other.len)
            && other.offset < self.offset.saturating_add(self.len)
    }
}

/// Other loop devices that would see writes to `name`: stacked on it, or mapping an
/// overlapping range of the same backing file.
fn loop_overlaps(name: &str) -> Vec<String> {
    let maps: Vec<LoopMap> = entries(Path::new("/sys/block"))
        .iter()
        .filter(|n| n.starts_with("loop"))
        .filter_map(|n| LoopMap::read(n))
        .collect();
    conflicting_loops(name, &maps)
}

pub fn conflicting_loops(name: &str, maps: &[LoopMap]) -> Vec<String> {
    let dev = PathBuf::from(format!("/dev/{name}"));
    let own = maps.iter().find(|m| m.name == name);
    maps.iter()
        .filter(|m| m.name != name)
        .filter_map(|m| {
            if m.backing == dev {
                Some(format!(
                    "/dev/{} is a loop device over it (offset {})",
                    m.name, m.offset
                ))
            } else if own.is_some_and(|o| o.overlaps(m)) {
                Some(format!(
                    "/dev/{} maps the same backing file {} at offset {}",
                    m.name,
                    m.backing.display(),
                    m.offset
                ))
            } else {
                None
            }
        })
        .collect()
}

/// libblkid's full superblock and partition-table probing (`blkid -p`): exit 0 found
/// something, 2 found nothing; anything else means it could not tell.
fn blkid_signatures(path: &Path) -> Vec<String> {
    let out = match Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(path)
        .output()
    {
        Ok(o) => o,
        Err(e) => return vec![format!("cannot tell whether it holds a filesystem: running blkid failed ({e}); install util-linux")],
    };
    match out.status.code() {
        Some(0) => vec![describe_blkid(&String::from_utf8_lossy(&out.stdout))],
        Some(2) => Vec::new(),
        code => vec![format!(
            "cannot tell whether it holds a filesystem: blkid -p {} exited with {} ({}); exit 8 means several signatures were found",
            path.display(),
            code.map_or("a signal".into(), |c| c.to_string()),
            String::from_utf8_lossy(&out.stderr).trim()
        )],
    }
}

/// `TYPE=swap\nUUID=...` -> "libblkid finds a swap signature (blkid -p: TYPE=swap, ...)".
pub fn describe_blkid(export: &str) -> String {
    let fields: Vec<&str> = export
        .lines()
        .filter(|l| !l.starts_with("DEVNAME=") && !l.trim().is_empty())
        .collect();
    let value = |key: &str| {
        fields
            .iter()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    };
    let what = value("TYPE")
        .map(|t| format!("a {t} signature"))
        .or_else(|| value("PTTYPE").map(|t| format!("a {t} partition table")))
        .unwrap_or_else(|| "a signature".into());
    format!("libblkid finds {what} (blkid -p: {})", fields.join(", "))
}

/// `wipefs` lists every magic string libblkid finds, at every offset (also backup
/// superblocks and signatures that full probing reports as ambiguous).
fn wipefs_signatures(path: &Path) -> Vec<String> {
    let out = match Command::new("wipefs")
        .args(["--no-act", "--noheadings", "--parsable", "--output", "TYPE,OFFSET"])
        .arg(path)
        .output()
    {
        Ok(o) => o,
        Err(e) => return vec![format!("cannot tell whether it holds a signature: running wipefs failed ({e}); install util-linux")],
    };
    if !out.status.success() {
        return vec![format!(
            "cannot tell whether it holds a signature: wipefs {} failed ({})",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )];
    }
    let found: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.replace(',', " at offset "))
        .collect();
    if found.is_empty() {
        Vec::new()
    } else {
        vec![format!("wipefs finds {}", found.join("; "))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(name: &str, backing: &str, offset: u64, len: u64) -> LoopMap {
        LoopMap {
            name: name.into(),
            backing: backing.into(),
            offset,
            len,
        }
    }

    #[test]
    fn loops_over_the_device_or_an_overlapping_range_of_its_backing_conflict() {
        let maps = [
            map("loop0", "/tmp/m.img", 0, u64::MAX),
            map("loop1", "/dev/loop0", 1 << 20, u64::MAX),
            map("loop2", "/tmp/m.img", 1 << 20, u64::MAX),
            map("loop3", "/tmp/other.img", 0, u64::MAX),
        ];
        let found = conflicting_loops("loop0", &maps);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("/dev/loop1 is a loop device over it"));
        assert!(found[1].contains("/dev/loop2 maps the same backing file /tmp/m.img"));
        // Disjoint ranges of one file do not see each other's writes.
        let disjoint = [
            map("loop0", "/tmp/m.img", 0, 1 << 20),
            map("loop2", "/tmp/m.img", 1 << 20, u64::MAX),
        ];
        assert!(conflicting_loops("loop0", &disjoint).is_empty());
    }

    #[test]
    fn blkid_export_is_described_by_its_type() {
        let s = describe_blkid("DEVNAME=/dev/loop0\nVERSION=3\nTYPE=minix\nUSAGE=filesystem\n");
        assert!(s.starts_with("libblkid finds a minix signature"), "{s}");
        assert!(s.contains("VERSION=3"));
        let s = describe_blkid("PTUUID=ab\nPTTYPE=dos\n");
        assert!(s.contains("a dos partition table"), "{s}");
    }
}
