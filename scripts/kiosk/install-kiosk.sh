#!/usr/bin/env bash
# edgecam as a kiosk on a Raspberry Pi. Run scripts/install-service.sh first (it installs
# edgecam into /opt/edgecam/venv, the config /etc/edgecam/config.yaml and the model).
#
#   sudo scripts/kiosk/install-kiosk.sh desktop [--user pi]
#       Raspberry Pi OS with desktop: edgecam full screen when USER logs in (enable desktop
#       autologin in raspi-config for an unattended screen). An XDG autostart entry
#       ~/.config/autostart/edgecam.desktop runs /opt/edgecam/bin/edgecam-kiosk, which restarts
#       edgecam if it fails and stops when Esc or q is pressed. The edgecam service is stopped
#       and disabled, because the window and the service cannot share one camera.
#
#   sudo scripts/kiosk/install-kiosk.sh lite [--web 0.0.0.0:8080]
#       Raspberry Pi OS Lite (no desktop): the edgecam service runs headless with the browser
#       view on; open http://<pi>:8080/?token=... (logged once) from any device. (A local full-screen picture without a
#       desktop is not supported: edgecam draws through OpenCV's window, which needs X11 or
#       Wayland; picamera2's DRM preview shows camera frames but not edgecam's results.)
#
#   sudo scripts/kiosk/install-kiosk.sh desktop|lite --uninstall
#
# --prefix DIR (where install-service.sh --prefix put edgecam), --home DIR (the desktop user's
# home) and --no-systemctl let it run without touching the system, for tests and packaging.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODE="${1:-}"
[ $# -gt 0 ] && shift
PREFIX=""
KIOSK_USER="${SUDO_USER:-}"
HOME_DIR=""
WEB="0.0.0.0:8080"
SYSTEMCTL=1
UNINSTALL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --user) KIOSK_USER="${2:?--user needs a name}"; shift ;;
        --home) HOME_DIR="${2:?--home needs a folder}"; shift ;;
        --web) WEB="${2:?--web needs HOST:PORT}"; shift ;;
        --prefix) PREFIX="$(mkdir -p "${2:?--prefix needs a folder}" && cd "$2" && pwd)"; shift ;;
        --no-systemctl) SYSTEMCTL=0 ;;
        --uninstall) UNINSTALL=1 ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-kiosk.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$MODE" in
    desktop|lite) ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: install-kiosk.sh desktop|lite [options] (see --help)" >&2; exit 2 ;;
esac

say() { echo "install-kiosk: $*"; }
die() { echo "install-kiosk: error: $*" >&2; exit 1; }

APP_DIR="$PREFIX/opt/edgecam"
EDGECAM="$APP_DIR/venv/bin/edgecam"
CONF_DIR="$PREFIX/etc/edgecam"
CONFIG="$CONF_DIR/config.yaml"
ENV_FILE="$CONF_DIR/edgecam.env"
[ -n "$PREFIX" ] && SYSTEMCTL=0
have_systemd() { [ "$SYSTEMCTL" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
if [ -z "$PREFIX" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0 $MODE ...), or use --prefix DIR --no-systemctl"
fi

# ------------------------------------------------------------------------------------ desktop
if [ "$MODE" = desktop ]; then
    if [ -z "$HOME_DIR" ]; then
        [ -n "$KIOSK_USER" ] || die "which user logs in to the desktop? --user NAME"
        HOME_DIR="$(getent passwd "$KIOSK_USER" | cut -d: -f6)"
        [ -n "$HOME_DIR" ] || die "no user $KIOSK_USER"
    fi
    AUTOSTART="$HOME_DIR/.config/autostart/edgecam.desktop"
    LAUNCHER="$APP_DIR/bin/edgecam-kiosk"
    if [ "$UNINSTALL" = 1 ]; then
        rm -f "$AUTOSTART" "$LAUNCHER"
        rmdir "$APP_DIR/bin" 2>/dev/null || true
        say "removed the desktop kiosk (the service is left as it is: systemctl enable --now edgecam)"
        exit 0
    fi
    [ -x "$EDGECAM" ] || die "$EDGECAM is missing: run scripts/install-service.sh first"
    [ -f "$CONFIG" ] || die "$CONFIG is missing: run scripts/install-service.sh first"
    mkdir -p "$APP_DIR/bin"
    sed -e "s#/opt/edgecam/venv#$APP_DIR/venv#g" -e "s#/etc/edgecam#$CONF_DIR#g" \
        "$HERE/edgecam-kiosk" >"$LAUNCHER.tmp"
    chmod 0755 "$LAUNCHER.tmp"
    mv "$LAUNCHER.tmp" "$LAUNCHER"
    mkdir -p "$(dirname "$AUTOSTART")"
    sed -e "s#/opt/edgecam/bin/edgecam-kiosk#$LAUNCHER#" "$HERE/edgecam.desktop" >"$AUTOSTART"
    if [ -n "$KIOSK_USER" ] && [ -z "$PREFIX" ]; then
        chown -R "$KIOSK_USER:" "$HOME_DIR/.config/autostart"
        for g in video render; do
            getent group "$g" >/dev/null && usermod -aG "$g" "$KIOSK_USER"
        done
    fi
    if have_systemd && systemctl is-enabled --quiet edgecam.service 2>/dev/null; then
        say "stopping and disabling the edgecam service: the kiosk window uses the camera now"
        systemctl disable --now edgecam.service
    fi
    if [ -z "$PREFIX" ] && command -v raspi-config >/dev/null; then
        raspi-config nonint do_blanking 1 || true    # 1 = screen blanking off
        say "screen blanking is off (raspi-config: Display Options > Screen Blanking)"
    fi
    say "installed $AUTOSTART -> $LAUNCHER"
    say "edgecam starts full screen at the next desktop login (Esc or q quits; for an unattended"
    say "screen: raspi-config > System Options > Boot / Auto Login > Desktop Autologin)"
    exit 0
fi

# --------------------------------------------------------------------------------------- lite
if [ "$UNINSTALL" = 1 ]; then
    rm -f "$ENV_FILE"
    have_systemd && systemctl try-restart edgecam.service || true
    say "removed $ENV_FILE: the service runs without the browser view"
    exit 0
fi
[ -f "$PREFIX/etc/systemd/system/edgecam.service" ] || [ -f /etc/systemd/system/edgecam.service ] \
    || die "the edgecam service is not installed: run scripts/install-service.sh first"
mkdir -p "$CONF_DIR"
cat >"$ENV_FILE.tmp" <<EOF
# Extra flags for the edgecam service (scripts/kiosk/install-kiosk.sh lite).
# The browser view on every interface: watching and changing it need the token edgecam generated
# into /var/lib/edgecam/web-token (logged once, as a URL). 127.0.0.1:8080 keeps it local (reach
# it with ssh -L 8080:localhost:8080 pi@<pi>).
EDGECAM_ARGS=--web $WEB
EOF
chmod 0644 "$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"
if have_systemd; then
    systemctl enable edgecam.service
    systemctl restart edgecam.service
fi
port="${WEB##*:}"
addr="$(hostname -I 2>/dev/null | awk '{print $1}')"
say "the service serves the browser view on $WEB: open http://${addr:-<this-pi>}:$port/"
case "$WEB" in
    127.*|localhost:*|\[::1\]:*) ;;
    *) say "off this machine it needs the token: the URL that carries it is in the log at the first start" \
           "(journalctl -u edgecam | grep token), the token itself in /var/lib/edgecam/web-token" ;;
esac
