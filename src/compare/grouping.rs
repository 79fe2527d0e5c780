//! Grouping results into columns: by kernel build, workload name, resolved workload
//! parameters and whether they count as evidence; the columns' labels and the
//! parameters that differ between them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::result::{BenchResult, RunResult};

/// Workload keys that do not change what is measured, so results that differ only in
/// them are compared without `--force`: labels (`name`, `description`), the verify
/// pattern's `seed`, permission flags (`force`, `allow_write_device`, `allow_fallback`;
/// a fallback shows up as `valid = false`), and `repeat` (how many runs, not what a run
/// does). `name` still separates groups, so that runs on one kernel can be labelled
/// `before`/`after` a change that the workload does not describe.
pub const IGNORED_WORKLOAD_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "force",
    "allow_write_device",
    "allow_fallback",
    "repeat",
];

#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub result: BenchResult,
}

impl Input {
    pub fn load(path: &Path) -> Result<Input> {
        Ok(Input {
            path: path.to_path_buf(),
            result: BenchResult::load(path)?,
        })
    }

    /// Loads every file once: a file named twice (e.g. by overlapping globs) would
    /// otherwise count its runs twice and narrow every confidence interval.
    pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Input>> {
        let mut seen = Vec::new();
        let mut inputs = Vec::new();
        for path in paths {
            let key = path.canonicalize().unwrap_or_else(|_| path.clone());
            if seen.contains(&key) {
                crate::output::warn(&format!(
                    "{} is given more than once; using it once",
                    path.display()
                ));
                continue;
            }
            seen.push(key);
            inputs.push(Input::load(path)?);
        }
        Ok(inputs)
    }
}

/// Why some runs were not counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exclusion {
    pub file: String,
    /// `None`: the whole file.
    pub run: Option<usize>,
    pub reason: String,
}

/// A column of the comparison: one kernel build running one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub label: String,
    pub kernel_release: String,
    pub kernel_version: String,
    pub workload: String,
    pub files: Vec<String>,
    /// False when the group's results are invalid or interrupted: shown, never counted.
    pub evidence: bool,
    pub excluded: Vec<Exclusion>,
    /// Runs that entered the statistics (over all sections).
    pub runs_counted: usize,
    #[serde(skip)]
    pub(super) workload_params: BTreeMap<String, String>,
    #[serde(skip)]
    pub(super) thp_setting: String,
    /// Section name -> runs.
    #[serde(skip)]
    pub(super) sections: Vec<(String, Vec<RunResult>)>,
}

/// A workload parameter that differs between groups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamDifference {
    pub parameter: String,
    /// (group label, value) for every group, the baseline first.
    pub values: Vec<(String, String)>,
}

/// Section name of plain (non-sweep) runs.
pub const MAIN_SECTION: &str = "";
/// Section name of a result's undisturbed runs (`run --baseline`).
pub const UNDISTURBED_SECTION: &str = "undisturbed (run --baseline)";

/// The resolved workload as flat `key -> value` text, without the ignored keys.
pub fn workload_params(result: &BenchResult) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&result.workload) {
        for (k, v) in map {
            if IGNORED_WORKLOAD_KEYS.contains(&k.as_str()) {
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "(none)".to_string(),
                other => other.to_string(),
            };
            out.insert(k, text);
        }
    }
    // Disturbers in a form a person reads in a column header, still naming every setting
    // that changes what they do.
    let disturb: Vec<String> = result
        .workload
        .disturb
        .iter()
        .map(|d| {
            let mut text = format!("{}(every={}", d.label(), d.every);
            if d.fraction != 1.0 {
                text.push_str(&format!(",fraction={}", d.fraction));
            }
            if let Some(cpu) = d.cpu {
                text.push_str(&format!(",cpu={cpu}"));
            }
            if d.kind == crate::workload::DisturbKind::Fork {
                text.push_str(&format!(",hold={}", d.hold));
            }
            text + ")"
        })
        .collect();
    if out.contains_key("disturb") {
        let text = if disturb.is_empty() {
            "none".to_string()
        } else {
            disturb.join("+")
        };
        out.insert("disturb".into(), text);
    }
    out
}

