//! Recovery from the journal: what dead runs left, recognised as theirs before it is
//! undone. A zram number, a path or a knob can belong to someone else by the time
//! `cleanup` runs (hot_add reuses numbers; a file can be replaced), so each kind of
//! change is first checked against the identity the journal recorded; anything that no
//! longer matches is left alone, and said.

use std::path::Path;

use anyhow::{bail, Result};

use super::journal::{self, Backing, Change, Unreadable, ZramMark};

/// What undoing one change came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// Undone (or found already undone): the entry goes.
    Done(String),
    /// The thing is no longer the one thpbench made: not touched; the entry goes.
    LeftAlone(String),
    /// Could not be undone: the entry stays for another try.
    Failed(String),
}

/// What a cleanup did, entry by entry.
#[derive(Debug, Default)]
pub struct Report {
    pub undone: Vec<String>,
    pub left_alone: Vec<String>,
    pub failed: Vec<String>,
}

/// Journal files of dead runs that do not parse.
pub fn unreadable_leftovers() -> Vec<Unreadable> {
    journal::read()
        .unreadable
        .into_iter()
        .filter(|u| journal::owner_of_file(&u.file).is_none_or(|p| !journal::process_alive(p)))
        .collect()
}

/// Undoes what dead runs left, newest change first.
pub fn cleanup() -> Report {
    let mut report = Report::default();
    // Temporary files of records that never made it: their changes were never made.
    if let Ok(d) = std::fs::read_dir(journal::JOURNAL_DIR) {
        for e in d.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "tmp")
                && journal::owner_of_file(&p).is_some_and(|o| !journal::process_alive(o))
            {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    for r in journal::leftovers().into_iter().rev() {
        match undo(&r.change) {
            Undo::Done(what) => {
                report.undone.push(format!("pid {}: {what}", r.pid));
                let _ = std::fs::remove_file(r.file());
            }
            Undo::LeftAlone(why) => {
                report
                    .left_alone
                    .push(format!("pid {}: {}: {why}", r.pid, r.change));
                let _ = std::fs::remove_file(r.file());
            }
            Undo::Failed(why) => report
                .failed
                .push(format!("pid {}: {}: {why}", r.pid, r.change)),
        }
    }
    report
        .failed
        .extend(unreadable_leftovers().iter().map(ToString::to_string));
    report
}

/// The zram device `mark` names, if it still is that device (same diskseq and size).
fn zram_still_ours(mark: &ZramMark) -> Result<(), String> {
    let dir = format!("/sys/block/zram{}", mark.id);
    let read = |f: &str| {
        super::read_trimmed(format!("{dir}/{f}"))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
    };
    if !Path::new(&dir).exists() {
        return Err(format!("/dev/zram{} is gone", mark.id));
    }
    // diskseq 0: made on a kernel without diskseq; only the size can tell.
    let seq = read("diskseq").unwrap_or(0);
    match read("disksize") {
        Some(size) if seq == mark.diskseq && size == mark.disksize => Ok(()),
        size => Err(format!(
            "/dev/zram{} is another device now (diskseq {seq}, size {}; thpbench's had diskseq {}, size {})",
            mark.id,
            size.map_or("unknown".into(), |s| s.to_string()),
            mark.diskseq,
            mark.disksize
        )),
    }
}

/// Undoes one change of a dead process, once it is recognised as thpbench's.
pub fn undo(change: &Change) -> Undo {
    let text = |e: std::io::Error| super::errno_text(&e);
    match change {
        Change::Knob { path, old, new } => {
            if let Some(new) = new {
                match super::read_selected(path) {
                    Ok(now) if &now != new => {
                        return Undo::LeftAlone(format!(
                            "it holds `{now}` now, not the `{new}` thpbench set; someone changed it since"
                        ))
                    }
                    _ => {}
                }
            }
            match super::write_knob(path, old) {
                Ok(()) => Undo::Done(format!("restored {} to `{old}`", path.display())),
                Err(e) => Undo::Failed(text(e)),
            }
        }
        Change::Swap { path, backing } => undo_swap(path, backing.as_ref()),
        Change::Zram { id: None, .. } | Change::Zram { mark: None, .. } => Undo::LeftAlone(
            "killed before the device was set up and marked, so which device it was cannot be told: compare /sys/block/zram* with what you expect and remove the extra one (echo 1 > .../reset; echo N > /sys/class/zram-control/hot_remove)".into(),
        ),
        Change::Zram {
            id: Some(id),
            mark: Some(mark),
        } => {
            if !Path::new(&format!("/sys/block/zram{id}")).exists() {
                return Undo::Done(format!("/dev/zram{id} was already gone"));
            }
            if let Err(why) = zram_still_ours(mark) {
                return Undo::LeftAlone(why);
            }
            match super::zram::reset_and_remove(*id) {
                Ok(()) => Undo::Done(format!("reset and removed /dev/zram{id}")),
                Err(e) => Undo::Failed(text(e)),
            }
        }
        Change::File { path, id } => {
            let Some(id) = id else {
                return match std::fs::symlink_metadata(path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Undo::Done(format!("{} was never made", path.display()))
                    }
                    _ => Undo::LeftAlone(format!(
                        "killed before the file's identity was recorded, so whether {} is thpbench's cannot be told; remove it by hand if it is",
                        path.display()
                    )),
                };
            };
            let (dir, name) = match crate::safe_fs::Dir::of_file(path) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Undo::Done(format!("{} was already gone", path.display()))
                }
                Err(e) => return Undo::Failed(text(e)),
            };
            match dir.unlink_if(&name, *id) {
                Ok(true) => Undo::Done(format!("removed {}", path.display())),
                Ok(false) => match dir.lstat(&name) {
                    Err(_) => Undo::Done(format!("{} was already gone", path.display())),
                    Ok(_) => Undo::LeftAlone(format!(
                        "{} is another file now (not device {} inode {})",
                        path.display(),
                        id.dev,
                        id.ino
                    )),
                },
                Err(e) => Undo::Failed(text(e)),
            }
        }
        Change::Cgroup { path, .. } => match std::fs::remove_dir(path) {
            Ok(()) => Undo::Done(format!("removed memory cgroup {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Undo::Done(format!("{} was already gone", path.display()))
            }
            Err(e) => Undo::Failed(format!("{} (does it still hold processes?)", text(e))),
        },
        Change::Mount { path } => {
            let p = path.to_string_lossy();
            if !super::mounts::is_mounted(&p) {
                return Undo::Done(format!("{p} was already unmounted"));
            }
            match nix::mount::umount2(path.as_path(), nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => Undo::Done(format!("unmounted {p}")),
                Err(e) => Undo::Failed(e.to_string()),
            }
        }
    }
}

