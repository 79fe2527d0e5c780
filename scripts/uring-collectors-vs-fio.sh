#!/usr/bin/env bash
# uring-collectors-vs-fio.sh — one io_uring job three ways in every round: fio's io_uring
# engine, thpbench's uring engine with its default collectors, and thpbench with every
# collector off (--no-perf --no-lock-contention); verify off on both sides (the device is
# only read). The order of the three turns from round to round, so that drift in the
# machine's speed falls on all of them alike. Prints each round's wall rates (ops over
# the measured duration, as fio's IOPS is) and three paired ratios
# (scripts/paired-ratio.py: geometric mean of the per-round ratios, 95% interval):
# default/fio, off/fio and default/off. The last is what the collectors cost this job;
# the first two say whether a gap to fio is the observer's or the loop's.
# Random reads of a 1 GiB zram device made for it (root; removed afterwards), filled with
# incompressible data; one worker on CPU 0; 4 KiB-page buffers on both sides.
# Environment: BS (4k), QD (16), FIXED (1: registered buffers, fio --fixedbufs),
# ROUNDS (8), SECS (3), THPBENCH (default: target/release/thpbench, built here).
set -euo pipefail
BS=${BS:-4k} QD=${QD:-16} FIXED=${FIXED:-1} ROUNDS=${ROUNDS:-8} SECS=${SECS:-3}
[ "$(id -u)" = 0 ] || { echo "the zram device needs root" >&2; exit 1; }
command -v fio >/dev/null || { echo "needs fio (Debian: apt-get install fio)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${THPBENCH:-}" ]; then
    (cd "$here" && cargo build --release -q)
    THPBENCH="$here/target/release/thpbench"
fi
# shellcheck source=scripts/lib/scratch.sh
. "$here/scripts/lib/scratch.sh"
scratch_init
work=$(scratch_dir)
random_zram_add
dev=$(random_zram_dev)
echo "$dev, $BS randread, uring qd $QD, registered buffers $FIXED, $ROUNDS rounds of ${SECS}s, CPU 0, $(uname -r), $("$THPBENCH" --version), $(fio --version)"

run_fio() {
    rm -f "$work/f.json" # a fio that wrote nothing must not leave the last round's rate
    fio --name=j --filename="$dev" --direct=1 --ioengine=io_uring --iodepth="$QD" --numjobs=1 \
        --bs="$BS" --rw=randread --time_based --runtime="$SECS" --cpus_allowed=0 --size=1G \
        --fixedbufs="$FIXED" --registerfiles=1 --output-format=json --output="$work/f.json" >/dev/null
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"])' "$work/f.json"
}

run_thpbench() { # extra flags -> wall rate
    local fixed=()
    [ "$FIXED" = 1 ] && fixed=(--fixed-buffers)
    rm -f "$work/t.json" # thpbench never overwrites a result
    "$THPBENCH" -q run --target "$dev" --bs "$BS" --rw randread --buffer 4k --cpus 0 \
        --duration "${SECS}s" --warmup 0s --no-verify --size 1G --engine uring --iodepth "$QD" \
        "${fixed[@]}" "$@" -o "$work/t.json" >/dev/null
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["runs"][0]; print(r["ops"] / r["duration_ns"] * 1e9)' "$work/t.json"
}

: > "$work/default-fio"
: > "$work/off-fio"
: > "$work/default-off"
for round in $(seq "$ROUNDS"); do
    for k in 0 1 2; do
        case $(((k + round) % 3)) in
        0) run_fio > "$work/fio-rate" ;;
        1) run_thpbench > "$work/default-rate" ;;
        2) run_thpbench --no-perf --no-lock-contention > "$work/off-rate" ;;
        esac
    done
    fio_rate=$(<"$work/fio-rate") default_rate=$(<"$work/default-rate") off_rate=$(<"$work/off-rate")
    printf 'round %d: fio %.0f, thpbench default %.0f, all off %.0f\n' "$round" "$fio_rate" "$default_rate" "$off_rate"
    echo "$fio_rate $default_rate" >> "$work/default-fio"
    echo "$fio_rate $off_rate" >> "$work/off-fio"
    echo "$off_rate $default_rate" >> "$work/default-off"
done
echo "thpbench default against fio"
python3 "$here/scripts/paired-ratio.py" "$work/default-fio" fio default
echo "thpbench, every collector off, against fio"
python3 "$here/scripts/paired-ratio.py" "$work/off-fio" fio off
echo "what the default collectors cost (default against all off)"
python3 "$here/scripts/paired-ratio.py" "$work/default-off" off default
