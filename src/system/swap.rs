//! Swap for swap-out disturbers: a zram device or a swap file made for the run, enabled
//! with the highest priority so it is used first, and disabled and removed afterwards.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::journal::{self, Change, Entry};
use super::zram::ZramDevice;

pub use crate::workload::SwapSpec;

/// One line of /proc/swaps.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveSwap {
    pub name: String,
    pub kind: String,
    pub size_kb: u64,
    pub used_kb: u64,
    pub priority: i64,
}

pub fn active_swaps() -> Vec<ActiveSwap> {
    std::fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(ActiveSwap {
                name: f.first()?.to_string(),
                kind: f.get(1)?.to_string(),
                size_kb: f.get(2)?.parse().ok()?,
                used_kb: f.get(3)?.parse().ok()?,
                priority: f.get(4)?.parse().ok()?,
            })
        })
        .collect()
}

/// Whether zswap takes swapped-out pages (/sys/module/zswap/parameters/enabled is `Y`):
/// then they are counted in zswpout/zswpin, not pswpout/pswpin.
pub fn zswap_enabled() -> bool {
    super::read_trimmed("/sys/module/zswap/parameters/enabled").is_ok_and(|v| v == "Y")
}

/// Swap enabled by thpbench; swapoff and removal of what backs it on drop. Field order
/// matters: `enabled` (swapoff) drops before the device or file is removed.
#[derive(Debug)]
pub struct SwapGuard {
    enabled: Option<SwapOn>,
    zram: Option<ZramDevice>,
    file: Option<RemoveFile>,
    pub description: String,
}

/// A swap area turned on: swapoff on drop, through `path`; `_file` keeps a swap file's
/// descriptor open until then, since `path` may be /proc/self/fd/N.
#[derive(Debug)]
struct SwapOn {
    path: PathBuf,
    entry: Option<Entry>,
    _file: Option<std::fs::File>,
}

