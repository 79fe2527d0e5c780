#!/usr/bin/env bash
# lock-contention-vs-perf.sh [WORKLOAD] — checks thpbench's lock contention report against
# the reference tool. Runs a disturbed workload (default: workloads/seed-torture.toml, 5 s)
# under `perf lock record -a`, then compares `perf lock contention` on the same run with
# the run's own `lock_contention` report: the top callers must be the same and their
# counts within 10%. Needs root and perf (Debian: linux-perf). Exit 1 on disagreement.
#
# Why --stack-skip 2: perf (6.1 here) skips 3 callchain entries before looking for the
# first non-lock function, which on this kernel skips one real frame too (the chain
# starts at the slow path itself, e.g. rwsem_down_read_slowpath, down_read_killable,
# madvise_lock): with the default, perf names madvise_lock's caller, do_madvise. With
# --stack-skip 2 it applies the same rule as thpbench (first frame outside the sched and
# lock text sections). thpbench only counts the measured window; perf counts the whole
# command, including setup: small differences in counts are expected, hence 10%.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
workload=${1:-$here/workloads/seed-torture.toml}
work=$(mktemp -d)
# perf mounts tracefs by itself when it is not mounted: put that back as well.
tracefs_was_mounted=$(grep -c ' /sys/kernel/tracing ' /proc/self/mounts || true)
cleanup() {
    rm -rf "$work"
    if [ "$tracefs_was_mounted" = 0 ] && grep -q ' /sys/kernel/tracing ' /proc/self/mounts; then
        umount /sys/kernel/tracing 2>/dev/null || true
    fi
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "needs root (system-wide tracepoints)" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
(cd "$here" && cargo build --release -q)

cd "$work"
perf lock record -a -o perf.data -- "$here/target/release/thpbench" -q run "$workload" \
    --duration 5s --warmup 0s -o result.json >/dev/null 2>perf-record.log || true
[ -s result.json ] || { cat perf-record.log >&2; echo "the thpbench run failed" >&2; exit 1; }
perf lock contention -i perf.data -E 200 --stack-skip 2 > perf.txt 2>&1  # perf prints the table on stderr

python3 - result.json perf.txt <<'PY'
import json, re, sys
from collections import defaultdict
run = json.load(open(sys.argv[1]))["runs"][0]
lc = run.get("lock_contention") or {}
if not lc.get("available"):
    sys.exit(f"thpbench recorded no contention: {lc.get('reason')}")
perf = defaultdict(lambda: [0, 0.0])
unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
for line in open(sys.argv[2]):
    m = re.match(r"\s*(\d+)\s+([\d.]+) (\w+)\s+\S+ \w+\s+\S+ \w+\s+(\S+)\s+(\S+?)(\+0x[0-9a-f]+)?\s*$", line)
    if m:
        key = (m.group(5), m.group(4))
        perf[key][0] += int(m.group(1))
        perf[key][1] += float(m.group(2)) * unit[m.group(3)]
ours = lc["by_caller"][:5]
print(f"{'caller':<28} {'type':<10} {'thpbench':>9} {'perf':>9} {'diff':>7}")
bad = 0
for c in ours:
    n_perf = perf.get((c["caller"], c["type"]), [0, 0])[0]
    diff = (c["count"] - n_perf) / max(n_perf, 1) * 100
    ok = n_perf > 0 and abs(diff) <= 10
    bad += not ok
    print(f"{c['caller']:<28} {c['type']:<10} {c['count']:>9} {n_perf:>9} {diff:>+6.1f}% {'ok' if ok else 'DIFFERS'}")
top_perf = sorted(perf.items(), key=lambda kv: -kv[1][1])[:5]
missing = [k for k, _ in top_perf if k not in {(c["caller"], c["type"]) for c in lc["by_caller"]}]
for k in missing:
    print(f"perf's top caller {k[0]} ({k[1]}) is missing from thpbench's report")
    bad += 1
print(f"thpbench: {lc['events']} contentions, {lc['paired']} paired, {lc['lost_samples']} lost samples")
sys.exit(1 if bad else 0)
PY
