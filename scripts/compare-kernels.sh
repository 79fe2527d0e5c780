#!/usr/bin/env bash
# compare-kernels.sh: the old command line of `thpbench kernels` (docs/kernels.md), which
# replaced this script. Every option keeps its name and meaning; what remains here is the
# one thing the script did that the subcommand does not: bring target/release/thpbench up
# to date with `cargo build --release` when no --thpbench is given.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=
prev=
for a in "$@"; do
	[[ $a == -- ]] && break
	[[ $prev == --thpbench ]] && bin=$a
	[[ $a == --thpbench=* ]] && bin=${a#--thpbench=}
	prev=$a
done
if [[ -z $bin ]]; then
	bin=$REPO/target/release/thpbench
	if command -v cargo >/dev/null 2>&1; then
		echo "compare-kernels.sh: cargo build --release" >&2
		(cd "$REPO" && nice cargo build --release --quiet >&2) || {
			echo "compare-kernels.sh: error: cargo build --release failed" >&2
			exit 2
		}
	fi
	[[ -x $bin ]] || {
		echo "compare-kernels.sh: error: no thpbench binary: install Rust (cargo) or pass --thpbench PATH" >&2
		exit 2
	}
	exec "$bin" kernels --thpbench "$bin" "$@"
fi
exec "$bin" kernels "$@"
