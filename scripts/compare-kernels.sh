#!/usr/bin/env bash
# compare-kernels.sh: run the same thpbench workload on several kernel builds, each booted
# under qemu with a minimal initramfs, and end with `thpbench compare` and `thpbench plot`.
# See docs/kernels.md. Run with --help for the usage.
set -euo pipefail
# The whole script is one block, parsed before any of it runs: editing this file while
# it runs cannot change a run in progress.
{

PROG=compare-kernels.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
INVOKED_FROM=$(pwd)

# The kernel the self-test boots by default: Debian bookworm's 6.1 cloud kernel (a meta
# package: it names the newest linux-image-6.1.0-N-cloud-amd64 of bookworm-security).
SELF_TEST_KERNEL_DEFAULT=linux-image-cloud-amd64

usage() {
	cat <<'EOF'
Usage: scripts/compare-kernels.sh [OPTIONS] WORKLOAD KERNEL... [-- RUN-ARGS...]
       scripts/compare-kernels.sh --self-test [KERNEL] [--out-dir DIR]

Runs the same thpbench workload on several kernel builds and ends with `thpbench compare`
(markdown) and `thpbench plot`. Every KERNEL except `host` boots under
qemu-system-x86_64 (KVM where it works, else TCG: said so) with a minimal initramfs
(busybox, thpbench, the modules for zram and virtio-blk), runs
`thpbench run WORKLOAD RUN-ARGS...` there, and hands the result JSON back over a second
serial port.

WORKLOAD   a workload file (workloads/quick.toml) or the name of one in workloads/ (quick).
           A file or directory target (e.g. quick's ".") is put on a fresh ext4 disk
           (virtio-blk) in the guest, at the same path; zram:SIZE targets are made in
           the guest; block device targets are refused.
KERNEL     host                     run on this machine directly (its running kernel)
           PATH/bzImage[:MODDIR]    a kernel image; modules from MODDIR, else from
                                    ../lib/modules/RELEASE next to it or /lib/modules/RELEASE
           PATH/linux-image-*.deb   a Debian kernel package file
           PACKAGE                  a Debian kernel package, fetched with apt-get download
                                    (meta packages such as linux-image-cloud-amd64 or
                                    linux-image-6.12-cloud-amd64 are resolved)
RUN-ARGS   passed to `thpbench run` on every kernel (e.g. -- --repeat 3 --bs 64k)

Options:
  -o, --out-dir DIR    where results, logs, comparison and plot go
                       (default: results/kernels/<UTC time>-<workload>)
  -d, --duration D     measured time per repeat, e.g. 3s (default: the workload's)
  -w, --warmup D       warm-up per repeat (default: the workload's)
  -t, --threads N      workers (default: the workload's; 0 = all CPUs)
      --accel MODE     auto (default), kvm or tcg; env THPBENCH_ACCEL
      --smp SPEC       guest vCPUs: a count or a full qemu -smp spec, e.g.
                       4,sockets=1,cores=2,threads=2 (default 2)
      --numa N         N NUMA nodes in the guest, memory and vCPUs split evenly
                       (default: none, one node)
      --mem SIZE       guest memory (default 3G)
      --thp MODE       guest transparent_hugepage= (always|madvise|never), or "default"
                       for the kernel's own default (default: the host's current mode)
      --timeout S      seconds one guest may run before it is killed (default 1200)
      --thpbench PATH  thpbench binary for the guests (default: target/release/thpbench,
                       brought up to date with `cargo build --release` first)
      --cache-dir DIR  downloaded .deb files and extracted kernels
                       (default: ~/.cache/thpbench-kernels; env THPBENCH_KERNEL_CACHE)
      --no-compare     skip `thpbench compare` and `thpbench plot`
      --keep           keep the temporary directory (initramfs, disk images, logs)
      --compare-only   run nothing: compare and plot the results already in --out-dir
  -v, --verbose        show the guests' consoles as they boot
      --self-test      build the initramfs and boot ONE kernel (default
                       linux-image-cloud-amd64) with a 2 s quick workload; checks the
                       result (kernel release, ops > 0, histogram count = ops)
  -h, --help           this text

Examples:
  scripts/compare-kernels.sh --duration 3s quick host linux-image-cloud-amd64 linux-image-6.12-cloud-amd64
  scripts/compare-kernels.sh workloads/seed-torture.toml ~/linux/arch/x86/boot/bzImage:/tmp/mods/lib/modules/6.19.0
  scripts/compare-kernels.sh --self-test
EOF
}

# Messages go to fd 7, the original stderr, which stays open while stderr is silenced
# around a running qemu (so messages from traps still show).
exec 7>&2
say() { printf '%s: %s\n' "$PROG" "$*" >&7; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&7
	exit 2
}

# ---------------------------------------------------------------- options
OUT_DIR=
DURATION=
WARMUP=
THREADS=
ACCEL=${THPBENCH_ACCEL:-auto}
SMP=2
MEM=3G
NUMA_NODES=0
THP_MODE=host
TIMEOUT=1200
THPBENCH_BIN=
CACHE=${THPBENCH_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/thpbench-kernels}
DO_COMPARE=1
KEEP=0
COMPARE_ONLY=0
VERBOSE=0
SELF_TEST=0
POSITIONAL=()
RUN_ARGS=()

need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	-o | --out-dir)
		need_arg "$@"
		OUT_DIR=$2
		shift 2
		;;
	-d | --duration)
		need_arg "$@"
		DURATION=$2
		shift 2
		;;
	-w | --warmup)
		need_arg "$@"
		WARMUP=$2
		shift 2
		;;
	-t | --threads)
		need_arg "$@"
		THREADS=$2
		shift 2
		;;
	--accel)
		need_arg "$@"
		ACCEL=$2
		shift 2
		;;
	--smp)
		need_arg "$@"
		SMP=$2
		shift 2
		;;
	--numa)
		need_arg "$@"
		NUMA_NODES=$2
		shift 2
		;;
	--mem)
		need_arg "$@"
		MEM=$2
		shift 2
		;;
	--thp)
		need_arg "$@"
		THP_MODE=$2
		shift 2
		;;
	--timeout)
		need_arg "$@"
		TIMEOUT=$2
		shift 2
		;;
	--thpbench)
		need_arg "$@"
		THPBENCH_BIN=$2
		shift 2
		;;
	--cache-dir)
		need_arg "$@"
		CACHE=$2
		shift 2
		;;
	--no-compare)
		DO_COMPARE=0
		shift
		;;
	--keep)
		KEEP=1
		shift
		;;
	--compare-only)
		COMPARE_ONLY=1
		shift
		;;
	-v | --verbose)
		VERBOSE=1
		shift
		;;
	--self-test)
		SELF_TEST=1
		shift
		;;
	--)
		shift
		RUN_ARGS=("$@")
		break
		;;
	-*) die "unknown option $1 (see --help)" ;;
	*)
		POSITIONAL+=("$1")
		shift
		;;
	esac
