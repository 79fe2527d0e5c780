//! I/O targets: a file (created, filled and removed by thpbench, or an existing one that
//! is only read unless forced), a block device (read-only unless allowed and blank), or a
//! zram device made for the run. Every target is opened with O_DIRECT.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::buffer::AlignedBuf;
use crate::result::TargetReport;
use crate::system::swap::RemoveFile;
use crate::system::zram::ZramDevice;
use crate::units::Size;
use crate::workload::Workload;

/// The size of a file thpbench creates when `size` is not given.
const CREATED_FILE_BYTES: u64 = 64 << 20;

/// The I/O region, as fio does it: the whole target unless `size` narrows it; whole
/// base pages (a multiple of any O_DIRECT alignment; `opened` also rounds to the
/// target's own).
fn region(target_bytes: u64, size: Option<Size>) -> u64 {
    let r = size.map_or(target_bytes, |s| s.bytes().min(target_bytes));
    r - r % crate::pages::base_page() as u64
}

pub struct Target {
    pub path: PathBuf,
    /// `file (created)`, `file (existing)`, `block device`, `zram`.
    pub kind: String,
    /// Bytes of the target the I/O uses: [0, size), the region.
    pub size: u64,
    /// Bytes the target holds (the device's or the file's size).
    pub target_bytes: u64,
    pub writable: bool,
    /// Holds the verify pattern for the run's seed: the nonce the fill wrote.
    pub stamped: Option<u32>,
    /// The path as the user gave it, where it resolved to another (a symlink).
    pub given: Option<PathBuf>,
    /// The target's own O_DIRECT alignment (statx, else the logical block size).
    pub dio: crate::pages::DioAlign,
    // Drop order: close the file, then remove the file or the zram device.
    file: File,
    _remove: Option<RemoveFile>,
    _zram: Option<ZramDevice>,
}

/// The default target: a file in the current directory.
fn default_file(dir: &Path) -> PathBuf {
    dir.join(format!(".thpbench-{}.dat", std::process::id()))
}

/// Opens a path that was resolved already: a symlink at its end is not followed.
fn open_direct(path: &Path, write: bool) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_DIRECT | libc::O_NOFOLLOW)
        .open(path)
}

/// The path the user named, resolved once (symlinks followed, made absolute). A
/// symlink in a directory other users can write is followed only where the kernel's
/// fs.protected_symlinks would follow it: the link is ours or the directory owner's.
/// Otherwise someone else planted it, and it could point anywhere.
pub fn resolve_once(given: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(given) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // To be made: its directory resolved, its name as given.
            let parent = given
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let dir = std::fs::canonicalize(parent)
                .with_context(|| format!("{}: its directory", given.display()))?;
            return Ok(dir.join(given.file_name().unwrap_or_default()));
        }
        Err(e) => bail!("{}: {}", given.display(), crate::system::errno_text(&e)),
    };
    if meta.file_type().is_symlink() {
        let parent = given
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::fs::metadata(parent)?;
        let me = nix::unistd::geteuid().as_raw();
        let others_write = dir.mode() & 0o022 != 0;
        if others_write && meta.uid() != me && meta.uid() != dir.uid() {
            bail!(
                "{} is a symlink owned by uid {} in {}, a directory other users can write: thpbench does not follow it (it could point at any file); name the file it points to, if that is what you mean",
                given.display(),
                meta.uid(),
                parent.display()
            );
        }
    }
    std::fs::canonicalize(given).with_context(|| format!("resolving {}", given.display()))
}

fn explain_open(path: &Path, e: std::io::Error) -> anyhow::Error {
    if e.raw_os_error() == Some(libc::EINVAL) {
        let fs = crate::system::mounts::filesystem_type(path.parent().unwrap_or(Path::new(".")))
            .unwrap_or_else(|| "unknown".into());
        anyhow::anyhow!(
            "{}: O_DIRECT is not supported on this filesystem ({fs}); put the target on ext4, xfs or btrfs, or use target = \"zram:SIZE\"",
            path.display()
        )
    } else {
        anyhow::anyhow!("{}: {}", path.display(), crate::system::errno_text(&e))
    }
}

