#!/usr/bin/env bash
# ab-builds.sh OLD NEW — two builds of thpbench side by side: paired runs, old first in
# odd rounds and new first in even ones, on one zram device made for the benchmark
# (root; removed afterwards), uring engine, CPU 0, the default collectors, verify off
# unless VERIFY=1. Prints each round's wall rates (ops over the measured duration; with
# verify, the I/O's own rates), the ratio new/old of the medians and the geometric mean of the per-round
# ratios with its 95% interval (scripts/paired-ratio.py): a change to thpbench's own
# loop measured against drift in the machine's speed.
# Environment: ROUNDS (10), SECS (2), QD (1), FIXED (0; 1: registered buffers), BS (4k),
# RW (randread; a write pattern writes the device, made for this), BUFFER (4k: fio's
# buffers are 4 KiB pages too; thp, mthp:64K), VERIFY (0; 1: verify on, and the rate
# compared is the I/O's own, ops_per_sec, since the wall rate holds the read-backs).
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 OLD_THPBENCH NEW_THPBENCH" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "the zram device needs root" >&2; exit 1; }
old=$1 new=$2
ROUNDS=${ROUNDS:-10} SECS=${SECS:-2} QD=${QD:-1} BS=${BS:-4k} RW=${RW:-randread}
BUFFER=${BUFFER:-4k}
here=$(cd "$(dirname "$0")/.." && pwd)
extra=()
[ "${FIXED:-0}" = 1 ] && extra=(--fixed-buffers)
rate="r['ops'] / r['duration_ns'] * 1e9"
if [ "${VERIFY:-0}" = 1 ]; then
    rate="r['ops_per_sec']"
else
    extra+=(--no-verify)
fi
# shellcheck source=scripts/lib/scratch.sh
. "$here/scripts/lib/scratch.sh"
scratch_init
work=$(scratch_dir)
random_zram_add
dev=$(random_zram_dev)
echo "$dev, $ROUNDS rounds of ${SECS}s, uring qd $QD${FIXED:+ fixed=$FIXED}, $BS $RW, $BUFFER buffer, CPU 0, $(uname -r)"
echo "old: $("$old" --version)"
echo "new: $("$new" --version)"

one() { # thpbench -> its wall rate
    rm -f "$work/t.json" # thpbench never overwrites a result
    "$1" -q run --target "$dev" --bs "$BS" --rw "$RW" --buffer "$BUFFER" --cpus 0 \
        --duration "${SECS}s" --warmup 0s --size 1G --engine uring --allow-write-device \
        --iodepth "$QD" "${extra[@]}" -o "$work/t.json" >/dev/null
    python3 -c "import json, sys; r = json.load(open(sys.argv[1]))['runs'][0]; print($rate)" "$work/t.json"
}

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
        one "$old" > "$work/a"; one "$new" > "$work/b"
    else
        one "$new" > "$work/b"; one "$old" > "$work/a"
    fi
    a=$(<"$work/a") b=$(<"$work/b")
    echo "$a $b"
done > "$work/pairs"
python3 "$here/scripts/paired-ratio.py" "$work/pairs" old new