done

case $ACCEL in auto | kvm | tcg) ;; *) die "--accel $ACCEL: expected auto, kvm or tcg" ;; esac
case $THP_MODE in host | default | always | madvise | never) ;; *) die "--thp $THP_MODE: expected always, madvise, never or default" ;; esac
[[ $SMP =~ ^[1-9][0-9]*(,(sockets|dies|clusters|cores|threads|maxcpus)=[1-9][0-9]*)*$ ]] ||
	die "--smp $SMP: expected a number of vCPUs or a qemu -smp spec like 4,sockets=1,cores=2,threads=2"
[[ $NUMA_NODES =~ ^[0-9]+$ ]] || die "--numa $NUMA_NODES: expected a number of NUMA nodes"
# The vCPU count (the spec's first field) and the memory in MiB, to split over the nodes.
SMP_CPUS=${SMP%%,*}
case $MEM in
*[gG]) MEM_MIB=$((${MEM%[gG]} * 1024)) ;;
*[mM]) MEM_MIB=${MEM%[mM]} ;;
*) die "--mem $MEM: expected a size in M or G, e.g. 3G" ;;
esac
if ((NUMA_NODES > 1)); then
	((SMP_CPUS % NUMA_NODES == 0)) || die "--numa $NUMA_NODES: the $SMP_CPUS vCPUs of --smp $SMP do not split evenly over $NUMA_NODES nodes"
	((MEM_MIB % NUMA_NODES == 0)) || die "--numa $NUMA_NODES: --mem $MEM does not split evenly over $NUMA_NODES nodes"
fi

# qemu arguments for --numa: one RAM backend and one node per NUMA node.
numa_args() {
	local n per_cpu=$((SMP_CPUS / NUMA_NODES)) per_mem=$((MEM_MIB / NUMA_NODES))
	for ((n = 0; n < NUMA_NODES; n++)); do
		printf '%s\n' -object "memory-backend-ram,id=numa-mem$n,size=${per_mem}M" \
			-numa "node,nodeid=$n,cpus=$((n * per_cpu))-$(((n + 1) * per_cpu - 1)),memdev=numa-mem$n"
	done
}
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout $TIMEOUT: expected seconds"

if [[ $COMPARE_ONLY == 1 ]]; then
	[[ -n $OUT_DIR && -d $OUT_DIR ]] || die "--compare-only needs --out-dir DIR with results in it"
	KERNELS=()
	WORKLOAD_ARG=
