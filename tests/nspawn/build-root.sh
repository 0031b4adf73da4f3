#!/usr/bin/env bash
# Build (once) a Debian bookworm root with systemd for tests/test_systemd_boot.py, and the
# wheels edgecam needs (the container has no network: pip installs from this folder).
#
#   tests/nspawn/build-root.sh CACHE_DIR
#
# CACHE_DIR/root-KEY  the root file system (debootstrap --variant=minbase + systemd, udev (it
#                     creates the render group the unit names), python3); KEY changes with
#                     the package list, so a changed list builds a new root
# CACHE_DIR/wheels    numpy, pyyaml, opencv-python, ai-edge-litert, setuptools (for the build)
# Each is built into a temporary folder and renamed when complete, so an interrupted build
# is started again rather than used half-made. Needs root, debootstrap and the Debian mirror.
set -euo pipefail
CACHE=${1:?usage: build-root.sh CACHE_DIR}
MIRROR=${EDGECAM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=systemd,systemd-sysv,udev,dbus,python3,python3-venv,libgl1,libglib2.0-0,procps
KEY=$(echo "bookworm $PACKAGES" | md5sum | cut -c1-8)
ROOT="$CACHE/root-$KEY"
mkdir -p "$CACHE"
if [ ! -d "$ROOT" ]; then
    tmp="$ROOT.tmp"
    rm -rf "$tmp"
    echo "build-root: debootstrap bookworm into $tmp ($PACKAGES)" >&2
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$tmp" "$MIRROR" >&2
    rm -f "$tmp/etc/machine-id"
    systemd-machine-id-setup --root="$tmp" >/dev/null
    echo edgecam-test >"$tmp/etc/hostname"
    # no getty on the console, nothing that waits for a network
    ln -sf /dev/null "$tmp/etc/systemd/system/console-getty.service"
    ln -sf /dev/null "$tmp/etc/systemd/system/systemd-networkd-wait-online.service"
    rm -rf "$tmp/var/cache/apt/archives/"*.deb
    mv "$tmp" "$ROOT"
fi
if [ ! -d "$CACHE/wheels" ]; then
    tmp="$CACHE/wheels.tmp"
    rm -rf "$tmp"
    py=$(chroot "$ROOT" python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
    echo "build-root: downloading wheels for CPython $py into $tmp" >&2
    python3 -m pip download -q --disable-pip-version-check --only-binary=:all: \
        --python-version "$py" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 --implementation cp -d "$tmp" \
        numpy "pyyaml>=5.4" "opencv-python>=4.5" ai-edge-litert "setuptools>=77" wheel >&2
    mv "$tmp" "$CACHE/wheels"
fi
echo "$ROOT"
