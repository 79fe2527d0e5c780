//! The HdrHistogram interval log (`.hlog`), as Java's `HistogramLogWriter` writes it:
//!
//! ```text
//! #[Logged with thpbench 0.1.0]
//! #[Histogram log format version 1.3]
//! #[StartTime: 1735787045.000 (seconds since epoch), Thu Jan 02 03:04:05 UTC 2025]
//! #[BaseTime: 1735787045.000 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! 0.000,1.000,14.934,HISTFAAAA...
//! ```
//!
//! One line per second of each run, from `runs[].interval_histograms`: start and length in
//! seconds since the measured phase began, the interval's max in ms (Java's default
//! max-value ratio of 10^6 for nanoseconds), and the histogram, V2 + DEFLATE in base64.
//! With several runs every line carries `Tag=run<N>` (HdrHistogram's log tools select one
//! with `-tag`). Readable by `HistogramLogProcessor` and by the `hdrhistogram` crate's
//! `IntervalLogIterator`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::{java_fixed, Exporter, Selection};
use crate::measure::histogram::{decode_compressed, encode_compressed};

/// Java's `HistogramLogWriter.HISTOGRAM_LOG_FORMAT_VERSION`.
pub const LOG_FORMAT_VERSION: &str = "1.3";
/// ns -> ms for the Interval_Max column, as Java's default.
pub const MAX_VALUE_UNIT_RATIO: f64 = 1_000_000.0;

pub struct Hlog;

impl Exporter for Hlog {
    fn export(&self, sel: &Selection, source: &Path, out: &mut dyn Write) -> Result<()> {
        let r = sel.result;
        let mut s = format!(
            "#[Logged with {} {}: kernel {}, workload {}]\n",
            r.tool.name, r.tool.version, r.system.kernel.release, r.workload.name
        );
        s.push_str(&format!(
            "#[Histogram log format version {LOG_FORMAT_VERSION}]\n"
        ));
        match parse_rfc3339(&r.started_at) {
            Some(start) => {
                s.push_str(&format!(
                    "#[StartTime: {} (seconds since epoch), {}]\n",
                    java_fixed(start, 3),
                    java_date(start as i64)
                ));
                s.push_str(&format!(
                    "#[BaseTime: {} (seconds since epoch)]\n",
                    java_fixed(start, 3)
                ));
            }
            None => s.push_str(&format!(
                "#[started_at `{}` is not RFC 3339: timestamps are seconds since each run began]\n",
                r.started_at
            )),
        }
        s.push_str(
            "#[Interval timestamps: seconds since the run's measured phase began (BaseTime is the invocation's start, before setup and warm-up); Interval_Max in ms]\n",
        );
        s.push_str(
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        );
        for sel_run in &sel.runs {
            let tag = sel
                .is_several()
                .then(|| tag_for(sel_run.case, sel_run.run.repeat));
            for iv in &sel_run.run.interval_histograms {
                let h = decode_compressed(&iv.histogram).with_context(|| {
                    format!(
                        "{}: interval histogram at {} ns of run {} does not decode",
                        source.display(),
                        iv.start_ns,
                        sel_run.run.repeat
                    )
                })?;
                if let Some(t) = &tag {
                    s.push_str(&format!("Tag={t},"));
                }
                let max = if h.is_empty() { 0 } else { h.max() };
                s.push_str(&format!(
                    "{},{},{},{}\n",
                    java_fixed(iv.start_ns as f64 / 1e9, 3),
                    java_fixed(iv.duration_ns as f64 / 1e9, 3),
                    java_fixed(max as f64 / MAX_VALUE_UNIT_RATIO, 3),
                    // Re-encoded rather than copied: what we write is what we checked.
                    encode_compressed(&h)
                ));
            }
        }
        out.write_all(s.as_bytes())?;
        Ok(())
    }
}