elif [[ $SELF_TEST == 1 ]]; then
	[[ ${#POSITIONAL[@]} -le 1 ]] || die "--self-test takes at most one KERNEL"
	KERNELS=("${POSITIONAL[@]:-$SELF_TEST_KERNEL_DEFAULT}")
	WORKLOAD_ARG=quick
	[[ -n $DURATION ]] || DURATION=2s
	[[ -n $WARMUP ]] || WARMUP=200ms
	[[ ${#RUN_ARGS[@]} -gt 0 ]] || RUN_ARGS=(--size 16M --no-lock-contention)
else
	[[ ${#POSITIONAL[@]} -ge 2 ]] || {
		usage >&2
		die "need a WORKLOAD and at least one KERNEL"
	}
	WORKLOAD_ARG=${POSITIONAL[0]}
	KERNELS=("${POSITIONAL[@]:1}")
fi

# ---------------------------------------------------------------- temp dir, cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/thpbench-qemu.XXXXXX")
QEMU_PID=
# shellcheck disable=SC2317 # invoked by the traps below
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
		say "stopping qemu (pid $QEMU_PID)"
		kill -TERM "$QEMU_PID" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$QEMU_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	if [[ $KEEP == 1 ]]; then
		say "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM HUP

# ---------------------------------------------------------------- host packages
APT_UPDATED=0
apt_update_once() {
	if [[ $APT_UPDATED == 0 ]]; then
		say "apt-get update"
		apt-get update -qq >&2 || say "apt-get update failed; going on with the package lists there are"
		APT_UPDATED=1
	fi
}

ensure_tools() {
	# command -> Debian package
	local -A pkg_of=(
		[qemu-system-x86_64]=qemu-system-x86 [cpio]=cpio [depmod]=kmod [modprobe]=kmod
		[mkfs.ext4]=e2fsprogs [xz]=xz-utils [zstd]=zstd [jq]=jq [dpkg-deb]=dpkg
		[strip]=binutils [gzip]=gzip [sha256sum]=coreutils [base64]=coreutils
	)
	local missing=() cmd
	for cmd in "${!pkg_of[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 ||
			missing+=("${pkg_of[$cmd]}")
	done
	# A static busybox: Debian's busybox-static puts it at /bin/busybox.
	if ! { [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; }; then
		missing+=(busybox-static)
	fi
	[[ ${#missing[@]} -eq 0 ]] && return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	if [[ $(id -u) != 0 ]]; then
		die "missing packages: ${missing[*]}; install them (sudo apt-get install -y ${missing[*]}) or run as root"
	fi
	say "installing ${missing[*]}"
	apt_update_once
	local apt_opts=() i qemu_utils
	# qemu-system-x86 must match an installed qemu-utils, or apt removes qemu-utils to
	# make room (it did on a machine whose image ships qemu-utils from backports). Take the
	# same version from where it came: the release's backports suite, through a private
	# package list under the cache, so /etc/apt stays as it is.
	qemu_utils=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' qemu-utils 2>/dev/null | awk '$1=="ii"{print $2}')
	if [[ -n $qemu_utils && $qemu_utils == *~bpo* ]]; then
		for i in "${!missing[@]}"; do
			[[ ${missing[$i]} == qemu-system-x86 ]] && missing[i]="qemu-system-x86=$qemu_utils"
		done
		backports_apt_opts
		apt_opts=("${BACKPORTS_OPTS[@]}")
	fi
	# --no-remove: apt stops rather than remove a package of the machine's.
	DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends --no-remove "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed (it would not remove any installed package to do it; see apt's message above)"
}

# Sets BACKPORTS_OPTS: apt options for a private package list of this Debian release
# plus its backports suite, updated, with backports as the target release (so that the
# dependencies of a backported package come from there too). The sandbox user is root:
# _apt cannot write under root's home.
backports_apt_opts() {
	local dir=$CACHE/apt-backports codename
	# shellcheck source=/dev/null # the running system's file, not ours
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[[ -n $codename ]] || die "/etc/os-release names no VERSION_CODENAME; cannot find the backports suite"
	mkdir -p "$dir/lists/partial" "$dir/archives/partial"
	local key=/usr/share/keyrings/debian-archive-keyring.gpg signed=
	[[ -f $key ]] && signed="[signed-by=$key] "
	{
		echo "deb ${signed}http://deb.debian.org/debian $codename main"
		echo "deb ${signed}http://deb.debian.org/debian $codename-updates main"
		echo "deb ${signed}http://deb.debian.org/debian-security $codename-security main"
		echo "deb ${signed}http://deb.debian.org/debian $codename-backports main"
	} >"$dir/sources.list"
	BACKPORTS_OPTS=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
		-o "Dir::State::lists=$dir/lists" -o "Dir::Cache::archives=$dir/archives"
		-o APT::Sandbox::User=root -t "$codename-backports")
	say "apt-get update with $codename-backports (private list in $dir)"
	apt-get "${BACKPORTS_OPTS[@]}" update -qq >&2 || say "apt-get update of $codename-backports failed"
}
export PATH=$PATH:/usr/sbin:/sbin

# ---------------------------------------------------------------- thpbench binary
resolve_thpbench() {
	if [[ -z $THPBENCH_BIN ]]; then
		THPBENCH_BIN=$REPO/target/release/thpbench
		# Built from this checkout (a no-op when up to date), so results match the source.
		if command -v cargo >/dev/null 2>&1; then
			say "cargo build --release"
			(cd "$REPO" && nice cargo build --release --quiet >&2) || die "cargo build --release failed"
		elif [[ -x $THPBENCH_BIN ]]; then
			say "no cargo: using $THPBENCH_BIN as it is"
		else
			die "no thpbench binary: install Rust (cargo) or pass --thpbench PATH"
		fi
	fi
	[[ -x $THPBENCH_BIN ]] || die "thpbench binary $THPBENCH_BIN is not there or not executable"
	THPBENCH_BIN=$(realpath "$THPBENCH_BIN")
}

has_subcommand() { "$THPBENCH_BIN" help "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- workload
resolve_workload() {
	local w=$1
	if [[ -f $w ]]; then
		WORKLOAD=$(realpath "$w")
	elif [[ -f $REPO/workloads/$w.toml ]]; then
		WORKLOAD=$REPO/workloads/$w.toml
	elif [[ -f $REPO/workloads/$w ]]; then
		WORKLOAD=$REPO/workloads/$w
	else
		die "workload $w: no such file, and no workloads/$w.toml (there are: $(cd "$REPO/workloads" && echo *.toml))"
	fi
	WL_ARGS=()
	[[ -z $DURATION ]] || WL_ARGS+=(--duration "$DURATION")
	[[ -z $WARMUP ]] || WL_ARGS+=(--warmup "$WARMUP")
	[[ -z $THREADS ]] || WL_ARGS+=(--threads "$THREADS")
	WL_ARGS+=("${RUN_ARGS[@]}")
	# The workload exactly as every kernel runs it: validated here, once.
	RESOLVED=$WORK/workload.toml
	"$THPBENCH_BIN" -q run "$WORKLOAD" "${WL_ARGS[@]}" --print-workload >"$RESOLVED" ||
		die "thpbench run $WORKLOAD ${WL_ARGS[*]} --print-workload failed: the workload or RUN-ARGS are not valid"
	# The same workload as JSON, read with jq rather than by matching TOML lines.
	local resolved_json=$WORK/workload.json
	"$THPBENCH_BIN" -q run "$WORKLOAD" "${WL_ARGS[@]}" --print-workload --json >"$resolved_json" ||
		die "thpbench run $WORKLOAD ${WL_ARGS[*]} --print-workload --json failed"
	WL_NAME=$(jq -r '.name // ""' "$resolved_json")
	WL_TARGET=$(jq -r '.target // ""' "$resolved_json")
	WL_SIZE=$(jq -r '.size // ""' "$resolved_json")
	WL_ENGINE=$(jq -r '.engine // ""' "$resolved_json")
	[[ -n $WL_NAME ]] || die "could not read the name from the resolved workload ($RESOLVED)"
	[[ -n $WL_TARGET || $WL_ENGINE == gup ]] || die "could not read the target from the resolved workload ($RESOLVED)"
	[[ -n $WL_SIZE ]] || WL_SIZE=$((256 << 20))
	# Where the target lives in the guests.
	case $WL_TARGET in
	"")
		# The gup engine has no target: nothing to put on a disk.
		SCRATCH_MOUNT=
		GUEST_CWD=/tmp
		;;
	zram:*)
		SCRATCH_MOUNT=
		GUEST_CWD=/tmp
		;;
	/dev/*) die "workload target $WL_TARGET: block device targets cannot be handed to a guest; use a directory (an ext4 disk is made for it) or zram:SIZE" ;;
	/*)
		if [[ -d $WL_TARGET || $WL_TARGET == */ ]]; then
			SCRATCH_MOUNT=${WL_TARGET%/}
		else
			SCRATCH_MOUNT=$(dirname "$WL_TARGET")
		fi
		[[ $SCRATCH_MOUNT != / ]] || die "workload target $WL_TARGET: a file in / cannot get its own disk; use a directory"
		GUEST_CWD=/tmp
		;;
	*)
		# Relative: the guest runs in /scratch, an ext4 disk, so the target string (".")
		# stays what the workload says and `thpbench compare` sees the same workload.
		SCRATCH_MOUNT=/scratch
		GUEST_CWD=/scratch
		;;
	esac
}

# ---------------------------------------------------------------- kernels
# Release string of a bzImage, from its setup header (kernel_version pointer at 0x20e).
bzimage_release() {
	local img=$1 magic off
	magic=$(dd if="$img" bs=1 skip=$((0x202)) count=4 2>/dev/null)
	[[ $magic == HdrS ]] || return 1
	off=$(od -An -tu2 -j $((0x20e)) -N2 "$img" | tr -d ' ')
	[[ -n $off && $off != 0 ]] || return 1
	dd if="$img" bs=1 skip=$((off + 0x200)) count=256 2>/dev/null | tr '\0' '\n' | head -1 | awk '{print $1}'
}

deb_version_fname() { printf '%s' "$1" | sed 's/^[0-9]*://'; } # epoch is not in file names

# Resolve a package name through meta packages to the one holding /boot/vmlinuz-*.
resolve_package() {
	local pkg=$1 dep
	for _ in 1 2 3 4; do
		if ! apt-cache show "$pkg" >/dev/null 2>&1; then
			[[ $(id -u) == 0 ]] && apt_update_once
			apt-cache show "$pkg" >/dev/null 2>&1 || return 1
		fi
		dep=$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
			--no-replaces --no-enhances "$pkg" 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -1)
		if [[ -z $dep ]]; then
			printf '%s\n' "$pkg"
			return 0
		fi
		say "$pkg is a meta package for $dep"
		pkg=$dep
	done
	return 1
}

fetch_package() { # PACKAGE -> prints the path of the cached .deb
	local req=$1 pkg ver deb tmp
	mkdir -p "$CACHE/debs"
	if pkg=$(resolve_package "$req"); then
		ver=$(apt-cache policy "$pkg" | awk '/Candidate:/{print $2; exit}')
		[[ -n $ver && $ver != "(none)" ]] || ver=$(apt-cache show "$pkg" | awk '/^Version:/{print $2; exit}')
		deb=$CACHE/debs/${pkg}_$(deb_version_fname "$ver")_amd64.deb
		if [[ -s $deb ]]; then
			say "$pkg $ver: cached ($deb)"
		else
			say "$pkg $ver: apt-get download ($(apt-cache show "$pkg=$ver" 2>/dev/null | awk '/^Size:/{printf "%.0f MB", $2/1e6; exit}'))"
			tmp=$(mktemp -d "$CACHE/debs/.download.XXXXXX")
			if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2); then
				rm -rf "$tmp"
				die "apt-get download $pkg=$ver failed (network? the package may have left the archive: apt-get update)"
			fi
			mv "$tmp"/*.deb "$deb"
			rm -rf "$tmp"
		fi
	else
		# Not in the package lists (offline?): a cached one of that name will do.
		deb=$(find "$CACHE/debs" -maxdepth 1 -name "${req}_*.deb" 2>/dev/null | sort -V | tail -1)
		[[ -n $deb ]] || die "kernel $req: not a file, and apt knows no package of that name (apt-cache search linux-image | grep cloud lists some)"
		say "$req: not in the package lists; using the cached $deb"
	fi
	printf '%s\n' "$deb"
}

extract_deb() { # DEB -> prints the extracted root (cached)
	local deb=$1 root tmp
	root=$CACHE/extracted/$(basename "$deb" .deb)
	if [[ ! -d $root ]]; then
		mkdir -p "$CACHE/extracted"
		tmp=$(mktemp -d "$CACHE/extracted/.tmp.XXXXXX")
		dpkg-deb -x "$deb" "$tmp" || {
			rm -rf "$tmp"
			die "dpkg-deb -x $deb failed"
		}
		local d
		for d in "$tmp"/lib/modules/*/ "$tmp"/usr/lib/modules/*/; do
			[[ -d $d ]] || continue
			depmod -b "$tmp" "$(basename "$d")" 2>/dev/null || depmod -b "$tmp/usr" "$(basename "$d")" 2>/dev/null || true
		done
		mv -T "$tmp" "$root" 2>/dev/null || rm -rf "$tmp" # another run may have won the race
	fi
	printf '%s\n' "$root"
}

# Sets K_IMAGE K_RELEASE K_MODDIR K_LABEL for one KERNEL argument.
resolve_kernel() {
	local spec=$1 img moddir="" root
	K_IMAGE="" K_RELEASE="" K_MODDIR="" K_LABEL=""
	if [[ $spec == host ]]; then
		K_RELEASE=$(uname -r)
		K_LABEL=host-$K_RELEASE
		return 0
	fi
	if [[ $spec == *.deb && -f $spec ]] || [[ $spec != */* && ! -e $spec ]]; then
		local deb=$spec
		[[ $spec == *.deb ]] || deb=$(fetch_package "$spec")
		root=$(extract_deb "$(realpath "$deb")")
		img=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | head -1)
		[[ -n $img ]] || die "kernel $spec: the package has no boot/vmlinuz-* (is it a linux-image package?)"
	else
		img=${spec%%:*}
		[[ $spec == *:* ]] && moddir=${spec#*:}
		[[ -f $img ]] || die "kernel $spec: $img is not a file (expected a bzImage/vmlinuz, a .deb or a package name)"
		img=$(realpath "$img")
		root=$(dirname "$(dirname "$img")")
	fi
	K_IMAGE=$img
	K_RELEASE=$(bzimage_release "$img") || die "kernel $img: not a bzImage (no HdrS setup header); qemu -kernel needs arch/x86/boot/bzImage"
	[[ -n $K_RELEASE ]] || die "kernel $img: no version string in its setup header"
	if [[ -z $moddir ]]; then
		local c
		for c in "$root/lib/modules/$K_RELEASE" "$root/usr/lib/modules/$K_RELEASE" "/lib/modules/$K_RELEASE"; do
			if [[ -d $c ]]; then
				moddir=$c
				break
			fi
		done
	fi
	if [[ -n $moddir ]]; then
		[[ -d $moddir ]] || die "kernel $spec: modules directory $moddir is not a directory"
		K_MODDIR=$(realpath "$moddir")
	else
		say "kernel $K_RELEASE: no modules directory found; the guest has only what is built in"
	fi
	K_LABEL=$K_RELEASE
}

# ---------------------------------------------------------------- initramfs
# Modules the guest loads, in this order, each with its dependencies first; absent ones
# (built in, or not in this build) are skipped.
GUEST_MODULES=(virtio_pci virtio_blk zsmalloc zram lzo lzo-rle lz4 lz4hc zstd null_blk)

stage_modules() { # STAGE_ROOT -> writes STAGE/lib/modules/REL and STAGE/etc/thpbench/modules
	local stage=$1 modroot=$WORK/modroot m line path rel dst
	local -A seen=()
	mkdir -p "$stage/etc/thpbench" "$stage/lib/modules/$K_RELEASE"
	: >"$stage/etc/thpbench/modules"
	[[ -n $K_MODDIR ]] || return 0
	# modprobe -d wants ROOT/lib/modules/RELEASE with a modules.dep.
	rm -rf "$modroot"
	mkdir -p "$modroot/lib/modules"
	if [[ -f $K_MODDIR/modules.dep ]]; then
		ln -s "$K_MODDIR" "$modroot/lib/modules/$K_RELEASE"
	else
		say "kernel $K_RELEASE: $K_MODDIR has no modules.dep; running depmod on a copy"
		cp -a "$K_MODDIR" "$modroot/lib/modules/$K_RELEASE"
		depmod -b "$modroot" "$K_RELEASE" || die "depmod for $K_MODDIR failed"
	fi
	for m in "${GUEST_MODULES[@]}"; do
		while read -r line; do
			case $line in
			insmod\ *)
				path=${line#insmod }
				path=${path%% *}
				[[ -z ${seen[$path]:-} ]] || continue
				seen[$path]=1
				rel=${path#"$modroot/lib/modules/$K_RELEASE/"}
				[[ $rel != "$path" ]] || rel=${path##*/lib/modules/"$K_RELEASE"/}
				dst=$stage/lib/modules/$K_RELEASE/${rel%.xz}
				dst=${dst%.zst}
				dst=${dst%.gz}
				mkdir -p "$(dirname "$dst")"
				case $path in
				*.xz) xz -dc "$path" >"$dst" ;;
				*.zst) zstd -qdc "$path" >"$dst" ;;
				*.gz) gzip -dc "$path" >"$dst" ;;
				*) cp "$path" "$dst" ;;
				esac
				echo "/lib/modules/$K_RELEASE/${dst#"$stage/lib/modules/$K_RELEASE/"}" >>"$stage/etc/thpbench/modules"
				;;
			esac
		done < <(modprobe -d "$modroot" -S "$K_RELEASE" --show-depends "$m" 2>/dev/null || true)
	done
	local f
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[[ ! -f $K_MODDIR/$f ]] || cp "$K_MODDIR/$f" "$stage/lib/modules/$K_RELEASE/"
	done
	# For the kernel's own request_module (busybox modprobe reads modules.dep).
	depmod -b "$stage" "$K_RELEASE" 2>/dev/null || true
}

write_init() { # STAGE: the guest's init, a file of its own (scripts/guest/init)
	install -m 755 "$SCRIPT_DIR/guest/init" "$1/init"
}

# Builds $WORK/initrd-$K_RELEASE.gz (cached within this run per release).
build_initramfs() {
	INITRD=$WORK/initrd-$K_RELEASE.cpio.gz
	[[ -f $INITRD ]] && return 0
	local stage=$WORK/stage-$K_RELEASE lib
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc/thpbench,proc,sys,dev,tmp,run,scratch}
	cp /bin/busybox "$stage/bin/busybox"
	# thpbench, stripped (the initramfs is unpacked by the emulated CPU), and its libraries.
	strip -o "$stage/usr/local/bin/thpbench" "$THPBENCH_BIN" 2>/dev/null || cp "$THPBENCH_BIN" "$stage/usr/local/bin/thpbench"
	while read -r lib; do
		[[ -n $lib && -f $lib ]] || continue
		mkdir -p "$stage$(dirname "$lib")"
		cp -L "$lib" "$stage$lib"
	done < <(ldd "$THPBENCH_BIN" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
	stage_modules "$stage"
	cp "$RESOLVED" "$stage/etc/thpbench/workload.toml"
	# The flags are already in the resolved workload; -q keeps the console short.
	printf '%s\n' -q >"$stage/etc/thpbench/args"
	printf '%s\n' "$GUEST_CWD" >"$stage/etc/thpbench/cwd"
	printf '%s' "$SCRATCH_MOUNT" >"$stage/etc/thpbench/scratch-mount"
	write_init "$stage"
	(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | gzip -1 >"$INITRD")
	local mods
	mods=$(sed 's|.*/||; s|\.ko$||' "$stage/etc/thpbench/modules" | tr '\n' ' ')
	rm -rf "$stage"
	say "initramfs for $K_RELEASE: $(du -h "$INITRD" | cut -f1), modules: ${mods:-none}"
}

# ---------------------------------------------------------------- qemu
host_thp_mode() { sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; }

# Runs qemu with the current kernel and initrd. $1: extra kernel cmdline, $2: timeout (s),
# $3: accel, $4: file to stop on (probe: stop once the data log has the probe line).
# Sets QEMU_RC and QEMU_WALL; console in $CONSOLE, data in $DATA_LOG.
run_qemu() {
	local extra=$1 timeout=$2 accel=$3 probe=${4:-} cpu accel_opt start now
	CONSOLE=$WORK/console-$K_LABEL.log
	DATA_LOG=$WORK/data-$K_LABEL.log
	: >"$CONSOLE"
	: >"$DATA_LOG"
	if [[ $accel == kvm ]]; then
		accel_opt=kvm
		cpu=host
	else
		accel_opt=tcg,thread=multi
		cpu=max
		# TCG's max CPU is AMD-like without TOPOEXT, so Linux would see every thread as
		# a core; Intel's CPUID leaf 0xB carries the SMT siblings of -smp threads=N.
		[[ $SMP == *threads=* ]] && cpu=max,vendor=GenuineIntel
	fi
	local thp_arg=
	case $THP_MODE in
	default) ;;
	host) thp_arg="transparent_hugepage=$(host_thp_mode)" ;;
	*) thp_arg="transparent_hugepage=$THP_MODE" ;;
	esac
	local args=(
		-accel "$accel_opt" -cpu "$cpu" -smp "$SMP" -m "$MEM" -M q35
		-nodefaults -no-user-config -display none -no-reboot
		-kernel "$K_IMAGE" -initrd "$INITRD"
		-append "console=ttyS0 panic=-1 oops=panic loglevel=4 rdinit=/init $thp_arg thpbench.accel=$accel $extra"
		-serial "file:$CONSOLE" -serial "file:$DATA_LOG"
	)
	if ((NUMA_NODES > 1)); then
		local numa_arg
		while IFS= read -r numa_arg; do args+=("$numa_arg"); done < <(numa_args)
	fi
	if [[ -z $probe && -n $SCRATCH_MOUNT ]]; then
		# shellcheck disable=SC2054 # qemu option strings, not array elements
		args+=(-drive "if=none,id=scratch,file=$SCRATCH_IMG,format=raw,cache=writeback"
			-device virtio-blk-pci,drive=scratch)
	fi
	start=$(date +%s.%N)
	qemu-system-x86_64 "${args[@]}" </dev/null >"$WORK/qemu-$K_LABEL.out" 2>&1 &
	QEMU_PID=$!
	local tail_pid=
	if [[ $VERBOSE == 1 && -z $probe ]]; then
		tail -n +1 -f "$CONSOLE" --pid="$QEMU_PID" | sed "s/^/  [$K_LABEL] /" >&2 &
		tail_pid=$!
	fi
	QEMU_RC=
	# (stderr off while waiting: bash would report a qemu that aborts as "Aborted"; its
	# own message is in qemu-LABEL.out and goes into the verdict below.)
	exec 8>&2 2>/dev/null
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		now=$(date +%s.%N)
		if [[ -n $probe ]] && grep -q "THPBENCH-PROBE-OK" "$DATA_LOG" 2>/dev/null; then
			sleep 1 # let it power off by itself
			break
		fi
		if awk -v a="$start" -v b="$now" -v t="$timeout" 'BEGIN{exit !(b - a > t)}'; then
			QEMU_RC=timeout
			break
		fi
		sleep 0.5
	done
	if kill -0 "$QEMU_PID" 2>/dev/null; then
		kill -TERM "$QEMU_PID" 2>/dev/null || true
		sleep 1
		kill -KILL "$QEMU_PID" 2>/dev/null || true
	fi
	local rc=0
	wait "$QEMU_PID" 2>/dev/null || rc=$?
	exec 2>&8 8>&-
	QEMU_PID=
	[[ -n $QEMU_RC ]] || QEMU_RC=$rc
	[[ -z $tail_pid ]] || wait "$tail_pid" 2>/dev/null || true
	QEMU_WALL=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
}

