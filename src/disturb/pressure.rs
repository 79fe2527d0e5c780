//! The memory-pressure disturber: waves of reclaim forced by the run's memory cgroup.
//! Each action lowers the limit by `fraction` of the buffer below current usage (the
//! write reclaims synchronously, swapping buffer pages out: pswpout, thp_swpout or
//! thp_swpout_fallback), then lifts the limit so the I/O can fault them back in.

use std::io;

use super::{Action, Region};
use crate::system::cgroup::MemKnobs;

pub struct Pressure {
    pub knobs: MemKnobs,
    pub fraction: f64,
    /// Waves in which the kernel reclaimed but could not get under the limit (EBUSY).
    pub limit_not_reached: u64,
}

impl Action for Pressure {
    fn per_round(&self) -> bool {
        true
    }

    fn act(&mut self, r: &Region, _b: usize) -> io::Result<bool> {
        let usage = self.knobs.usage()?;
        let squeeze = (r.len as f64 * self.fraction) as u64;
        let lowered = self
            .knobs
            .set_limit(Some(usage.saturating_sub(squeeze).max(1 << 20)));
        self.knobs.set_limit(None)?;
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
