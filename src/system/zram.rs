//! zram devices made for a run through /sys/class/zram-control and removed afterwards.
//! The machine's own zram devices are never touched.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub const ZRAM_CONTROL: &str = "/sys/class/zram-control";

/// A zram device created by thpbench: reset and hot-removed on drop.
#[derive(Debug)]
pub struct ZramDevice {
    pub id: u32,
    pub size: u64,
    entry: Option<super::journal::Entry>,
}

impl ZramDevice {
    pub fn create(size: u64) -> Result<ZramDevice> {
        if !super::is_root() {
            bail!("a zram target or zram swap needs root (it creates /dev/zramN through {ZRAM_CONTROL}/hot_add); run as root or use a file target");
        }
        if !std::path::Path::new(ZRAM_CONTROL).exists() {
            bail!("{ZRAM_CONTROL} does not exist: load the zram module (modprobe zram) or use a file target");
        }
        let mut entry = super::journal::record(super::journal::Change::Zram {
            id: None,
            mark: None,
        })?;
        let id: u32 = match super::read_trimmed(format!("{ZRAM_CONTROL}/hot_add"))
            .context("creating a zram device (reading hot_add)")
            .and_then(|s| s.parse().context("hot_add returned no device number"))
        {
            Ok(id) => id,
            Err(e) => {
                entry.done();
                return Err(e);
            }
        };
        // From here on the guard owns the device, so any error below removes it again.
        let dev = ZramDevice {
            id,
            size,
            entry: None,
        };
        entry.update(super::journal::Change::Zram {
            id: Some(id),
            mark: None,
        })?;
        let mut dev = dev;
        dev.entry = Some(entry);
        super::write_knob(format!("/sys/block/zram{id}/disksize"), &size.to_string())
            .with_context(|| format!("setting the size of zram{id} to {size} bytes"))?;
        // The mark that lets cleanup tell this device from a later one with its number.
        let mark = dev.mark()?;
        if let Some(entry) = dev.entry.as_mut() {
            entry.update(super::journal::Change::Zram {
                id: Some(id),
                mark: Some(mark),
            })?;
        }
        let node = dev.path();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !node.exists() {
            if Instant::now() > deadline {
                bail!(
                    "{} did not appear after hot_add (is devtmpfs mounted on /dev?)",
                    node.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        crate::output::debug(&format!("created zram{id} ({size} bytes)"));
        Ok(dev)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/zram{}", self.id))
    }

    /// What identifies this device among every zram device made since boot (diskseq 0
    /// on kernels before 5.15, which lack it: then only the size tells).
    pub fn mark(&self) -> Result<super::journal::ZramMark> {
        let diskseq = super::read_trimmed(format!("/sys/block/zram{}/diskseq", self.id))
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(super::journal::ZramMark {
            id: self.id,
            diskseq,
            disksize: self.size,
        })
    }
}

/// Resets zram`id` (freeing its memory) and hot-removes it.
pub fn reset_and_remove(id: u32) -> std::io::Result<()> {
    let reset = format!("/sys/block/zram{id}/reset");
    // reset answers EBUSY while something still holds the device open (a closing file
    // descriptor, swapoff finishing): try for a while before giving up.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match super::write_knob(&reset, "1") {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e),
        }
    }
    super::write_knob(format!("{ZRAM_CONTROL}/hot_remove"), &id.to_string())
}

impl Drop for ZramDevice {
    fn drop(&mut self) {
        match reset_and_remove(self.id) {
            Ok(()) => self.entry.take().into_iter().for_each(super::journal::Entry::done),
            Err(e) => crate::output::warn(&format!(
                "could not reset and remove zram{}: {e}; remove it with: echo 1 > /sys/block/zram{}/reset; echo {} > {ZRAM_CONTROL}/hot_remove",
                self.id, self.id, self.id
            )),
        }
    }
}

/// Ids of the zram devices that exist now.
pub fn existing_devices() -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir("/sys/block")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("zram")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// Devices with disksize 0, i.e. free for use.
pub fn free_devices() -> Vec<u32> {
    existing_devices()
        .into_iter()
        .filter(|id| {
            super::read_trimmed(format!("/sys/block/zram{id}/disksize")).is_ok_and(|s| s == "0")
        })
        .collect()
}