/// Swaps off `path` only if the active swap there is still what thpbench enabled.
fn undo_swap(path: &Path, backing: Option<&Backing>) -> Undo {
    let active = super::swap::active_swaps()
        .iter()
        .any(|s| Path::new(&s.name) == path);
    if !active {
        return Undo::Done(format!("swap on {} was already off", path.display()));
    }
    let ours = match backing {
        None => Err("the journal entry predates identity records, so whether this swap is thpbench's cannot be told; swapoff it by hand if it is".to_string()),
        Some(Backing::Zram(mark)) => zram_still_ours(mark),
        Some(Backing::File(id)) => match std::fs::symlink_metadata(path) {
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                if m.dev() == id.dev && m.ino() == id.ino {
                    Ok(())
                } else {
                    Err(format!(
                        "{} is another file now (not device {} inode {})",
                        path.display(),
                        id.dev,
                        id.ino
                    ))
                }
            }
            Err(e) => Err(super::errno_text(&e)),
        },
    };
    if let Err(why) = ours {
        return Undo::LeftAlone(why);
    }
    match super::swap::swap_off(path) {
        Ok(()) => Undo::Done(format!("swapoff {}", path.display())),
        Err(e) => Undo::Failed(super::errno_text(&e)),
    }
}

/// Before a run that changes the machine: refuses while a dead run's changes are still in
/// place (or its journal entries cannot be read), or undoes them first when asked.
pub fn check_leftovers(cleanup_first: bool) -> Result<()> {
    let left = journal::leftovers();
    let unreadable = unreadable_leftovers();
    if left.is_empty() && unreadable.is_empty() {
        return Ok(());
    }
    if !cleanup_first || !unreadable.is_empty() {
        let mut lines = journal::describe(&left);
        lines.extend(unreadable.iter().map(ToString::to_string));
        bail!(
            "a thpbench run that is gone left changes on this machine:\n  {}\nundo them with `thpbench cleanup` (or pass --cleanup-first), then run again",
            lines.join("\n  ")
        );
    }
    let report = cleanup();
    for u in &report.undone {
        crate::output::info(&format!("cleanup: {u}"));
    }
    for l in &report.left_alone {
        crate::output::warn(&format!("cleanup left alone: {l}"));
    }
    if !report.failed.is_empty() {
        bail!(
            "could not undo what a gone run left:\n  {}",
            report.failed.join("\n  ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_knob_someone_changed_since_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let knob = dir.path().join("enabled");
        std::fs::write(&knob, "always [madvise] never\n").unwrap();
        let change = Change::Knob {
            path: knob.clone(),
            old: "never".into(),
            new: Some("always".into()),
        };
        assert!(matches!(undo(&change), Undo::LeftAlone(w) if w.contains("`madvise` now")));
        assert_eq!(
            std::fs::read_to_string(&knob).unwrap(),
            "always [madvise] never\n"
        );
        std::fs::write(&knob, "[always] madvise never\n").unwrap();
        assert!(matches!(undo(&change), Undo::Done(_)));
        // write_knob writes in place, as sysfs wants (no truncation in a plain file).
        assert!(std::fs::read_to_string(&knob).unwrap().starts_with("never"));
    }

    #[test]
    fn a_file_replaced_since_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data");
        std::fs::write(&p, b"ours").unwrap();
        let id = crate::safe_fs::FileId::of_file(&std::fs::File::open(&p).unwrap()).unwrap();
        // The old inode stays alive under another name, so the new file cannot reuse
        // its number.
        std::fs::hard_link(&p, dir.path().join("kept")).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, b"someone else's").unwrap();
        let change = Change::File {
            path: p.clone(),
            id: Some(id),
        };
        let new_id = crate::safe_fs::FileId::of_file(&std::fs::File::open(&p).unwrap()).unwrap();
        assert_ne!(new_id, id);
        assert!(matches!(undo(&change), Undo::LeftAlone(_)));
        assert_eq!(std::fs::read(&p).unwrap(), b"someone else's");
        let change = Change::File {
            path: p.clone(),
            id: Some(new_id),
        };
        assert!(matches!(undo(&change), Undo::Done(_)));
        assert!(!p.exists());
    }

    #[test]
    fn a_zram_entry_without_its_mark_is_never_undone_by_number() {
        let change = Change::Zram {
            id: Some(0),
            mark: None,
        };
        assert!(matches!(undo(&change), Undo::LeftAlone(_)));
    }
}
