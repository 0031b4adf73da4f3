#!/usr/bin/env bash
# Install edgecam as a systemd service (Raspberry Pi OS, Debian, Ubuntu, Jetson Linux).
#
#   sudo scripts/install-service.sh                 install or update, enable and start
#   sudo scripts/install-service.sh --mirror DIR    provision the model from a local mirror folder
#   sudo scripts/install-service.sh --uninstall     stop, disable, remove the unit and the venv
#                                                   (config and models stay; --purge removes them
#                                                   and the edgecam user too)
#   scripts/install-service.sh --prefix DIR --no-systemctl
#                                                   everything into DIR, touching nothing else:
#                                                   DIR/opt/edgecam/venv, DIR/etc/edgecam/config.yaml,
#                                                   DIR/var/lib/edgecam/models,
#                                                   DIR/etc/systemd/system/edgecam.service
#
# It is idempotent: run it again after `git pull` to update. What it does:
#  1. a virtual environment in /opt/edgecam/venv, with --system-site-packages on a Raspberry Pi
#     or a Jetson (so that apt's picamera2/libcamera, or JetPack's OpenCV, are visible); where
#     the system's numpy is 1.x (Raspberry Pi OS Bookworm, Debian 12, Jetson Linux) the install
#     is pinned to that numpy, so nothing replaces it (scripts/lib/venv.sh);
#  2. pip-installs edgecam from this checkout into it;
#  3. prepares /etc/edgecam/config.yaml, if absent: the checkout's config.yaml with model.dir set
#     to /var/lib/edgecam/models (an existing config is never overwritten);
#  4. provisions the configured model (`edgecam models fetch`; --from MIRROR when --mirror is
#     given or EDGECAM_MODEL_MIRROR is set). When it cannot, it lists the models the mirror
#     (or the network) can give, undoes what this run created and stops: no config, no unit;
#     run it again with --model NAME. Only now is the new config moved into place;
#  5. a system user `edgecam` in the groups video and render;
#  6. renders scripts/edgecam.service with these paths into /etc/systemd/system, checks it with
#     systemd-analyze verify, then daemon-reload, enable and (re)start.
# It never opens a camera: a Pi whose camera is not connected yet installs all the same.
set -euo pipefail

usage() {
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --prefix DIR             install under DIR (implies no user creation and no systemctl)
  --no-systemctl           do not run systemctl (no daemon-reload, enable or start)
  --no-start               enable but do not (re)start the service
  --mirror DIR             provision models from this folder (default: $EDGECAM_MODEL_MIRROR)
  --model NAME             model.name for a new config (default: the checkout's config.yaml)
  --no-models              do not provision the model
  --python PY              the Python that creates the venv (default: python3)
  --system-site-packages   force a venv that sees the system's packages (default: only on a Pi/Jetson)
  --no-system-site-packages
  --pip-args "ARGS"        extra arguments for pip install (e.g. "--no-deps --no-index")
  --extra-site DIR         make an existing site-packages folder visible in the venv (a .pth
                           line): offline installs and tests that reuse prepared dependencies
  --user NAME              the service user (default: edgecam)
  --uninstall [--purge]    remove (with --purge: also config, models and the user)
  -h, --help
EOF
}

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=""
SYSTEMCTL=1
START=1
MODELS=1
UNINSTALL=0
PURGE=0
MIRROR="${EDGECAM_MODEL_MIRROR:-}"
PYTHON="python3"
SITE=""            # "", yes, no
PIP_ARGS=""
EXTRA_SITE=""
SVC_USER="edgecam"
MODEL_NAME=""

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a folder}"; shift ;;
        --prefix=*) PREFIX="${1#*=}" ;;
        --no-systemctl) SYSTEMCTL=0 ;;
        --no-start) START=0 ;;
        --mirror) MIRROR="${2:?--mirror needs a folder}"; shift ;;
        --mirror=*) MIRROR="${1#*=}" ;;
        --no-models) MODELS=0 ;;
        --model) MODEL_NAME="${2:?--model needs a catalogue name}"; shift ;;
        --python) PYTHON="${2:?--python needs an interpreter}"; shift ;;
        --system-site-packages) SITE=yes ;;
        --no-system-site-packages) SITE=no ;;
        --pip-args) PIP_ARGS="${2?--pip-args needs a value}"; shift ;;
        --pip-args=*) PIP_ARGS="${1#*=}" ;;
        --extra-site) EXTRA_SITE="${2:?--extra-site needs a folder}"; shift ;;
        --user) SVC_USER="${2:?--user needs a name}"; shift ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install-service.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "install-service: $*"; }
