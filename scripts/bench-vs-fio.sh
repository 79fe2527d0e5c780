#!/usr/bin/env bash
# bench-vs-fio.sh [TARGET] — fio and thpbench side by side, alternating, on the same jobs:
#   1. 4 KiB random reads, psync, O_DIRECT, iodepth 1, one thread pinned to CPU 0
#   2. 10 MiB sequential reads, same setup
#   3. io_uring: fio's io_uring engine against thpbench's uring engine, random reads of
#      4 KiB and 10 MiB at queue depth 1 and 16, with per-I/O pins and with registered
#      buffers (fio --fixedbufs, thpbench --fixed-buffers), registered files, 4 KiB-page
#      buffers on both sides (fio's buffer is not THP-backed)
# TARGET: a block device or file to read (it is only read). Default: a 1 GiB zram device
# made for the benchmark (root) and removed afterwards.
# Prints ops/s, p50 and p99 (median of the rounds) for both tools and the ratio
# thpbench/fio, of the medians and per round (scripts/paired-ratio.py: the geometric mean
# of the per-round ratios with its 95% interval; fio runs first in odd rounds, thpbench
# in even ones). The p50s are not like for like with io_uring: thpbench's latency spans the
# io_uring_enter that submits an I/O up to the reap of its completion; fio's clat starts
# when the submitting io_uring_enter has returned (engines/io_uring.c,
# fio_ioring_queued), so it leaves the submission out. Environment: ROUNDS (default 3), SECONDS_PER_RUN (default 5), CPU (0),
# JOBS (all, psync or uring; default all), COLLECTORS (default: thpbench's default
# collectors, the thread counters and the lock and GUP slow-path tracers, on, as a run
# without flags has them; `off`: --no-perf --no-lock-contention), THPBENCH (default:
# target/release/thpbench, built here). Verify is off on both
# sides: the target is only read (fio does not verify by default either).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-5}
CPU=${CPU:-0}
JOBS=${JOBS:-all}
COLLECTORS=${COLLECTORS:-default}
case $COLLECTORS in
default) collector_flags=() ;;
off) collector_flags=(--no-perf --no-lock-contention) ;;
*) echo "COLLECTORS must be default or off, not $COLLECTORS" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/scratch.sh
. "$here/scripts/lib/scratch.sh"
scratch_init
work=$(scratch_dir)

if ! command -v fio >/dev/null; then
    echo "installing fio (apt-get)..." >&2
    apt-get install -y -qq fio >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq fio; }
fi
if [ -z "${THPBENCH:-}" ]; then
    (cd "$here" && cargo build --release -q)
    THPBENCH="$here/target/release/thpbench"
fi
thpbench=$THPBENCH

target=${1:-}
if [ -z "$target" ]; then
    [ "$(id -u)" = 0 ] || { echo "the default zram target needs root; pass a TARGET to read instead" >&2; exit 1; }
    random_zram_add
    target=$(random_zram_dev)
fi
echo "target: $target, $ROUNDS rounds of ${SECS}s per tool and job, CPU $CPU, $(uname -r), thpbench collectors: $COLLECTORS, $("$thpbench" --version)"

run_fio() { # bs rw [engine iodepth fixedbufs] -> "ops p50_ns p99_ns"
    local engine=${3:-psync} qd=${4:-1} fixed=${5:-0} extra=()
    if [ "$engine" = io_uring ]; then
        extra=(--fixedbufs="$fixed" --registerfiles=1)
    fi
    rm -f "$work/fio.json" # a fio that wrote nothing must not leave the last round's figures
    fio --name=j --filename="$target" --direct=1 --ioengine="$engine" --iodepth="$qd" --numjobs=1 \
        --bs="$1" --rw="$2" --time_based --runtime="$SECS" --cpus_allowed="$CPU" \
        --size=1G "${extra[@]}" --output-format=json --output="$work/fio.json" >/dev/null
    python3 - "$work/fio.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]["read"]
p = j["clat_ns"]["percentile"]
print(j["iops"], p["50.000000"], p["99.000000"])
PY
}

