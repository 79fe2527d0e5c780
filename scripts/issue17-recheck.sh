#!/usr/bin/env bash
# issue17-recheck.sh — do thpbench's figures agree with themselves where they should?
#  1. verify on and off measure the same I/O: uring, 4 KiB random writes and reads of a
#     zram device thpbench makes (zram:512M, root), queue depth 1 and 16, verify on and
#     off alternated (on first in odd rounds); prints the I/O's own rate (ops_per_sec)
#     of each run. Before issue 17's fixes, writes at qd 16 ran 3.6 times as fast
#     without verify.
#  2. pin_cost does not depend on queue depth or on the order of the cases: 64 KiB
#     random reads, per-I/O pins against registered buffers, at qd 1 and 16, the sweep
#     given in both orders; prints ns per 4 KiB page with its paired 95% interval.
# Environment: ROUNDS (3), RWS ("randwrite randread"), QDS ("1 16"), ENGINE (uring; dio
# takes QDS=1), TARGET (zram:512M; a file path measures verify where an I/O takes device
# time: thpbench creates the file and removes it after each run), SIZE (512M), PIN (1;
# 0 skips part 2), THPBENCH (default: target/release/thpbench, built here).
set -euo pipefail
ROUNDS=${ROUNDS:-3}
RWS=${RWS:-"randwrite randread"}
QDS=${QDS:-"1 16"}
ENGINE=${ENGINE:-uring}
TARGET=${TARGET:-zram:512M}
SIZE=${SIZE:-512M}
PIN=${PIN:-1}
# Part 2 reads a zram device too.
case $TARGET,$PIN in zram:*|*,1) [ "$(id -u)" = 0 ] || { echo "the zram targets need root" >&2; exit 1; } ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${THPBENCH:-}" ]; then
    (cd "$here" && cargo build --release -q)
    THPBENCH="$here/target/release/thpbench"
fi
# shellcheck source=scripts/lib/scratch.sh
. "$here/scripts/lib/scratch.sh"
scratch_init
work=$(scratch_dir)
echo "$("$THPBENCH" --version), $(uname -r), $(date -u +%FT%TZ)"

one() { # flags -> ops_per_sec
    rm -f "$work/t.json" # thpbench never overwrites a result
    "$THPBENCH" -q run --target "$TARGET" --size "$SIZE" --engine "$ENGINE" --bs 4k --cpus 0 \
        --duration 2s --warmup 200ms "$@" -o "$work/t.json" >/dev/null
    python3 -c 'import json, sys; print("%.0f" % json.load(open(sys.argv[1]))["runs"][0]["ops_per_sec"])' "$work/t.json"
}

echo "target $TARGET ($SIZE), engine $ENGINE"
for rw in $RWS; do
    for qd in $QDS; do
        on=() off=()
        for round in $(seq "$ROUNDS"); do
            if [ $((round % 2)) = 1 ]; then
                one --rw "$rw" --iodepth "$qd" > "$work/on"
                one --rw "$rw" --iodepth "$qd" --no-verify > "$work/off"
            else
                one --rw "$rw" --iodepth "$qd" --no-verify > "$work/off"
                one --rw "$rw" --iodepth "$qd" > "$work/on"
            fi
            on+=("$(<"$work/on")") off+=("$(<"$work/off")")
        done
        echo "$rw qd$qd ops/s, verify on: ${on[*]}; off: ${off[*]}"
    done
done

[ "$PIN" = 1 ] || exit 0
for qd in 1 16; do
    for order in false,true true,false; do
        rm -f "$work/p.json"
        "$THPBENCH" -q run --target zram:512M --size 512M --engine uring --bs 64k --rw randread \
            --cpus 0 --duration 1s --warmup 200ms --no-verify --iodepth "$qd" --repeat 3 \
            --sweep "fixed_buffers=$order" -o "$work/p.json" >/dev/null
        python3 - "$work/p.json" "$qd" "$order" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1])).get("pin_cost") or []:
    lo, hi = p.get("ci95_ns_per_page") or (float("nan"), float("nan"))
    print(f"pin cost 64k qd{sys.argv[2]}, fixed_buffers={sys.argv[3]}: {p['ns_per_page']:.1f} ns/page "
          f"(95% CI {lo:.1f} .. {hi:.1f}), {p['ns_per_io']:.0f} ns per I/O, paired {p.get('paired')}")
PY
    done
done
