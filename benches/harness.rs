//! `cargo bench`: what thpbench's own bookkeeping costs per operation, side by side with
//! the cheapest possible loop, in one run (ratios, not absolute timings, are the point:
//! the machines are shared and noisy).
//!
//! - clock: two CLOCK_MONOTONIC reads, the floor of timing any operation
//! - record: the same plus Recorder::record (HdrHistogram + 100 ms tick rotation)
//! - gaps: the same plus the stall watch's per-op part (Gaps::completed)
//! - verify 4K: checking one 4 KiB block against the pattern, vs memcmp of 4 KiB, and the
//!   pages level (one header per 4 KiB page) against the full check
//! - stamp 4K: stamping one 4 KiB block (every verified write does it on the submitting
//!   thread), vs filling 4 KiB with one byte (memset)
//!
//! A 4 KiB O_DIRECT read from zram takes about 1.6-2.5 us here, so the harness cost per
//! op should stay well below 100 ns to keep thpbench ahead of fio (about 3 us per op).

use std::hint::black_box;
use std::time::Instant;

use thpbench::measure::histogram::Recorder;
use thpbench::measure::now_ns;
use thpbench::verify;

const N: u64 = 5_000_000;

fn per_op(label: &str, n: u64, f: impl FnMut(u64)) -> f64 {
    let mut f = f;
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("{label:<34} {ns:>8.1} ns/op");
    ns
}

fn main() {
    // `cargo bench -- --quick` (or any filter args) are accepted and ignored.
    println!("thpbench harness cost, {N} iterations each");
    let clock = per_op("clock pair", N, |_| {
        let a = now_ns();
        black_box(now_ns() - a);
    });
    let mut rec = Recorder::new(now_ns());
    let record = per_op("clock pair + Recorder::record", N, |_| {
        let a = now_ns();
        let b = now_ns();
        rec.record(b, b - a + 1500, 4096);
    });
    rec.finish();
    assert_eq!(rec.ops, N, "every record is counted");
    println!(
        "  recorder overhead over the clock pair: {:.1} ns/op ({:.2}x)",
        record - clock,
        record / clock
    );
    let mut rec = Recorder::new(now_ns());
    let mut gaps = thpbench::measure::stall::Gaps::new(now_ns());
    let with_gaps = per_op("clock pair + record + Gaps", N, |_| {
        let a = now_ns();
        let b = now_ns();
        rec.record(b, b - a + 1500, 4096);
        gaps.completed(b);
    });
    black_box(&gaps);
    println!(
        "  stall watch overhead over record: {:.1} ns/op ({:.3}x)",
        with_gaps - record,
        with_gaps / record
    );

    let mut block = vec![0u8; 4096];
    let st = verify::Stamp {
        seed: 7,
        nonce: 0x5eed,
        generation: 3,
    };
    verify::stamp(&mut block, 1 << 20, &st);
    let copy = block.clone();
    let check = per_op("verify::check 4 KiB", N / 10, |_| {
        black_box(verify::check(black_box(&block), 1 << 20, &st));
    });
    let memcmp = per_op("memcmp 4 KiB (reference)", N / 10, |_| {
        black_box(black_box(&block[..]) == black_box(&copy[..]));
    });
    println!(
        "  verify: {:.1} GB/s, {:.2}x the cost of a plain memcmp",
        4096.0 / check,
        check / memcmp
    );
    let mut out = vec![0u8; 4096];
    let stamp = per_op("verify::stamp 4 KiB", N / 10, |_| {
        verify::stamp(black_box(&mut out), 1 << 20, &st);
        black_box(&out);
    });
    assert_eq!(
        verify::check(&out, 1 << 20, &st).0,
        0,
        "the benchmarked stamp checks clean"
    );
    let fill = per_op("memset 4 KiB (reference)", N / 10, |i| {
        black_box(&mut out).fill(i as u8);
        black_box(&out);
    });
    println!(
        "  stamp: {:.1} GB/s, {:.2}x the cost of a memset",
        4096.0 / stamp,
        stamp / fill
    );
    let pages = per_op("verify pages level, 4 KiB", N / 10, |_| {
        black_box(verify::check_headers(black_box(&block), 1 << 20, &st, 4096));
    });
    println!(
        "  pages level: {:.3}x the cost of the full check",
        pages / check
    );
}