# Decides KVM or TCG once (verdict cached per host boot in the cache dir).
ACCEL_USED=
ACCEL_WHY=
choose_accel() {
	[[ -z $ACCEL_USED ]] || return 0
	if [[ $ACCEL == tcg ]]; then
		ACCEL_USED=tcg
		ACCEL_WHY="--accel tcg"
		return 0
	fi
	local why=
	if [[ ! -e /dev/kvm ]]; then
		why="there is no /dev/kvm (no KVM module, or a VM without nested virtualization)"
	elif ! { exec 9<>/dev/kvm; } 2>/dev/null; then
		why="/dev/kvm cannot be opened by $(id -un) (add the user to group kvm)"
	else
		exec 9>&-
		local boot_id verdict_file qemu_version
		boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
		# Per boot and per qemu version: another qemu may well fail differently.
		qemu_version=$(qemu-system-x86_64 --version | head -1 | awk '{print $4}')
		verdict_file=$CACHE/kvm-verdict-$boot_id-qemu-$qemu_version
		if [[ -f $verdict_file ]]; then
			why=$(cat "$verdict_file")
			say "KVM verdict from an earlier probe since this boot: $verdict_file"
		else
			say "probing KVM: booting $K_RELEASE under KVM to its init (30 s at most)"
			run_qemu "thpbench.mode=probe" 30 kvm probe
			if grep -q "THPBENCH-PROBE-OK" "$DATA_LOG"; then
				why=
				say "KVM works: $K_RELEASE reached init in ${QEMU_WALL}s"
			else
				local qerr
				qerr=$(grep -m1 -v '^$' "$WORK/qemu-$K_LABEL.out" 2>/dev/null || true)
				if [[ $QEMU_RC == timeout ]]; then
					why="/dev/kvm is there, but a guest under KVM did not reach its init in 30 s"
				else
					why="/dev/kvm is there, but qemu under KVM stopped (exit $QEMU_RC${qerr:+: $qerr}) before the guest reached its init"
				fi
				# (|| true: no such line is the usual case, and set -e with pipefail would end the script here)
				why="$why; KVM does not work here (nested virtualization?)$({ dmesg 2>/dev/null | grep -m1 -o 'kvm[-a-z]*: INTERNAL_ERROR' | sed 's/^/; dmesg: /'; } || true)"
			fi
			mkdir -p "$CACHE"
			printf '%s' "$why" >"$verdict_file"
		fi
	fi
	if [[ -z $why ]]; then
		ACCEL_USED=kvm
		ACCEL_WHY="KVM works"
		return 0
	fi
	[[ $ACCEL != kvm ]] || die "--accel kvm: $why"
	ACCEL_USED=tcg
	ACCEL_WHY=$why
	say "KVM: $why"
	say "falling back to TCG (emulation): timings compare code paths, not speed (docs/kernels.md)"
}

