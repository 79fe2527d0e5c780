//! The memory-pressure disturber: waves of reclaim forced by the run's memory cgroup.
//! Each action lowers the limit by `fraction` of the buffer below current usage (the
//! write reclaims synchronously, swapping buffer pages out: pswpout, thp_swpout or
//! thp_swpout_fallback), then lifts the limit so the I/O can fault them back in.

use std::io;
use std::path::PathBuf;

use super::{Action, Region};
use crate::system::cgroup::Version;

pub struct Pressure {
    pub path: PathBuf,
    pub version: Version,
    pub fraction: f64,
    /// Waves in which the kernel reclaimed but could not get under the limit (EBUSY).
    pub limit_not_reached: u64,
}

impl Pressure {
    fn knob(&self, name_v1: &str, name_v2: &str) -> PathBuf {
        self.path.join(if self.version == Version::V1 {
            name_v1
        } else {
            name_v2
        })
    }
}

impl Action for Pressure {
    fn per_round(&self) -> bool {
        true
    }

    fn act(&mut self, r: &Region, _b: usize) -> io::Result<bool> {
        let usage: u64 =
            crate::system::read_trimmed(self.knob("memory.usage_in_bytes", "memory.current"))?
                .parse()
                .map_err(|_| io::Error::other("unparsable memory usage"))?;
        let squeeze = (r.len as f64 * self.fraction) as u64;
        let limit = usage.saturating_sub(squeeze).max(1 << 20);
        let limit_file = self.knob("memory.limit_in_bytes", "memory.max");
        let lowered = crate::system::write_knob(&limit_file, &limit.to_string());
        let lift = if self.version == Version::V1 {
            "-1"
        } else {
            "max"
        };
        crate::system::write_knob(&limit_file, lift)?;
        match lowered {
            Ok(()) => Ok(true),
            // The write ran the reclaim and gave up short of the limit (pinned pages,
            // pages under I/O): the wave happened; pswpout says how much it pushed out.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                self.limit_not_reached += 1;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    fn extra(&self) -> std::collections::BTreeMap<String, u64> {
        std::collections::BTreeMap::from([(
            "limit_not_reached".to_string(),
            self.limit_not_reached,
        )])
    }
}
