#!/usr/bin/env bash
# arm64-guests.sh [WORKLOAD...]: the arm64 results in results/arm64/, again. Boots
# Debian's arm64 6.12 kernels with 4 KiB pages (linux-image-6.12-arm64) and with 16 KiB
# pages (linux-image-6.12-arm64-16k) under qemu-system-aarch64 -M virt -cpu max (TCG on
# an x86-64 host) and runs each workload on both with `thpbench kernels`, which then
# compares them (the page sizes differ, so compare names them first: docs/arm64.md).
#
# Workloads (default: all five):
#   quick      4 KiB random O_DIRECT reads into THP buffers (64 MiB file, 3 s)
#   mthp       the same into 64 KiB mTHP buffers (64K is an mTHP size with 4K and 16K pages)
#   seed       seed-torture as it is (10 s): splits, collapses, swap-out, forks under 10 MiB reads
#   swap       swap-under-io, 3 s: half the huge pages paged out every 5 ms
#   pin        pin-cost, cut to bs 64k and 2M into 4k (base page) and thp buffers, 2 repeats
#
# Needs root (zram, swap, mTHP knobs in the guest; apt for the packages), and once:
#   rustup target add aarch64-unknown-linux-gnu
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm
# The kernels and an arm64 busybox-static come through apt (a private package list for
# arm64 in the kernel cache). Measured on a 2-core x86-64 VM shared with other jobs
# (2026-12-03): see results/arm64/README.md for the run time.
# Env: THPBENCH (host binary; default target/release/thpbench, built here),
#      OUT (default results/arm64), KERNEL_4K, KERNEL_16K, THPBENCH_KERNEL_CACHE.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
out=${OUT:-results/arm64}
k4=${KERNEL_4K:-linux-image-6.12-arm64}
k16=${KERNEL_16K:-linux-image-6.12-arm64-16k}
guest_bin=target/aarch64-unknown-linux-gnu/release/thpbench

if [[ -z ${THPBENCH:-} ]]; then
	nice -n 19 cargo build --release --quiet
	THPBENCH=target/release/thpbench
fi
if [[ ! -x $guest_bin ]]; then
	nice -n 19 scripts/build-aarch64.sh
fi

run() { # NAME WORKLOAD [RUN-ARGS...]
	local name=$1 workload=$2
	shift 2
	local dir=$out/$name
	# thpbench never overwrites a result: start from an empty directory.
	rm -rf "$dir"
	mkdir -p "$dir"
	local start=$SECONDS
	nice -n 19 "$THPBENCH" kernels --arch arm64 --accel tcg --timeout 1500 \
		--thpbench "$guest_bin" --out-dir "$dir" "$workload" "$k4" "$k16" -- "$@" ||
		echo "arm64-guests.sh: $name: thpbench kernels failed (see $dir/runs.tsv)" >&2
	# The console and dmesg copies are large and say little once the run is valid.
	rm -f "$dir"/*.console.log "$dir"/*.png
	echo "arm64-guests.sh: $name: $((SECONDS - start)) s" >&2
}

[[ $# -gt 0 ]] || set -- quick mthp seed swap pin
total=$SECONDS
for w in "$@"; do
	case $w in
	quick) run quick quick --duration 3s --size 64M ;;
	mthp) run mthp quick --duration 3s --size 64M --buffer mthp:64K ;;
	seed) run seed-torture seed-torture ;;
	swap) run swap-under-io swap-under-io --duration 3s ;;
	pin) run pin-cost pin-cost --sweep bs=64k,2M --sweep buffer=4k,thp --repeat 2 ;;
	*)
		echo "arm64-guests.sh: unknown workload $w (quick, mthp, seed, swap, pin)" >&2
		exit 2
		;;
	esac
done
echo "arm64-guests.sh: all: $((SECONDS - total)) s" >&2