run_thpbench() { # bs rw buffer [engine iodepth fixed] -> "ops p50_ns p99_ns"
    local engine=${4:-dio} qd=${5:-1} fixed=${6:-0} extra=()
    if [ "$engine" = uring ]; then
        extra=(--engine uring --iodepth "$qd")
        [ "$fixed" = 1 ] && extra+=(--fixed-buffers)
    fi
    rm -f "$work/t.json" # thpbench never overwrites a result
    "$thpbench" -q run --target "$target" --bs "$1" --rw "$2" --buffer "$3" --cpus "$CPU" \
        --duration "${SECS}s" --warmup 0s --no-verify "${collector_flags[@]}" --size 1G \
        "${extra[@]}" -o "$work/t.json" >/dev/null
    python3 - "$work/t.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
# The harness's wall rate, as fio's IOPS is (ops_per_sec is the I/O's own rate).
print(r["ops"] / r["duration_ns"] * 1e9, r["latency_ns"]["p50"], r["latency_ns"]["p99"])
PY
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

job() { # label bs fio_rw thp_rw buffer [fio_engine thp_engine iodepth fixed]
    local label=$1 bs=$2 frw=$3 trw=$4 buf=$5
    local fengine=${6:-psync} tengine=${7:-dio} qd=${8:-1} fixed=${9:-0}
    : > "$work/f" ; : > "$work/t" ; : > "$work/pairs"
    # fio first in odd rounds, thpbench first in even ones: an order effect (a device
    # or cache warmed by the first) falls on both tools alike.
    local fo to
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            run_fio "$bs" "$frw" "$fengine" "$qd" "$fixed" > "$work/fo"
            run_thpbench "$bs" "$trw" "$buf" "$tengine" "$qd" "$fixed" > "$work/to"
        else
            run_thpbench "$bs" "$trw" "$buf" "$tengine" "$qd" "$fixed" > "$work/to"
            run_fio "$bs" "$frw" "$fengine" "$qd" "$fixed" > "$work/fo"
        fi
        fo=$(<"$work/fo") to=$(<"$work/to")
        echo "$fo" >> "$work/f"
        echo "$to" >> "$work/t"
        echo "${fo%% *} ${to%% *}" >> "$work/pairs"
    done
    local f_ops f_p50 f_p99 t_ops t_p50 t_p99
    f_ops=$(cut -d' ' -f1 "$work/f" | median); f_p50=$(cut -d' ' -f2 "$work/f" | median); f_p99=$(cut -d' ' -f3 "$work/f" | median)
    t_ops=$(cut -d' ' -f1 "$work/t" | median); t_p50=$(cut -d' ' -f2 "$work/t" | median); t_p99=$(cut -d' ' -f3 "$work/t" | median)
    printf '%-34s %12s %10s %10s\n' "$label" "ops/s" "p50 ns" "p99 ns"
    printf '%-34s %12.0f %10.0f %10.0f\n' "  fio $(fio --version)" "$f_ops" "$f_p50" "$f_p99"
    printf '%-34s %12.0f %10.0f %10.0f\n' "  thpbench ($buf buffer)" "$t_ops" "$t_p50" "$t_p99"
    python3 "$here/scripts/paired-ratio.py" "$work/pairs" fio thpbench
}

if [ "$JOBS" != uring ]; then
    job "4k randread psync qd1" 4k randread randread 4k
    job "10M read psync qd1" 10M read read thp
fi
if [ "$JOBS" != psync ]; then
    for bs in 4k 10M; do
        for qd in 1 16; do
            for fixed in 0 1; do
                pins=$([ "$fixed" = 1 ] && echo "registered" || echo "per-I/O pins")
                job "$bs randread io_uring qd$qd $pins" "$bs" randread randread 4k io_uring uring "$qd" "$fixed"
            done
        done
    done
fi
