#!/usr/bin/env bash
# ab-builds.sh OLD NEW — two builds of thpbench side by side: paired runs, alternated
# (old first in odd rounds, new first in even ones), on one zram device made for the
# benchmark (root; removed afterwards), uring engine, THP buffer, CPU 0, the default
# collectors, verify off (the device is only read). Prints the medians and the mean of
# the per-round ratios new/old of the wall rate (ops over the measured duration) with
# its 95% interval: a change to thpbench's own loop measured against drift in the
# machine's speed. Environment: ROUNDS (10), SECS (2), QD (1), FIXED (1: registered
# buffers), BS (4k), RW (randread).
set -euo pipefail
old=$1 new=$2
ROUNDS=${ROUNDS:-10} SECS=${SECS:-2} QD=${QD:-1} BS=${BS:-4k} RW=${RW:-randread}
extra=(); [ "${FIXED:-0}" = 1 ] && extra=(--fixed-buffers)
work=$(mktemp -d)
id=$(cat /sys/class/zram-control/hot_add)
cleanup() { echo 1 > /sys/block/zram$id/reset; echo $id > /sys/class/zram-control/hot_remove; rm -rf "$work"; }
trap cleanup EXIT
echo 1G > /sys/block/zram$id/disksize
dd if=/dev/urandom of=/dev/zram$id bs=1M count=1024 oflag=direct status=none
one() { rm -f "$work/t.json"; "$1" -q run --target /dev/zram$id --bs $BS --rw $RW --buffer thp --cpus 0 \
   --duration ${SECS}s --warmup 0s --no-verify --size 1G --engine uring --iodepth $QD "${extra[@]}" -o "$work/t.json" >/dev/null
   python3 -c "import json;r=json.load(open('$work/t.json'))['runs'][0];print(r['ops']/r['duration_ns']*1e9, r['latency_ns']['p50'])"; }
for i in $(seq $ROUNDS); do
  if [ $((i % 2)) = 1 ]; then a=$(one "$old"); b=$(one "$new"); else b=$(one "$new"); a=$(one "$old"); fi
  echo "$a $b"
done > "$work/pairs"
python3 - "$work/pairs" <<'PY'
import sys, statistics as st
rows=[list(map(float,l.split())) for l in open(sys.argv[1])]
# per round: new/old wall-rate ratio; t(0.975) for n-1 dof
r=[b/a for a,_,b,_ in rows]
n=len(r); m=st.mean(r); sd=st.stdev(r)
t={4:2.776,5:2.571,6:2.447,7:2.365,8:2.306,9:2.262,10:2.228,11:2.201,12:2.179,13:2.160,14:2.145,15:2.131,16:2.120,19:2.093,20:2.086}.get(n-1,2.0)
h=t*sd/n**0.5
print(f"rounds {n}: old {st.median(a for a,_,_,_ in rows):.0f} ops/s (p50 {st.median(p for _,p,_,_ in rows):.0f} ns), new {st.median(b for _,_,b,_ in rows):.0f} ops/s (p50 {st.median(p for _,_,_,p in rows):.0f} ns)")
print(f"new/old wall rate: mean of per-round ratios {m:.3f} (95% CI {m-h:.3f} .. {m+h:.3f})")
PY
