//! Grouping results into columns: by kernel build (its build-id, or release and
//! `uname -v` where a result lacks it), machine and conditions, workload name, resolved
//! workload parameters and whether they count as evidence; the columns' labels and the
//! parameters that differ between them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::conditions::{compatible, settings_of, Setting, SettingKind};
use crate::result::{BenchResult, RunResult, RunRole};
use crate::workload::{DisturbKind, DisturbSpec, Workload};

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
    /// The kernel's GNU build-id, when the group's results record it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_build_id: Option<String>,
    pub workload: String,
    pub files: Vec<String>,
    /// False when the group's results are invalid or interrupted: shown, never counted.
    pub evidence: bool,
    pub excluded: Vec<Exclusion>,
    /// Runs that entered the statistics (over all sections).
    pub runs_counted: usize,
    #[serde(skip)]
    pub(super) workload_params: BTreeMap<String, String>,
    /// The machine and conditions of the group's first result (what else the group's
    /// results record agrees with it).
    #[serde(skip)]
    pub(super) settings: Vec<Setting>,
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

/// The resolved workload as `key -> value` text (the value as the result file writes
/// it), without the fields that do not change what is measured: results that differ
/// only in those are compared without `--force`. The workload is taken apart field by
/// field, so that a new field fails to compile here until someone decides whether it
/// separates groups.
pub fn workload_params(result: &BenchResult) -> BTreeMap<String, String> {
    let Workload {
        // A label; it still separates groups, through `Group::workload`, so that runs on
        // one kernel can be labelled `before`/`after` a change the workload does not
        // describe.
        name: _,
        // A label.
        description: _,
        // The verify pattern's seed: which bytes are written, not how they move.
        seed: _,
        // Permission flags: what a run may touch, not what it does; a fallback
        // (`allow_fallback`) shows up as `valid = false`.
        force: _,
        allow_write_device: _,
        allow_fallback: _,
        // How many runs, not what a run does.
        repeat: _,
        engine,
        iodepth,
        fixed_buffers,
        cpus,
        threads,
        numa,
        bs,
        rw,
        rwmix_read,
        duration,
        bytes,
        ops,
        warmup,
        target,
        size,
        buffer,
        share,
        per_page_iovecs,
        verify,
        verify_level,
        disturb,
        swap,
        lock_contention,
        perf,
        hw_counters,
        sweep,
    } = &result.workload;
    let none = || "(none)".to_string();
    let mut out = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        out.insert(key.to_string(), value);
    };
    put("engine", wire_name(engine));
    put("iodepth", iodepth.to_string());
    put("fixed_buffers", fixed_buffers.to_string());
    put("cpus", cpus.clone());
    put("threads", threads.to_string());
    put("numa", numa.to_string());
    // Sizes as the result writes them: bytes.
    put("bs", bs.0.to_string());
    put("rw", wire_name(rw));
    put("rwmix_read", rwmix_read.to_string());
    put("duration", duration.to_string());
    put("bytes", bytes.map_or_else(none, |b| b.0.to_string()));
    put("ops", ops.map_or_else(none, |n| n.to_string()));
    put("warmup", warmup.to_string());
    put("target", target.clone());
    // Absent from the result when unset, so absent here too (`(absent)` in a column).
    if let Some(size) = size {
        put("size", size.0.to_string());
    }
    put("buffer", buffer.to_string());
    put("share", share.to_string());
    put("per_page_iovecs", per_page_iovecs.to_string());
    put("verify", verify.to_string());
    put("verify_level", verify_level.name().to_string());
    put("disturb", disturbers_text(disturb));
    put("swap", swap.clone().unwrap_or_else(none));
    put("lock_contention", lock_contention.to_string());
    put("perf", perf.to_string());
    put("hw_counters", hw_counters.to_string());
    if !sweep.is_empty() {
        // The axes as the result writes them: `{"threads":[1,2]}`.
        put(
            "sweep",
            serde_json::to_string(sweep).expect("a sweep always serializes"),
        );
    }
    out
}

/// An enum's name as the result file writes it (its serde name).
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("a unit variant serializes as a string, not {other:?}"),
    }
}

