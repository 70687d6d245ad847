#!/usr/bin/env bash
# The device set on emulated Raspberry Pi CPUs (`./dev arm64` runs this).
#
#   tests/arm64/run.sh HOST_PYTHON [CPU...]     (default CPUs: cortex-a72 cortex-a76)
#
# 1. A Debian Bookworm arm64 root file system (debootstrap --foreign: packages
#    unpacked, never configured, no chroot), built once into .cache/arm64/.
# 2. Our wheel plus the device set for aarch64, resolved by pip exactly as on a Pi
#    (manylinux wheels up to Bookworm's glibc 2.36, CPython 3.11), into a folder.
# 3. tests/arm64/check.py: Debian's arm64 python3.11 under qemu-aarch64-static with
#    QEMU_CPU set to the Pi's core, compared with the same steps on this x86 machine.
#
# Needs qemu-user-static and debootstrap (`./dev arm64` installs them) and root
# (debootstrap creates device nodes). Timings under emulation mean nothing for a Pi:
# nothing here reports a speed.
set -euo pipefail
cd "$(dirname "$0")/../.."

HOST_PY=${1:?usage: tests/arm64/run.sh HOST_PYTHON [CPU...]}
shift
CPUS=("$@")
[ ${#CPUS[@]} -gt 0 ] || CPUS=(cortex-a72 cortex-a76)

SUITE=bookworm
GLIBC_MINOR=36  # Bookworm's glibc 2.36, the same as Raspberry Pi OS Bookworm's
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=.cache/arm64
ROOTFS=$CACHE/rootfs-$SUITE
# Bump when the package list changes: a root fs with another stamp is rebuilt.
STAMP="$SUITE arm64 minbase +python3.11 v1"

log() { echo "arm64: $*" >&2; }

build_rootfs() {
    if [ -f "$ROOTFS/.screwcam-stamp" ] && [ "$(cat "$ROOTFS/.screwcam-stamp")" = "$STAMP" ]; then
        log "root fs: cached in $ROOTFS"
        return
    fi
    local tmp=$CACHE/rootfs.tmp
    rm -rf "$tmp" "$ROOTFS"
    mkdir -p "$CACHE"
    log "root fs: debootstrap --foreign $SUITE arm64 (downloads ~110 Debian packages, once)"
    debootstrap --foreign --arch=arm64 --variant=minbase --include=python3.11 \
        "$SUITE" "$tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
        tail -20 "$CACHE/debootstrap.log" >&2
        log "debootstrap failed (full log: $CACHE/debootstrap.log)"
        exit 1
    }
    # --foreign unpacks only the packages a second stage would need; unpack the rest
    # (python3.11 and its libraries) the same way. Nothing is configured or run.
    local deb
    for deb in "$tmp"/var/cache/apt/archives/*.deb; do
        dpkg-deb -x "$deb" "$tmp"
    done
    rm -f "$tmp"/var/cache/apt/archives/*.deb
    [ -x "$tmp/usr/bin/python3.11" ] || { log "no python3.11 in the root fs"; exit 1; }
    echo "$STAMP" >"$tmp/.screwcam-stamp"
    mv "$tmp" "$ROOTFS"
    log "root fs: built in $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
}

install_device_set() {
    # What `pip install` of our wheel gives a Pi: the aarch64 manylinux wheels that a
    # glibc-2.36 CPython 3.11 accepts, newest tag first, binaries only.
    local platforms=() v
    for v in $(seq "$GLIBC_MINOR" -1 17); do
        platforms+=(--platform "manylinux_2_${v}_aarch64")
    done
    platforms+=(--platform manylinux2014_aarch64)
    rm -rf "$CACHE/wheel" "$CACHE/site"
    log "building our wheel"
    "$HOST_PY" -m pip wheel -q --no-deps -w "$CACHE/wheel" . 2>&1 | grep -v 'is ignored' >&2 || true
    local wheel
    wheel=$(ls "$CACHE"/wheel/screwcam-*.whl)
    log "installing $(basename "$wheel") and the device set for aarch64 into $CACHE/site"
    "$HOST_PY" -m pip install -q --target "$CACHE/site" "${platforms[@]}" \
        --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
        "$wheel" 2>&1 | grep -v 'is ignored' >&2 || true
    [ -f "$CACHE/site/bin/screwcam" ] || { log "pip install --target failed"; exit 1; }
}

build_rootfs
install_device_set
exec "$HOST_PY" tests/arm64/check.py --rootfs "$ROOTFS" --site "$CACHE/site" "${CPUS[@]}"
