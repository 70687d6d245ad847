#!/usr/bin/env bash
# The device set on emulated Raspberry Pi CPUs (`./dev arm64` runs this).
#
#   tests/arm64/run.sh HOST_PYTHON [CPU...]     (default CPUs: cortex-a72 cortex-a76)
#
# 1. A Debian Bookworm arm64 root file system (debootstrap --foreign: packages
#    unpacked, never configured, no chroot), built once into .cache/arm64/. Besides
#    python3.11 it holds what a Pi's system Python has for picamera2: apt's NumPy 1.24
#    and a Debian extension module built against it (python3-pywt standing in for
#    python3-simplejpeg, which is only in Raspberry Pi's archive).
# 2. The README's Pi install, run by Debian's arm64 python3.11 under QEMU: a venv with
#    --system-site-packages, and Bookworm's own pip installing our wheel from PyPI, so
#    pip itself decides what an aarch64 Python 3.11 gets (a cross install with
#    `pip --platform` would evaluate our environment markers for x86).
# 3. tests/arm64/check.py: the device checks in that venv with QEMU_CPU set to each Pi's
#    core, compared with the same steps on this x86 machine.
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
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3.11,python3.11-venv,python3-numpy,python3-pywt
CACHE=$PWD/.cache/arm64
ROOTFS=$CACHE/rootfs-$SUITE
VENV=$CACHE/venv
# A root fs built with another stamp (suite or package list) is rebuilt.
STAMP="$SUITE arm64 minbase $PACKAGES v2"

log() { echo "arm64: [${SECONDS}s] $*" >&2; }

build_rootfs() {
    if [ -f "$ROOTFS/.screwcam-stamp" ] && [ "$(cat "$ROOTFS/.screwcam-stamp")" = "$STAMP" ]; then
        log "root fs: cached in $ROOTFS"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "building the root fs needs root (debootstrap makes device nodes): run as root"
        exit 1
    fi
    local tmp=$CACHE/rootfs.tmp
    rm -rf "$tmp" "$ROOTFS"
    mkdir -p "$CACHE"
    log "root fs: debootstrap --foreign $SUITE arm64 (downloads ~120 Debian packages, once)"
    debootstrap --foreign --arch=arm64 --variant=minbase --include="$PACKAGES" \
        "$SUITE" "$tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
        tail -20 "$CACHE/debootstrap.log" >&2
        log "debootstrap failed (full log: $CACHE/debootstrap.log)"
        exit 1
    }
    # --foreign unpacks only what a second stage would need; unpack the rest the same
    # way. No maintainer script runs, so make the two links update-alternatives would
    # (NumPy's BLAS and LAPACK).
    local deb
    for deb in "$tmp"/var/cache/apt/archives/*.deb; do
        dpkg-deb -x "$deb" "$tmp"
    done
    rm -f "$tmp"/var/cache/apt/archives/*.deb
    ln -sf blas/libblas.so.3 "$tmp/usr/lib/aarch64-linux-gnu/libblas.so.3"
    ln -sf lapack/liblapack.so.3 "$tmp/usr/lib/aarch64-linux-gnu/liblapack.so.3"
    [ -x "$tmp/usr/bin/python3.11" ] || { log "no python3.11 in the root fs"; exit 1; }
    echo "$STAMP" >"$tmp/.screwcam-stamp"
    mv "$tmp" "$ROOTFS"
    log "root fs: built in $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
}

emulated() {
    # Debian's arm64 programs under QEMU user mode; a Cortex-A72 for installing.
    QEMU_CPU=cortex-a72 QEMU_LD_PREFIX=$ROOTFS PYTHONNOUSERSITE=1 PIP_CACHE_DIR=$CACHE/pip \
        PIP_DISABLE_PIP_VERSION_CHECK=1 qemu-aarch64-static "$@"
}

install_like_the_readme() {
    rm -rf "$CACHE/wheel" "$VENV"
    log "building our wheel"
    "$HOST_PY" -m pip wheel -q --no-deps -w "$CACHE/wheel" . 2>&1 | grep -v 'is ignored' >&2 || true
    local wheel pip_whl
    wheel=$(ls "$CACHE"/wheel/screwcam-*.whl)
    # `python3 -m venv` would run ensurepip in a child process, and a child arm64
    # process cannot start without binfmt_misc; so the venv is made without pip and
    # Bookworm's pip (the wheel ensurepip would install) runs from its wheel.
    log "venv --system-site-packages, then Bookworm's pip installs $(basename "$wheel") (emulated, slow)"
    emulated "$ROOTFS/usr/bin/python3.11" -m venv --without-pip --system-site-packages "$VENV"
    pip_whl=$(ls "$ROOTFS"/usr/share/python-wheels/pip-*.whl)
    # --no-compile: byte-compiling every installed module is most of pip's emulated time;
    # the modules the check imports are compiled when first imported instead.
    emulated "$VENV/bin/python" "$pip_whl/pip" install -q --no-compile "$wheel" 2>&1 |
        grep -v 'is ignored' >&2 || true
    [ -f "$VENV/bin/screwcam" ] || { log "pip install in the emulated venv failed"; exit 1; }
}

build_rootfs
install_like_the_readme
log "installed"
exec "$HOST_PY" tests/arm64/check.py --rootfs "$ROOTFS" --venv "$VENV" "${CPUS[@]}"