# Extracts the files the guest sent: NAME -> $1/NAME, checked against size and sha256.
unpack_data() { # OUTDIR PREFIX
	local dir=$1 prefix=$2 name size sum f
	mkdir -p "$WORK/blocks"
	rm -f "$WORK/blocks"/*
	tr -d '\r' <"$DATA_LOG" | awk -v d="$WORK/blocks" '
		/^THPBENCH-BEGIN /{name=$2; print $3, $4 > (d "/" name ".meta"); close(d "/" name ".meta"); f=d "/" name ".b64"; printf "" > f; inb=1; next}
		/^THPBENCH-END /{close(f); inb=0; next}
		/^THPBENCH-EXIT /{print $2 > (d "/exit"); next}
		inb{print >> f}'
	GUEST_RC=$(cat "$WORK/blocks/exit" 2>/dev/null || echo none)
	for f in "$WORK"/blocks/*.meta; do
		[[ -f $f ]] || continue
		name=$(basename "$f" .meta)
		read -r size sum <"$f"
		if ! base64 -d <"$WORK/blocks/$name.b64" >"$WORK/blocks/$name" 2>/dev/null; then
			say "$K_LABEL: $name came back garbled (base64)"
			continue
		fi
		if [[ $(wc -c <"$WORK/blocks/$name") != "$size" || $(sha256sum <"$WORK/blocks/$name" | cut -d' ' -f1) != "$sum" ]]; then
			say "$K_LABEL: $name came back damaged (size or sha256 differ)"
			continue
		fi
		case $name in
		result.json) cp "$WORK/blocks/$name" "$dir/$prefix.json" ;;
		*) cp "$WORK/blocks/$name" "$dir/$prefix.${name}" ;;
		esac
	done
}

# ---------------------------------------------------------------- compare, plot
# compare_and_plot NAME RESULT...: compare NAME.md/.txt and plot (NAME with compare ->
# plot).svg/.png, run in OUT_DIR with the results' file names, so that the tables name
# files, not this machine's paths.
compare_and_plot() {
	local name=$1 f
	shift
	local rel=()
	for f in "$@"; do rel+=("${f#"$OUT_DIR"/}"); done
	set -- "${rel[@]}"
	pushd "$OUT_DIR" >/dev/null
	if has_subcommand compare; then
		say "thpbench compare (markdown) -> $OUT_DIR/$name.md"
		# compare refuses results whose resolved workloads differ (the host's target is
		# not the guests'), and results from different machines or conditions (the host
		# is not a guest): say so, with compare's own reasons, before overriding it.
		local force=()
		if ! "$THPBENCH_BIN" compare --format json "$@" >/dev/null 2>"$WORK/compare.err"; then
			cat "$WORK/compare.err" >&2
			if grep -q -- '--force' "$WORK/compare.err"; then
				say "the results' workloads differ (above); comparing with --force: the tables name the differing parameters"
				force+=(--force)
			fi
			if grep -q -- '--allow-different-machines' "$WORK/compare.err"; then
				say "the results come from different machines or conditions (above); comparing with --allow-different-machines: the tables print the differences first"
				force+=(--allow-different-machines)
			fi
		fi
		if "$THPBENCH_BIN" compare "${force[@]}" --format markdown "$@" >"$OUT_DIR/$name.md" 2>"$WORK/compare.err"; then
			cat "$OUT_DIR/$name.md"
		else
			cat "$WORK/compare.err" >&2
			say "thpbench compare failed (above)"
		fi
		"$THPBENCH_BIN" compare "${force[@]}" "$@" >"$OUT_DIR/$name.txt" 2>"$WORK/compare.err" ||
			say "thpbench compare (text) failed: $(cat "$WORK/compare.err")"
	else
		say "this thpbench has no 'compare' subcommand yet (issue 5); compare the results by hand: $*"
	fi
	local plot=${name/compare/plot}
	if has_subcommand plot; then
		if "$THPBENCH_BIN" plot "$@" -o "$OUT_DIR/$plot.svg" >&2 &&
			"$THPBENCH_BIN" plot "$@" -o "$OUT_DIR/$plot.png" >&2; then
			say "plot: $OUT_DIR/$plot.svg, $OUT_DIR/$plot.png"
		else
			say "thpbench plot failed (above)"
		fi
	else
		say "this thpbench has no 'plot' subcommand yet (issue 5); no plot"
	fi
	popd >/dev/null
}

report_all() {
	[[ $DO_COMPARE == 1 && ${#RESULTS[@]} -gt 0 ]] || return 0
	compare_and_plot compare "${RESULTS[@]}"
	# The host ran on real CPUs and its own disk: set beside emulated guests it mostly
	# shows the cost of emulation. The guests among themselves share the same conditions.
	if [[ ${#GUEST_RESULTS[@]} -ge 2 && ${#GUEST_RESULTS[@]} -lt ${#RESULTS[@]} ]]; then
		say "the guests alone (same accelerator, same virtual machine), baseline the first guest:"
		compare_and_plot compare-guests "${GUEST_RESULTS[@]}"
	fi
}

# Which of the mismatch exit's two causes a result holds: the parent's reads that did not verify,
# forked children whose private copy changed (COW isolation broken), or both.
corruption_cause() { # RESULT.json
	jq -r '[.runs[], .baseline_runs[], (.sweep // [])[].runs[]] as $r
		| ($r | map(.verify.mismatches) | add // 0) as $sectors
		| ($r | map(select(.verify.mismatches > 0)) | length) as $bad
		| ($r | map(.disturbers[]?.extra | select(.children != null))) as $f
		| [ (if $sectors > 0 then "verify found \($sectors) mismatched sectors in \($bad) of \($r | length) runs" else empty end),
		    (if ($f | map(.child_saw_parent_data // 0) | add // 0) > 0 then "\($f | map(.child_saw_parent_data // 0) | add) of \($f | map(.children) | add) forked children saw their buffer change after fork, in \($f | map(select((.child_saw_parent_data // 0) > 0)) | length) of \($r | length) runs (COW isolation broken; the parent'"'"'s reads: \($sectors) mismatched sectors)" else empty end) ]
		| if length == 0 then "a mismatch exit but the result names no mismatch" else join("; ") end' "$1" 2>/dev/null ||
		echo "verify found mismatched sectors or a forked child saw its buffer change (the result could not be read)"
}

# thpbench's exit codes as thpbench itself lists them (src/exit.rs), never copied here:
# EXIT_CODE[name] -> code, EXIT_MEANING[code] -> meaning.
declare -A EXIT_CODE=() EXIT_MEANING=()
load_exit_codes() {
	local table code name meaning
	table=$("$THPBENCH_BIN" exit-codes --json 2>/dev/null) ||
		die "$THPBENCH_BIN has no exit-codes subcommand: rebuild it from this checkout (or pass a newer --thpbench)"
	while IFS=$'\t' read -r code name meaning; do
		EXIT_CODE[$name]=$code
		EXIT_MEANING[$code]=$meaning
	done < <(jq -r '.[] | [.code, .name, .meaning] | @tsv' <<<"$table")
	[[ -n ${EXIT_CODE[ok]:-} && -n ${EXIT_CODE[mismatch]:-} ]] ||
		die "$THPBENCH_BIN exit-codes --json lists no ok or mismatch code: $table"
}

# What thpbench's exit code says.
rc_status() { # RC LOG RESULT.json
	if [[ $1 == "${EXIT_CODE[ok]}" ]]; then
		echo ok
	elif [[ $1 == "${EXIT_CODE[mismatch]}" ]]; then
		echo "DATA CORRUPTION: $(corruption_cause "$3") (thpbench exit $1; see $2)"
	else
		echo "${EXIT_MEANING[$1]:-thpbench failed} (thpbench exit $1; see $2)"
	fi
}

# ---------------------------------------------------------------- main
ensure_tools
resolve_thpbench
load_exit_codes
if [[ $COMPARE_ONLY == 1 ]]; then
	OUT_DIR=$(realpath "$OUT_DIR")
	mapfile -t RESULTS < <(find "$OUT_DIR" -maxdepth 1 -name '[0-9]*.json' | sort)
	[[ ${#RESULTS[@]} -gt 0 ]] || die "--compare-only: no NN-*.json results in $OUT_DIR"
	GUEST_RESULTS=()
	for r in "${RESULTS[@]}"; do
		[[ $(basename "$r") == [0-9][0-9]-host-* ]] || GUEST_RESULTS+=("$r")
	done
	DO_COMPARE=1
	report_all
	exit 0
fi
resolve_workload "$WORKLOAD_ARG"

if [[ -z $OUT_DIR ]]; then
	if [[ $SELF_TEST == 1 ]]; then
		OUT_DIR=$WORK/out
	else
		OUT_DIR=$REPO/results/kernels/$(date -u +%Y%m%dT%H%M%SZ)-$WL_NAME
	fi
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(realpath "$OUT_DIR")
SUMMARY=$OUT_DIR/runs.tsv
printf 'label\trelease\taccel\twall_s\tboot_to_run_s\tstatus\tresult\n' >"$SUMMARY"

say "workload $WL_NAME ($WORKLOAD${WL_ARGS[*]:+ with ${WL_ARGS[*]}}), target ${WL_TARGET:-none (engine $WL_ENGINE)}; results in $OUT_DIR"

RESULTS=()
GUEST_RESULTS=()
FAILED=()
idx=0
for spec in "${KERNELS[@]}"; do
	idx=$((idx + 1))
	resolve_kernel "$spec"
	prefix=$(printf '%02d-%s' "$idx" "$K_LABEL")
	if [[ -z $K_IMAGE ]]; then
		say "[$idx/${#KERNELS[@]}] host: thpbench run on this machine ($K_RELEASE) in $INVOKED_FROM"
		start=$(date +%s)
		rc=0
		(cd "$INVOKED_FROM" && "$THPBENCH_BIN" run "$RESOLVED" -o "$OUT_DIR/$prefix.json" >"$OUT_DIR/$prefix.run.log" 2>&1) || rc=$?
		status=$(rc_status "$rc" "$prefix.run.log" "$OUT_DIR/$prefix.json")
		[[ ! -f $OUT_DIR/$prefix.json ]] || RESULTS+=("$OUT_DIR/$prefix.json")
		[[ $rc == 0 ]] || FAILED+=("$spec")
		cat "$OUT_DIR/$prefix.run.log" >&2
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$K_LABEL" "$K_RELEASE" none $(($(date +%s) - start)) - "$status" "$prefix.json" >>"$SUMMARY"
		continue
	fi
	build_initramfs
	choose_accel
	if [[ -n $SCRATCH_MOUNT ]]; then
		SCRATCH_IMG=$WORK/scratch.img
		rm -f "$SCRATCH_IMG"
		truncate -s $((WL_SIZE * 2 + (256 << 20))) "$SCRATCH_IMG"
		mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=1 -O ^has_journal "$SCRATCH_IMG" >/dev/null ||
			die "mkfs.ext4 on $SCRATCH_IMG failed"
	fi
	say "[$idx/${#KERNELS[@]}] $K_RELEASE under qemu ($ACCEL_USED, $SMP vCPUs, $MEM$( ((NUMA_NODES > 1)) && echo ", $NUMA_NODES NUMA nodes")${K_MODDIR:+, modules from $K_MODDIR})"
	run_qemu "" "$TIMEOUT" "$ACCEL_USED"
	unpack_data "$OUT_DIR" "$prefix"
	cp "$CONSOLE" "$OUT_DIR/$prefix.console.log"
	boot_s=$(sed -n 's/^boot_to_run_s: //p' "$OUT_DIR/$prefix.guest-info.txt" 2>/dev/null || true)
	init_s=$(tr -d '\r' <"$CONSOLE" | sed -n 's/.*reached init after \([0-9.]*\) s.*/\1/p' | head -1)
	if [[ $QEMU_RC == timeout ]]; then
		status="timed out after ${TIMEOUT}s (console: $prefix.console.log)"
	elif [[ ! -f $OUT_DIR/$prefix.json ]]; then
		status="no result came back (guest exit ${GUEST_RC}, qemu exit $QEMU_RC; console: $prefix.console.log)"
	elif [[ $GUEST_RC != 0 ]]; then
		status=$(rc_status "$GUEST_RC" "$prefix.run.log" "$OUT_DIR/$prefix.json")
	else
		status=ok
	fi
	if [[ -f $OUT_DIR/$prefix.json ]]; then
		RESULTS+=("$OUT_DIR/$prefix.json")
		GUEST_RESULTS+=("$OUT_DIR/$prefix.json")
	fi
	[[ $status == ok ]] || FAILED+=("$spec")
	if [[ $status != ok || $VERBOSE == 1 ]]; then
		[[ $VERBOSE == 1 ]] || tr -d '\r' <"$CONSOLE" | tail -n 40 | sed "s/^/  [$K_LABEL] /" >&2
	fi
	[[ $VERBOSE == 1 || ! -f $OUT_DIR/$prefix.run.log ]] || sed "s/^/  [$K_LABEL] /" "$OUT_DIR/$prefix.run.log" >&2
	say "[$idx/${#KERNELS[@]}] $K_RELEASE: $status; ${QEMU_WALL}s wall under $ACCEL_USED, init after ${init_s:-?}s, workload started after ${boot_s:-?}s of guest uptime"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$K_LABEL" "$K_RELEASE" "$ACCEL_USED" "$QEMU_WALL" "${boot_s:--}" "$status" "$prefix.json" >>"$SUMMARY"
done

{
	echo "workload: $WL_NAME (${WORKLOAD#"$REPO/"}${WL_ARGS[*]:+ with ${WL_ARGS[*]}})"
	echo "accelerator: ${ACCEL_USED:-none (host only)}${ACCEL_WHY:+ ($ACCEL_WHY)}"
	echo "guests: $SMP vCPUs, $MEM$( ((NUMA_NODES > 1)) && echo ", $NUMA_NODES NUMA nodes"), transparent_hugepage=$([[ $THP_MODE == host ]] && host_thp_mode || echo "$THP_MODE"), qemu $(qemu-system-x86_64 --version | head -1 | awk '{print $4}')"
	echo "host: $(uname -r), $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
} >"$OUT_DIR/README.txt"

if [[ $SELF_TEST == 1 ]]; then
	r=${RESULTS[0]:-}
	[[ -n $r && -f $r ]] || die "self-test: no result came back from $K_RELEASE"
	jq -e --arg rel "$K_RELEASE" '
		(.system.kernel.release == $rel) and (.runs[0].ops > 0)
		and (.runs[0].latency_ns.count == .runs[0].ops)' "$r" >/dev/null ||
		die "self-test: the result is wrong: release $(jq -r .system.kernel.release "$r") (expected $K_RELEASE), ops $(jq -r '.runs[0].ops' "$r"), histogram count $(jq -r '.runs[0].latency_ns.count' "$r")"
	say "self-test: PASS: $K_RELEASE booted under $ACCEL_USED in ${QEMU_WALL}s wall; ops $(jq -r '.runs[0].ops' "$r") = histogram count; result $r"
fi

report_all

say "done: ${#RESULTS[@]} result(s) in $OUT_DIR; summary $SUMMARY"
if [[ ${#FAILED[@]} -gt 0 ]]; then
	say "failed: ${FAILED[*]}"
	exit 1
fi
exit 0
}
