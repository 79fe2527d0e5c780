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

pub const JOURNAL_DIR: &str = "/run/thpbench";

/// One change to the machine, with what is needed to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A sysfs/procfs knob (THP, mTHP, nr_hugepages) and the value to write back.
    Knob { path: PathBuf, old: String },
    /// A swap area enabled.
    Swap { path: PathBuf },
    /// A zram device made through hot_add; the id is None in the instant between the
    /// record and the kernel's answer.
    Zram { id: Option<u32> },
    /// A file made (a data file, a swap file).
    File { path: PathBuf },
    /// A memory cgroup made (the process returns to `parent`).
    Cgroup { path: PathBuf, parent: PathBuf },
    /// A filesystem mounted.
    Mount { path: PathBuf },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Knob { path, old } => write!(f, "{} changed (was `{old}`)", path.display()),
            Change::Swap { path } => write!(f, "swap on {}", path.display()),
            Change::Zram { id: Some(id) } => write!(f, "zram device /dev/zram{id}"),
            Change::Zram { id: None } => write!(f, "a zram device (number not yet known)"),
            Change::File { path } => write!(f, "file {}", path.display()),
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

fn ensure_dir() -> std::io::Result<()> {
    std::fs::create_dir_all(JOURNAL_DIR)?;
    std::fs::set_permissions(
        JOURNAL_DIR,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
}

/// Writes `text` to `path` durably: a temporary file, fsync, rename, fsync of the dir.
fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(JOURNAL_DIR)?.sync_all()
}