die() { echo "install-service: error: $*" >&2; exit 1; }

if [ -n "$PREFIX" ]; then
    mkdir -p "$PREFIX"
    PREFIX="$(cd "$PREFIX" && pwd)"
    SYSTEMCTL=0        # a folder install never touches the running system
fi
SYSTEM=0; [ -z "$PREFIX" ] && SYSTEM=1

APP_DIR="$PREFIX/opt/edgecam"
VENV="$APP_DIR/venv"
CONF_DIR="$PREFIX/etc/edgecam"
CONFIG="$CONF_DIR/config.yaml"
STATE_DIR="$PREFIX/var/lib/edgecam"
MODEL_DIR="$STATE_DIR/models"
UNIT_DIR="$PREFIX/etc/systemd/system"
UNIT="$UNIT_DIR/edgecam.service"

if [ "$SYSTEM" = 1 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0 $*), or use --prefix DIR --no-systemctl for a folder install"
fi
have_systemd() { [ "$SYSTEMCTL" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# ---------------------------------------------------------------------------------- uninstall
if [ "$UNINSTALL" = 1 ]; then
    if have_systemd; then
        systemctl disable --now edgecam.service 2>/dev/null || true
    fi
    rm -f "$UNIT"
    rm -rf "$UNIT_DIR/edgecam.service.d"
    have_systemd && systemctl daemon-reload || true
    rm -rf "$VENV"
    rmdir "$APP_DIR" 2>/dev/null || true
    if [ "$PURGE" = 1 ]; then
        rm -rf "$CONF_DIR" "$STATE_DIR"
        if [ "$SYSTEM" = 1 ] && id "$SVC_USER" >/dev/null 2>&1; then
            userdel "$SVC_USER" || true
        fi
        say "removed edgecam, its config, models and user"
    else
        say "removed the service and the venv; kept $CONFIG and $MODEL_DIR (--purge removes them)"
    fi
    exit 0
fi

[ -f "$SRC/pyproject.toml" ] || die "$SRC is not an edgecam checkout (no pyproject.toml)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (sudo apt install python3 python3-venv)"

# ------------------------------------------------------------------------------ 1. the venv
# shellcheck source=lib/venv.sh
. "$SRC/scripts/lib/venv.sh"
# Until the config is written, a failure undoes what this run created (the venv, empty folders):
# a failed first install leaves nothing behind, and the next run starts clean.
CREATED=()
made() { CREATED+=("$1"); }
mkdir_new() { local d; for d in "$@"; do [ -d "$d" ] || { mkdir_new "$(dirname "$d")"; mkdir "$d"; made "$d"; }; done; }
undo() {
    local i
    [ -n "${CFG_TMP:-}" ] && rm -f "$CFG_TMP"
    for ((i = ${#CREATED[@]} - 1; i >= 0; i--)); do
        case "${CREATED[$i]}" in "$VENV") rm -rf "$VENV" ;; *) rmdir "${CREATED[$i]}" 2>/dev/null || true ;; esac
    done
    return 0
}
trap undo EXIT   # once the install is kept, CREATED is emptied and this does nothing

if [ -z "$SITE" ]; then
    SITE=no
    if edgecam_want_system_site; then SITE=yes
    # picamera2 comes from apt (python3-picamera2), never from pip: the system Python has it
    elif [ "${EDGECAM_SYSTEM_SITE_PACKAGES:-}" != 0 ] && /usr/bin/python3 -c "import picamera2" >/dev/null 2>&1; then SITE=yes
    fi
fi
if [ -x "$VENV/bin/python" ]; then
    have=no; edgecam_venv_sees_system "$VENV" && have=yes
    if [ "$have" != "$SITE" ]; then
        say "remaking the virtual environment $VENV (system site packages: $SITE)"
        rm -rf "$VENV"
    fi
fi
if [ ! -x "$VENV/bin/python" ]; then
    mkdir_new "$APP_DIR"
    venv_args=()
    [ "$SITE" = yes ] && venv_args+=(--system-site-packages)
    say "creating the virtual environment $VENV${venv_args:+ (${venv_args[*]})}"
    made "$VENV"
    "$PYTHON" -m venv "${venv_args[@]}" "$VENV" \
        || die "cannot create a venv with $PYTHON (on Debian/Raspberry Pi OS: sudo apt install python3-venv)"
else
    say "reusing the virtual environment $VENV"
fi
if [ -n "$EXTRA_SITE" ]; then
    purelib="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    (cd "$EXTRA_SITE" && pwd) >"$purelib/edgecam-extra-site.pth"
fi

# ---------------------------------------------------------------------------- 2. edgecam
edgecam_keep_system_numpy "$PYTHON" "$VENV" || die "cannot remove the numpy that shadows the system's"
say "installing edgecam from $SRC"
# shellcheck disable=SC2086  # PIP_ARGS is a list of words
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "${EDGECAM_PIP_CONSTRAINTS[@]}" $PIP_ARGS "$SRC" \
    || die "pip install failed (see above)"
"$VENV/bin/edgecam" --version || die "the installed edgecam does not start (see above)"
edgecam_ensure_ffmpeg   # this installer runs as root
conf_get() {  # conf_get FILE KEY: model.KEY as edgecam reads it from FILE
    "$VENV/bin/python" -c 'import sys; from edgecam.config import load_config
print(getattr(load_config(sys.argv[1]).model, sys.argv[2]))' "$1" "$2"
}

# ---------------------------------------------------------------------------- 3. the config
# A new config is prepared beside its final place and moved in only once the model is there.
CFG_TMP=""
if [ ! -f "$CONFIG" ]; then
    mkdir_new "$CONF_DIR"
    CFG_TMP="$CONFIG.tmp.$$"
    if [ -f "$SRC/config.yaml" ]; then
        cp "$SRC/config.yaml" "$CFG_TMP"
    else  # every key with its default
        "$VENV/bin/python" -c 'import sys, yaml; from edgecam.config import Config, to_dict
yaml.safe_dump(to_dict(Config()), sys.stdout, sort_keys=False)' >"$CFG_TMP"
    fi
    # set model.dir (and model.name) in place, comments kept; then check that edgecam reads them back
    "$VENV/bin/python" - "$CFG_TMP" "dir=$MODEL_DIR" ${MODEL_NAME:+"name=$MODEL_NAME"} <<'PY'
import re, sys
path, settings = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
out, in_model = [], False
for line in open(path, encoding="utf-8").read().splitlines(keepends=True):
    if re.match(r"^\S", line):
        in_model = line.startswith("model:")
    m = re.match(r"^(\s+)(\w+):\s*([^#\n]*?)(\s*#.*)?$", line.rstrip("\n"))
    if in_model and m and m.group(2) in settings:
        line = f"{m.group(1)}{m.group(2)}: {settings.pop(m.group(2))}{m.group(4) or ''}\n"
    out.append(line)
if settings:  # keys with no line yet: add them under model:
    at = next((i + 1 for i, line in enumerate(out) if line.startswith("model:")), None)
    if at is None:
        out.append("model:\n")
        at = len(out)
    out[at:at] = [f"  {k}: {v}\n" for k, v in settings.items()]
open(path, "w", encoding="utf-8").writelines(out)
PY
    got_dir="$(conf_get "$CFG_TMP" dir)" || die "the new config does not load (see above)"
    [ "$got_dir" = "$MODEL_DIR" ] || die "could not set model.dir in $CONFIG (got $got_dir)"
    got_name="$(conf_get "$CFG_TMP" name)"
    [ -z "$MODEL_NAME" ] || [ "$got_name" = "$MODEL_NAME" ] || die "could not set model.name in $CONFIG (got $got_name)"
    USE_CONFIG="$CFG_TMP"
else
    say "keeping the existing $CONFIG"
    USE_CONFIG="$CONFIG"
    if [ -n "$MODEL_NAME" ]; then
        got_name="$(conf_get "$CONFIG" name)"
        [ "$got_name" = "$MODEL_NAME" ] || say "note: the existing config runs $got_name; --model $MODEL_NAME changes only a new config (edit model.name in $CONFIG, then systemctl reload edgecam)"
    fi
fi

# ---------------------------------------------------------------------------- 4. the model
# Before anything is written: when the model cannot be provisioned, say what can be, undo, stop.
if [ "$MODELS" = 1 ]; then
    fetch_args=(--config "$USE_CONFIG")
    if [ -n "$MIRROR" ]; then
        [ -d "$MIRROR" ] || die "the model mirror $MIRROR is not a folder"
        fetch_args+=(--from "$MIRROR")
    fi
    model_name="$(conf_get "$USE_CONFIG" name)"
    if [[ "$model_name" == *.tflite ]] || [[ "$model_name" == */* ]]; then
        say "model.name is a file ($model_name): nothing to provision"
    else
        model_dir="$(conf_get "$USE_CONFIG" dir)"
        [ -d "$model_dir" ] || mkdir_new "$model_dir"
        say "provisioning model $model_name into $model_dir"
        if ! "$VENV/bin/edgecam" models fetch "${fetch_args[@]}"; then
            "$VENV/bin/edgecam" models available "${fetch_args[@]}" >&2 || true
            die "model $model_name cannot be provisioned${MIRROR:+ from $MIRROR}: run again with --model NAME, NAME one of those listed above (no config, model or unit was written)"
        fi
    fi
fi
if [ -n "$CFG_TMP" ]; then
    say "writing $CONFIG (model.dir: $MODEL_DIR)"
    chmod 0644 "$CFG_TMP"
    mv "$CFG_TMP" "$CONFIG"
    CFG_TMP=""
fi
mkdir -p "$MODEL_DIR"
CREATED=()   # from here on the install is kept

# ------------------------------------------------------------------------- 5. the user
if [ "$SYSTEM" = 1 ]; then
    if ! id "$SVC_USER" >/dev/null 2>&1; then
        say "creating the system user $SVC_USER"
        useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "edgecam camera service" "$SVC_USER"
    fi
    for g in video render; do
        if getent group "$g" >/dev/null; then usermod -aG "$g" "$SVC_USER"; fi
    done
    chown -R "$SVC_USER:$SVC_USER" "$STATE_DIR"
fi

# ------------------------------------------------------------------------- 6. the unit
mkdir -p "$UNIT_DIR"
say "writing $UNIT"
sed -e "s#/opt/edgecam/venv#$VENV#g" \
    -e "s#/etc/edgecam#$CONF_DIR#g" \
    -e "s#/var/lib/edgecam#$STATE_DIR#g" \
    -e "s#^User=edgecam\$#User=$SVC_USER#" \
    -e "s#^Group=edgecam\$#Group=$SVC_USER#" \
    "$SRC/scripts/edgecam.service" >"$UNIT.tmp"
chmod 0644 "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$UNIT" || die "systemd-analyze verify rejects $UNIT"
fi

if have_systemd; then
    systemctl daemon-reload
    systemctl enable edgecam.service
    if [ "$START" = 1 ]; then
        systemctl restart edgecam.service
        say "started: systemctl status edgecam; journalctl -u edgecam -f"
    else
        say "enabled (starts at boot): systemctl start edgecam"
    fi
elif [ "$SYSTEM" = 1 ] && [ "$SYSTEMCTL" = 1 ]; then
    say "systemd is not running here: the unit is installed but not enabled"
fi
say "done: $VENV/bin/edgecam --config $CONFIG"
