//! Files made in directories other users may write, made so that no one can redirect
//! them: the directory is opened once and judged by what it is (owner, mode); every file
//! is created in it with O_CREAT|O_EXCL|O_NOFOLLOW relative to that descriptor, under a
//! random name, and put in place with renameat/linkat, which never follow a symlink at
//! the final name. As root, a symlink planted at a predictable name would otherwise make
//! thpbench truncate or replace the file it points to.
//!
//! A leaf: it imports nothing of the crate.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};

/// A directory opened once; every name below is looked up relative to it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    pub path: PathBuf,
}

/// Why a directory is not safe to create files in: another user owns it, or may write
/// into it and it is not sticky (so they could rename or replace what we make there).
pub fn untrusted_reason(st: &FileStat, me: u32) -> Option<String> {
    let mode = st.st_mode;
    let sticky = mode & libc::S_ISVTX != 0;
    if st.st_uid != me && st.st_uid != 0 {
        return Some(format!(
            "it belongs to uid {}, who could replace any file thpbench makes there",
            st.st_uid
        ));
    }
    let others_write = mode & 0o002 != 0 || (mode & 0o020 != 0 && st.st_gid != 0);
    if others_write && !sticky {
        return Some(format!(
            "it is writable by other users (mode {:o}) and not sticky, so they could rename or replace what thpbench makes there",
            mode & 0o7777
        ));
    }
    None
}

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from(e)
}

/// A name for a temporary file that no one can predict.
fn random_name(prefix: &str) -> OsString {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most 8 bytes into bytes.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), 8, 0) };
    if n != 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (t ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    OsString::from(format!(".{prefix}.{}.{hex}", std::process::id()))
}

/// The directory part of `file` (`.` for a bare name) and its name.
fn split(file: &Path) -> std::io::Result<(&Path, OsString)> {
    let name = file.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} names no file", file.display()),
        )
    })?;
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((parent, name.to_os_string()))
}

