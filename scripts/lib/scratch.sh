# shellcheck shell=bash
# Sourced by the benchmark scripts: a scratch folder and, where asked, a 1 GiB zram
# device of random data, both removed when the script exits, is interrupted (INT) or is
# told to stop (TERM).
#   scratch_init       makes the folder and sets the traps; `scratch_dir` prints its path
#   random_zram_add    makes the device (root); `random_zram_dev` prints its path
# The state stays in here; callers read it through the functions. Callers run the tools
# in the shell itself (`run_tool > "$work/out"`, then `x=$(<"$work/out")`), not inside
# `$(...)`: a shell waiting for a plain child runs its traps after the child is done,
# while one reading a `$(...)` runs them at once, and the cleanup would remove the folder
# before the tool has written its result into it.
_scratch_dir=""
_zram_id=""

scratch_init() {
    _scratch_dir=$(mktemp -d)
    trap _scratch_cleanup EXIT
    trap 'exit 130' INT TERM
}

scratch_dir() { echo "$_scratch_dir"; }

random_zram_dev() { echo "/dev/zram$_zram_id"; }

random_zram_add() {
    _zram_id=$(cat /sys/class/zram-control/hot_add)
    local dev
    dev=$(random_zram_dev)
    echo 1G > "/sys/block/zram$_zram_id/disksize"
    # udev makes the node; until it has, dd must not create a plain file in its place.
    local tries=0
    until [ -b "$dev" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || { echo "$dev did not appear" >&2; return 1; }
        sleep 0.1
    done
    # Random data, so that the tools read real pages, not zero pages zram keeps as one word.
    dd if=/dev/urandom of="$dev" bs=1M count=1024 oflag=direct conv=nocreat status=none
}

_random_zram_remove() {
    [ -n "$_zram_id" ] || return 0
    # A signal reaches thpbench or fio too, and they may still hold the device while
    # they wind down: reset answers EBUSY until they let go.
    local tries=0
    until echo 1 2>/dev/null > "/sys/block/zram$_zram_id/reset"; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || break
        sleep 0.2
    done
    if ! echo "$_zram_id" 2>/dev/null > /sys/class/zram-control/hot_remove; then
        echo "zram$_zram_id is still in use and was left behind; remove it with:" \
            "echo 1 > /sys/block/zram$_zram_id/reset; echo $_zram_id > /sys/class/zram-control/hot_remove" >&2
    fi
    _zram_id=""
}

_scratch_cleanup() {
    _random_zram_remove
    [ -n "$_scratch_dir" ] || return 0
    # After a signal, a tool whose shell died first may still write its result here:
    # the folder is gone only when a removal leaves nothing behind.
    local tries=0
    until rm -rf "$_scratch_dir" 2>/dev/null && [ ! -e "$_scratch_dir" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || { echo "could not remove $_scratch_dir" >&2; break; }
        sleep 0.2
    done
}
