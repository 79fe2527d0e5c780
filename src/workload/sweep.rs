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
pub type SweepCaseSpec = (String, SweepParams, Workload);

/// The swept parameters of one case, parsed once (when the sweep expands, or when a
/// result is read): the keys that analysis pairs or orders cases by, typed, and the
/// others as written. Serialised as one object of workload key -> value text
/// (`{"fixed_buffers": "true", "threads": "2"}`), as results have always held it; a
/// size is written in its canonical form (`64K` for `64k`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepParams {
    /// Workers: thread scaling orders cases by it.
    pub threads: Option<usize>,
    /// Private or shared folios: the shared-folio ratio pairs cases by it.
    pub share: Option<Share>,
    /// Registered buffers or per-I/O pins: the pin cost pairs cases by it.
    pub fixed_buffers: Option<bool>,
    /// Block size: the pin cost counts pages per I/O by it.
    pub bs: Option<Size>,
    /// Every other swept key, value as written.
    pub other: BTreeMap<String, String>,
}

/// One of the keys a sweep case holds typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedSweepKey {
    Threads,
    Share,
    FixedBuffers,
    Bs,
}

impl TypedSweepKey {
    pub fn name(self) -> &'static str {
        match self {
            TypedSweepKey::Threads => "threads",
            TypedSweepKey::Share => "share",
            TypedSweepKey::FixedBuffers => "fixed_buffers",
            TypedSweepKey::Bs => "bs",
        }
    }
}

impl SweepParams {
    /// Every swept key with its value's text, sorted by key (the label's order).
    pub fn texts(&self) -> BTreeMap<String, String> {
        let mut all = self.other.clone();
        let typed = [
            (TypedSweepKey::Threads, self.threads.map(|t| t.to_string())),
            (TypedSweepKey::Share, self.share.map(|s| s.to_string())),
            (
                TypedSweepKey::FixedBuffers,
                self.fixed_buffers.map(|f| f.to_string()),
            ),
            (TypedSweepKey::Bs, self.bs.map(|b| b.to_string())),
        ];
        for (key, value) in typed {
            if let Some(v) = value {
                all.insert(key.name().to_string(), v);
            }
        }
        all
    }

    /// How many keys were swept.
    pub fn len(&self) -> usize {
        self.other.len()
            + usize::from(self.threads.is_some())
            + usize::from(self.share.is_some())
            + usize::from(self.fixed_buffers.is_some())
            + usize::from(self.bs.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `key=value ...` of every swept key but `except`: cases with the same such label
    /// differ only in `except`.
    pub fn label_without(&self, except: TypedSweepKey) -> String {
        self.texts()
            .into_iter()
            .filter(|(k, _)| k != except.name())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Files one key and its value: typed where the key is one of those held typed and
    /// the value reads as its type, as written otherwise.
    fn insert(&mut self, key: &str, text: &str) {
        let value = text.trim();
        match key {
            "threads" if value.parse::<usize>().is_ok() => self.threads = value.parse().ok(),
            "share" if value == "private" => self.share = Some(Share::Private),
            "share" if value == "shared" => self.share = Some(Share::Shared),
            "fixed_buffers" if value.parse::<bool>().is_ok() => {
                self.fixed_buffers = value.parse().ok()
            }
            "bs" if value.parse::<Size>().is_ok() => self.bs = value.parse().ok(),
            _ => {
                self.other.insert(key.to_string(), text.to_string());
            }
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for SweepParams {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut params = SweepParams::default();
        for (k, v) in pairs {
            params.insert(k.as_ref(), v.as_ref());
        }
        params
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for SweepParams {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl Serialize for SweepParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.texts().serialize(s)
    }
}

impl<'de> Deserialize<'de> for SweepParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// The cases of a workload: (label, params, resolved workload) for every combination of
/// its sweep, or the workload itself when it has none. This is the workload's one
/// validation: the workload and every case are checked here, and every entry point (run,
/// kernels, bisect) goes through it.
pub fn sweep_cases(w: &Workload) -> Result<Vec<SweepCaseSpec>, String> {
    w.validate()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_params_are_typed_once_and_written_back_as_text() {
        let p: SweepParams = [
            ("threads", "4"),
            ("share", "shared"),
            ("fixed_buffers", "true"),
            ("bs", "64k"),
            ("buffer", "thp"),
        ]
        .into();
        assert_eq!(p.threads, Some(4));
        assert_eq!(p.share, Some(Share::Shared));
        assert_eq!(p.fixed_buffers, Some(true));
        assert_eq!(p.bs, Some(Size(65536)));
        assert_eq!(p.other.len(), 1);
        assert_eq!(p.len(), 5);
        assert_eq!(
            p.label_without(TypedSweepKey::Share),
            "bs=64K buffer=thp fixed_buffers=true threads=4"
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"bs":"64K","buffer":"thp","fixed_buffers":"true","share":"shared","threads":"4"}"#
        );
        assert_eq!(serde_json::from_str::<SweepParams>(&json).unwrap(), p);
        // A value that does not read as its key's type stays as written.
        let odd: SweepParams = [("threads", "many")].into();
        assert_eq!(odd.threads, None);
        assert_eq!(odd.texts().get("threads").map(String::as_str), Some("many"));
    }

    #[test]
    fn expanded_cases_carry_typed_params() {
        let w = Workload {
            sweep: [
                (
                    "threads".to_string(),
                    vec![SweepValue::Int(1), SweepValue::Int(2)],
                ),
                (
                    "share".to_string(),
                    vec![SweepValue::Text("private".into())],
                ),
            ]
            .into(),
            ..Workload::default()
        };
        let cases = sweep_cases(&w).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].0, "share=private threads=2");
        assert_eq!(cases[1].1.threads, Some(2));
        assert_eq!(cases[1].1.share, Some(Share::Private));
    }
}
