//! Whether a block device may be written: it must hold nothing. Asked of the kernel
//! (an exclusive open, the sysfs holders, partitions, other loop devices over the same
//! backing) and of util-linux's libblkid through `blkid -p` and `wipefs`, which know far
//! more signatures than any hand-written list. Anything found, and any check that cannot
//! be made, is a reason to refuse; there is no "looks blank" fallback.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A block device's kernel name (`loop1`, `vda2`) from its device number, through
/// /sys/dev/block/MAJ:MIN: whatever path or alias node reached it.
pub fn kernel_name(rdev: u64) -> Option<String> {
    let link = std::fs::read_link(format!(
        "/sys/dev/block/{}:{}",
        libc::major(rdev),
        libc::minor(rdev)
    ))
    .ok()?;
    link.file_name()?.to_str().map(String::from)
}

/// Every reason not to write the block device open on `file`, which the caller holds
/// open with O_EXCL (so nothing can mount or claim it while the checks run and the
/// I/O follows on the same descriptor). The device is identified by its number, not by
/// the path it was reached through; empty when it holds nothing we can see.
pub fn reasons_not_to_write(file: &File) -> Vec<String> {
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return vec![format!("cannot stat the open device: {e}")],
    };
    if !meta.file_type().is_block_device() {
        return vec!["it is not a block device".into()];
    }
    let rdev = meta.rdev();
    let Some(name) = kernel_name(rdev) else {
        return vec![format!(
            "device {}:{} is not in /sys/dev/block, so what uses it cannot be told",
            libc::major(rdev),
            libc::minor(rdev)
        )];
    };
    let mut reasons = Vec::new();
    reasons.extend(sysfs_users(&name));
    reasons.extend(loop_overlaps(&name, rdev));
    // libblkid reads the device through our descriptor, never by a name.
    let by_fd = PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        file.as_raw_fd()
    ));
    reasons.extend(blkid_signatures(&by_fd));
    reasons.extend(wipefs_signatures(&by_fd));
    reasons
}

/// Opens the device with O_EXCL, which the kernel refuses (EBUSY) while the device is
/// mounted, an active swap, or claimed by device-mapper, md, bcache or another user.
pub fn exclusive_open(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
        .map_err(|e| explain_exclusive(path, &e))
}

/// Opens the device read-write, O_EXCL and O_DIRECT, without following a symlink at
/// the end of `path`: the descriptor a write run's checks and I/O both use.
pub fn exclusive_open_rw(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL | libc::O_DIRECT | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| explain_exclusive(path, &e))
}

fn explain_exclusive(path: &Path, e: &std::io::Error) -> String {
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
            super::errno_text(e)
        )
    }
}

/// Names the mount point or swap that uses `path`, for the EBUSY message.
fn mount_or_swap(path: &Path) -> Option<String> {
    let canon = std::fs::canonicalize(path).ok()?;
    if let Some(at) = super::mounts::mount_point_of(&canon) {
        return Some(format!("mounted on {}", at.display()));
    }
    let rdev = std::fs::metadata(&canon).ok()?.rdev();
    super::swap::active_swaps()
        .iter()
        .any(|s| {
            std::fs::metadata(&s.name)
                .is_ok_and(|m| m.file_type().is_block_device() && m.rdev() == rdev)
        })
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

/// What a loop device maps: its backing file by identity (the device and inode the
/// kernel holds open, from LOOP_GET_STATUS64, so hard links, bind mounts and renames of
/// one image compare equal), the byte range of it, and the device number of the backing
/// when that is itself a block device.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopMap {
    pub name: String,
    /// (st_dev, st_ino) of the backing file.
    pub backing: (u64, u64),
    /// The backing's path as the kernel shows it, for messages.
    pub backing_path: String,
    /// The backing's device number where the backing is a block device.
    pub backing_rdev: Option<u64>,
    pub offset: u64,
    /// Bytes mapped; `u64::MAX` to the end of the backing.
    pub len: u64,
}

/// struct loop_info64 of <linux/loop.h>.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

nix::ioctl_read_bad!(loop_get_status64, 0x4C05, LoopInfo64);

