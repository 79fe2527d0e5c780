//! The journal of machine changes, so that nothing is left behind even after SIGKILL, an
//! OOM kill or a crash: every change (a knob with its old value, a swap enabled, a zram
//! device, a file, a cgroup, a mount) is written to its own file under /run/thpbench and
//! synced *before* it is made, named by the owning process, and removed once undone.
//! `thpbench cleanup` undoes what dead processes left; `run` refuses to start over them.
//!
//! Also the machine-wide lock that serializes runs changing shared state, so that two
//! runs never restore each other's values or disturb each other's measurements.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use crate::safe_fs::FileId;

pub const JOURNAL_DIR: &str = "/run/thpbench";

/// One change to the machine, with what is needed to undo it and to recognise, before
/// undoing it, that the thing is still the one thpbench made (a zram number or a path
/// can be reused by someone else after a crash). Identity fields are optional so that
/// entries from older versions still load; without them, cleanup leaves the thing alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A sysfs/procfs knob (THP, mTHP, nr_hugepages), the value to write back, and the
    /// value thpbench set (restored only while the knob still holds it).
    Knob {
        path: PathBuf,
        old: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new: Option<String>,
    },
    /// A swap area enabled, with the identity of what backs it.
    Swap {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backing: Option<Backing>,
    },
    /// A zram device made through hot_add; the id is None in the instant between the
    /// record and the kernel's answer, the mark None until the device is set up.
    Zram {
        id: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mark: Option<ZramMark>,
    },
    /// A file made (a data file, a swap file); its identity once it exists.
    File {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<FileId>,
    },
    /// A memory cgroup made (the process returns to `parent`).
    Cgroup { path: PathBuf, parent: PathBuf },
    /// A filesystem mounted.
    Mount { path: PathBuf },
}

/// What a swap area thpbench enabled lives on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum Backing {
    File(FileId),
    Zram(ZramMark),
}

/// What makes a zram device the one thpbench made: the kernel's disk sequence number
/// (/sys/block/zramN/diskseq, new for every disk made since boot, so a number reused by
/// hot_add has another) and the size it was given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZramMark {
    pub id: u32,
    pub diskseq: u64,
    pub disksize: u64,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Knob { path, old, .. } => {
                write!(f, "{} changed (was `{old}`)", path.display())
            }
            Change::Swap { path, .. } => write!(f, "swap on {}", path.display()),
            Change::Zram { id: Some(id), .. } => write!(f, "zram device /dev/zram{id}"),
            Change::Zram { id: None, .. } => write!(f, "a zram device (number not yet known)"),
            Change::File { path, .. } => write!(f, "file {}", path.display()),
            Change::Cgroup { path, .. } => write!(f, "memory cgroup {}", path.display()),
            Change::Mount { path } => write!(f, "mount on {}", path.display()),
        }
    }
}

/// A journal file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub pid: u32,
    /// The owner's start time (/proc/PID/stat field 22), so a reused pid is not mistaken
    /// for the owner.
    pub start_time: u64,
    pub seq: u64,
    pub change: Change,
    #[serde(skip)]
    file: PathBuf,
}

