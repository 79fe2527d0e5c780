# shellcheck shell=bash
# Sourced by the benchmark scripts: a 1 GiB zram device of incompressible data, made for
# the benchmark and removed afterwards (root).
#   random_zram_add     makes it; sets zram_id and zram_dev
#   random_zram_remove  resets and removes it, if one was made (call it from the EXIT trap)
zram_id=""
zram_dev=""

random_zram_add() {
    zram_id=$(cat /sys/class/zram-control/hot_add)
    zram_dev=/dev/zram$zram_id
    echo 1G > "/sys/block/zram$zram_id/disksize"
    # udev makes the node; until it has, dd must not create a plain file in its place.
    local tries=0
    until [ -b "$zram_dev" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || { echo "$zram_dev did not appear" >&2; return 1; }
        sleep 0.1
    done
    # Random data, so that the tools read real pages, not zero pages zram keeps as one word.
    dd if=/dev/urandom of="$zram_dev" bs=1M count=1024 oflag=direct conv=nocreat status=none
}

random_zram_remove() {
    [ -n "$zram_id" ] || return 0
    # A signal reaches thpbench or fio too, and they may still hold the device while
    # they wind down: reset answers EBUSY until they let go.
    local tries=0
    until echo 1 2>/dev/null > "/sys/block/zram$zram_id/reset"; do
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || break
        sleep 0.2
    done
    if ! echo "$zram_id" 2>/dev/null > /sys/class/zram-control/hot_remove; then
        echo "zram$zram_id is still in use and was left behind; remove it with:" \
            "echo 1 > /sys/block/zram$zram_id/reset; echo $zram_id > /sys/class/zram-control/hot_remove" >&2
    fi
    zram_id=""
}