/// swapoff(2).
pub fn swap_off(path: &Path) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::swapoff(c.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for SwapOn {
    fn drop(&mut self) {
        match swap_off(&self.path) {
            Ok(()) => self.entry.take().into_iter().for_each(Entry::done),
            Err(e) => crate::output::warn(&format!(
                "swapoff {} failed: {e}; run swapoff on it by hand (see /proc/swaps)",
                self.path.display()
            )),
        }
    }
}

/// A file thpbench made (journaled before it was made, with its identity once it
/// exists); removed on drop, and only while the name still is that file.
#[derive(Debug)]
pub struct RemoveFile {
    dir: crate::safe_fs::Dir,
    name: std::ffi::OsString,
    path: PathBuf,
    pub id: crate::safe_fs::FileId,
    entry: Option<Entry>,
}

impl RemoveFile {
    /// Creates `path` anew with `mode` and extra open `flags`: in a directory no other
    /// user can write (or a sticky one), with O_CREAT|O_EXCL|O_NOFOLLOW relative to that
    /// directory, so that nothing planted at the name is followed or reused.
    pub fn create(
        path: &Path,
        mode: u32,
        flags: nix::fcntl::OFlag,
    ) -> std::io::Result<(RemoveFile, std::fs::File)> {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let (dir, name) = crate::safe_fs::Dir::of_file(&abs)?;
        let mut entry = journal::record(Change::File {
            path: abs.clone(),
            id: None,
        })
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let file = match dir.create_new(&name, mode, flags) {
            Ok(f) => f,
            Err(e) => {
                // Nothing was made: the path may be someone else's file.
                entry.done();
                return Err(e);
            }
        };
        let made = crate::safe_fs::FileId::of_file(&file).and_then(|id| {
            entry
                .update(Change::File {
                    path: abs.clone(),
                    id: Some(id),
                })
                .map_err(|e| std::io::Error::other(format!("{e:#}")))
                .map(|()| id)
        });
        match made {
            Ok(id) => Ok((
                RemoveFile {
                    dir,
                    name,
                    path: abs,
                    id,
                    entry: Some(entry),
                },
                file,
            )),
            Err(e) => {
                let _ = dir.unlink(&name);
                entry.done();
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RemoveFile {
    fn drop(&mut self) {
        match self.dir.unlink_if(&self.name, self.id) {
            Ok(true) => self.entry.take().into_iter().for_each(Entry::done),
            Ok(false) => {
                crate::output::warn(&format!(
                    "{} is no longer the file thpbench made (moved or replaced by someone else); left as it is",
                    self.path.display()
                ));
                self.entry.take().into_iter().for_each(Entry::done);
            }
            Err(e) => {
                crate::output::warn(&format!("could not remove {}: {e}", self.path.display()))
            }
        }
    }
}

impl SwapGuard {
    pub fn setup(spec: &SwapSpec) -> Result<SwapGuard> {
        match spec {
            SwapSpec::Existing => {
                let swaps = active_swaps();
                if swaps.is_empty() {
                    bail!("swap = \"existing\" but no swap is active (/proc/swaps is empty); use swap = \"zram:1G\" to let thpbench make one");
                }
                Ok(SwapGuard {
                    enabled: None,
                    zram: None,
                    file: None,
                    description: format!(
                        "existing: {}",
                        swaps
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
            SwapSpec::Zram(size) => {
                let zram = ZramDevice::create(*size)?;
                let path = zram.path();
                let mut guard = SwapGuard {
                    enabled: None,
                    zram: Some(zram),
                    file: None,
                    description: format!(
                        "zram {} ({})",
                        path.display(),
                        crate::units::format_size(*size)
                    ),
                };
                let mark = guard.zram.as_ref().map(ZramDevice::mark).transpose()?;
                mkswap(&path)?;
                guard.enabled = Some(swapon(
                    &path,
                    &path,
                    mark.map(journal::Backing::Zram),
                    None,
                )?);
                Ok(guard)
            }
            SwapSpec::File(path, size) => {
                if !super::is_root() {
                    bail!(
                        "a swap file needs root (swapon); run as root or use swap = \"existing\""
                    );
                }
                let (remove, f) = RemoveFile::create(path, 0o600, nix::fcntl::OFlag::empty())
                    .map_err(|e| {
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            anyhow::anyhow!("swap file {} already exists; thpbench only makes new swap files (pick another path)", path.display())
                        } else {
                            anyhow::anyhow!("creating swap file {}: {}", path.display(), super::errno_text(&e))
                        }
                    })?;
                let mut guard = SwapGuard {
                    enabled: None,
                    zram: None,
                    file: Some(remove),
                    description: format!(
                        "file {} ({})",
                        path.display(),
                        crate::units::format_size(*size)
                    ),
                };
                nix::fcntl::fallocate(
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    nix::fcntl::FallocateFlags::empty(),
                    0,
                    *size as i64,
                )
                .with_context(|| format!("allocating {} for swap file {}", size, path.display()))?;
                // mkswap and swapon reach the file through our descriptor, never by
                // its name, which someone could have swapped for a link since.
                let by_fd = PathBuf::from(format!(
                    "/proc/{}/fd/{}",
                    std::process::id(),
                    std::os::fd::AsRawFd::as_raw_fd(&f)
                ));
                mkswap(&by_fd)?;
                let id = guard.file.as_ref().map(|r| r.id);
                let shown = guard
                    .file
                    .as_ref()
                    .map_or(path.clone(), |r| r.path().to_path_buf());
                guard.enabled = Some(swapon(
                    &by_fd,
                    &shown,
                    id.map(journal::Backing::File),
                    Some(f),
                )?);
                Ok(guard)
            }
        }
    }
}

impl Drop for SwapGuard {
    fn drop(&mut self) {
        // swapoff before the device or file goes away.
        self.enabled.take();
        self.zram.take();
        self.file.take();
    }
}

fn mkswap(path: &Path) -> Result<()> {
    let out = std::process::Command::new("mkswap")
        .arg(path)
        .output()
        .context("running mkswap (install util-linux)")?;
    if !out.status.success() {
        bail!(
            "mkswap {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Turns on swap at `path` (a device, or /proc/PID/fd/N for a file), journaled as swap
/// on `shown` backed by `backing`, so that cleanup can recognise it.
fn swapon(
    path: &Path,
    shown: &Path,
    backing: Option<journal::Backing>,
    file: Option<std::fs::File>,
) -> Result<SwapOn> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).context("path contains NUL")?;
    // Highest priority, so that pages thpbench pushes out land on its own swap.
    // SWAP_FLAG_PREFER | priority, from <sys/swap.h>.
    const SWAP_FLAG_PREFER: libc::c_int = 0x8000;
    const SWAP_FLAG_PRIO_MASK: libc::c_int = 0x7fff;
    let flags = SWAP_FLAG_PREFER | (32767 & SWAP_FLAG_PRIO_MASK);
    let entry = journal::record(Change::Swap {
        path: shown.to_path_buf(),
        backing,
    })?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::swapon(c.as_ptr(), flags) } != 0 {
        let e = std::io::Error::last_os_error();
        entry.done();
        bail!(
            "swapon {} failed: {}",
            path.display(),
            super::errno_text(&e)
        );
    }
    let on = SwapOn {
        path: path.to_path_buf(),
        entry: Some(entry),
        _file: file,
    };
    crate::output::debug(&format!("swapon {}", shown.display()));
    Ok(on)
}