/// A change recorded in the journal; `done` once it is undone.
#[derive(Debug)]
pub struct Entry {
    /// None where nothing was journaled: not root, so the change itself will be refused.
    file: Option<PathBuf>,
    record: Option<Record>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The journal directory, root's alone (0700): no other user can read what runs changed,
/// plant entries, or open the lock file. Made if missing; one that exists with another
/// owner, as a symlink, or open to others is fixed or refused.
fn ensure_dir() -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(JOURNAL_DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(JOURNAL_DIR)?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(std::io::Error::other(format!(
            "{JOURNAL_DIR} is not a directory that root owns (uid {}, {}); remove it as root",
            meta.uid(),
            if meta.is_dir() {
                "a directory"
            } else {
                "not a directory"
            }
        )));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(JOURNAL_DIR, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

use std::os::unix::fs::DirBuilderExt;

/// Writes `text` to `path` durably: a temporary file, fsync, rename, fsync of the dir.
fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(JOURNAL_DIR)?.sync_all()
}

/// While set, a change refuses to be recorded, so it is never made: the mock run
/// measures the harness and must leave the machine as it is, whoever runs it.
static FORBIDDEN: std::sync::Mutex<Option<&'static str>> = std::sync::Mutex::new(None);

/// While alive, every machine change is refused, saying `why`.
#[derive(Debug)]
pub struct ChangesForbidden(());

impl ChangesForbidden {
    pub fn new(why: &'static str) -> ChangesForbidden {
        *FORBIDDEN.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        ChangesForbidden(())
    }
}

impl Drop for ChangesForbidden {
    fn drop(&mut self) {
        *FORBIDDEN.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Records `change` before it is made. Fails (and the change must not be made) when the
/// journal cannot be written as root, or changes are forbidden (the mock run).
pub fn record(change: Change) -> Result<Entry> {
    if let Some(why) = *FORBIDDEN.lock().unwrap_or_else(|e| e.into_inner()) {
        bail!("{change}: {why}");
    }
    if !super::is_root() {
        return Ok(Entry {
            file: None,
            record: None,
        });
    }
    let pid = std::process::id();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let file = PathBuf::from(format!("{JOURNAL_DIR}/{pid}-{seq:08}.json"));
    let record = Record {
        pid,
        start_time: start_time(pid).unwrap_or(0),
        seq,
        change,
        file: file.clone(),
    };
    let mut entry = Entry {
        file: None,
        record: Some(record),
    };
    ensure_dir()
        .and_then(|()| write_durably(&file, &entry.json()))
        .with_context(|| {
            format!(
                "recording a change in the journal {} (so that `thpbench cleanup` can undo it after a crash); the change was not made",
                file.display()
            )
        })?;
    entry.file = Some(file);
    Ok(entry)
}

impl Entry {
    fn json(&self) -> String {
        serde_json::to_string_pretty(&self.record).unwrap_or_default()
    }

    /// Replaces the recorded change (a zram device's id once the kernel gave it, a
    /// file's identity once it exists).
    pub fn update(&mut self, change: Change) -> Result<()> {
        if let (Some(file), Some(record)) = (&self.file, &mut self.record) {
            record.change = change;
            let text = serde_json::to_string_pretty(record)?;
            write_durably(file, &text)
                .with_context(|| format!("updating the journal {}", file.display()))?;
        }
        Ok(())
    }

    /// The change is undone (or never happened): forget it.
    pub fn done(self) {
        if let Some(file) = &self.file {
            if let Err(e) = std::fs::remove_file(file) {
                crate::output::warn(&format!(
                    "could not remove the journal entry {}: {e}",
                    file.display()
                ));
            }
        }
    }
}

/// A journal file that does not parse (truncated by a crash mid-write, edited by hand):
/// never skipped in silence, since what it recorded may still be in place.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub file: PathBuf,
    pub why: String,
    /// What the file holds, for a person to act on.
    pub text: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "journal entry {} cannot be read ({}); it holds {:?}: undo what it names by hand, then remove it",
            self.file.display(),
            self.why,
            self.text.chars().take(200).collect::<String>()
        )
    }
}

/// What the journal holds: the records, oldest first, and the files that do not parse.
#[derive(Debug, Default)]
pub struct Journal {
    pub records: Vec<Record>,
    pub unreadable: Vec<Unreadable>,
}

/// Reads the journal. Only `.json` entries count; `.tmp` files are records that were
/// never completed, whose changes were never made.
pub fn read() -> Journal {
    let mut j = Journal::default();
    let Ok(dir) = std::fs::read_dir(JOURNAL_DIR) else {
        return j;
    };
    for e in dir.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(err) => {
                j.unreadable.push(Unreadable {
                    file: path,
                    why: super::errno_text(&err),
                    text: String::new(),
                });
                continue;
            }
        };
        match serde_json::from_str::<Record>(&text) {
            Ok(mut r) => {
                r.file = path;
                j.records.push(r);
            }
            Err(err) => j.unreadable.push(Unreadable {
                file: path,
                why: err.to_string(),
                text,
            }),
        }
    }
    j.records.sort_by_key(|r| (r.start_time, r.pid, r.seq));
    j.unreadable.sort_by(|a, b| a.file.cmp(&b.file));
    j
}

/// Every readable record in the journal, oldest first.
pub fn records() -> Vec<Record> {
    read().records
}

impl Record {
    pub fn file(&self) -> &Path {
        &self.file
    }
}

pub(crate) fn owner_alive(r: &Record) -> bool {
    start_time(r.pid).is_some_and(|t| t == r.start_time)
}

/// The pid in a journal file's name (`PID-SEQ.json` or `.tmp`).
pub(crate) fn owner_of_file(p: &Path) -> Option<u32> {
    p.file_name()
        .and_then(|n| n.to_str()?.split('-').next()?.parse().ok())
}

