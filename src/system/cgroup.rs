//! A memory cgroup made for the run, so that a limit can force reclaim of the buffers
//! (a second road to swapping, besides MADV_PAGEOUT). cgroup v1 (memory controller at
//! /sys/fs/cgroup/memory) and v2 (unified hierarchy) are both handled. The process is
//! moved in before its buffers are allocated, so they are charged there, and moved
//! back and the group removed on drop.

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
        let (parent, version) = find().expect("checked above");
        let path = parent.join(format!("thpbench-{}", std::process::id()));
        std::fs::create_dir(&path)
            .with_context(|| format!("creating memory cgroup {}", path.display()))?;
        let cg = MemCgroup {
            knobs: MemKnobs { path, version },
            parent,
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
        if let Err(e) = super::write_knob(
            self.parent.join("cgroup.procs"),
            &std::process::id().to_string(),
        ) {
            crate::output::warn(&format!(
                "could not move thpbench out of {}: {e}",
                self.path().display()
            ));
        }
        // The group empties once the move is done; rmdir then succeeds.
        for _ in 0..50 {
            match std::fs::remove_dir(self.path()) {
                Ok(()) => return,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        crate::output::warn(&format!(
            "could not remove {}; rmdir it by hand",
            self.path().display()
        ));
    }
}
