//! Sweep axes: `sweep = { key = [values] }` and the cases they expand into.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::*;
/// One value of a sweep axis: a number or a string, as in the workload file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SweepValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl fmt::Display for SweepValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepValue::Bool(b) => write!(f, "{b}"),
            SweepValue::Int(i) => write!(f, "{i}"),
            SweepValue::Text(t) => f.write_str(t),
        }
    }
}

impl SweepValue {
    /// Numbers stay numbers; anything else is text (sizes like "4k" parse later).
    pub fn parse(text: &str) -> SweepValue {
        if let Ok(b) = text.trim().parse() {
            return SweepValue::Bool(b);
        }
        text.trim()
            .parse()
            .map(SweepValue::Int)
            .unwrap_or_else(|_| SweepValue::Text(text.trim().to_string()))
    }
}

/// One case of a sweep: its label (`threads=2 buffer=thp`), the swept parameters, and the
/// resolved workload.
pub type SweepCaseSpec = (String, BTreeMap<String, String>, Workload);

/// The cases of a workload: (label, params, resolved workload) for every combination of
/// its sweep, or the workload itself when it has none. Every case is validated.
pub fn sweep_cases(w: &Workload) -> Result<Vec<SweepCaseSpec>, String> {
    let mut base = w.clone();
    base.sweep.clear();
    let mut cases: Vec<(Vec<(String, SweepValue)>, Workload)> = vec![(Vec::new(), base)];
    for (key, values) in &w.sweep {
        if key == "sweep" || key == "name" {
            return Err(format!("sweep over `{key}` is not possible"));
        }
        if values.is_empty() {
            return Err(format!("sweep.{key} lists no values"));
        }
        let mut next = Vec::new();
        for (params, case) in &cases {
            for v in values {
                let mut table = toml::Value::try_from(case).map_err(|e| e.to_string())?;
                let value = match v {
                    SweepValue::Bool(b) => toml::Value::Boolean(*b),
                    SweepValue::Int(i) => toml::Value::Integer(*i),
                    SweepValue::Text(t) => toml::Value::String(t.clone()),
                };
                let t = table.as_table_mut().expect("a workload is a table");
                if !t.contains_key(key) && !Workload::KNOWN_KEYS.contains(&key.as_str()) {
                    return Err(format!("sweep.{key}: `{key}` is not a workload key"));
                }
                t.insert(key.clone(), value);
                let mut changed: Workload = table.try_into().map_err(|e: toml::de::Error| {
                    format!("sweep.{key} = {v}: {}", e.message().trim())
                })?;
                // A CPU list fixes the count; cores, threads and node:N offer CPUs to pick from.
                if key == "threads"
                    && matches!(
                        super::CpuSpec::parse(&changed.cpus),
                        Ok(super::CpuSpec::List(_))
                    )
                {
                    changed.cpus.clear();
                }
                changed
                    .validate()
                    .map_err(|e| format!("sweep case {key}={v}: {e}"))?;
                let mut p = params.clone();
                p.push((key.clone(), v.clone()));
                next.push((p, changed));
            }
        }
        cases = next;
    }
    Ok(cases
        .into_iter()
        .map(|(params, case)| {
            let label = params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            let params = params
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect();
            (label, params, case)
        })
        .collect())
}
