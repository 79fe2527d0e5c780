//! A memory cgroup made for the run, so that a limit can force reclaim of the buffers
//! (a second road to swapping, besides MADV_PAGEOUT). cgroup v1 (memory controller at
//! /sys/fs/cgroup/memory) and v2 (unified hierarchy) are both handled. The group is made
//! under the caller's own memory cgroup, so the caller's limits still hold; the process
//! is moved in before its buffers are allocated, so they are charged there, and moved
//! back to where it came from and the group removed on drop.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The limit and usage knobs of one memory cgroup, in either hierarchy version. Cheap to
/// clone into a disturber thread; the group itself is owned by [`MemCgroup`].
#[derive(Debug, Clone)]
pub struct MemKnobs {
    pub path: PathBuf,
    pub version: Version,
}

impl MemKnobs {
    pub fn usage(&self) -> std::io::Result<u64> {
        let file = match self.version {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        };
        super::read_trimmed(self.path.join(file))?
            .parse()
            .map_err(|_| std::io::Error::other("unparsable memory usage"))
    }

    /// Sets the limit; None lifts it. Lowering it below usage reclaims synchronously.
    pub fn set_limit(&self, bytes: Option<u64>) -> std::io::Result<()> {
        let (file, unlimited) = match self.version {
            Version::V1 => ("memory.limit_in_bytes", "-1"),
            Version::V2 => ("memory.max", "max"),
        };
        let value = bytes.map_or(unlimited.to_string(), |b| b.to_string());
        super::write_knob(self.path.join(file), &value)
    }
}

#[derive(Debug)]
pub struct MemCgroup {
    pub knobs: MemKnobs,
    parent: PathBuf,
    entry: Option<super::journal::Entry>,
}

/// This process's own memory cgroup under `root`, from /proc/self/cgroup: the line whose
/// controllers include `memory` (v1), or the `0::` line (v2).
pub fn own_cgroup(root: &std::path::Path, version: Version, proc_cgroup: &str) -> PathBuf {
    let rel = proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (id, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let ours = match version {
            Version::V1 => controllers.split(',').any(|c| c == "memory"),
            Version::V2 => id == "0" && controllers.is_empty(),
        };
        ours.then(|| path.trim_start_matches('/').to_string())
    });
    root.join(rel.unwrap_or_default())
}

fn find() -> Option<(PathBuf, Version)> {
    let v1 = PathBuf::from("/sys/fs/cgroup/memory");
    if v1.join("memory.limit_in_bytes").exists() {
        return Some((v1, Version::V1));
    }
    let v2 = PathBuf::from("/sys/fs/cgroup");
    let controllers =
        std::fs::read_to_string(v2.join("cgroup.subtree_control")).unwrap_or_default();
    if controllers.split_whitespace().any(|c| c == "memory") {
        return Some((v2, Version::V2));
    }
    None
}

/// Why memory cgroups cannot be used here, if they cannot.
pub fn unavailable_reason() -> Option<String> {
    if !super::is_root() {
        return Some("making a memory cgroup needs root".into());
    }
    if find().is_none() {
        return Some("no memory cgroup controller found (neither /sys/fs/cgroup/memory nor memory in /sys/fs/cgroup/cgroup.subtree_control)".into());
    }
    None
}

impl MemCgroup {
    pub fn create() -> Result<MemCgroup> {
        if let Some(why) = unavailable_reason() {
            bail!("{why}");
        }
        let (root, version) = find().expect("checked above");
        let parent = own_cgroup(
            &root,
            version,
            &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        );
        let path = parent.join(format!("thpbench-{}", std::process::id()));
        let entry = super::journal::record(super::journal::Change::Cgroup {
            path: path.clone(),
            parent: parent.clone(),
        })?;
        if let Err(e) = std::fs::create_dir(&path) {
            entry.done();
            return Err(e).with_context(|| format!("creating memory cgroup {}", path.display()));
        }
        let cg = MemCgroup {
            knobs: MemKnobs { path, version },
            parent,
            entry: Some(entry),
        };
        super::write_knob(
            cg.path().join("cgroup.procs"),
            &std::process::id().to_string(),
        )
        .with_context(|| format!("moving thpbench into {}", cg.path().display()))?;
        crate::output::debug(&format!("moved into memory cgroup {}", cg.path().display()));
        Ok(cg)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.knobs.path
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        let _ = self.knobs.set_limit(None);
        match super::write_knob(
            self.parent.join("cgroup.procs"),
            &std::process::id().to_string(),
        ) {
            Ok(()) => crate::output::debug(&format!(
                "moved back into memory cgroup {}",
                self.parent.display()
            )),
            Err(e) => crate::output::warn(&format!(
                "could not move thpbench out of {}: {e}",
                self.path().display()
            )),
        }
        // The group empties once the move is done; rmdir then succeeds.
        for _ in 0..50 {
            match std::fs::remove_dir(self.path()) {
                Ok(()) => {
                    self.entry
                        .take()
                        .into_iter()
                        .for_each(super::journal::Entry::done);
                    return;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        crate::output::warn(&format!(
            "could not remove {}; rmdir it by hand",
            self.path().display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_cgroup_is_read_from_proc_self_cgroup() {
        let v1 = "12:pids:/user.slice\n5:memory:/user.slice/job\n0::/init.scope\n";
        let root = std::path::Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            own_cgroup(root, Version::V1, v1),
            root.join("user.slice/job")
        );
        let v2 = std::path::Path::new("/sys/fs/cgroup");
        assert_eq!(own_cgroup(v2, Version::V2, v1), v2.join("init.scope"));
        assert_eq!(own_cgroup(root, Version::V1, "5:memory:/\n"), root);
    }
}