impl Dir {
    /// Opens `path` as a directory (following the symlinks the user named, once),
    /// without judging who may write it.
    fn open_unchecked(path: &Path) -> std::io::Result<Dir> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        Ok(Dir {
            // SAFETY: fd was just opened and is owned by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    /// Opens `path` as a directory and refuses one that another user owns or may write
    /// into without the sticky bit.
    pub fn open(path: &Path) -> std::io::Result<Dir> {
        let dir = Dir::open_unchecked(path)?;
        let st = nix::sys::stat::fstat(dir.fd.as_raw_fd()).map_err(io)?;
        if let Some(why) = untrusted_reason(&st, nix::unistd::geteuid().as_raw()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "thpbench does not make files in {}: {why}; use a directory of your own",
                    dir.path.display()
                ),
            ));
        }
        Ok(dir)
    }

    /// Opens (and makes, if missing) the directory that holds `file`, judged as `open`.
    pub fn of_file(file: &Path) -> std::io::Result<(Dir, OsString)> {
        let (parent, name) = split(file)?;
        std::fs::create_dir_all(parent)?;
        Ok((Dir::open(parent)?, name))
    }

    /// The directory that holds `file`, not judged: for reading an existing file, which
    /// nothing planted there can turn into a write.
    pub fn of_file_unchecked(file: &Path) -> std::io::Result<(Dir, OsString)> {
        let (parent, name) = split(file)?;
        Ok((Dir::open_unchecked(parent)?, name))
    }

    pub fn raw(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Creates `name`, which must not exist (not even as a symlink), with `mode`.
    pub fn create_new(&self, name: &OsStr, mode: u32, flags: OFlag) -> std::io::Result<File> {
        let fd = nix::fcntl::openat(
            Some(self.raw()),
            name,
            OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC
                | OFlag::O_RDWR
                | flags,
            Mode::from_bits_truncate(mode),
        )
        .map_err(io)?;
        // SAFETY: fd was just opened and is owned by nothing else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Creates a file under a random name no one else can have planted.
    pub fn create_temp(&self, prefix: &str, mode: u32) -> std::io::Result<(OsString, File)> {
        loop {
            let name = random_name(prefix);
            match self.create_new(&name, mode, OFlag::empty()) {
                Ok(f) => return Ok((name, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens an existing `name` without following a symlink there.
    pub fn open_existing(&self, name: &OsStr, flags: OFlag) -> std::io::Result<File> {
        let fd = nix::fcntl::openat(
            Some(self.raw()),
            name,
            OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | flags,
            Mode::empty(),
        )
        .map_err(io)?;
        // SAFETY: fd was just opened and is owned by nothing else.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// What `name` is, without following a symlink.
    pub fn lstat(&self, name: &OsStr) -> std::io::Result<FileStat> {
        nix::sys::stat::fstatat(Some(self.raw()), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)
    }

    /// Replaces whatever entry `to` is (a symlink is replaced, never followed).
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> std::io::Result<()> {
        nix::fcntl::renameat(Some(self.raw()), from, Some(self.raw()), to).map_err(io)
    }

    /// Gives the file `from` the second name `to`; AlreadyExists where `to` exists.
    pub fn link_new(&self, from: &OsStr, to: &OsStr) -> std::io::Result<()> {
        nix::unistd::linkat(
            Some(self.raw()),
            from,
            Some(self.raw()),
            to,
            AtFlags::empty(),
        )
        .map_err(io)
    }

    pub fn unlink(&self, name: &OsStr) -> std::io::Result<()> {
        nix::unistd::unlinkat(
            Some(self.raw()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(io)
    }

    /// Removes `name` only if it is still the file `ident` (device, inode).
    pub fn unlink_if(&self, name: &OsStr, ident: FileId) -> std::io::Result<bool> {
        match self.lstat(name) {
            Ok(st) if FileId::of(&st) == ident => self.unlink(name).map(|()| true),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn sync(&self) -> std::io::Result<()> {
        nix::unistd::fsync(self.raw()).map_err(io)
    }

    /// Writes `data` to a new temporary file, synced; returns its name. Removed again
    /// if writing fails.
    fn write_temp(&self, data: &[u8]) -> std::io::Result<OsString> {
        let (tmp, mut f) = self.create_temp("thpbench-tmp", 0o644)?;
        let written = f.write_all(data).and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = self.unlink(&tmp);
            return Err(e);
        }
        Ok(tmp)
    }
}

/// A file's identity: the device it lives on and its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(st: &FileStat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    pub fn of_file(f: &File) -> std::io::Result<FileId> {
        Ok(FileId::of(
            &nix::sys::stat::fstat(f.as_raw_fd()).map_err(io)?,
        ))
    }
}

/// Writes `data` to `path` atomically: a temporary file beside it under a random name,
/// fsync, rename over `path` (replacing a symlink there, never following it).
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let (dir, name) = Dir::of_file(path)?;
    let tmp = dir.write_temp(data)?;
    let renamed = dir.rename(&tmp, &name);
    if renamed.is_err() {
        let _ = dir.unlink(&tmp);
    }
    renamed?;
    dir.sync()
}

/// Writes `data` to `path` completely or not at all, and never over an existing entry
/// (file or symlink): AlreadyExists then.
pub fn write_new_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let (dir, name) = Dir::of_file(path)?;
    let tmp = dir.write_temp(data)?;
    let linked = dir.link_new(&tmp, &name);
    let _ = dir.unlink(&tmp);
    linked?;
    dir.sync()
}

/// Fails unless a file can be made in `dir` (made if missing) and the directory is safe
/// to make files in: checked before measuring, so that a read-only, full or untrusted
/// results directory costs no measurement.
pub fn check_writable_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let d = Dir::open(dir)?;
    let (name, mut f) = d.create_temp("thpbench-write-check", 0o600)?;
    let made = f.write_all(&[0u8; 4096]);
    drop(f);
    let _ = d.unlink(&name);
    made
}

/// A private directory (mode 0700, a name no one can predict) under the system's
/// temporary directory, removed with what it holds on drop.
#[derive(Debug)]
pub struct PrivateTempDir(PathBuf);

impl PrivateTempDir {
    pub fn new() -> std::io::Result<PrivateTempDir> {
        let template = std::env::temp_dir().join("thpbench.XXXXXX");
        nix::unistd::mkdtemp(&template)
            .map(PrivateTempDir)
            .map_err(io)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateTempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `name` as bytes, for messages.
pub fn display_name(name: &OsStr) -> String {
    String::from_utf8_lossy(name.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_symlink_at_the_final_name_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let out = dir.path().join("out.json");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_atomic(&out, b"result").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&out).unwrap(), b"result");
        assert!(!std::fs::symlink_metadata(&out).unwrap().is_symlink());
    }

    #[test]
    fn write_new_never_replaces_an_entry_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let out = dir.path().join("r.json");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        let e = write_new_atomic(&out, b"x").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let fresh = dir.path().join("new.json");
        write_new_atomic(&fresh, b"y").unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"y");
        // victim, r.json, new.json: no temporary left.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn directories_others_may_write_are_refused_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Dir::open(&open).unwrap_err();
        assert!(e.to_string().contains("writable by other users"), "{e}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(Dir::open(&open).is_ok());
    }

    #[test]
    fn ownership_decides_trust() {
        let mut st: FileStat = unsafe { std::mem::zeroed() };
        st.st_mode = libc::S_IFDIR | 0o755;
        st.st_uid = 1000;
        assert!(untrusted_reason(&st, 0).unwrap().contains("uid 1000"));
        assert!(untrusted_reason(&st, 1000).is_none());
        st.st_uid = 0;
        assert!(untrusted_reason(&st, 1000).is_none());
        st.st_mode = libc::S_IFDIR | 0o775;
        st.st_gid = 100;
        assert!(untrusted_reason(&st, 0).is_some());
        st.st_gid = 0;
        assert!(untrusted_reason(&st, 0).is_none());
    }
}