/// Records `change` before it is made. Fails (and the change must not be made) when the
/// journal cannot be written as root.
pub fn record(change: Change) -> Result<Entry> {
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

    /// Replaces the recorded change (a zram device's id once the kernel gave it).
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

/// Every record in the journal, oldest first.
pub fn records() -> Vec<Record> {
    let mut v: Vec<Record> = std::fs::read_dir(JOURNAL_DIR)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| {
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    let mut r: Record = serde_json::from_str(&text).ok()?;
                    r.file = e.path();
                    Some(r)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|r| (r.start_time, r.pid, r.seq));
    v
}

fn owner_alive(r: &Record) -> bool {
    start_time(r.pid).is_some_and(|t| t == r.start_time)
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

/// Undoes what dead runs left, newest change first; returns what was done and what
/// could not be undone (those stay journaled).
pub fn cleanup() -> (Vec<String>, Vec<String>) {
    let (mut undone, mut failed) = (Vec::new(), Vec::new());
    // Temporary files of records that never made it: their changes were never made.
    if let Ok(d) = std::fs::read_dir(JOURNAL_DIR) {
        for e in d.flatten() {
            let p = e.path();
            let owner: Option<u32> = p
                .file_name()
                .and_then(|n| n.to_str()?.split('-').next()?.parse().ok());
            if p.extension().is_some_and(|x| x == "tmp")
                && owner.is_some_and(|o| start_time(o).is_none())
            {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    for r in leftovers().into_iter().rev() {
        match undo(&r.change) {
            Ok(what) => {
                undone.push(format!("pid {}: {what}", r.pid));
                let _ = std::fs::remove_file(&r.file);
            }
            Err(why) => failed.push(format!("pid {}: {}: {why}", r.pid, r.change)),
        }
    }
    (undone, failed)
}

/// Undoes one change of a dead process; says what it did.
fn undo(change: &Change) -> Result<String, String> {
    let text = |e: std::io::Error| super::errno_text(&e);
    match change {
        Change::Knob { path, old } => super::write_knob(path, old)
            .map(|()| format!("restored {} to `{old}`", path.display()))
            .map_err(text),
        Change::Swap { path } => {
            let active = super::swap::active_swaps()
                .iter()
                .any(|s| Path::new(&s.name) == path);
            if !active {
                return Ok(format!("swap on {} was already off", path.display()));
            }
            super::swap::swap_off(path)
                .map(|()| format!("swapoff {}", path.display()))
                .map_err(text)
        }
        Change::Zram { id: Some(id) } => {
            if !Path::new(&format!("/sys/block/zram{id}")).exists() {
                return Ok(format!("/dev/zram{id} was already gone"));
            }
            super::zram::reset_and_remove(*id)
                .map(|()| format!("reset and removed /dev/zram{id}"))
                .map_err(text)
        }
        Change::Zram { id: None } => Err("killed between hot_add and recording the device number: compare /sys/block/zram* with what you expect and remove the extra one (echo 0 > .../reset; echo N > /sys/class/zram-control/hot_remove)".into()),
        Change::File { path } => match std::fs::remove_file(path) {
            Ok(()) => Ok(format!("removed {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(format!("{} was already gone", path.display()))
            }
            Err(e) => Err(text(e)),
        },
        Change::Cgroup { path, .. } => match std::fs::remove_dir(path) {
            Ok(()) => Ok(format!("removed memory cgroup {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(format!("{} was already gone", path.display()))
            }
            Err(e) => Err(format!("{} (does it still hold processes?)", text(e))),
        },
        Change::Mount { path } => {
            let p = path.to_string_lossy();
            if !super::mounts::is_mounted(&p) {
                return Ok(format!("{p} was already unmounted"));
            }
            nix::mount::umount2(path.as_path(), nix::mount::MntFlags::MNT_DETACH)
                .map(|()| format!("unmounted {p}"))
                .map_err(|e| e.to_string())
        }
    }
}

/// `thpbench probe`'s row: leftovers of dead runs, if any.
pub fn probe_row() -> crate::system::probe::ProbeRow {
    let left = describe(&leftovers());
    crate::system::probe::ProbeRow {
        what: "leftovers of dead runs".into(),
        available: left.is_empty(),
        value: if left.is_empty() {
            "none".into()
        } else {
            left.join("; ")
        },
        reason: if left.is_empty() {
            String::new()
        } else {
            format!("a killed or crashed thpbench run left these changes (journal in {JOURNAL_DIR}); runs refuse to start over them")
        },
        remedy: if left.is_empty() {
            String::new()
        } else {
            "thpbench cleanup (as root)".into()
        },
    }
}

/// `thpbench cleanup`: undoes what dead runs left and says what it undid. Exit 1 when
/// something could not be undone.
pub fn command() -> Result<i32> {
    crate::signals::install();
    let left = leftovers();
    if left.is_empty() {
        crate::output::to_stdout("nothing to clean up: no dead run left changes on this machine\n");
        return Ok(0);
    }
    if !super::is_root() {
        bail!(
            "undoing what dead runs left needs root:\n  {}\nrun `thpbench cleanup` as root",
            describe(&left).join("\n  ")
        );
    }
    let _lock = MachineLock::acquire(true)?;
    let (undone, failed) = cleanup();
    for u in &undone {
        crate::output::to_stdout(&format!("undone: {u}\n"));
    }
    for f in &failed {
        crate::output::warn(&format!("not undone: {f}"));
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// The machine-wide lock of runs that change shared state, held until dropped (or the
/// process dies: flock locks go with their file descriptor).
#[derive(Debug)]
pub struct MachineLock {
    _held: std::fs::File,
}

pub fn lock_path() -> PathBuf {
    Path::new(JOURNAL_DIR).join("lock")
}

impl MachineLock {
    /// Takes the lock; while another run holds it, waits (saying who holds it) or, with
    /// `wait` false, refuses. A signal while waiting is an interruption.
    pub fn acquire(wait: bool) -> Result<MachineLock> {
        let path = lock_path();
        ensure_dir().with_context(|| format!("creating {JOURNAL_DIR} (needs root)"))?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the run lock {}", path.display()))?;
        let try_lock = |f: &std::fs::File| {
            // SAFETY: flock on an open descriptor.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
        };
        let mut said = false;
        while !try_lock(&file) {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            if !wait {
                bail!(
                    "another thpbench run (pid {holder}) holds {} and is changing this machine; wait for it, or drop --no-wait to queue behind it",
                    path.display()
                );
            }
            if !said {
                crate::output::info(&format!(
                    "waiting for thpbench run pid {holder}, which holds {} (pass --no-wait to refuse instead)",
                    path.display()
                ));
                said = true;
            }
            if crate::signals::received() {
                bail!(crate::run::Interrupted);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        file.set_len(0)?;
        std::io::Seek::rewind(&mut file)?;
        write!(file, "{}", std::process::id())?;
        Ok(MachineLock { _held: file })
    }
}

/// Before a run that changes the machine: refuses while a dead run's changes are still in
/// place, or undoes them first when asked.
pub fn check_leftovers(cleanup_first: bool) -> Result<()> {
    let left = leftovers();
    if left.is_empty() {
        return Ok(());
    }
    if !cleanup_first {
        bail!(
            "a thpbench run that is gone left changes on this machine:\n  {}\nundo them with `thpbench cleanup` (or pass --cleanup-first), then run again",
            describe(&left).join("\n  ")
        );
    }
    let (undone, failed) = cleanup();
    for u in &undone {
        crate::output::info(&format!("cleanup: {u}"));
    }
    if !failed.is_empty() {
        bail!(
            "could not undo what a gone run left:\n  {}",
            failed.join("\n  ")
        );
    }
    Ok(())
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
