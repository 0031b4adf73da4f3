"""`edgecam doctor`: what a Pi user runs when something is wrong. One line per check:
ok, problem (with its fix on the same line) or note (facts that need no fix here); exit 0 when
nothing is a problem, 1 otherwise. Checks follow the configuration: a camera is needed only when
the source is a camera, a display only when the output is a window."""

from __future__ import annotations

import glob
import importlib.metadata
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional

from edgecam import pyenv
from edgecam.config import load_config
from edgecam.errors import ArgParser, EdgecamError

# The doctor runs where numpy, OpenCV or the TFLite runtime do not import, which is what it
# diagnoses: every check that needs them imports them itself, inside the check.
NEEDS_NUMPY = ("cv2", "numpy", "edgecam.model", "edgecam.provision")

UNIT = "/etc/systemd/system/edgecam.service"


class Check(NamedTuple):
    status: str            # ok | problem | note
    name: str
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check("ok", name, detail)


def problem(name: str, detail: str, fix: str) -> Check:
    return Check("problem", name, detail, fix)


def note(name: str, detail: str) -> Check:
    return Check("note", name, detail)


def board() -> Optional[str]:
    """The Raspberry Pi / Jetson model string, as scripts/run reads it."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            model = Path(path).read_bytes().replace(b"\0", b"").decode(errors="replace").strip()
        except OSError:
            continue
        if "Raspberry Pi" in model or "Jetson" in model:
            return model
    return "NVIDIA Jetson" if os.path.isfile("/etc/nv_tegra_release") else None


def is_camera(uri: str) -> bool:
    uri = str(uri)
    return uri in ("auto", "picamera2") or uri.startswith(("picamera2:", "/dev/video", "csi://")) or uri.isdigit()


# ------------------------------------------------------------------------------------ the checks

def check_python(cfg) -> Check:
    where = f"Python {sys.version.split()[0]} ({sys.executable})"
    sees = pyenv.venv_sees_system()
    if sees is None:
        return ok("python", f"{where}, no venv: the system's own packages")
    kind = "a venv that sees the system's packages" if sees else "a venv with its own packages only"
    if board() and not sees:
        return problem("python", f"{where} in {kind}: apt's picamera2 and libcamera are invisible to it",
                       "rerun ./scripts/run, which remakes the venv with --system-site-packages on a Pi or Jetson")
    return ok("python", f"{where} in {kind} ({sys.prefix})")


def check_runtime(cfg) -> Check:
    from edgecam.model.engine import interpreter_class   # (see NEEDS_NUMPY)
    try:
        name, _ = interpreter_class(cfg.model.runtime)
    except EdgecamError as exc:
        return problem("tflite", str(exc),
                       "./scripts/run installs ai-edge-litert (tflite-runtime where it has no wheel)")
    dist = name.replace("_", "-")
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = "version unknown"
    return ok("tflite", f"{dist} {version}" + (" (model.runtime: auto)" if cfg.model.runtime == "auto" else ""))


def check_numpy(cfg) -> Check:
    try:
        state = pyenv.numpy_state()
    except Exception as exc:  # numpy broken: report, don't crash the doctor
        return problem("numpy", f"numpy does not import ({type(exc).__name__}: {exc})", pyenv.REPAIR)
    if state.shadowed:
        return problem("numpy", f"numpy {state.version} in this venv ({state.path}) shadows the system's numpy "
                       f"{state.shadowed[0]} ({state.shadowed[1]}) that apt's picamera2/simplejpeg are built for",
                       pyenv.REPAIR)
    seen = " (the system's, seen through the venv)" if state.system else ""
    return ok("numpy", f"numpy {state.version}{seen} from {state.path}")


def _cv2_build(cv2) -> dict:
    info: Dict[str, str] = {}
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if value.strip() and key.strip() in ("GUI", "FFMPEG", "GStreamer", "GTK+", "QT"):
            info.setdefault(key.strip(), value.strip().split()[0])
    return info


def check_opencv(cfg) -> Check:
    try:
        import cv2
    except ImportError as exc:
        return problem("opencv", f"OpenCV does not import ({exc})",
                       "sudo apt install libgl1 libglib2.0-0, then rerun ./scripts/run")
    b = _cv2_build(cv2)
    gui = b.get("GUI", "NONE")
    detail = (f"OpenCV {cv2.__version__}: GUI {gui}, FFmpeg {b.get('FFMPEG', 'NO')}, "
              f"GStreamer {b.get('GStreamer', 'NO')}")
    if cfg.output.display != "none" and gui.upper() == "NONE":
        return problem("opencv", f"{detail}: output.display {cfg.output.display} needs a GUI build",
                       "pip uninstall opencv-python-headless && pip install opencv-python, or --display none")
    if str(cfg.source.uri).startswith("csi://") and b.get("GStreamer", "NO").upper() != "YES":
        return problem("opencv", f"{detail}: a csi:// source needs GStreamer",
                       "use JetPack's OpenCV (the Jetson install's venv sees it) or --source picamera2 on a Pi")
    return ok("opencv", detail)


def check_picamera2(cfg) -> Check:
    uri = str(cfg.source.uri)
    model = board()
    needed = uri.startswith("picamera2") or (uri == "auto" and bool(model and "Raspberry" in model))
    try:
        pyenv.import_picamera2()
    except pyenv.Picamera2Unavailable as exc:
        if exc.missing and not needed:
            return note("picamera2", "not installed (only a Raspberry Pi camera needs it: apt's python3-picamera2)")
        return problem("picamera2", exc.cause, exc.fix)
    try:
        version = importlib.metadata.version("picamera2")
    except importlib.metadata.PackageNotFoundError:
        version = "version unknown"
    return ok("picamera2", f"picamera2 {version} imports")


def _v4l2_devices() -> List[str]:
    out = []
    for dev in sorted(glob.glob("/dev/video*"), key=lambda d: (len(d), d)):
        try:
            name = Path(f"/sys/class/video4linux/{os.path.basename(dev)}/name").read_text().strip()
        except OSError:
            name = ""
        out.append(f"{dev} ({name})" if name else dev)
    return out


def _libcamera_cameras() -> Optional[List[str]]:
    try:
        picam = pyenv.import_picamera2()
        return [str(c.get("Model", c)) for c in picam.global_camera_info()]
    except Exception:  # absent or broken picamera2: reported by its own check
        return None


def check_cameras(cfg) -> Check:
    v4l2, libcamera = _v4l2_devices(), _libcamera_cameras()
    parts = [f"V4L2: {', '.join(v4l2) if v4l2 else 'none'}"]
    if libcamera is not None:
        parts.append(f"libcamera: {', '.join(libcamera) if libcamera else 'none'}")
    detail = "; ".join(parts)
    uri = str(cfg.source.uri)
    if not is_camera(uri):
        return note("camera", f"{detail} (source.uri is {uri}, not a camera)")
    if uri.startswith("picamera2"):
        found = bool(libcamera)
    elif uri == "auto":
        found = bool(libcamera) or bool(v4l2)
    else:
        found = uri.startswith("csi://") or os.path.exists(uri if uri.startswith("/dev/") else f"/dev/video{uri}")
    if found:
        return ok("camera", detail)
    return problem("camera", f"{detail}: source.uri {uri} has no camera to open",
                   "connect the camera (Pi: ribbon cable, then `rpicam-hello --list-cameras`), "
                   "or name another source with --source")


def check_display(cfg) -> Check:
    x, wayland = os.environ.get("DISPLAY", ""), os.environ.get("WAYLAND_DISPLAY", "")
    where = (", ".join(f"{k}={v}" for k, v in (("DISPLAY", x), ("WAYLAND_DISPLAY", wayland)) if v)
             or "no $DISPLAY or $WAYLAND_DISPLAY")
    if cfg.output.display == "none":
        return note("display", f"{where} (output.display is none)")
    if x and x.startswith(":"):
        socket = f"/tmp/.X11-unix/X{x[1:].split('.')[0]}"
        if not os.path.exists(socket):
            return problem("display", f"DISPLAY={x} but no X server listens at {socket}",
                           "start the desktop session, or run with --display none (or --web HOST:PORT)")
    if x or wayland:
        return ok("display", where)
    return problem("display", f"{where}: output.display {cfg.output.display} has no screen to open",
                   "run from the desktop session (or set DISPLAY=:0), or --display none / --web 0.0.0.0:8080")


def check_model(cfg) -> Check:
    from edgecam.provision import catalog                    # (see NEEDS_NUMPY)
    from edgecam.provision.fetch import sha256_of
    name = cfg.model.name
    try:
        where = catalog.locate(name, cfg.preprocess.rho, cfg.model.dir)
    except EdgecamError as exc:
        return problem("model", str(exc), "set model.name to a catalogue name (`edgecam models list`)")
    spec, directory = where.spec, where.directory
    if spec is None:
        path = where.path
        if not path.is_file():
            return problem("model", f"model.name {name} is not a file", "fix model.name, or name a catalogue model")
        return ok("model", f"{path}: a file outside the catalogue, SHA-256 {sha256_of(path)[:12]}… "
                           f"(nothing to verify against); {_runs(cfg, path)}")
    fetch = f"edgecam models fetch {spec.name} (--from MIRROR_DIR offline)"
    if not where.provisioned:
        return problem("model", f"{spec.name} is not provisioned in {directory}", fetch)
    digest = sha256_of(where.path)
    if spec.sha256 and digest != spec.sha256:
        return problem("model", f"{spec.name} in {directory} has SHA-256 {digest[:12]}…, not the catalogue's "
                       f"{spec.sha256[:12]}… (corrupt or replaced)", f"edgecam models fetch {spec.name} --force")
    pinned = "matches the catalogue" if spec.sha256 else "the catalogue pins no hash"
    return ok("model", f"{spec.name} provisioned in {directory}, SHA-256 {digest[:12]}… {pinned}; "
                       f"{_runs(cfg, where.path)}")


def _runs(cfg, path: Path) -> str:
    """Which file a run uses (the published one or its int8 rewrite, edgecam/provision/int8_cache.py) and why."""
    from edgecam.provision import int8_cache                 # (see NEEDS_NUMPY)
    choice = int8_cache.choose(path, cfg.model.int8, cfg.model.runtime)
    return choice.short + ("" if choice.int8 or cfg.model.int8 == "off" else " (`edgecam models info` says why)")


def _writable(path: Path) -> bool:
    """path is a writable folder, or could be created as one."""
    path = path.expanduser().absolute()
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def check_folders(cfg) -> Check:
    from edgecam.provision import catalog                    # (see NEEDS_NUMPY)
    folders = {"model.dir": catalog.model_dir(cfg.model.dir), "output.snapshot_dir": Path(cfg.output.snapshot_dir)}
    for key in ("video", "json"):
        value = getattr(cfg.output, key, None)
        if value and value != "-":
            folders[f"output.{key}"] = Path(value).expanduser().absolute().parent
    bad = [f"{k} {p}" for k, p in folders.items() if not _writable(p)]
    who = f"user {_user()}"
    if bad:
        return problem("folders", f"not writable by {who}: {', '.join(bad)}",
                       "choose folders this user owns in the config, or fix their owner (sudo chown)")
    return ok("folders", f"writable by {who}: " + ", ".join(f"{k} {p}" for k, p in folders.items()))


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def check_unit(cfg, unit: str = UNIT) -> Check:
    if not os.path.isfile(unit):
        return note("service", f"no systemd unit at {unit} (sudo scripts/install-service.sh installs one)")
    if not (os.path.isdir("/run/systemd/system") and shutil.which("systemctl")) or unit != UNIT:
        return ok("service", f"unit installed at {unit}; systemd is not running here, so it has no state")
    try:
        out = subprocess.run(["systemctl", "show", "edgecam.service", "--no-pager",
                              "-p", "UnitFileState,ActiveState,SubState,Result"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return problem("service", f"unit installed at {unit}, but systemctl fails ({exc})", "systemctl status edgecam")
    state = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    detail = (f"unit {unit}: {state.get('UnitFileState', '?')}, {state.get('ActiveState', '?')} "
              f"({state.get('SubState', '?')})")
    if state.get("ActiveState") == "failed" or state.get("Result", "success") != "success":
        return problem("service", f"{detail}, result {state.get('Result')}",
                       "journalctl -u edgecam -e shows why; then sudo systemctl restart edgecam")
    return ok("service", detail)


# ------------------------------------------------------------------------------------ the command

CHECKS: List[Callable] = [check_python, check_runtime, check_numpy, check_opencv, check_picamera2,
                          check_cameras, check_display, check_model, check_folders]


def run_checks(cfg, unit: str = UNIT) -> List[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check(cfg))
        except Exception as exc:  # a check that breaks is itself a finding, never a traceback
            name = check.__name__.replace("check_", "")
            results.append(problem(name, f"the check failed ({type(exc).__name__}: {exc})", "report this as a bug"))
    results.append(check_unit(cfg, unit))
    return results


def format_line(c: Check) -> str:
    line = f"{c.status:<8} {c.name:<10} {c.detail}"
    return f"{line}  ->  fix: {c.fix}" if c.status == "problem" else line


def main(argv: List[str]) -> int:
    """`edgecam doctor` (logging is set up by the caller)."""
    p = ArgParser(prog="edgecam doctor", description="Check this machine for edgecam: Python and venv, TFLite "
                "runtime, numpy, OpenCV, picamera2, cameras, display, the configured model, folders, the "
                "systemd unit. One line each (ok / problem with its fix / note); exit 0 when nothing is a problem.")
    p.add_argument("--config", metavar="PATH",
                   help="the config to check against (default: ./config.yaml, $EDGECAM_CONFIG)")
    p.add_argument("--unit", metavar="PATH", default=UNIT, help=f"the systemd unit file (default: {UNIT})")
    a = p.parse_args(argv)
    cfg = load_config(a.config)
    print(f"edgecam doctor: config {cfg.path or 'built-in defaults'}" + (f", board: {board()}" if board() else ""))
    results = run_checks(cfg, a.unit)
    for c in results:
        print(format_line(c))
    problems = [c.name for c in results if c.status == "problem"]
    print(f"{len(problems)} problem(s): {', '.join(problems)}" if problems else "all well")
    return 1 if problems else 0