impl Target {
    /// A target opened on `file`: its kind, the bytes it holds, the region the I/O uses
    /// and whether it may be written; nothing to remove when it drops.
    fn opened(
        path: PathBuf,
        kind: &str,
        file: File,
        target_bytes: u64,
        size: u64,
        writable: bool,
    ) -> Target {
        let dio = crate::pages::dio_align(&file);
        Target {
            path,
            kind: kind.into(),
            size: size - size % u64::from(dio.offset),
            target_bytes,
            writable,
            stamped: None,
            given: None,
            dio,
            file,
            _remove: None,
            _zram: None,
        }
    }

    pub fn setup(w: &Workload, stop: &dyn Fn() -> bool) -> Result<Target> {
        let spec = w.target.trim();
        let need_writes = w.rw.writes() || w.verify;
        if let Some(size) = spec.strip_prefix("zram:") {
            let device_bytes = crate::units::parse_size(size).map_err(anyhow::Error::msg)?;
            let zram = ZramDevice::create(device_bytes)?;
            let path = zram.path();
            let file = open_direct(&path, true).map_err(|e| explain_open(&path, e))?;
            let mut t = Target {
                _zram: Some(zram),
                ..Target::opened(
                    path,
                    "zram",
                    file,
                    device_bytes,
                    region(device_bytes, w.size),
                    true,
                )
            };
            t.check_alignment(w.bs.bytes())?;
            t.fill(w.seed, stop)?;
            return Ok(t);
        }
        let given = if spec.is_empty() || spec == "." {
            default_file(Path::new("."))
        } else {
            let p = PathBuf::from(spec);
            if p.is_dir() {
                default_file(&p)
            } else {
                p
            }
        };
        // The name is looked up once: from here on the target is what it resolved to.
        let path = resolve_once(&given)?;
        let mut t = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (remove, file) = RemoveFile::create(&path, 0o644, nix::fcntl::OFlag::O_DIRECT)
                    .map_err(|e| explain_open(&path, e))?;
                let bytes = region(w.size.map_or(CREATED_FILE_BYTES, |s| s.bytes()), None);
                let mut t = Target {
                    _remove: Some(remove),
                    ..Target::opened(path, "file (created)", file, bytes, bytes, true)
                };
                t.fill(w.seed, stop)?;
                t
            }
            Err(e) => bail!("{}: {e}", path.display()),
            Ok(meta) if meta.file_type().is_block_device() => {
                Self::block_device(path, w, need_writes, stop)?
            }
            Ok(meta) if meta.is_file() => Self::existing_file(path, &meta, w, need_writes, stop)?,
            Ok(_) => bail!(
                "{} is neither a regular file nor a block device",
                path.display()
            ),
        };
        if given != t.path {
            t.given = Some(given);
        }
        t.check_alignment(w.bs.bytes())?;
        Ok(t)
    }

    /// O_DIRECT I/O of `bs` at offsets that are multiples of bs must suit the target's
    /// own alignment (a 4 KiB-sector device refuses 512-byte I/O with EINVAL).
    fn check_alignment(&self, bs: u64) -> Result<()> {
        let a = u64::from(self.dio.offset);
        if !bs.is_multiple_of(a) {
            bail!(
                "bs = {bs} does not suit {}: its O_DIRECT I/O must be a multiple of {a} bytes (from the {}); use bs = a multiple of {a}",
                self.path.display(),
                self.dio.source
            );
        }
        Ok(())
    }

    /// An existing file: read through a descriptor opened without following a link, and
    /// written (with --force) only when no one else could have put it there for us.
    fn existing_file(
        path: PathBuf,
        meta: &std::fs::Metadata,
        w: &Workload,
        need_writes: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<Target> {
        use std::os::unix::fs::MetadataExt;
        if need_writes && !w.force {
            bail!(
                "{} exists and thpbench does not overwrite files it did not create; {} needs to write it. Pass --force to overwrite it with the verify pattern, or use --no-verify with a read-only rw mode",
                path.display(),
                if w.rw.writes() { format!("rw = {:?}", w.rw).to_lowercase() } else { "--verify".to_string() }
            );
        }
        // --force with a size writes that much, growing the file if need be.
        let target_bytes = match w.size {
            Some(s) if w.force => s.bytes().max(meta.len()),
            _ => meta.len(),
        };
        let size = region(target_bytes, w.size);
        if size < w.bs.bytes() {
            bail!(
                "{}: the I/O region is {size} bytes (the file holds {}), less than one block of {}; give a larger file, or a smaller bs",
                path.display(),
                meta.len(),
                w.bs
            );
        }
        let mut flags = nix::fcntl::OFlag::O_DIRECT;
        flags |= if w.force {
            nix::fcntl::OFlag::O_RDWR
        } else {
            nix::fcntl::OFlag::O_RDONLY
        };
        let (dir, name) = if w.force {
            // Written: only in a directory no one else can write (or a sticky one).
            crate::safe_fs::Dir::of_file(&path)
        } else {
            crate::safe_fs::Dir::of_file_unchecked(&path)
        }
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), crate::system::errno_text(&e)))?;
        let file = dir
            .open_existing(&name, flags)
            .map_err(|e| explain_open(&path, e))?;
        let now = file.metadata()?;
        if !now.is_file() || now.dev() != meta.dev() || now.ino() != meta.ino() {
            bail!(
                "{} changed between looking at it and opening it (someone replaced it); not using it",
                path.display()
            );
        }
        if w.force {
            if now.nlink() > 1 {
                bail!(
                    "{} has {} names (hard links), and --force would write every one of them; thpbench overwrites only a file with a single name",
                    path.display(),
                    now.nlink()
                );
            }
            let loops = crate::system::blockdev::loops_over_file(now.dev(), now.ino());
            if !loops.is_empty() {
                bail!(
                    "{} backs the loop device{} /dev/{}: writing it would write what they hold; detach them first (losetup -d)",
                    path.display(),
                    if loops.len() == 1 { "" } else { "s" },
                    loops.join(", /dev/")
                );
            }
            if crate::system::swap::active_swaps().iter().any(|s| {
                std::fs::metadata(&s.name)
                    .is_ok_and(|m| m.dev() == now.dev() && m.ino() == now.ino())
            }) {
                bail!("{} is an active swap file", path.display());
            }
        }
        let mut t = Target::opened(path, "file (existing)", file, target_bytes, size, w.force);
        if w.force {
            t.fill(w.seed, stop)?;
        }
        Ok(t)
    }

    fn block_device(
        path: PathBuf,
        w: &Workload,
        need_writes: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<Target> {
        if !need_writes {
            let file = open_direct(&path, false).map_err(|e| explain_open(&path, e))?;
            let dev_size = block_size(&file)
                .with_context(|| format!("reading the size of {}", path.display()))?;
            let size = region(dev_size, w.size);
            return Ok(Target::opened(
                path,
                "block device",
                file,
                dev_size,
                size,
                false,
            ));
        }
        if !w.allow_write_device {
            bail!("{} is a block device and the workload writes to it (writes or --verify); pass --allow-write-device to allow writes to a blank device, or use --no-verify with a read-only rw mode", path.display());
        }
        // One exclusive open, held for the whole run: the kernel refuses it while the
        // device is mounted or claimed, nothing can mount or claim it afterwards, and the
        // checks below and the I/O use this same descriptor, never the name again.
        let file = crate::system::blockdev::exclusive_open_rw(&path).map_err(|why| {
            anyhow::anyhow!(
                "{} will not be written: {why}. thpbench writes only block devices that hold nothing",
                path.display()
            )
        })?;
        let reasons = crate::system::blockdev::reasons_not_to_write(&file);
        if !reasons.is_empty() {
            bail!(
                "{} will not be written: {}. thpbench writes only block devices that hold nothing; wipe it yourself (wipefs -a) if its contents are not needed, or use --no-verify with a read-only rw mode",
                path.display(),
                reasons.join("; ")
            );
        }
        let dev_size =
            block_size(&file).with_context(|| format!("reading the size of {}", path.display()))?;
        let size = region(dev_size, w.size);
        let mut t = Target::opened(path, "block device", file, dev_size, size, true);
        t.fill(w.seed, stop)?;
        Ok(t)
    }

    /// The mock target (hidden `--mock`): an in-memory file (memfd) of `size` (default
    /// 8 MiB), filled with the pattern like a created file; no O_DIRECT, no root.
    pub fn in_memory(w: &Workload, stop: &dyn Fn() -> bool) -> Result<Target> {
        const MOCK_BYTES: u64 = 8 << 20;
        let bytes = region(w.size.map_or(MOCK_BYTES, |s| s.bytes()), None);
        // SAFETY: the name is a NUL-terminated literal.
        let fd = unsafe { libc::memfd_create(c"thpbench-mock".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            bail!(
                "making the in-memory mock target (memfd_create): {}",
                crate::system::errno_text(&std::io::Error::last_os_error())
            );
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        file.set_len(bytes)
            .with_context(|| format!("sizing the in-memory mock target to {bytes} bytes"))?;
        let mut t = Target::opened(
            PathBuf::from("memfd:thpbench-mock"),
            "mock (in memory)",
            file,
            bytes,
            bytes,
            true,
        );
        t.fill(w.seed, stop)?;
        Ok(t)
    }

    /// Writes the verify pattern over [0, size) with large O_DIRECT writes.
    /// A fresh random nonce each time, so that data left by an earlier fill never checks.
    fn fill(&mut self, seed: u64, stop: &dyn Fn() -> bool) -> Result<()> {
        let nonce = random_u32();
        let stamp = crate::verify::Stamp {
            seed,
            nonce,
            generation: 0,
        };
        const CHUNK: usize = 4 << 20;
        let mut buf = AlignedBuf::with_align(CHUNK, self.dio.memory as usize);
        let mut off = 0u64;
        while off < self.size {
            if stop() {
                bail!(crate::signals::Interrupted);
            }
            let n = CHUNK.min((self.size - off) as usize);
            crate::verify::stamp(&mut buf.as_mut_slice()[..n], off, &stamp);
            self.file
                .write_all_at(&buf.as_slice()[..n], off)
                .with_context(|| format!("filling {} at offset {off}", self.path.display()))?;
            off += n as u64;
        }
        self.file.sync_all().ok();
        self.stamped = Some(nonce);
        Ok(())
    }

    /// What the result records: the target and the region the I/O used.
    pub fn report(&self) -> TargetReport {
        TargetReport {
            kind: self.kind.clone(),
            path: self.path.display().to_string(),
            given: self.given.as_ref().map(|g| g.display().to_string()),
            size_bytes: self.target_bytes,
            region_bytes: self.size,
        }
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }

    /// Overwrites `len` bytes at `offset` with something that is not the pattern (tests).
    pub fn corrupt(&self, offset: u64, len: usize) -> Result<()> {
        let align = self.dio.offset as usize;
        let mut buf = AlignedBuf::with_align(len.next_multiple_of(align), self.dio.memory as usize);
        buf.as_mut_slice().fill(0xa5);
        self.file
            .write_all_at(buf.as_slice(), offset - offset % align as u64)?;
        Ok(())
    }
}

fn random_u32() -> u32 {
    let mut v = 0u32;
    // SAFETY: getrandom writes at most 4 bytes into v.
    let n = unsafe { libc::getrandom((&mut v as *mut u32).cast(), 4, 0) };
    if n != 4 {
        // No entropy (very early boot): time and pid still differ between fills.
        let t = crate::measure::now_ns();
        v = (t ^ (t >> 32) ^ u64::from(std::process::id())) as u32;
    }
    v
}

fn block_size(f: &File) -> std::io::Result<u64> {
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    let mut size = 0u64;
    // SAFETY: BLKGETSIZE64 writes one u64.
    unsafe { blkgetsize64(f.as_raw_fd(), &mut size) }.map_err(std::io::Error::from)?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bs_that_does_not_suit_the_target_s_dio_alignment_is_refused_with_it() {
        let t = Target::in_memory(&Workload::default(), &|| false).unwrap();
        let a = u64::from(t.dio.offset);
        assert!(a.is_power_of_two() && a >= 512, "{:?}", t.dio);
        t.check_alignment(a).unwrap();
        t.check_alignment(8 * a).unwrap();
        let e = t.check_alignment(a + 512 / 2).unwrap_err().to_string();
        assert!(
            e.contains(&format!("multiple of {a} bytes")) && e.contains(t.dio.source),
            "{e}"
        );
    }
}
