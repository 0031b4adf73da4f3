"""Running edgecam for good: the systemd unit, the sd_notify protocol, SIGTERM/SIGHUP, the
installer and the kiosk scripts. Real processes, real sockets, real models and footage."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import cv2
import pytest

from edgecam.pipeline import Hooks
from edgecam.service.systemd import Notifier, notifier_from_env
from helpers import free_port, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "scripts" / "edgecam.service"
INSTALLER = ROOT / "scripts" / "install-service.sh"
KIOSK = ROOT / "scripts" / "kiosk" / "install-kiosk.sh"
sys.path.insert(0, str(Path(__file__).resolve().parent))


# -- a pretend systemd: the notification socket --------------------------------------------
class NotifySocket:
    """An AF_UNIX datagram socket collecting (monotonic time, {key: value}) messages."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path if not path.startswith("@") else "\0" + path[1:])
        self.sock.settimeout(0.1)
        self.messages: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def times(self, key: str, value: str = "1", since: float = 0.0) -> list:
        with self._lock:
            return [t for t, m in self.messages if m.get(key) == value and t >= since]

    def values(self, key: str) -> list:
        with self._lock:
            return [m[key] for _, m in self.messages if key in m]

    def wait_for(self, key: str, value: str = "1", since: float = 0.0, count: int = 1,
                 timeout: float = 30.0, proc=None) -> list:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.times(key, value, since)
            if len(got) >= count:
                return got
            if proc is not None and proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"edgecam exited ({proc.returncode}) before {key}={value}: {err[-2000:]}")
            time.sleep(0.02)
        pytest.fail(f"no {count} x {key}={value} within {timeout} s; got {self.messages[-10:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    s = NotifySocket(str(tmp_path / "notify.sock"))
    yield s
    s.close()


@pytest.fixture
def camera(media):
    """A live camera: the loopback MJPEG-over-HTTP camera serving real footage."""
    from loopback import LoopbackCamera
    cam = LoopbackCamera(media / "bottle-detection.mp4")
    cam.start()
    yield cam
    cam.stop()


def edgecam_process(args, tmp_path, notify: NotifySocket | None, watchdog_usec: int | None = None):
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(key, None)
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.path
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return subprocess.Popen([sys.executable, "-m", "edgecam", *map(str, args)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def terminate(proc, sig=signal.SIGTERM, timeout=10.0):
    t0 = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, time.monotonic() - t0, out, err


# -- the unit ------------------------------------------------------------------------------
def rendered_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a real edgecam (verify checks the binary exists)."""
    exe = Path(sys.executable).parent / "edgecam"
    if not exe.is_file():
        exe = Path(shutil.which("edgecam") or "")
    assert exe.is_file(), "the edgecam console script is not installed next to this Python"
    text = UNIT.read_text().replace("/opt/edgecam/venv/bin/edgecam", str(exe))
    out = tmp_path / "edgecam.service"
    out.write_text(text)
    return out


def unit_settings(path: Path) -> dict:
    settings: dict = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key), []).append(value)
    return settings


def test_unit_passes_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    unit = rendered_unit(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "edgecam.service" not in r.stderr, r.stderr


def test_unit_is_a_watched_notify_service_that_keeps_camera_access():
    s = unit_settings(UNIT)
    svc = lambda key: s.get(("Service", key), [])  # noqa: E731
    assert svc("Type") == ["notify"] and svc("NotifyAccess") == ["main"]
    assert int(svc("WatchdogSec")[0]) >= 10 and svc("Restart") == ["on-failure"]
    assert svc("User") == ["edgecam"] and "video" in svc("SupplementaryGroups")[0].split()
    assert "--config /etc/edgecam/config.yaml" in svc("ExecStart")[0]
    assert svc("ExecReload") == ["/opt/edgecam/venv/bin/edgecam reload $MAINPID"]
    assert svc("RuntimeDirectory") == ["edgecam"], "where the reload answer is written"
    assert svc("ProtectSystem") == ["strict"] and svc("PrivateTmp") == ["yes"]
    assert svc("NoNewPrivileges") == ["yes"] and svc("ProtectHome") == ["yes"]
    assert not svc("PrivateDevices"), "PrivateDevices hides /dev/video*"
    allowed = " ".join(svc("DeviceAllow"))
    for group in ("char-video4linux", "char-dma_heap", "char-media", "char-drm"):
        assert group in allowed
    assert svc("StateDirectory") == ["edgecam"]
    assert s[("Install", "WantedBy")] == ["multi-user.target"]
    # the extra hardening (systemd-analyze security 3.4 -> 1.7), compatible with the cameras
    for key, value in (("SystemCallFilter", "@system-service"), ("RestrictRealtime", "yes"),
                       ("ProtectProc", "invisible"), ("RemoveIPC", "yes"), ("MemoryDenyWriteExecute", "yes")):
        assert svc(key) == [value], key


# -- the protocol, unit level -----------------------------------------------------------------
def test_without_notify_socket_nothing_is_attempted():
    env = {"WATCHDOG_USEC": "1000000"}
    hooks = notifier_from_env(env)
    assert type(hooks) is Hooks
    hooks.ready(), hooks.alive(), hooks.status("x"), hooks.stopping()


def test_notifier_speaks_to_an_abstract_socket_and_pings_while_no_worker_is_stuck():
    name = f"@edgecam-test-{os.getpid()}-{time.monotonic_ns()}"
    s = NotifySocket(name)
    try:
        env = {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
        n = notifier_from_env(env)
        assert isinstance(n, Notifier) and n.interval == pytest.approx(0.5)
        assert env == {}, "the variables are removed so that child processes do not inherit them"
        n.model = "v1_ssd"
        worker = n.heartbeat.worker("inference")
        time.sleep(0.3)
        assert s.times("WATCHDOG") == [], "no WATCHDOG=1 before READY=1"
        n.ready()
        for _ in range(100):          # results in a burst: counted, not pinged
            n.alive()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            worker.alive()
            time.sleep(0.05)
        pings = s.times("WATCHDOG", since=t0)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert len(pings) >= 4 and max(gaps) < 0.5, f"pings every WatchdogSec/4, got {gaps}"
        stuck_at = time.monotonic()   # the worker stops checking in: after its 0.5 s grace, no pings
        time.sleep(1.5)
        late = s.times("WATCHDOG", since=stuck_at + 0.7)
        assert late == [], f"{len(late)} pings while a worker was stuck"
        with worker.within(1.0):      # a bounded blocking call: healthy again until it ends
            back = time.monotonic()
            time.sleep(1.2)
        assert s.times("WATCHDOG", since=back), "no ping while the worker was inside a bounded call"
        n.ready()                     # READY=1 once only
        n.stopping()
        s.wait_for("STOPPING")
        assert len(s.times("READY")) == 1
        assert s.values("STATUS")[0].startswith("v1_ssd")
        # someone else's watchdog (WATCHDOG_PID of another process): no interval from it
        other = notifier_from_env({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
        assert other.interval == 1.0 and other.watchdog_usec is None
    finally:
        s.close()


# -- the protocol, for real: edgecam as systemd runs it ------------------------------------
def test_ready_then_watchdog_then_stopping_and_a_clean_exit_on_sigterm(camera, mirror, tmp_path, notify_socket):
    video = tmp_path / "recording.mp4"
    t0 = time.monotonic()
    proc = edgecam_process(["--model", "v1_ssd", "--model-dir", mirror, "--source", camera.url,
                            "--display", "none", "--output", video, "--log-level", "info"],
                           tmp_path, notify_socket, watchdog_usec=1_000_000)
    try:
        ready = notify_socket.wait_for("READY", proc=proc)[0]
        assert all(t >= ready for t in notify_socket.times("WATCHDOG")), "WATCHDOG=1 before READY=1"
        pings = notify_socket.wait_for("WATCHDOG", since=ready, count=4, timeout=10, proc=proc)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert all(0.1 <= g < 0.5 for g in gaps), f"pings every WatchdogSec/4 = 0.25 s, got {gaps}"
        status = " ".join(notify_socket.values("STATUS"))
        assert "v1_ssd" in status and "FPS" in status
        sent = time.monotonic()
        rc, took, out, err = terminate(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, err[-2000:]
    assert took < 2.0, f"exit took {took:.2f} s after SIGTERM"
    assert notify_socket.times("STOPPING", since=sent), "no STOPPING=1 after SIGTERM"
    assert "Traceback" not in err
    print(f"READY after {ready - t0:.2f} s; exit {took:.2f} s after SIGTERM")
    # the recording was closed properly: it plays to its last frame, each frame at its capture
    # time, so it lasts what the wall clock did from its first frame (by READY) to SIGTERM,
    # whatever rate the camera (MJPEG over HTTP declares none) or the pipeline kept up;
    # live mode records time-stamped segments beside the name given: recording-YYYYmmdd-HHMMSS.mp4
    video = next(tmp_path.glob("recording-*.mp4"))
    cap = cv2.VideoCapture(str(video))
    seconds = cap.get(cv2.CAP_PROP_FRAME_COUNT) / cap.get(cv2.CAP_PROP_FPS)
    assert sent - ready - 0.5 < seconds < sent - t0, (seconds, ready - t0, sent - t0)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n >= 10, f"{video} has {n} decodable frames"


def write_config(path: Path, mirror: Path, source: str, threshold: float = 0.5, model: str = "v1_ssd",
                 width: int = 1280) -> None:
    path.write_text(f"""model:
  name: {model}
  dir: {mirror}
postprocess:
  threshold: {threshold}
source:
  uri: {source}
  width: {width}
output:
  display: none
log_level: info
""")


def test_sighup_reloads_the_config_without_a_restart(camera, mirror, tmp_path, notify_socket):
    config = tmp_path / "config.yaml"
    write_config(config, mirror, camera.url)
    proc = edgecam_process(["--config", config], tmp_path, notify_socket, watchdog_usec=2_000_000)
    try:
        notify_socket.wait_for("READY", proc=proc)
        pid = proc.pid
        # a threshold the model applies at once, and a source change that needs a restart
        write_config(config, mirror, camera.url, threshold=0.65, width=640)
        t = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        notify_socket.wait_for("RELOADING", since=t, proc=proc, timeout=10)
        notify_socket.wait_for("READY", since=t, proc=proc, timeout=10)
        # another model: reloaded in place, the pipeline keeps running
        write_config(config, mirror, camera.url, threshold=0.65, width=640, model="v1_0.25_128")
        t2 = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        notify_socket.wait_for("READY", since=t2, proc=proc, timeout=15)
        notify_socket.wait_for("WATCHDOG", since=time.monotonic(), count=2, proc=proc, timeout=10)
        assert proc.poll() is None and proc.pid == pid
        rc, took, out, err = terminate(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0 and took < 2.0, (rc, took, err[-2000:])
    assert "applied postprocess.threshold 0.5 -> 0.65" in err, err[-3000:]
    assert "source.width changed" in err and "needs a restart" in err
    assert "applied model.name 'v1_ssd' -> 'v1_0.25_128'" in err
    assert any(s.startswith("v1_0.25_128") for s in notify_socket.values("STATUS"))
    for line in err.splitlines():   # one line per event, each with its level
        # (TFLite's own C++ logger writes "INFO: ..." lines)
        assert line.split(" ", 1)[0].rstrip(":") in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") \
            or line.startswith("edgecam:"), line


# -- a stuck inference or output thread stops the watchdog pings -------------------------
@pytest.mark.parametrize("stage", ["inference", "output"])
def test_a_stuck_inference_or_output_thread_stops_the_watchdog_pings(stage, camera, mirror, notify_socket, caplog):
    from edgecam.config import load_config
    from edgecam.model.loader import load_model
    from edgecam.pipeline import StopFlag, run_live
    from edgecam.sinks import Sink, Sinks
    from edgecam.sinks.opening import open_sinks
    from edgecam.sources import open_source

    class Screen(Sink):                # the output thread shows every frame here, as on a display
        def frame(self, image, info):
            pass

    cfg = load_config(None, {"model": {"name": "v1_ssd", "dir": str(mirror)},
                             "source": {"uri": camera.url}, "output": {"display": "none"}})
    model = load_model(cfg)
    source = open_source(cfg.source, model.size)
    screen = Screen()
    outputs = Sinks([*open_sinks(cfg, source).sinks, screen])
    gate, stalled = threading.Event(), threading.Event()
    gate.set()
    reads = [0]

    def gated(fn):                     # blocks while the gate is closed
        def wrapper(*args):
            if not gate.is_set():
                stalled.set()
                gate.wait()
            return fn(*args)
        return wrapper

    def counted(fn):
        def wrapper():
            reads[0] += 1
            return fn()
        return wrapper

    if stage == "inference":
        model.engine.run = gated(model.engine.run)
    else:
        screen.frame = gated(screen.frame)
    source.read = counted(source.read)
    hooks = Notifier(notify_socket.path, watchdog_usec=2_000_000)   # pings every 0.5 s, grace 1 s
    stop = StopFlag()
    errors: list = []

    def pipeline():
        try:
            run_live(cfg, source, model, stop, outputs, hooks)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=pipeline, daemon=True)
    thread.start()
    try:
        ready = notify_socket.wait_for("READY")[0]
        notify_socket.wait_for("WATCHDOG", since=ready, count=3, timeout=10)
        gate.clear()                                     # freeze the stage
        assert stalled.wait(5), f"the {stage} stage never reached the gate"
        frozen_at = time.monotonic()
        reads_at_freeze = reads[0]
        time.sleep(4.0)                                  # 2 x WatchdogSec: systemd would restart us
        late = notify_socket.times("WATCHDOG", since=frozen_at + 1.5)
        assert late == [], f"{len(late)} watchdog pings while {stage} was stuck"
        assert thread.is_alive(), f"the process (pipeline) is alive, only {stage} is stuck"
        assert reads[0] > reads_at_freeze + 20, "the camera kept delivering frames meanwhile"
        assert any(f"watchdog: {stage} (no progress for" in r.getMessage() for r in caplog.records)
        gate.set()                                       # unfreeze: the pings come back
        notify_socket.wait_for("WATCHDOG", since=time.monotonic(), count=2, timeout=5)
    finally:
        gate.set()
        stop.set()
        thread.join(timeout=5)
        outputs.close()
        source.close()
        hooks.close()
    assert not errors, errors


# -- the installer and the kiosk, in a folder -----------------------------------------------
@pytest.fixture(scope="module")
def clip(media, tmp_path_factory) -> Path:
    """The first 20 frames of the footage, as a short video file."""
    return write_clip(media / "bottle-detection.mp4", tmp_path_factory.mktemp("clip") / "clip.mp4", 20)


@pytest.fixture(scope="module")
def installed(mirror, tmp_path_factory):
    """install-service.sh --prefix DIR --no-systemctl: a venv with edgecam pip-installed from
    this checkout. To stay fast and offline-capable, pip installs edgecam alone (--no-deps) and
    the venv sees the test environment's numpy/OpenCV/LiteRT through --extra-site."""
    if not shutil.which("bash"):
        pytest.skip("bash is needed")
    prefix = tmp_path_factory.mktemp("prefix")
    purelib = sysconfig.get_paths()["purelib"]
    args = ["bash", str(INSTALLER), "--prefix", str(prefix), "--no-systemctl", "--python", sys.executable,
            "--pip-args", "--no-deps", "--extra-site", purelib, "--mirror", str(mirror), "--model", "v1_ssd"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return prefix, args, r


def test_installer_lays_out_venv_config_models_and_unit(installed):
    prefix, _, r = installed
    venv_edgecam = prefix / "opt/edgecam/venv/bin/edgecam"
    config = prefix / "etc/edgecam/config.yaml"
    models = prefix / "var/lib/edgecam/models"
    unit = prefix / "etc/systemd/system/edgecam.service"
    assert venv_edgecam.is_file() and os.access(venv_edgecam, os.X_OK)
    assert (models / "ssd_mobilenet_v1_1.0_300_coco_quant.tflite").is_file()
    assert (models / "coco_ssd_labelmap.txt").is_file()
    from edgecam.config import load_config
    cfg = load_config(config)
    assert cfg.model.dir == str(models) and cfg.model.name == "v1_ssd"
    assert "# " in config.read_text(), "the copy keeps the checkout's comments"
    # edgecam runs from the venv's own copy, not from this checkout
    where = subprocess.run([str(prefix / "opt/edgecam/venv/bin/python"), "-c",
                            "import edgecam; print(edgecam.__file__)"],
                           capture_output=True, text=True, cwd=prefix)
    assert where.stdout.strip().startswith(str(prefix)), where.stdout + where.stderr
    text = unit.read_text()
    assert f"ExecStart={venv_edgecam} --config {config} " in text
    for path in ("/opt/edgecam", "/etc/edgecam", "/var/lib/edgecam"):  # every path rendered for the prefix
        assert text.count(path) == text.count(f"{prefix}{path}") > 0, path
    if shutil.which("systemd-analyze"):
        v = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
        assert v.returncode == 0, v.stderr


def test_installed_edgecam_runs_the_offline_mode(installed, clip, tmp_path):
    prefix, _, _ = installed
    out = tmp_path / "out.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "EDGECAM_CONFIG", "NOTIFY_SOCKET")}
    r = subprocess.run([str(prefix / "opt/edgecam/venv/bin/edgecam"),
                        "--config", str(prefix / "etc/edgecam/config.yaml"),
                        "--source", str(clip), "--display", "none", "--json", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 20 and '"bottle"' in out.read_text()
    assert "20 frames" in r.stdout


def test_installer_is_idempotent(installed):
    prefix, args, _ = installed
    config = prefix / "etc/edgecam/config.yaml"
    before = config.read_bytes()
    config.write_text(config.read_text().replace("threshold: 0.5", "threshold: 0.6"))  # a local edit
    edited = config.read_bytes()
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reusing the virtual environment" in r.stdout and "keeping the existing" in r.stdout
    assert config.read_bytes() == edited != before, "an existing config is never overwritten"


def test_kiosk_scripts_desktop_and_lite(installed, clip, tmp_path):
    prefix, _, _ = installed
    home = tmp_path / "home"
    r = subprocess.run(["bash", str(KIOSK), "desktop", "--prefix", str(prefix), "--home", str(home), "--no-systemctl"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    entry = home / ".config/autostart/edgecam.desktop"
    desktop = configparser.ConfigParser(interpolation=None)
    desktop.optionxform = str
    desktop.read(entry)
    d = desktop["Desktop Entry"]
    assert d["Type"] == "Application" and d["Terminal"] == "false"
    launcher = Path(d["Exec"])
    assert launcher == prefix / "opt/edgecam/bin/edgecam-kiosk" and os.access(launcher, os.X_OK)
    if shutil.which("desktop-file-validate"):
        v = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
    # the launcher runs the installed edgecam full screen; here without a screen, on the clip
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "EDGECAM_CONFIG")}
    run = subprocess.run([str(launcher), "--display", "none", "--source", str(clip), "--json", "-"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 20
    assert "--display fullscreen" in launcher.read_text()

    r = subprocess.run(["bash", str(KIOSK), "lite", "--prefix", str(prefix), "--no-systemctl"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    env_file = (prefix / "etc/edgecam/edgecam.env").read_text()
    assert "EDGECAM_ARGS=--web 0.0.0.0:8080" in env_file
    unit = (prefix / "etc/systemd/system/edgecam.service").read_text()
    assert f"EnvironmentFile=-{prefix}/etc/edgecam/edgecam.env" in unit and "$EDGECAM_ARGS" in unit


def test_uninstall_keeps_config_and_models_unless_purged(installed):
    prefix, args, _ = installed
    base = args[:args.index("--no-systemctl") + 1]
    r = subprocess.run(base + ["--uninstall"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (prefix / "opt/edgecam/venv").exists()
    assert not (prefix / "etc/systemd/system/edgecam.service").exists()
    assert (prefix / "etc/edgecam/config.yaml").is_file() and (prefix / "var/lib/edgecam/models").is_dir()
    r = subprocess.run(base + ["--uninstall", "--purge"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (prefix / "etc/edgecam").exists() and not (prefix / "var/lib/edgecam").exists()


def test_under_journald_each_log_line_carries_its_priority(mirror, media, tmp_path):
    """With JOURNAL_STREAM naming our stderr (as systemd sets it), log lines start with <N>,
    so that `journalctl -p warning` filters them; elsewhere they stay plain."""
    read_end, write_end = os.pipe()
    st = os.fstat(read_end)                 # both ends of a pipe are one inode
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "NOTIFY_SOCKET")}
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    proc = subprocess.Popen([sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--model-dir", str(mirror),
                             "--source", str(media / "kite_and_cold.jpg"), "--display", "window",
                             "--log-level", "debug"],
                            stdout=subprocess.DEVNULL, stderr=write_end, env=env, cwd=tmp_path)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        err = f.read()
    assert proc.wait(timeout=60) == 0, err
    ours = [line for line in err.splitlines() if " edgecam" in line]
    assert ours and all(line[:3] in ("<7>", "<6>", "<4>", "<3>", "<2>") for line in ours), err
    assert any(line.startswith("<4>WARNING edgecam") for line in ours), err  # no screen: a warning


def test_a_watchdog_kill_logs_where_every_thread_was(camera, mirror, tmp_path, notify_socket):
    """systemd kills a service whose watchdog expired with SIGABRT: the journal then shows
    each thread's stack (faulthandler), which is how a hang gets diagnosed."""
    proc = edgecam_process(["--model", "v1_ssd", "--model-dir", mirror, "--source", camera.url, "--display", "none"],
                           tmp_path, notify_socket, watchdog_usec=2_000_000)
    try:
        notify_socket.wait_for("READY", proc=proc)
        rc, _, _, err = terminate(proc, signal.SIGABRT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == -signal.SIGABRT
    assert "Fatal Python error: Aborted" in err and err.count("hread 0x") >= 3, err[-3000:]
    assert "edgecam/pipeline/" in err


# -- item 1: whatever the camera does, the watchdog is fed ------------------------------------

def max_gap(times: list, start: float, end: float) -> float:
    """The longest time without a ping between ``start`` and ``end``."""
    points = [start] + [t for t in times if start <= t <= end] + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def statuses(notify: NotifySocket, start: float, end: float = float("inf")) -> list:
    with notify._lock:
        return [m["STATUS"] for t, m in notify.messages if "STATUS" in m and start <= t <= end]


def camera_rates(lines: list) -> list:
    """The camera FPS figures of STATUS= lines like 'v1_ssd: camera 29.8 FPS, inference ...'."""
    import re
    return [float(m.group(1)) for line in lines if (m := re.search(r"camera ([\d.]+) FPS", line))]


def running_since(notify: NotifySocket, since: float) -> bool:
    """A STATUS= line after ``since`` says frames flow (camera FPS above 0, running)."""
    with notify._lock:
        lines = [m.get("STATUS", "") for t, m in notify.messages if t >= since]
    return any(line.endswith(", running") and " camera 0.0 FPS" not in line for line in lines)


def test_a_frozen_refusing_or_flapping_camera_never_starves_the_watchdog(camera, mirror, tmp_path, notify_socket):
    """WatchdogSec=4 (WATCHDOG_USEC): a ping must come at least every 2 s while the camera
    hangs (accepts, sends nothing: reads and reopens time out after 5 s), refuses
    connections, and comes and goes."""
    proc = edgecam_process(["--model", "v1_ssd", "--model-dir", mirror, "--source", camera.url,
                            "--display", "none", "--log-level", "info"],
                           tmp_path, notify_socket, watchdog_usec=4_000_000)
    try:
        ready = notify_socket.wait_for("READY", proc=proc, timeout=60)[0]
        time.sleep(1.0)
        phases = {}
        t = time.monotonic()
        camera.freeze()                      # hung camera: read timeout, then reopen timeouts
        time.sleep(14.0)
        phases["frozen"] = (t, time.monotonic())
        camera.thaw()
        t = time.monotonic()
        camera.stop()                        # connection refused
        time.sleep(6.0)
        phases["refusing"] = (t, time.monotonic())
        t = time.monotonic()
        for _ in range(3):                   # flapping
            camera.start()
            time.sleep(1.5)
            camera.stop()
            time.sleep(1.5)
        camera.start()                       # back for good: frames again after the backoff (<= 10 s)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not running_since(notify_socket, t):
            assert proc.poll() is None
            time.sleep(0.2)
        phases["flapping"] = (t, time.monotonic())
        assert running_since(notify_socket, t), notify_socket.values("STATUS")[-5:]
        rc, took, out, err = terminate(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pings = notify_socket.times("WATCHDOG", since=ready)
    gaps = {name: max_gap(pings, a, b) for name, (a, b) in phases.items()}
    print("largest gap between WATCHDOG=1 pings per phase (WatchdogSec=4):",
          ", ".join(f"{k} {v:.2f} s" for k, v in gaps.items()))
    assert all(g < 2.0 for g in gaps.values()), gaps
    # the rates fall to 0 while the camera is frozen (not the last rate seen)
    a, b = phases["frozen"]
    frozen = statuses(notify_socket, a + 3.0, b)
    assert any("camera 0.0 FPS, inference 0.0 FPS" in line for line in frozen), frozen
    assert rc == 0, err[-3000:]
    assert "reconnecting" in err and "reconnected" in err, err[-3000:]
    assert any("reconnecting" in s for s in notify_socket.values("STATUS"))


# -- item 2: a camera missing at start is waited for under systemd ---------------------------
def test_a_missing_camera_is_waited_for_under_systemd_and_fatal_at_a_terminal(media, mirror, tmp_path, notify_socket):
    port = free_port()
    url = f"http://127.0.0.1:{port}/stream.mjpg"
    args = ["--model", "v1_ssd", "--model-dir", mirror, "--source", url, "--display", "none", "--log-level", "info"]
    # at a terminal: one sentence, exit 1
    r = subprocess.run([sys.executable, "-m", "edgecam", *map(str, args)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("edgecam: error: cannot open stream")
    assert "Traceback" not in r.stderr
    # under systemd: READY=1 while waiting, the watchdog fed, frames as soon as the camera comes
    from loopback import LoopbackCamera
    video = tmp_path / "waited.mp4"       # recorded from the camera's first frame, at its rate
    proc = edgecam_process(args + ["--output", video], tmp_path, notify_socket, watchdog_usec=4_000_000)
    cam = LoopbackCamera(media / "bottle-detection.mp4", port=port)
    try:
        ready = notify_socket.wait_for("READY", proc=proc, timeout=60)[0]
        assert any("waiting for camera" in s for s in notify_socket.values("STATUS")), notify_socket.values("STATUS")
        time.sleep(8.0)
        waited = time.monotonic()
        cam.start()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not running_since(notify_socket, waited):
            assert proc.poll() is None
            time.sleep(0.2)
        assert running_since(notify_socket, waited), notify_socket.values("STATUS")[-5:]
        time.sleep(6.0)                       # one more STATUS= line
        after = camera_rates(statuses(notify_socket, waited))
        pings = notify_socket.times("WATCHDOG", since=ready)
        rc, took, out, err = terminate(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cam.stop()
    assert max_gap(pings, ready, waited) < 2.0, "the watchdog was not fed while waiting"
    assert rc == 0, err[-3000:]
    assert f"camera {url} is here" in err, err[-3000:]
    # the connect burst does not read as a multiple of the camera's rate
    assert after and max(after) < cam.fps * 1.25 and after[-1] > cam.fps * 0.5, (after, cam.fps)
    segments = list(tmp_path.glob("waited-*.mp4"))   # live mode records time-stamped segments
    assert len(segments) == 1, segments
    cap = cv2.VideoCapture(str(segments[0]))
    fps, (w, h) = cap.get(cv2.CAP_PROP_FPS), (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames >= 10 and abs(fps - cam.fps) < 3 and (w, h) == (640, 360), (frames, fps, w, h)


# -- item 3: under journald, errors are filed as errors -----------------------------------------
def journal_file_env(path: Path) -> dict:
    """JOURNAL_STREAM naming ``path``'s dev:inode, as journald names the stream it connected."""
    st = os.stat(path)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "NOTIFY_SOCKET")}
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    return env


def test_under_journald_the_final_error_and_the_watchdog_stack_dump_carry_priorities(
        camera, mirror, tmp_path, notify_socket):
    log_file = tmp_path / "journal.txt"
    log_file.touch()
    with open(log_file, "w") as f:       # a fatal error: <3> (err)
        r = subprocess.run([sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--model-dir", str(mirror),
                            "--source", str(tmp_path / "missing.mp4")], stdout=subprocess.DEVNULL, stderr=f,
                           env=journal_file_env(log_file), cwd=tmp_path, timeout=60)
    assert r.returncode == 1
    lines = log_file.read_text().splitlines()
    assert lines[-1].startswith("<3>edgecam: error: video file") and "does not exist" in lines[-1], lines
    # a watchdog kill (SIGABRT): faulthandler's dump of every thread, each line at <2> (crit)
    with open(log_file, "w") as f:
        env = journal_file_env(log_file)
        env["NOTIFY_SOCKET"], env["WATCHDOG_USEC"] = notify_socket.path, "4000000"
        proc = subprocess.Popen([sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--model-dir", str(mirror),
                                 "--source", camera.url, "--display", "none"],
                                stdout=subprocess.DEVNULL, stderr=f, env=env, cwd=tmp_path)
    try:
        notify_socket.wait_for("READY", proc=proc, timeout=60)
        proc.send_signal(signal.SIGABRT)
        assert proc.wait(timeout=10) == -signal.SIGABRT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10        # the relay writes what it read before the process died
    while time.monotonic() < deadline and "edgecam/pipeline/" not in log_file.read_text():
        time.sleep(0.1)
    text = log_file.read_text()
    dump = [line for line in text.splitlines() if "Fatal Python error" in line or "hread 0x" in line
            or line.lstrip("<2>").startswith("  File ")]
    assert any(line.startswith("<2>Fatal Python error: Aborted") for line in dump), text[-3000:]
    assert sum("hread 0x" in line for line in dump) >= 3, text[-3000:]
    assert all(line.startswith("<2>") for line in dump), [line for line in dump if not line.startswith("<2>")][:5]
    assert "edgecam/pipeline/" in text


# -- item 4: `systemctl reload` waits for the answer; compared with the running config ------------
def reload_client(pid: int, runtime: Path):
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["RUNTIME_DIRECTORY"] = str(runtime)
    return subprocess.run([sys.executable, "-m", "edgecam", "reload", str(pid), "--timeout", "60"],
                          capture_output=True, text=True, env=env, timeout=90)


def test_reload_returns_once_applied_or_refused_and_never_kills_the_service(camera, mirror, tmp_path, notify_socket):
    config, runtime, log_file = tmp_path / "config.yaml", tmp_path / "run", tmp_path / "stderr.txt"
    runtime.mkdir()
    write_config(config, mirror, camera.url)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "JOURNAL_STREAM")}
    env.update(NOTIFY_SOCKET=notify_socket.path, WATCHDOG_USEC="4000000", RUNTIME_DIRECTORY=str(runtime))
    with open(log_file, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "edgecam", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=f, env=env, cwd=tmp_path)
    try:
        notify_socket.wait_for("READY", proc=proc, timeout=60)
        write_config(config, mirror, camera.url, threshold=0.65)
        r = reload_client(proc.pid, runtime)
        assert r.returncode == 0 and "config reloaded" in r.stdout, r.stdout + r.stderr
        assert "applied postprocess.threshold 0.5 -> 0.65" in log_file.read_text(), "logged before it returned"
        # a change that needs a restart: refused, and refused again at every reload while in the file
        write_config(config, mirror, camera.url, threshold=0.65, width=640)
        for _ in range(2):
            r = reload_client(proc.pid, runtime)
            assert r.returncode == 1 and "not applied: source.width" in r.stdout, r.stdout + r.stderr
        assert log_file.read_text().count("source.width changed") == 2
        # put back to what runs: nothing to apply
        write_config(config, mirror, camera.url, threshold=0.65)
        r = reload_client(proc.pid, runtime)
        assert r.returncode == 0 and "config unchanged" in r.stdout, r.stdout
        # files that break the reader: binary junk, nesting deep enough for a RecursionError
        for junk in (b"\xff\xfe\x00garbage\x81", b"a: " + b"[" * 200_000 + b"]" * 200_000):
            before = log_file.read_text().count("\n")
            config.write_bytes(junk)
            r = reload_client(proc.pid, runtime)
            assert r.returncode == 1 and "reload failed" in r.stdout, r.stdout + r.stderr
            new = log_file.read_text().splitlines()[before:]
            errors = [line for line in new if line.startswith("ERROR")]
            assert len(errors) == 1 and "keeping the running config" in errors[0], new
            assert proc.poll() is None
        notify_socket.wait_for("WATCHDOG", since=time.monotonic(), count=2, proc=proc, timeout=10)
        rc, took, out, err = terminate(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_file.read_text()
    assert rc == 0 and "Traceback" not in text, text[-3000:]


# -- item 5: rates that fall to 0, and a connect burst that does not double them ----------------
def test_rate_meter_decays_to_zero_and_ignores_a_connect_burst():
    from edgecam.pipeline import RateMeter
    m = RateMeter(window=2.0)
    t = 100.0
    for i in range(90):                  # 30 FPS for 3 s
        m.tick(t + i / 30)
    last = t + 89 / 30
    assert m.rate_at(last) == pytest.approx(30, rel=0.05)
    assert m.rate_at(last + 1.0) < 20 and m.rate_at(last + 2.1) == 0.0, "an outage reads 0 within the window"
    m.settle(hold=1.0, now=200.0)        # a reconnect: 15 buffered frames arrive at once, then 30 FPS
    for i in range(15):
        m.tick(200.0 + i * 0.002)
    for i in range(60):
        m.tick(200.05 + i / 30)
    assert m.rate_at(200.05 + 59 / 30) == pytest.approx(30, rel=0.1)


def test_an_mjpeg_stream_that_declares_no_rate_is_measured(camera):
    from edgecam.config import SourceConfig
    from edgecam.sources.opencv import OpenCVCameraSource
    source = OpenCVCameraSource(camera.url, SourceConfig(uri=camera.url, fps=15))
    try:
        assert abs(source.fps - camera.fps) < 3, (source.fps, camera.fps)
        assert source.read() is not None
    finally:
        source.close()


# -- item 6: a write the sandbox refuses names the sandbox and the fix ---------------------------
def test_a_read_only_output_folder_names_the_sandbox_and_read_write_paths(media, mirror, tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to mount a read-only folder (as ProtectSystem=strict does)")
    ro = tmp_path / "ro"
    ro.mkdir()
    script = (f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
              f"exec {sys.executable} -m edgecam --model v1_ssd --model-dir {mirror} "
              f"--source {media / 'kite_and_cold.jpg'} --display none --json {ro / 'out.jsonl'}")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    if "mount:" in r.stderr:
        pytest.skip(f"cannot mount here: {r.stderr.strip()}")
    assert r.returncode == 1, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("edgecam: error: cannot write JSON lines") and "read-only" in line
    assert "ReadWritePaths=" in line and "systemctl edit edgecam" in line, line
