#!/bin/bash
# run-demo.sh TREE THPBENCH OUT: the bisection of docs/bisect.md on a tree made by
# make-series.sh (its first commit good, its last bad). Every line of output is stamped
# with the UTC time, so each step's build and boot can be timed from the log.
set -u
tree=$1 tb=$2 out=$3
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date -u +%T)" "$l"; done; }
mkdir -p "$out"
good=$(git -C "$tree" rev-list --max-parents=0 HEAD) bad=$(git -C "$tree" rev-parse HEAD)
flags=(--duration 2s --warmup 500ms)
{
  echo "\$ thpbench kernels --jobs 4 --no-compare ${flags[*]} --out-dir $out/refs quick $tree@${good:0:12} $tree@${bad:0:12} -- --repeat 3"
  nice -n 19 "$tb" kernels --jobs 4 --no-compare "${flags[@]}" --out-dir "$out/refs" quick "$tree@$good" "$tree@$bad" -- --repeat 3
  echo "exit $?"
} 2>&1 | stamp | tee "$out/refs.log"
cd "$tree" || exit 1
{
  echo "\$ git bisect start ${bad:0:12} ${good:0:12}"
  git bisect start "$bad" "$good"
  echo "\$ git bisect run thpbench bisect --good $out/refs/01-*.json --bad $out/refs/02-*.json --metric gup_slow_path.per_1000_io --jobs 4 --kernel . --run quick ${flags[*]}"
  nice -n 19 git bisect run "$tb" bisect --good "$out"/refs/01-*.json --bad "$out"/refs/02-*.json \
    --metric gup_slow_path.per_1000_io --jobs 4 --kernel . --run quick "${flags[@]}"
  echo "exit $?"
  git bisect log
  git bisect reset
} 2>&1 | stamp | tee "$out/bisect.log"
