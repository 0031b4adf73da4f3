# The venv rules shared by scripts/run and scripts/install-service.sh (sourced, not run).
#
# On a Raspberry Pi or a Jetson the venv sees the system's packages (--system-site-packages):
# apt's picamera2, libcamera and simplejpeg (Pi) or JetPack's OpenCV (Jetson). Those C
# extensions are built against the system's numpy; on Raspberry Pi OS Bookworm, Debian 12 and
# Jetson Linux that is numpy 1.x, and a numpy 2 that pip puts into the venv shadows it and
# breaks them ("numpy.dtype size changed", "compiled using NumPy 1.x cannot be run in NumPy 2").
# So when the system's numpy is 1.x, the install is constrained to numpy<2 and to the newest
# opencv-python and ml_dtypes that still accept it: pip then keeps the system's numpy (it
# satisfies every requirement on Raspberry Pi OS Bookworm and Debian 12), and only where a
# dependency needs a newer 1.x (Ubuntu 22.04's numpy 1.21 on a Jetson) puts that into the venv,
# which the system's extensions still load (numpy 1.x is forward compatible within 1.x).
# The constraints file is kept in the venv and named in the venv's pip.conf, so a later
# `pip install` in that venv keeps them too. A system with numpy 2, or none, gets no constraints.

# edgecam_board: print the Raspberry Pi / Jetson model string and succeed, or fail.
# (/proc/device-tree is a link to /sys/firmware/devicetree/base on both.)
edgecam_board() {
    local f model
    for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do
        [ -r "$f" ] || continue
        model=$(tr -d '\0' <"$f" 2>/dev/null) || continue
        case "$model" in *"Raspberry Pi"*|*Jetson*) echo "$model"; return 0 ;; esac
    done
    [ -f /etc/nv_tegra_release ] && { echo "NVIDIA Jetson (/etc/nv_tegra_release)"; return 0; }
    return 1
}

# edgecam_want_system_site: yes when the venv should see the system's packages.
# EDGECAM_SYSTEM_SITE_PACKAGES=1 forces it, =0 forbids it; otherwise a Pi or Jetson board.
edgecam_want_system_site() {
    case "${EDGECAM_SYSTEM_SITE_PACKAGES:-}" in
        1|yes|true) return 0 ;;
        0|no|false) return 1 ;;
    esac
    edgecam_board >/dev/null
}

# edgecam_venv_sees_system VENV: the venv was made with --system-site-packages.
edgecam_venv_sees_system() {
    grep -qiE '^include-system-site-packages *= *true' "$1/pyvenv.cfg" 2>/dev/null
}

# edgecam_system_numpy PY: the version of the numpy PY itself has (apt's), or nothing.
edgecam_system_numpy() {
    "$1" -I -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true
}

# edgecam_venv_numpy2 VENV: the venv holds a numpy 2 of its own (which shadows a system numpy 1.x).
edgecam_venv_numpy2() {
    compgen -G "$1/lib/python3*/site-packages/numpy-[2-9]*.dist-info" >/dev/null
}

# edgecam_keep_system_numpy PY VENV: for a venv that sees the system's numpy 1.x, write
# VENV/edgecam-constraints.txt and VENV/pip.conf, drop a numpy 2 the venv holds (left by an
# earlier install), and set EDGECAM_PIP_CONSTRAINTS to the pip arguments that apply them
# (empty when there is nothing to keep).
EDGECAM_PIP_CONSTRAINTS=()
edgecam_keep_system_numpy() {
    local py=$1 venv=$2 np cons
    EDGECAM_PIP_CONSTRAINTS=()
    edgecam_venv_sees_system "$venv" || return 0
    np=$(edgecam_system_numpy "$py")
    case "$np" in 1.*) ;; *) rm -f "$venv/edgecam-constraints.txt" "$venv/pip.conf"; return 0 ;; esac
    cons="$venv/edgecam-constraints.txt"
    cat >"$cons" <<EOF
# Written by edgecam's installer: this venv sees the system's numpy $np, which the system's C
# extensions (picamera2's simplejpeg on a Pi) are built against; numpy 2 would shadow it and break them.
numpy<2
# the last releases that accept numpy 1.x (opencv-python 4.12 and ml_dtypes 0.6 require numpy>=2)
opencv-python<4.12
opencv-python-headless<4.12
ml-dtypes<0.6
EOF
    printf '[global]\nconstraint = %s\n' "$cons" >"$venv/pip.conf"
    if edgecam_venv_numpy2 "$venv"; then
        echo "edgecam: removing the numpy that shadows the system's numpy $np in $venv" >&2
        "$venv/bin/python" -m pip uninstall -y -q numpy >&2 || return 1
    fi
    echo "edgecam: keeping the system's numpy $np (constraints: $cons)" >&2
    EDGECAM_PIP_CONSTRAINTS=(-c "$cons")
}

# edgecam_ensure_ffmpeg [ROOT-RUNNER...]: install ffmpeg, the encoder of recordings that stay
# playable when cut (fragmented MP4, Matroska), where it is missing; apt-get runs through
# ROOT-RUNNER (e.g. as_root; nothing when already root). Without it, say what falls back.
edgecam_ensure_ffmpeg() {
    command -v ffmpeg >/dev/null && return 0
    local apt=("$@" env DEBIAN_FRONTEND=noninteractive apt-get)
    if command -v apt-get >/dev/null; then
        echo "edgecam: installing ffmpeg for recordings that survive a crash or a power cut (needs root)" >&2
        { "${apt[@]}" install -y -qq ffmpeg || { "${apt[@]}" update -qq && "${apt[@]}" install -y -qq ffmpeg; }; } \
            >/dev/null 2>&1 && return 0
    fi
    echo "edgecam: warning: no ffmpeg: recordings fall back to OpenCV's writer, playable only once closed (sudo apt install ffmpeg)" >&2
}
