#!/usr/bin/env bash
# lock-overhead.sh [WORKLOAD] — what tracing lock contention costs the measured I/O:
# runs the workload (default workloads/quick.toml, 3 s) with tracing on and off,
# alternating, ROUNDS times each (default 5), and prints the mean ops/s of each and the
# loss. Goal: under 5%. Needs root (tracing is unavailable otherwise, and both sides
# would measure the same thing).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
workload=${1:-$here/workloads/quick.toml}
rounds=${ROUNDS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ "$(id -u)" = 0 ] || { echo "needs root: without it contention tracing is unavailable" >&2; exit 1; }
(cd "$here" && cargo build --release -q)
bin="$here/target/release/thpbench"
for i in $(seq "$rounds"); do
    "$bin" -q run "$workload" --duration 3s --no-perf -o "$work/on-$i.json" >/dev/null
    "$bin" -q run "$workload" --duration 3s --no-perf --no-lock-contention -o "$work/off-$i.json" >/dev/null
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
on = [json.load(open(f"{d}/on-{i}.json"))["runs"][0]["ops_per_sec"] for i in range(1, n + 1)]
off = [json.load(open(f"{d}/off-{i}.json"))["runs"][0]["ops_per_sec"] for i in range(1, n + 1)]
lc = json.load(open(f"{d}/on-1.json"))["runs"][0]["lock_contention"]
assert lc and lc.get("available"), f"tracing was not on: {lc}"
m_on, m_off = statistics.mean(on), statistics.mean(off)
print(f"tracing on : {m_on:10.0f} ops/s  (sd {statistics.stdev(on):.0f}, n={n})")
print(f"tracing off: {m_off:10.0f} ops/s  (sd {statistics.stdev(off):.0f}, n={n})")
print(f"loss with tracing: {(1 - m_on / m_off) * 100:+.1f}%  (goal: under 5%)")
PY
