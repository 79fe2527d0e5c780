//! Disturber specs: `[[disturb]]` in a workload file and the flags that add them, each
//! kind with its own defaults.

use serde::{Deserialize, Serialize};

use super::*;
/// One disturber: `[[disturb]]` in a workload file. What the file leaves out takes the
/// kind's default (`DisturbSpec::new`), the same as the command line's flags.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(from = "DisturbSpecFile")]
pub struct DisturbSpec {
    pub kind: DisturbKind,
    /// For `split`: cold, pageout, dontneed, mprotect or debugfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<SplitMethod>,
    /// Time between rounds.
    pub every: Duration,
    /// Share of the huge pages acted on per round (0 < fraction <= 1).
    pub fraction: f64,
    /// CPU to pin the disturber to; default: a CPU no worker uses, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<usize>,
    /// fork: how long the child holds the buffer.
    pub hold: Duration,
}

/// `[[disturb]]` as written: what is left out is filled with the kind's defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisturbSpecFile {
    kind: DisturbKind,
    #[serde(default)]
    method: Option<SplitMethod>,
    every: Option<Duration>,
    fraction: Option<f64>,
    #[serde(default)]
    cpu: Option<usize>,
    hold: Option<Duration>,
}

impl From<DisturbSpecFile> for DisturbSpec {
    fn from(f: DisturbSpecFile) -> Self {
        let d = DisturbSpec::new(f.kind, f.method);
        DisturbSpec {
            every: f.every.unwrap_or(d.every),
            fraction: f.fraction.unwrap_or(d.fraction),
            cpu: f.cpu,
            hold: f.hold.unwrap_or(d.hold),
            ..d
        }
    }
}

impl DisturbSpec {
    /// A disturber with its kind's defaults: every 5 ms on all the huge pages, except
    /// pressure, whose waves swap out half the buffer every 50 ms (a whole buffer every
    /// 5 ms would leave the I/O nothing resident to measure).
    pub fn new(kind: DisturbKind, method: Option<SplitMethod>) -> Self {
        let (every_ms, fraction) = match kind {
            DisturbKind::Pressure => (50, 0.5),
            _ => (5, 1.0),
        };
        DisturbSpec {
            kind,
            method,
            every: Duration(every_ms * 1_000_000),
            fraction,
            cpu: None,
            hold: Duration(20_000_000),
        }
    }

    pub fn label(&self) -> String {
        match (self.kind, self.method) {
            (DisturbKind::Split, Some(m)) => format!("split:{}", m.as_str()),
            (k, _) => k.as_str().to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DisturbKind {
    Split,
    Collapse,
    SwapOut,
    Fork,
    /// Reclaim waves from a memory cgroup limit (needs swap and root).
    Pressure,
}

impl DisturbKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DisturbKind::Split => "split",
            DisturbKind::Collapse => "collapse",
            DisturbKind::SwapOut => "swap-out",
            DisturbKind::Fork => "fork",
            DisturbKind::Pressure => "pressure",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SplitMethod {
    Cold,
    Pageout,
    Dontneed,
    Mprotect,
    Debugfs,
}

impl SplitMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SplitMethod::Cold => "cold",
            SplitMethod::Pageout => "pageout",
            SplitMethod::Dontneed => "dontneed",
            SplitMethod::Mprotect => "mprotect",
            SplitMethod::Debugfs => "debugfs",
        }
    }
}
