//! The types a workload speaks in: where buffer memory goes, which CPUs the workers
//! take, what swaps, how much of each read is checked. They live with the workload (the
//! system layer and the verifier act on them), so that the workload imports nothing
//! from the layers above it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::units::{parse_cpu_list, parse_size};

/// Where buffer memory goes (`numa` in the workload).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Numa {
    /// Each worker's buffer on the worker's node; below 99 % local the run is invalid.
    #[default]
    Local,
    /// Pages spread round-robin over the nodes with memory (MPOL_INTERLEAVE).
    Interleave,
    /// No policy: wherever the setting-up thread's faults land.
    Any,
}

impl std::fmt::Display for Numa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Numa::Local => "local",
            Numa::Interleave => "interleave",
            Numa::Any => "any",
        })
    }
}

/// What `cpus` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSpec {
    /// One worker per physical core, its first online thread (the default).
    Cores,
    /// Every online logical CPU.
    Threads,
    /// The cores of one NUMA node.
    Node(u32),
    /// Exactly these CPUs.
    List(Vec<usize>),
}

impl CpuSpec {
    /// `""` and `"cores"` are the default; `"threads"`, `"node:N"`, or a list `0-3,6`.
    pub fn parse(s: &str) -> Result<CpuSpec, String> {
        match s.trim() {
            "" | "cores" => Ok(CpuSpec::Cores),
            "threads" => Ok(CpuSpec::Threads),
            t => match t.strip_prefix("node:") {
                Some(n) => n.trim().parse().map(CpuSpec::Node).map_err(|_| {
                    format!("`{t}`: expected node:N with N a NUMA node number, e.g. node:0")
                }),
                None => parse_cpu_list(t).map(CpuSpec::List).map_err(|e| {
                    format!("`{t}`: {e}; expected \"cores\", \"threads\", \"node:N\" or a CPU list like 0-3,6")
                }),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SwapSpec {
    Zram(u64),
    File(PathBuf, u64),
    Existing,
}

impl SwapSpec {
    pub fn parse(text: &str) -> Result<SwapSpec, String> {
        if text == "existing" {
            return Ok(SwapSpec::Existing);
        }
        if let Some(size) = text.strip_prefix("zram:") {
            return Ok(SwapSpec::Zram(parse_size(size)?));
        }
        if let Some(rest) = text.strip_prefix("file:") {
            if let Some((path, size)) = rest.rsplit_once(':') {
                if !path.is_empty() {
                    return Ok(SwapSpec::File(PathBuf::from(path), parse_size(size)?));
                }
            }
        }
        Err(format!(
            "`{text}`: use zram:SIZE (e.g. zram:1G), file:PATH:SIZE or existing"
        ))
    }
}

/// How much of the data a read's check covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyLevel {
    /// The header of the first sector of every base page (see src/verify.rs's doc).
    #[default]
    Pages,
    /// Every byte.
    Full,
}

impl VerifyLevel {
    pub fn name(self) -> &'static str {
        match self {
            VerifyLevel::Pages => "pages",
            VerifyLevel::Full => "full",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_specs_parse() {
        assert_eq!(SwapSpec::parse("zram:1G").unwrap(), SwapSpec::Zram(1 << 30));
        assert_eq!(
            SwapSpec::parse("file:/tmp/s:512M").unwrap(),
            SwapSpec::File("/tmp/s".into(), 512 << 20)
        );
        assert_eq!(SwapSpec::parse("existing").unwrap(), SwapSpec::Existing);
        assert!(SwapSpec::parse("zram").is_err());
        assert!(SwapSpec::parse("file::1G").is_err());
    }
}
