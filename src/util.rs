//! Small helpers shared by several modules.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes `data` to `path` atomically: a temporary file beside it under a random name,
/// fsync, rename; a symlink at `path` is replaced, never followed (see safe_fs).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    crate::safe_fs::write_atomic(path, data).with_context(|| format!("writing {}", path.display()))
}

/// UTC time as RFC 3339 (`2026-11-24T22:20:53Z`), without a date crate.
pub fn utc_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Writes `data` to `path` completely or not at all, and never over an existing entry:
/// AlreadyExists where `path` exists (also as a symlink).
pub fn write_new_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    crate::safe_fs::write_new_atomic(path, data)
}

/// Fails unless a file can be made in `dir` (made if missing), and the directory is
/// one no other user can write into unless sticky: checked before measuring, so that a
/// read-only, full or untrusted results directory costs no measurement.
pub fn check_writable_dir(dir: &Path) -> Result<()> {
    crate::safe_fs::check_writable_dir(dir).with_context(|| {
        format!(
            "the results directory {} cannot take a result; pick another with --results-dir or -o",
            dir.display()
        )
    })
}

/// Compact UTC time for file names: `20261124T222053Z`.
pub fn utc_now_compact() -> String {
    utc_now_rfc3339().replace(['-', ':'], "")
}

/// Unix seconds to a UTC civil date (Howard Hinnant's days_from_civil, inverted):
/// (year, month, day, hour, minute, second).
pub fn civil_from_unix(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// Keeps file names portable: anything but [A-Za-z0-9._-] becomes `_`.
pub fn sanitize_file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        // 2026-11-24T22:20:53Z
        assert_eq!(civil_from_unix(1_795_558_853), (2026, 11, 24, 22, 20, 53));
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn file_parts_are_sanitized() {
        assert_eq!(sanitize_file_part("6.18.44-fc v1/x"), "6.18.44-fc_v1_x");
    }
}