/// A tag has no commas or spaces: `run0`, or `threads=4_run0` for a sweep case.
fn tag_for(case: Option<&str>, repeat: usize) -> String {
    let run = format!("run{repeat}");
    match case {
        Some(c) => format!(
            "{}_{run}",
            c.replace(|ch: char| ch == ',' || ch.is_whitespace(), "_")
        ),
        None => run,
    }
}

/// `2025-01-02T03:04:05Z` (optionally with fractional seconds or a +hh:mm offset) to
/// seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let pos = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':')?;
        (
            c,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    };
    let mut t = clock.split(':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: f64 = t.next()?.parse().ok()?;
    if t.next().is_some() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 - offset_secs) as f64 + second)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Java's `Date.toString()` in UTC: `Thu Jan 02 03:04:05 UTC 2025`.
fn java_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let (year, month, day, hour, minute, second) = crate::util::civil_from_unix(secs.max(0) as u64);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        hour,
        minute,
        second,
        year
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::select;
    use crate::measure::histogram::new_histogram;
    use crate::result::IntervalHistogram;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    use std::time::Duration;

    #[test]
    fn dates_convert_both_ways() {
        let t = parse_rfc3339("2025-01-02T03:04:05Z").unwrap();
        assert_eq!(t, 1_735_787_045.0);
        assert_eq!(java_date(t as i64), "Thu Jan 02 03:04:05 UTC 2025");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.5Z"), Some(0.5));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0.0));
        assert_eq!(java_date(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn hlog_round_trips_through_the_hdrhistogram_reader() {
        let mut r = crate::test_support::synthetic("6.1.0", &[100.0, 100.0]);
        let mut originals = Vec::new();
        for run in &mut r.runs {
            for sec in 0..3u64 {
                let mut h = new_histogram();
                for v in 1..=(100 * (sec + 1)) {
                    h.record(v * 1000 + run.repeat as u64).unwrap();
                }
                run.interval_histograms.push(IntervalHistogram {
                    start_ns: sec * 1_000_000_000,
                    duration_ns: 1_000_000_000,
                    histogram: encode_compressed(&h),
                });
                originals.push((run.repeat, sec, h));
            }
        }
        let src = Path::new("r.json");
        let sel = select(&r, src, None, None).unwrap();
        let mut out = Vec::new();
        Hlog.export(&sel, src, &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("#[StartTime: 1735787045.000 (seconds since epoch), Thu Jan 02 03:04:05 UTC 2025]\n"), "{text}");
        assert!(text.contains("\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"));

        let mut base_time = None;
        let mut intervals = Vec::new();
        for entry in IntervalLogIterator::new(&out) {
            match entry.expect("every line parses") {
                LogEntry::BaseTime(t) => base_time = Some(t),
                LogEntry::StartTime(_) => {}
                LogEntry::Interval(iv) => intervals.push((
                    iv.tag().map(|t| t.as_str().to_string()),
                    iv.start_timestamp(),
                    iv.duration(),
                    iv.max(),
                    iv.encoded_histogram().to_string(),
                )),
            }
        }
        assert_eq!(base_time, Some(Duration::from_secs(1_735_787_045)));
        assert_eq!(intervals.len(), originals.len());
        for ((tag, start, len, max, encoded), (repeat, sec, h)) in intervals.iter().zip(&originals)
        {
            assert_eq!(tag.as_deref(), Some(format!("run{repeat}").as_str()));
            assert_eq!(*start, Duration::from_secs(*sec));
            assert_eq!(*len, Duration::from_secs(1));
            assert!((max - h.max() as f64 / 1e6).abs() < 0.0005, "{max}");
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
                .unwrap();
            let back: hdrhistogram::Histogram<u64> =
                Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
            assert_eq!(&back, h);
        }
        // One run alone: no tags.
        let sel = select(&r, src, None, Some(1)).unwrap();
        let mut out = Vec::new();
        Hlog.export(&sel, src, &mut out).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("Tag="));
    }
}
