#!/usr/bin/env bash
# build-aarch64.sh [cargo build args...] — cross-builds thpbench for arm64 (aarch64) on an
# x86-64 Debian/Ubuntu host: the Rust target aarch64-unknown-linux-gnu linked by Debian's
# cross compiler, with glibc linked statically (crt-static), so the one file runs on any
# arm64 Linux, in a bare initramfs and under qemu-user, with no libraries to copy.
# Why this and not musl: see docs/arm64.md.
# Needs (once): rustup target add aarch64-unknown-linux-gnu
#               apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
# Default: a release build; the binary lands in
#   target/aarch64-unknown-linux-gnu/release/thpbench
# Arguments are passed to cargo build (e.g. --profile dev).
# On an arm64 machine, build natively instead: cargo build --release.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
triple=aarch64-unknown-linux-gnu
linker=${AARCH64_LINKER:-aarch64-linux-gnu-gcc}

if ! command -v "$linker" >/dev/null; then
	echo "build-aarch64.sh: the cross linker $linker is not installed; as root: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross (or set AARCH64_LINKER)" >&2
	exit 2
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$triple"; then
	echo "build-aarch64.sh: the Rust target $triple is not installed; run: rustup target add $triple" >&2
	exit 2
fi
if [[ $# -eq 0 ]]; then
	set -- --release
fi

cd "$here"
# The linker is set here and not in .cargo/config.toml: a config entry for this triple
# would also apply on a native arm64 host, where no aarch64-linux-gnu-gcc exists.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$linker
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
cargo build --target "$triple" --bin thpbench "$@"

profile=release
for a in "$@"; do
	case $a in
	--profile=*) profile=${a#--profile=} ;;
	esac
done
prev=
for a in "$@"; do
	[[ $prev == --profile ]] && profile=$a
	prev=$a
done
[[ $profile == dev || $profile == test ]] && profile=debug
bin=target/$triple/$profile/thpbench
file "$bin"