/// Disturbers in a form a person reads in a column header, still naming every setting
/// that changes what they do.
fn disturbers_text(disturb: &[DisturbSpec]) -> String {
    if disturb.is_empty() {
        return "none".to_string();
    }
    disturb
        .iter()
        .map(|d| {
            let mut text = format!("{}(every={}", d.label(), d.every);
            if d.fraction != 1.0 {
                text.push_str(&format!(",fraction={}", d.fraction));
            }
            if let Some(cpu) = d.cpu {
                text.push_str(&format!(",cpu={cpu}"));
            }
            if d.kind == DisturbKind::Fork {
                text.push_str(&format!(",hold={}", d.hold));
            }
            text + ")"
        })
        .collect::<Vec<_>>()
        .join("+")
}

fn sections_of(r: &BenchResult) -> Vec<(String, Vec<RunResult>)> {
    r.run_groups()
        .map(|(role, runs)| {
            let section = match role {
                RunRole::Measured => MAIN_SECTION,
                RunRole::Baseline => UNDISTURBED_SECTION,
                RunRole::Case(label) => label,
            };
            (section.to_string(), runs.to_vec())
        })
        .collect()
}

/// Groups inputs by kernel build, workload name, workload parameters and evidence, in
/// the order they first appear.
pub(super) fn group_inputs(inputs: &[Input]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for input in inputs {
        let r = &input.result;
        let params = workload_params(r);
        let file = input.path.display().to_string();
        let whole_file_reason = r.not_evidence_reason();
        let evidence = whole_file_reason.is_none();
        let settings = settings_of(r);
        let build_id = r.system.kernel.build_id.clone();
        let idx = groups.iter().position(|g| {
            g.kernel_release == r.system.kernel.release
                && g.kernel_version == r.system.kernel.version
                // Two builds of one release are two kernels; a result without a build-id
                // (an older one) groups by release and version, as it always did.
                && (g.kernel_build_id.is_none() || build_id.is_none() || g.kernel_build_id == build_id)
                && compatible(&g.settings, &settings)
                && g.workload == r.workload.name
                && g.workload_params == params
                && g.evidence == evidence
        });
        let idx = idx.unwrap_or_else(|| {
            groups.push(Group {
                label: String::new(),
                kernel_release: r.system.kernel.release.clone(),
                kernel_version: r.system.kernel.version.clone(),
                kernel_build_id: build_id.clone(),
                workload: r.workload.name.clone(),
                files: Vec::new(),
                evidence,
                excluded: Vec::new(),
                runs_counted: 0,
                workload_params: params.clone(),
                settings: settings.clone(),
                sections: Vec::new(),
            });
            groups.len() - 1
        });
        let g = &mut groups[idx];
        // A later file may record what the first did not (an older result first).
        if g.kernel_build_id.is_none() {
            g.kernel_build_id = build_id;
        }
        for s in settings {
            match g.settings.iter_mut().find(|x| x.name == s.name) {
                Some(x) if x.value.is_none() => x.value = s.value,
                Some(_) => {}
                None => g.settings.push(s),
            }
        }
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
            // Same release and version, another build: the build-id tells them apart.
            let other_build = (0..n).any(|j| {
                j != i
                    && plain[j] == plain[i]
                    && groups[j].kernel_version == g.kernel_version
                    && groups[j].kernel_build_id != g.kernel_build_id
            });
            if other_build {
                let id = g.kernel_build_id.as_deref().unwrap_or("no build-id");
                label.push_str(&format!(" [build {}]", &id[..id.len().min(12)]));
            }
            // Another machine or conditions (compared only when allowed): name them.
            let setup: Vec<String> = (0..n)
                .filter(|&j| j != i && plain[j] == plain[i])
                .flat_map(|j| setting_differences(&g.settings, &groups[j].settings))
                .collect();
            let mut seen = Vec::new();
            for d in setup {
                if !seen.contains(&d) {
                    label.push_str(&format!(" {d}"));
                    seen.push(d);
                }
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

/// `name=value` for each machine or condition setting of `a` that `b` records otherwise.
fn setting_differences(a: &[Setting], b: &[Setting]) -> Vec<String> {
    a.iter()
        .filter(|s| s.kind != SettingKind::Note)
        .filter_map(|s| {
            let v = s.value.as_ref()?;
            let other = b.iter().find(|x| x.name == s.name)?.value.as_ref()?;
            (!super::conditions::same_value(&s.name, v, other)).then(|| {
                let v = super::conditions::display_value(&s.name, v).replace(' ', "");
                let v: String = if v.chars().count() > 40 {
                    v.chars().take(39).chain(['…']).collect()
                } else {
                    v
                };
                format!("{}={v}", s.name.replace(' ', "_"))
            })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What `workload_params` gave when it flattened the workload through
    /// `serde_json::Value`: the reference the typed function must match, key for key.
    fn params_through_json(result: &BenchResult) -> BTreeMap<String, String> {
        const IGNORED: &[&str] = &[
            "name",
            "description",
            "seed",
            "force",
            "allow_write_device",
            "allow_fallback",
            "repeat",
        ];
        let mut out = BTreeMap::new();
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&result.workload) {
            for (k, v) in map {
                if IGNORED.contains(&k.as_str()) {
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
        // The disturbers' text was made from the typed specs already (its own test
        // below pins it).
        out.insert("disturb".into(), disturbers_text(&result.workload.disturb));
        out
    }

    #[test]
    fn kept_results_give_the_parameters_the_json_flattening_gave() {
        let files = crate::test_support::kept_results();
        assert!(
            files.len() >= 20,
            "results/ holds {} JSON files",
            files.len()
        );
        for file in &files {
            let result = BenchResult::load(file).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(
                workload_params(&result),
                params_through_json(&result),
                "{}",
                file.display()
            );
        }
    }

    /// The optional fields and the sweep, which the kept results may leave at their
    /// defaults, set both ways.
    #[test]
    fn optional_fields_and_sweeps_give_the_parameters_the_json_flattening_gave() {
        let plain = crate::test_support::synthetic("6.12.0", &[100.0]);
        let mut set = plain.clone();
        set.workload.bytes = Some(crate::units::Size(1 << 30));
        set.workload.ops = Some(1000);
        set.workload.size = Some(crate::units::Size(64 << 20));
        set.workload.swap = Some("zram:1G".into());
        set.workload.sweep.insert(
            "threads".into(),
            vec![
                crate::workload::SweepValue::Int(1),
                crate::workload::SweepValue::Int(2),
            ],
        );
        set.workload.sweep.insert(
            "buffer".into(),
            vec![crate::workload::SweepValue::Text("4k".into())],
        );
        set.workload.engine = crate::workload::Engine::Uring;
        set.workload.rw = crate::workload::Rw::RandWrite;
        set.workload.verify_level = crate::workload::VerifyLevel::Full;
        set.workload.buffer = crate::workload::Backing::Mthp(64 << 10);
        let mut fork = DisturbSpec::new(DisturbKind::Fork, None);
        fork.cpu = Some(1);
        let mut collapse = DisturbSpec::new(DisturbKind::Collapse, None);
        collapse.fraction = 0.5;
        set.workload.disturb = vec![fork, collapse];
        for result in [&plain, &set] {
            assert_eq!(workload_params(result), params_through_json(result));
        }
        let set_params = workload_params(&set);
        assert_eq!(set_params["bytes"], (1u64 << 30).to_string());
        assert_eq!(set_params["size"], (64u64 << 20).to_string());
        assert!(!workload_params(&plain).contains_key("size"));
        assert_eq!(workload_params(&plain)["swap"], "(none)");
        assert_eq!(workload_params(&plain)["disturb"], "none");
        assert_eq!(set_params["buffer"], "mthp:64K");
        assert_eq!(set_params["rw"], "randwrite");
        assert_eq!(
            set_params["disturb"],
            "fork(every=5ms,cpu=1,hold=20ms)+collapse(every=5ms,fraction=0.5)"
        );
        assert_eq!(set_params["sweep"], r#"{"buffer":["4k"],"threads":[1,2]}"#);
    }
}