pub(crate) fn process_alive(pid: u32) -> bool {
    start_time(pid).is_some()
}

/// Changes whose owner is gone: left behind by a killed or crashed run.
pub fn leftovers() -> Vec<Record> {
    records().into_iter().filter(|r| !owner_alive(r)).collect()
}

/// One line per leftover: `pid 123: swap on /dev/zram1`.
pub fn describe(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("pid {} (gone): {}", r.pid, r.change))
        .collect()
}

/// The machine-wide lock of runs that change shared state, held until dropped (or the
/// process dies: flock locks go with their file descriptor). The lock file is root's
/// alone (0600 in a 0700 directory): no other user can open it, so no one else can hold it.
#[derive(Debug)]
pub struct MachineLock {
    _held: std::fs::File,
}

pub fn lock_path() -> PathBuf {
    Path::new(JOURNAL_DIR).join("lock")
}

/// Who holds the flock on the file `ino` (from /proc/locks), and what that process is.
fn lock_holder(dev_ino: (u64, u64)) -> Option<String> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = holder_pid(&locks, dev_ino)?;
    let comm = super::read_trimmed(format!("/proc/{pid}/comm")).unwrap_or_default();
    Some(if comm == "thpbench" {
        format!("thpbench run pid {pid}")
    } else {
        format!("pid {pid} ({comm}), which is not thpbench")
    })
}

/// The pid of the FLOCK WRITE lock on inode `ino` in /proc/locks text
/// (`1: FLOCK  ADVISORY  WRITE 12252 fe:00:5668866 0 EOF`).
pub fn holder_pid(locks: &str, (_, ino): (u64, u64)) -> Option<u32> {
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let at = f.iter().position(|w| *w == "FLOCK")?;
        let pid = f.get(at + 3)?.parse().ok()?;
        let file_ino: u64 = f.get(at + 4)?.rsplit(':').next()?.parse().ok()?;
        (file_ino == ino).then_some(pid)
    })
}

impl MachineLock {
    /// Takes the lock; while another run holds it, waits (saying who holds it) or, with
    /// `wait` false, refuses. A signal while waiting is an interruption.
    pub fn acquire(wait: bool) -> Result<MachineLock> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
        let path = lock_path();
        ensure_dir().with_context(|| format!("creating {JOURNAL_DIR} (needs root)"))?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("opening the run lock {}", path.display()))?;
        // A lock file from an older version was readable by all: close it to others.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let meta = file.metadata()?;
        let try_lock = |f: &std::fs::File| {
            // SAFETY: flock on an open descriptor.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
        };
        let mut said = false;
        while !try_lock(&file) {
            let holder = lock_holder((meta.dev(), meta.ino())).unwrap_or_else(|| {
                format!(
                    "pid {}",
                    std::fs::read_to_string(&path).unwrap_or_default().trim()
                )
            });
            if !wait {
                bail!(
                    "{holder} holds {} (the lock of runs that change this machine); wait for it, or drop --no-wait to queue behind it",
                    path.display()
                );
            }
            if !said {
                crate::output::info(&format!(
                    "waiting for {holder}, which holds {} (pass --no-wait to refuse instead)",
                    path.display()
                ));
                said = true;
            }
            if crate::signals::received() {
                bail!(crate::signals::Interrupted);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        file.set_len(0)?;
        std::io::Seek::rewind(&mut file)?;
        write!(file, "{}", std::process::id())?;
        Ok(MachineLock { _held: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_describe_the_change() {
        let r = Record {
            pid: 7,
            start_time: 1,
            seq: 2,
            change: Change::Knob {
                path: "/proc/sys/vm/nr_hugepages".into(),
                old: "0".into(),
                new: Some("2".into()),
            },
            file: PathBuf::new(),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"kind\":\"knob\""), "{text}");
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.change, r.change);
        assert_eq!(
            describe(&[back]),
            ["pid 7 (gone): /proc/sys/vm/nr_hugepages changed (was `0`)"]
        );
    }

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        let me = std::process::id();
        let mut r = Record {
            pid: me,
            start_time: start_time(me).unwrap(),
            seq: 0,
            change: Change::Mount { path: "/x".into() },
            file: PathBuf::new(),
        };
        assert!(owner_alive(&r));
        r.start_time += 1;
        assert!(!owner_alive(&r));
    }
}
