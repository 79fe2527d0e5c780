#!/usr/bin/env bash
# observer-cost.sh — what each of thpbench's collectors costs the I/O it measures.
#
# For each engine (dio, uring) and I/O size (4 KiB random reads, 10 MiB sequential
# reads), every round runs the same job once with every collector off and once with each
# collector on alone, and once with the defaults (everything on), in an order that
# rotates from round to round so that drift in the machine's load falls on every
# configuration alike. Per configuration it prints the cost per I/O: the mean of the
# paired differences (that round's time per I/O minus the same round's all-off time per
# I/O) with its 95% interval (Student's t), and the same as a share of the all-off time.
#
# Collectors (each a switch of `thpbench run`):
#   perf    per-thread counters read around the loop (task-clock, switches, faults;
#           uring: io-wq threads' CPU, punt counts on CPU-wide filtered tracepoints)
#   lock    lock:contention_* tracer and the GUP slow-path tracer (one switch)
#   verify  verify at its default level (pages: stamping writes, poisoning and checking
#           the header of every base page read)
#   verify-full  verify checking every byte read (--verify-level full)
#   default all of them, as a run without flags has them
# The timeline (per-100 ms histograms) is always on: its cost is the histogram record,
# measured by `cargo bench --bench harness`. Action confirmation runs only with
# disturbers (none here).
#
# Two figures per configuration: `io` uses the result's ops_per_sec (the I/O's own
# rate: time in the calls for dio, busy time for uring), `wall` uses ops over the
# measured duration (what the harness as a whole managed).
#
# Usage: scripts/observer-cost.sh [TARGET]
# TARGET: a block device or file to read (only read, verify off then); default: a zram
# device per run (thpbench's zram:SIZE target, root), stamped, so verify can run.
# Environment: ROUNDS (5), SECONDS_PER_RUN (2), CPU (0), ENGINES ("dio uring"),
# SIZES ("4k 10m"), IODEPTH (uring, 16), CONFIGS ("perf lock verify verify-full default"),
# THPBENCH (default: target/release/thpbench, built here).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-2}
CPU=${CPU:-0}
ENGINES=${ENGINES:-"dio uring"}
SIZES=${SIZES:-"4k 10m"}
IODEPTH=${IODEPTH:-16}
CONFIGS=${CONFIGS:-"perf lock verify verify-full default"}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

if [ -z "${THPBENCH:-}" ]; then
    (cd "$here" && cargo build --release -q)
    THPBENCH="$here/target/release/thpbench"
fi
target=${1:-zram:512M}
if [ "${1:-}" != "" ]; then
    case " $CONFIGS " in
    *" verify "* | *" verify-full "* | *" default "*)
        echo "with a TARGET of your own verify would write it: CONFIGS without verify and default only" >&2
        exit 2
        ;;
    esac
fi

# The switches that turn each configuration's collectors off.
flags_for() {
    case $1 in
    off) echo "--no-perf --no-lock-contention --no-verify" ;;
    perf) echo "--no-lock-contention --no-verify" ;;
    lock) echo "--no-perf --no-verify" ;;
    verify) echo "--no-perf --no-lock-contention" ;;
    verify-full) echo "--no-perf --no-lock-contention --verify-level full" ;;
    default) echo "" ;;
    *)
        echo "unknown configuration $1 (perf, lock, verify, verify-full, default)" >&2
        exit 2
        ;;
    esac
}

run_one() { # engine size config -> appends "io_ns wall_ns" per I/O to $work/<cell>.<config>
    local engine=$1 size=$2 config=$3 rw=randread extra=() off
    [ "$size" = 10m ] && rw="read"
    [ "$engine" = uring ] && extra=(--engine uring --iodepth "$IODEPTH")
    read -r -a off <<<"$(flags_for "$config")"
    rm -f "$work/r.json" # thpbench never overwrites a result
    "$THPBENCH" -q run --target "$target" --bs "$size" --rw "$rw" --buffer thp --cpus "$CPU" \
        --duration "${SECS}s" --warmup 500ms "${extra[@]}" "${off[@]}" \
        -o "$work/r.json" >/dev/null
    jq -r '.runs[0] | "\(1e9 / .ops_per_sec) \(.duration_ns / .ops)"' "$work/r.json" \
        >>"$work/$engine-$size.$config"
}

echo "observer cost: $ROUNDS rounds of ${SECS}s per configuration, CPU $CPU, target $target, $(uname -r), $("$THPBENCH" --version)"
for engine in $ENGINES; do
    for size in $SIZES; do
        read -r -a configs <<<"off $CONFIGS"
        for ((r = 0; r < ROUNDS; r++)); do
            # Rotate the order by one each round.
            n=${#configs[@]}
            for ((k = 0; k < n; k++)); do
                run_one "$engine" "$size" "${configs[$(((k + r) % n))]}"
            done
        done
    done
done

python3 - "$work" "$ENGINES" "$SIZES" "$CONFIGS" "$IODEPTH" <<'PY'
import math, sys
work, engines, sizes, configs, qd = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5]
# Student's t, two-sided 95%, by degrees of freedom.
T = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
     10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}
def t95(df):
    return T.get(df) or T[max(k for k in T if k <= df)] if df >= 1 else float("nan")
def load(path):
    with open(path) as f:
        return [tuple(map(float, l.split())) for l in f if l.strip()]
def fmt_ns(x):
    return f"{x / 1000:.2f} us" if abs(x) >= 1000 else f"{x:.0f} ns"
print()
print("| engine | I/O | collector | all off, per I/O | cost per I/O (io), 95% CI | share | cost per I/O (wall), 95% CI | share |")
print("|---|---|---|--:|--:|--:|--:|--:|")
for e in engines:
    for s in sizes:
        cell = f"{e}-{s}"
        off = load(f"{work}/{cell}.off")
        for c in configs:
            on = load(f"{work}/{cell}.{c}")
            cols = []
            for j in (0, 1):
                d = [a[j] - b[j] for a, b in zip(on, off)]
                n = len(d)
                m = sum(d) / n
                sd = math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1)) if n > 1 else float("nan")
                h = t95(n - 1) * sd / math.sqrt(n)
                base = sum(b[j] for b in off) / n
                cols.append(f"{fmt_ns(m)} ({fmt_ns(m - h)} .. {fmt_ns(m + h)}) | {100 * m / base:+.1f}% ({100 * (m - h) / base:+.1f} .. {100 * (m + h) / base:+.1f})")
            io = "4 KiB randread" if s == "4k" else "10 MiB read"
            if e == "uring":
                io += f" qd{qd}"
            base = sum(b[0] for b in off) / len(off)
            print(f"| {e} | {io} | {c} | {fmt_ns(base)} | {cols[0]} | {cols[1]} |")
PY