/// Why a whole result is not evidence, if it is not.
fn not_evidence_reason(r: &BenchResult) -> Option<String> {
    let mut why = Vec::new();
    if !r.valid {
        if r.invalid_reasons.is_empty() {
            why.push("marked invalid".to_string());
        } else {
            why.push(format!("invalid: {}", r.invalid_reasons.join("; ")));
        }
    }
    if r.interrupted {
        why.push("interrupted by a signal: its runs are partial".to_string());
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn sections_of(r: &BenchResult) -> Vec<(String, Vec<RunResult>)> {
    let mut out = Vec::new();
    if !r.runs.is_empty() {
        out.push((MAIN_SECTION.to_string(), r.runs.clone()));
    }
    for case in &r.sweep {
        out.push((case.label.clone(), case.runs.clone()));
    }
    if !r.baseline_runs.is_empty() {
        out.push((UNDISTURBED_SECTION.to_string(), r.baseline_runs.clone()));
    }
    out
}

/// Groups inputs by kernel build, workload name, workload parameters and evidence, in
/// the order they first appear.
pub(super) fn group_inputs(inputs: &[Input]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for input in inputs {
        let r = &input.result;
        let params = workload_params(r);
        let file = input.path.display().to_string();
        let whole_file_reason = not_evidence_reason(r);
        let evidence = whole_file_reason.is_none();
        let idx = groups.iter().position(|g| {
            g.kernel_release == r.system.kernel.release
                && g.kernel_version == r.system.kernel.version
                && g.workload == r.workload.name
                && g.workload_params == params
                && g.evidence == evidence
        });
        let idx = idx.unwrap_or_else(|| {
            groups.push(Group {
                label: String::new(),
                kernel_release: r.system.kernel.release.clone(),
                kernel_version: r.system.kernel.version.clone(),
                workload: r.workload.name.clone(),
                files: Vec::new(),
                evidence,
                excluded: Vec::new(),
                runs_counted: 0,
                workload_params: params.clone(),
                thp_setting: format!(
                    "enabled={} defrag={}",
                    r.system.thp.enabled, r.system.thp.defrag
                ),
                sections: Vec::new(),
            });
            groups.len() - 1
        });
        let g = &mut groups[idx];
        g.files.push(file.clone());
        if let Some(reason) = whole_file_reason {
            g.excluded.push(Exclusion {
                file: file.clone(),
                run: None,
                reason,
            });
        }
        for (name, runs) in sections_of(r) {
            let mut kept = Vec::new();
            for run in runs {
                if run.interrupted && evidence {
                    g.excluded.push(Exclusion {
                        file: file.clone(),
                        run: Some(run.repeat),
                        reason: "run cut short by a signal".into(),
                    });
                    continue;
                }
                kept.push(run);
            }
            if evidence {
                g.runs_counted += kept.len();
            }
            match g.sections.iter_mut().find(|(n, _)| *n == name) {
                Some((_, runs)) => runs.extend(kept),
                None => g.sections.push((name, kept)),
            }
        }
    }
    groups
}

/// Labels that tell the columns apart: kernel release and workload name, then what else
/// differs when that is not enough.
pub(super) fn label_groups(groups: &mut [Group], baseline: usize) {
    let base_params = groups[baseline].workload_params.clone();
    let n = groups.len();
    let plain: Vec<String> = groups
        .iter()
        .map(|g| format!("{} {}", g.kernel_release, g.workload))
        .collect();
    for i in 0..n {
        let mut label = plain[i].clone();
        let collides = (0..n).any(|j| j != i && plain[j] == plain[i]);
        if collides {
            let g = &groups[i];
            let same_build_elsewhere = (0..n).any(|j| {
                j != i && plain[j] == plain[i] && groups[j].kernel_version != g.kernel_version
            });
            if same_build_elsewhere {
                label.push_str(&format!(" [{}]", g.kernel_version));
            }
            let diffs: Vec<String> = g
                .workload_params
                .iter()
                .filter(|(k, v)| base_params.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !diffs.is_empty() {
                label.push(' ');
                label.push_str(&diffs.join(" "));
            }
        }
        if !groups[i].evidence {
            label.push_str(" (not evidence)");
        }
        groups[i].label = label;
    }
    // Still equal (e.g. two invalid groups alike): number them.
    for i in 0..n {
        if (0..i).any(|j| groups[j].label == groups[i].label) {
            groups[i].label = format!("{} #{}", groups[i].label, i + 1);
        }
    }
}

/// Workload parameters that differ between any group and the baseline.
pub(super) fn param_differences(groups: &[Group], baseline: usize) -> Vec<ParamDifference> {
    let mut keys: Vec<&String> = groups
        .iter()
        .flat_map(|g| g.workload_params.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let base = groups[baseline].workload_params.get(key);
        if groups.iter().all(|g| g.workload_params.get(key) == base) {
            continue;
        }
        let mut order: Vec<usize> = vec![baseline];
        order.extend((0..groups.len()).filter(|&i| i != baseline));
        out.push(ParamDifference {
            parameter: key.clone(),
            values: order
                .iter()
                .map(|&i| {
                    let g = &groups[i];
                    (
                        g.files.join(", "),
                        g.workload_params
                            .get(key)
                            .cloned()
                            .unwrap_or_else(|| "(absent)".into()),
                    )
                })
                .collect(),
        });
    }
    out
}

// ------------------------------------------------------------------------------------
// The comparison