impl LoopMap {
    /// The map of /dev/`name`; None when it is not bound (ENXIO) or cannot be opened.
    fn read(name: &str) -> Option<LoopMap> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(format!("/dev/{name}"))
            .ok()?;
        // SAFETY: LoopInfo64 is plain data; zero is a valid value of every field.
        let mut info: LoopInfo64 = unsafe { std::mem::zeroed() };
        // SAFETY: LOOP_GET_STATUS64 writes one struct loop_info64.
        unsafe { loop_get_status64(f.as_raw_fd(), &mut info) }.ok()?;
        let backing_path =
            super::read_trimmed(format!("/sys/block/{name}/loop/backing_file")).unwrap_or_default();
        // The kernel's own stat of the file it holds (loop_get_status: lo_rdevice is the
        // backing inode's rdev), not the sysfs path, which may be stale or renamed; 0
        // for a regular file.
        let backing_rdev = (info.lo_rdevice != 0).then_some(info.lo_rdevice);
        Some(LoopMap {
            name: name.into(),
            backing: (info.lo_device, info.lo_inode),
            backing_path,
            backing_rdev,
            offset: info.lo_offset,
            len: match info.lo_sizelimit {
                0 => u64::MAX,
                n => n,
            },
        })
    }

    fn overlaps(&self, other: &LoopMap) -> bool {
        self.backing == other.backing
            && self.offset < other.offset.saturating_add(other.len)
            && other.offset < self.offset.saturating_add(self.len)
    }
}

/// Every bound loop device's map.
pub fn loop_maps() -> Vec<LoopMap> {
    entries(Path::new("/sys/block"))
        .iter()
        .filter(|n| n.starts_with("loop"))
        .filter_map(|n| LoopMap::read(n))
        .collect()
}

/// Other loop devices that would see writes to `name` (device number `rdev`): stacked
/// on it, or mapping an overlapping range of the same backing file; and, for a loop
/// device over a block device, a backing that something else holds.
fn loop_overlaps(name: &str, rdev: u64) -> Vec<String> {
    let maps = loop_maps();
    let mut found = conflicting_loops(name, rdev, &maps);
    if let Some(backing) = maps
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| m.backing_rdev)
    {
        if let Some(under) = kernel_name(backing) {
            if let Err(e) = exclusive_open(Path::new(&format!("/dev/{under}"))) {
                found.push(format!("its backing device /dev/{under}: {e}"));
            }
        }
    }
    found
}

pub fn conflicting_loops(name: &str, rdev: u64, maps: &[LoopMap]) -> Vec<String> {
    let own = maps.iter().find(|m| m.name == name);
    maps.iter()
        .filter(|m| m.name != name)
        .filter_map(|m| {
            if m.backing_rdev == Some(rdev) {
                Some(format!(
                    "/dev/{} is a loop device over it (offset {})",
                    m.name, m.offset
                ))
            } else if own.is_some_and(|o| o.overlaps(m)) {
                Some(format!(
                    "/dev/{} maps the same backing file ({}, device {:#x} inode {}) at offset {}",
                    m.name, m.backing_path, m.backing.0, m.backing.1, m.offset
                ))
            } else {
                None
            }
        })
        .collect()
}

/// Loop devices whose backing is the file `(dev, ino)`: writing the file writes them.
pub fn loops_over_file(dev: u64, ino: u64) -> Vec<String> {
    loop_maps()
        .into_iter()
        .filter(|m| m.backing == (dev, ino))
        .map(|m| m.name)
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

    fn map(name: &str, backing: (u64, u64), rdev: Option<u64>, offset: u64, len: u64) -> LoopMap {
        LoopMap {
            name: name.into(),
            backing,
            backing_path: String::new(),
            backing_rdev: rdev,
            offset,
            len,
        }
    }

    #[test]
    fn loops_over_the_device_or_an_overlapping_range_of_its_backing_conflict() {
        // loop0 over inode 12 of device 0x800; loop1 stacked over loop0 (7:0); loop2
        // the same inode (a hard link or a bind mount: another name, one identity).
        let loop0 = 7u64 << 8;
        let maps = [
            map("loop0", (0x800, 12), None, 0, u64::MAX),
            map("loop1", (5, 300), Some(loop0), 1 << 20, u64::MAX),
            map("loop2", (0x800, 12), None, 1 << 20, u64::MAX),
            map("loop3", (0x800, 13), None, 0, u64::MAX),
        ];
        let found = conflicting_loops("loop0", loop0, &maps);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("/dev/loop1 is a loop device over it"));
        assert!(found[1].contains("/dev/loop2 maps the same backing file"));
        // Disjoint ranges of one file do not see each other's writes.
        let disjoint = [
            map("loop0", (0x800, 12), None, 0, 1 << 20),
            map("loop2", (0x800, 12), None, 1 << 20, u64::MAX),
        ];
        assert!(conflicting_loops("loop0", loop0, &disjoint).is_empty());
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
