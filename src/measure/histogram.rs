//! Latency histograms. Each worker records into its own HdrHistogram (1 ns to 60 s, 3
//! significant figures); every 100 ms it folds the interval into its total and keeps the
//! interval in compact V2 form, so that after the run the intervals of all threads can
//! be merged exactly into the timeline and the per-second interval log.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::result::{IntervalHistogram, LatencySummary, TimelinePoint};

pub const LOWEST_NS: u64 = 1;
pub const HIGHEST_NS: u64 = 60_000_000_000;
pub const SIGFIG: u8 = 3;
/// Timeline resolution.
pub const TICK_NS: u64 = 100_000_000;
/// Interval-log resolution.
pub const LOG_INTERVAL_NS: u64 = 1_000_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGFIG).expect("valid histogram bounds")
}

/// What one worker recorded in one 100 ms tick.
#[derive(Debug, Clone)]
pub struct Tick {
    pub index: u64,
    pub ops: u64,
    pub bytes: u64,
    /// The tick's histogram, V2 (uncompressed: cheap to make in the worker).
    pub v2: Vec<u8>,
}

/// A worker's recorder. `record` is the only call in the hot loop; it does not allocate.
pub struct Recorder {
    epoch_ns: u64,
    tick_index: u64,
    tick_end_ns: u64,
    tick: Histogram<u64>,
    tick_ops: u64,
    tick_bytes: u64,
    pub total: Histogram<u64>,
    pub ops: u64,
    pub bytes: u64,
    pub ticks: Vec<Tick>,
    serializer: V2Serializer,
    last_tick_p99: u64,
}

impl Recorder {
    pub fn new(epoch_ns: u64) -> Recorder {
        Recorder {
            epoch_ns,
            tick_index: 0,
            tick_end_ns: epoch_ns + TICK_NS,
            tick: new_histogram(),
            tick_ops: 0,
            tick_bytes: 0,
            total: new_histogram(),
            ops: 0,
            bytes: 0,
            ticks: Vec::with_capacity(1024),
            serializer: V2Serializer::new(),
            last_tick_p99: 0,
        }
    }

    /// Records one operation that ended at `end_ns` and took `latency_ns`.
    #[inline]
    pub fn record(&mut self, end_ns: u64, latency_ns: u64, bytes: u64) {
        if end_ns >= self.tick_end_ns {
            self.rotate(end_ns);
        }
        // Values above the range are clamped, not lost: a 60 s+ op is its own alarm.
        self.tick.saturating_record(latency_ns.max(LOWEST_NS));
        self.tick_ops += 1;
        self.tick_bytes += bytes;
    }

    /// True when the last `record` closed a tick: the caller may publish progress.
    #[inline]
    pub fn ticks_closed(&self) -> usize {
        self.ticks.len()
    }

    #[cold]
    fn rotate(&mut self, now_ns: u64) {
        self.close_tick();
        self.tick_index = (now_ns - self.epoch_ns) / TICK_NS;
        self.tick_end_ns = self.epoch_ns + (self.tick_index + 1) * TICK_NS;
    }

    fn close_tick(&mut self) {
        if self.tick_ops == 0 {
            return;
        }
        let mut v2 = Vec::with_capacity(256);
        self.serializer
            .serialize(&self.tick, &mut v2)
            .expect("serializing into a Vec cannot fail");
        self.total.add(&self.tick).expect("same bounds");
        self.last_tick_p99 = self.tick.value_at_quantile(0.99);
        self.ticks.push(Tick {
            index: self.tick_index,
            ops: self.tick_ops,
            bytes: self.tick_bytes,
            v2,
        });
        self.ops += self.tick_ops;
        self.bytes += self.tick_bytes;
        self.tick.reset();
        self.tick_ops = 0;
        self.tick_bytes = 0;
    }

    /// Closes the last tick; call once after the loop.
    pub fn finish(&mut self) {
        self.close_tick();
    }

    /// p99 of the last closed tick, for progress display.
    pub fn last_tick_p99(&self) -> u64 {
        self.last_tick_p99
    }
}

pub fn decode_v2(bytes: &[u8]) -> Option<Histogram<u64>> {
    Deserializer::new().deserialize(&mut &bytes[..]).ok()
}

pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        min: h.min(),
        mean: h.mean(),
        stddev: h.stdev(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        p9999: h.value_at_quantile(0.9999),
        max: h.max(),
    }
}

/// V2 + DEFLATE, base64: the form results carry.
pub fn encode_compressed(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode_compressed(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| anyhow::anyhow!("histogram is not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| anyhow::anyhow!("histogram does not decode: {e:?}"))
}

/// Everything derived from the workers' ticks after a run.
pub struct Merged {
    pub total: Histogram<u64>,
    pub timeline: Vec<TimelinePoint>,
    pub intervals: Vec<IntervalHistogram>,
}

/// Merges the ticks of all workers: exact per-tick percentiles across threads, and one
/// interval histogram per second.
pub fn merge(recorders: &[&Recorder]) -> Merged {
    let mut total = new_histogram();
    for r in recorders {
        total.add(&r.total).expect("same bounds");
    }
    let mut by_tick: BTreeMap<u64, (u64, u64, Histogram<u64>)> = BTreeMap::new();
    for r in recorders {
        for t in &r.ticks {
            let h = decode_v2(&t.v2).expect("a tick we serialized decodes");
            let e = by_tick
                .entry(t.index)
                .or_insert_with(|| (0, 0, new_histogram()));
            e.0 += t.ops;
            e.1 += t.bytes;
            e.2.add(&h).expect("same bounds");
        }
    }
    let mut timeline = Vec::with_capacity(by_tick.len());
    let mut seconds: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    for (index, (ops, bytes, h)) in &by_tick {
        timeline.push(TimelinePoint {
            t_ms: index * TICK_NS / 1_000_000,
            ops: *ops,
            bytes: *bytes,
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
            disturb_actions: BTreeMap::new(),
        });
        let sec = index * TICK_NS / LOG_INTERVAL_NS;
        seconds
            .entry(sec)
            .or_insert_with(new_histogram)
            .add(h)
            .expect("same bounds");
    }
    let intervals = seconds
        .iter()
        .map(|(sec, h)| IntervalHistogram {
            start_ns: sec * LOG_INTERVAL_NS,
            duration_ns: LOG_INTERVAL_NS,
            histogram: encode_compressed(h),
        })
        .collect();
    Merged {
        total,
        timeline,
        intervals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_counts_every_op_of_every_thread() {
        let mut a = Recorder::new(0);
        let mut b = Recorder::new(0);
        for i in 0..1000u64 {
            a.record(i * 1_000_000, 1000 + i, 4096);
            b.record(i * 1_000_000 + 500, 50_000, 4096);
        }
        a.finish();
        b.finish();
        assert_eq!(a.ops, 1000);
        let m = merge(&[&a, &b]);
        assert_eq!(m.total.len(), 2000);
        assert_eq!(m.timeline.iter().map(|t| t.ops).sum::<u64>(), 2000);
        // 1000 ops 1 ms apart: 10 ticks of 100 ms, 1 s of interval log.
        assert_eq!(m.timeline.len(), 10);
        assert_eq!(m.intervals.len(), 1);
        let sec = decode_compressed(&m.intervals[0].histogram).unwrap();
        assert_eq!(sec.len(), 2000);
        // Half the ops take 50 us: the merged p99 is there, thread a's alone is not.
        assert!(m.timeline[0].p99_ns >= 49_000, "{:?}", m.timeline[0]);
        assert!(a.total.value_at_quantile(0.99) < 3000);
    }

    #[test]
    fn summary_matches_known_values() {
        let mut h = new_histogram();
        for v in 1..=100u64 {
            h.record(v * 1000).unwrap();
        }
        let s = summarize(&h);
        assert_eq!(s.count, 100);
        assert_eq!(s.min, 1000);
        assert!((s.p50 as i64 - 50_000).abs() <= 50);
        assert!((s.p99 as i64 - 99_000).abs() <= 100);
        assert!((s.max as i64 - 100_000).abs() <= 100);
    }

    #[test]
    fn compressed_round_trip_is_exact() {
        let mut h = new_histogram();
        for v in [1u64, 10, 1000, 123_456, 59_000_000_000] {
            h.record(v).unwrap();
        }
        let back = decode_compressed(&encode_compressed(&h)).unwrap();
        assert_eq!(back, h);
    }
}
