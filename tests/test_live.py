"""Live mode for real: edgecam reads a loopback MJPEG camera serving real footage, reconnects
when it goes away, serves the browser view (loaded in headless Chromium), shows windows under
Xvfb, reads the Pi camera through a Picamera2 stand-in, and fails in one sentence on bad input."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import free_port, one_sentence, run_edgecam  # noqa: E402
from loopback import LoopbackCamera, read_stamp  # noqa: E402

from edgecam import app  # noqa: E402
from edgecam.config import load_config  # noqa: E402
from edgecam.pipeline import Hooks, StopFlag  # noqa: E402

FAKE_PICAMERA2 = Path(__file__).parent / "fake_picamera2"
BLUE_CAPS = [(96, 116), (315, 117), (535, 116)]   # bottle caps in frame 0 of bottle-detection.mp4



def wait_for(what: str, check, timeout: float = 10.0, every: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def config(mirror: Path, **sections):
    """Built-in defaults (no config.yaml) with v1_ssd from the mirror, no window, and ``sections``."""
    overrides = {"model": {"name": "v1_ssd", "dir": str(mirror)}, "output": {"display": "none"}}
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as empty:
        return load_config(empty.name, overrides)


class LiveApp:
    """app.run(cfg) on a thread, stopped like a key press would."""

    def __init__(self, cfg):
        self.cfg, self.stop, self.rc = cfg, StopFlag(), None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.rc = app.run(self.cfg, hooks=Hooks(), stop=self.stop)
        except BaseException as exc:
            self.error = exc

    def close(self) -> int:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "edgecam did not stop"
        if self.error:
            raise self.error
        return self.rc


def json_lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def bottles(lines: list) -> int:
    return sum(any(d["label"] == "bottle" for d in r.get("detections", [])) for r in lines)


# --- a video file played live --------------------------------------------------------------------------

def test_realtime_file_is_paced_and_ends(mirror, media, tmp_path):
    clip = tmp_path / "clip.mp4"
    cap = cv2.VideoCapture(str(media / "bottle-detection.mp4"))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    for _ in range(45):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    out = tmp_path / "r.jsonl"
    t0 = time.monotonic()
    rc = app.run(config(mirror, source={"uri": str(clip), "realtime": True}, output={"json": str(out)}),
                 hooks=Hooks())
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert 1.3 < elapsed < 10, f"45 frames at 30 FPS took {elapsed:.2f} s"
    lines = json_lines(out)
    assert 5 <= len(lines) <= 45 and bottles(lines) >= 0.6 * len(lines)


# --- the Pi camera through a Picamera2 stand-in ---------------------------------------------------------

@pytest.fixture
def picamera2(media, monkeypatch):
    monkeypatch.setenv("FAKE_PICAMERA2_VIDEO", str(media / "bottle-detection.mp4"))
    monkeypatch.syspath_prepend(str(FAKE_PICAMERA2))
    sys.modules.pop("picamera2", None)
    import picamera2
    yield picamera2
    sys.modules.pop("picamera2", None)


@pytest.mark.parametrize("platform,lores_format", [("vc4", "YUV420"), ("pisp", "RGB888")])
def test_picamera2_streams_and_colour_order(picamera2, media, monkeypatch, platform, lores_format):
    from edgecam.sources.picam import PiCamera2Source
    from edgecam.config import SourceConfig
    monkeypatch.setenv("FAKE_PICAMERA2_PLATFORM", platform)
    first = cv2.VideoCapture(str(media / "bottle-detection.mp4")).read()[1]
    src = PiCamera2Source(SourceConfig(uri="picamera2", width=640, height=360), 300)
    try:
        assert src.lores_format == lores_format
        frame = src.read()
        assert frame.image.shape == (360, 640, 3) and frame.lores.shape == (300, 300, 3)
        assert np.array_equal(frame.image, first)
        assert np.abs(frame.lores.astype(int) - cv2.resize(first, (300, 300), interpolation=cv2.INTER_AREA)).mean() < 4
        for x, y in BLUE_CAPS:   # blue caps stay blue, in both streams
            b, g, r = frame.image[y - 4:y + 4, x - 6:x + 6].reshape(-1, 3).mean(0)
            assert b > r + 60 and b > g + 40, (x, y, b, g, r)
            lx, ly = round(x * 300 / 640), round(y * 300 / 360)
            b, g, r = frame.lores[ly - 2:ly + 2, lx - 2:lx + 2].reshape(-1, 3).mean(0)
            assert b > r + 50, (lx, ly, b, g, r)
    finally:
        src.close()
    cam = picamera2.opened[-1]
    assert cam.closed and cam.camera_config["lores"]["size"] == (300, 300)


def test_picamera2_layouts_and_small_main(picamera2, media):
    from edgecam.sources.picam import PiCamera2Source, to_bgr
    from edgecam.config import SourceConfig
    first = cv2.VideoCapture(str(media / "bottle-detection.mp4")).read()[1]
    for fmt in ("RGB888", "BGR888", "XRGB8888", "XBGR8888"):
        array = picamera2.Picamera2._layout(first, {"size": (640, 360), "format": fmt})
        assert np.array_equal(to_bgr(array, fmt, 640), first), fmt
    yuv = picamera2.Picamera2._layout(first, {"size": (300, 300), "format": "YUV420"})
    assert yuv.shape == (450, 320)            # I420 with the stride padded, as Picamera2 returns it
    # a main stream smaller than the model: no lores, the pipeline resizes in software
    src = PiCamera2Source(SourceConfig(uri="picamera2", width=320, height=240), 300)
    try:
        assert src.lores_format is None and src.read().lores is None
    finally:
        src.close()


def test_picamera2_live_detections_in_main_coordinates(picamera2, mirror, tmp_path):
    out = tmp_path / "pi.jsonl"
    run = LiveApp(config(mirror, source={"uri": "picamera2", "width": 640, "height": 360},
                         output={"json": str(out)}))
    try:
        wait_for("results", lambda: out.is_file() and len(json_lines(out)) >= 15, 20)
    finally:
        assert run.close() == 0
    lines = json_lines(out)
    assert bottles(lines) >= 0.6 * len(lines)
    x2 = max(d["box"][2] for r in lines for d in r["detections"])
    assert 500 < x2 <= 640, "boxes found on the 300 px lores stream were not mapped to the 640 px main"


# --- windows under Xvfb --------------------------------------------------------------------------------

def _palette_pixels(bgr: np.ndarray) -> int:
    """Pixels in a detection box colour (overlay.PALETTE), as drawn."""
    from edgecam.sinks.overlay import PALETTE
    hits = np.zeros(bgr.shape[:2], bool)
    for color in PALETTE[:6]:   # the colours of the first classes and of bottle (class 43 -> 3)
        hits |= (np.abs(bgr.astype(int) - np.array(color)).max(axis=2) < 25)
    return int(hits.sum())


@pytest.fixture(scope="module")
def xvfb():
    for tool in ("Xvfb", "import", "xdotool"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (Debian packages xvfb, imagemagick, xdotool)")
    proc = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp",
                             "-noreset"],   # no server reset when the last client leaves (the next test connects)
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    display = ":" + proc.stdout.readline().strip()
    yield display
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("mode", ["window", "fullscreen"])
def test_window_shows_boxes_under_xvfb(xvfb, mirror, media, tmp_path, mode):
    env = dict(os.environ, DISPLAY=xvfb)
    port = free_port()
    status = lambda: json.loads(get(f"http://127.0.0.1:{port}/status"))  # noqa: E731
    with LoopbackCamera(media / "bottle-detection.mp4") as cam:
        proc = subprocess.Popen([sys.executable, "-m", "edgecam", "--source", cam.url, "--model", "v1_ssd",
                                 "--model-dir", str(mirror), "--display", mode, "--web", str(port)],
                                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            win = wait_for("the edgecam window", lambda: subprocess.run(
                ["xdotool", "search", "--name", "^edgecam$"], env=env, capture_output=True,
                text=True).stdout.split(), 20, 0.3)[0]
            shot = tmp_path / "screen.png"

            def boxes_on_screen():
                subprocess.run(["import", "-window", "root", str(shot)], env=env, check=True, timeout=20)
                return _palette_pixels(cv2.imread(str(shot))) > 300
            wait_for("boxes on the screen", boxes_on_screen, 30, 0.2)   # a busy machine: a slow first result

            def key(k: str) -> None:
                subprocess.run(["xdotool", "key", "--window", win, k], env=env, capture_output=True)
            key("space")                                      # pause: inference stops, the picture freezes
            wait_for("pause", lambda: status()["paused"], 5)
            time.sleep(0.5)                                   # let an inference already in flight land
            results = status()["results"]
            time.sleep(0.5)
            assert status()["results"] == results
            key("space")
            wait_for("resume", lambda: not status()["paused"] and status()["results"] > results, 5)
            key("s")                                          # a snapshot, then quit
            time.sleep(0.5)
            key("q")
            out, err = proc.communicate(timeout=15)
        except AssertionError as exc:
            proc.kill()
            raise AssertionError(f"{exc}; edgecam said: {proc.communicate()[1][-2000:]}") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err[-2000:]
    screen = cv2.imread(str(shot))
    area = screen[0:360, 0:640] if mode == "window" else screen
    lit = (area.max(axis=2) > 40).mean()
    assert lit > (0.95 if mode == "window" else 0.7), f"the frame does not fill the {mode} ({lit:.0%} lit)"
    if mode == "fullscreen":
        assert (screen.max(axis=2) > 40)[100:660].mean() > 0.95, "not scaled to the screen"
    assert _palette_pixels(area) > 300, "no detection boxes on the frame"
    assert list(tmp_path.glob("edgecam-*.png")), "the `s` key saved no snapshot"
    assert "frames in" in out


# --- bad input: one sentence, non-zero exit ---------------------------------------------------------------

def test_bad_live_inputs(mirror, media):
    model = ["--model", "v1_ssd", "--model-dir", str(mirror), "--display", "none"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        busy_port, closed_port = busy.getsockname()[1], free_port()
        cases = [
            (["--source", f"http://127.0.0.1:{closed_port}/stream.mjpg"], 1, "cannot open stream http://127.0.0.1"),
            (["--source", f"rtsp://127.0.0.1:{closed_port}/cam"], 1, "cannot open stream rtsp://127.0.0.1"),
            (["--source", "/dev/video99"], 1, "camera /dev/video99 does not exist"),
            (["--source", str(media / "bottle-detection.mp4"), "--realtime", "--web", f"127.0.0.1:{busy_port}"],
             1, "the port is already in use"),
            (["--source", str(media / "bottle-detection.mp4"), "--realtime", "--web", "localhost:http"],
             2, "bad --web address"),
        ]
        try:
            import picamera2  # noqa: F401
        except ImportError:
            cases.append((["--source", "picamera2"], 1, "--system-site-packages"))
            if not glob_video():
                cases.append((["--source", "auto"], 1, "no camera found"))
        with ThreadPoolExecutor(len(cases)) as pool:
            results = list(pool.map(lambda c: run_edgecam(*model, *c[0], timeout=60), cases))
    for (args, code, text), r in zip(cases, results):
        line = one_sentence(r)
        assert r.returncode == code and text in line, (args, r.returncode, line)


def glob_video() -> list:
    import glob
    return glob.glob("/dev/video*")


# --- the loopback camera, live, with the browser view ----------------------------------------------

@pytest.fixture(scope="module")
def live(mirror, media, tmp_path_factory):
    out = tmp_path_factory.mktemp("live") / "results.jsonl"
    port = free_port()
    with LoopbackCamera(media / "bottle-detection.mp4") as cam:
        run = LiveApp(config(mirror, source={"uri": cam.url, "reconnect_max_s": 2.0},
                             output={"json": str(out), "web": f"127.0.0.1:{port}"}))
        base = f"http://127.0.0.1:{port}"
        status = lambda: json.loads(get(base + "/status"))  # noqa: E731
        try:
            wait_for("the browser view", lambda: _answers(base), 20)
            wait_for("results", lambda: status().get("results", 0) >= 10, 20)
            yield {"cam": cam, "base": base, "status": status, "json": out, "app": run}
        finally:
            assert run.close() == 0


def _answers(base: str) -> bool:
    try:
        get(base + "/status", 1)
        return True
    except OSError:
        return False


def test_live_stream_results_and_status(live):
    s1 = live["status"]()
    time.sleep(1.0)
    s2 = live["status"]()
    assert s2["status"] == "running" and s2["model"] == "v1_ssd"
    assert s2["frames"] > s1["frames"] + 10, "the frame count does not move"
    assert s2["camera_fps"] > 10 and s2["inference_fps"] > 1
    assert s2["latest"]["detections"], s2
    lines = json_lines(live["json"])
    assert len(lines) >= 10 and bottles(lines) >= 0.6 * len(lines)
    assert len(get(live["base"] + "/snapshot.jpg")) > 10_000


def test_browser_view_in_headless_chromium(live, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium (Debian package chromium) is not installed")
    shot = tmp_path / "page.png"
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                        "--window-size=1280,800", "--virtual-time-budget=3000", live["base"] + "/"],
                       capture_output=True, text=True, timeout=60)
    assert shot.is_file(), r.stderr[-2000:]
    page = cv2.imread(str(shot))
    # the stream fills the left part of the page: real footage (bright, varied), with orange-ish boxes
    stream = page[8:530, 8:940]
    assert stream.mean() > 80 and stream.std() > 20, "the stream area is blank"
    assert _palette_pixels(stream) > 300, "no detection boxes on the stream"
    text_panel = page[0:420, 960:1280]
    assert (text_panel > 150).sum() > 1000, "the status panel is empty"


def test_many_viewers_and_one_leaving_mid_stream(live):
    base, frames = live["base"], {}
    before = live["status"]()

    def viewer(name: str, seconds: float, leave_early: bool = False) -> None:
        with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as s:
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.settimeout(5)
            got, data, end = 0, b"", time.monotonic() + seconds
            while time.monotonic() < end:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                got += data.count(b"--edgecamframe")
                data = data[-20:]
                if leave_early and got >= 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    break                      # reset the connection in the middle of a frame
            frames[name] = got

    threads = [threading.Thread(target=viewer, args=(f"v{i}", 2.5)) for i in range(3)]
    threads.append(threading.Thread(target=viewer, args=("leaver", 2.5, True)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    after = live["status"]()
    assert all(frames[f"v{i}"] >= 20 for i in range(3)), frames
    assert after["shown"] > before["shown"] + 40 and after["results"] > before["results"] + 10
    web = after["web"]
    assert web["encoded"] <= web["published"], "a frame was encoded more than once"
    time.sleep(0.5)
    assert live["status"]()["web"]["viewers"] == 0


def test_camera_stops_and_comes_back(live):
    cam, status = live["cam"], live["status"]
    cam.stop()
    wait_for("status 'reconnecting'", lambda: status()["status"] == "reconnecting", 8)
    assert len(get(live["base"] + "/snapshot.jpg")) > 10_000   # the last picture, still served
    time.sleep(1.0)
    cam.restart()
    mark = status()["results"]
    lines_before = len(json_lines(live["json"]))
    s = wait_for("reconnect and new results",
                 lambda: (st := status())["reconnects"] >= 1 and st["status"] == "running"
                 and st["results"] >= mark + 15 and st, 15)
    assert s["reconnects"] >= 1
    new = json_lines(live["json"])[lines_before:]
    assert len(new) >= 10 and bottles(new) >= 0.6 * len(new)


def test_model_switch_from_the_browser(models_dir, media, tmp_path):
    """POST /model switches a running pipeline to another provisioned model of the same task."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with LoopbackCamera(media / "bottle-detection.mp4") as cam:
        cfg = config(models_dir, model={"name": "v2"}, source={"uri": cam.url},
                     output={"web": f"127.0.0.1:{port}"})
        run = LiveApp(cfg)
        try:
            status = lambda: json.loads(get(base + "/status"))  # noqa: E731
            wait_for("results", lambda: _answers(base) and status().get("results", 0) > 3, 20)
            assert {"v2", "v1_0.25_128", "v3"} <= set(status()["models"])
            req = urllib.request.Request(base + "/model", data=b'{"model": "v1_0.25_128"}', method="POST",
                                         headers={"Content-Type": "application/json"})
            answer = json.loads(get(req))               # 200: done, with the model now running
            assert answer["done"] is True and answer["value"] == "v1_0.25_128", answer
            s = wait_for("the switch", lambda: (st := status())["model"] == "v1_0.25_128" and st, 10)
            assert s["input_px"] == 128
            n = s["results"]
            wait_for("results from the new model", lambda: (st := status())["results"] > n + 3
                     and st["latest"]["model"] == "v1_0.25_128", 10)
            get(urllib.request.Request(base + "/model", data=b"{}", method="POST",    # the next one
                                       headers={"Content-Type": "application/json"}))
            wait_for("the next model", lambda: status()["model"] != "v1_0.25_128", 10)
        finally:
            assert run.close() == 0


def test_loopback_stamps_give_frame_age(media):
    """What a benchmark does: read the stamped index from edgecam's frame, look up its send time."""
    from edgecam.config import SourceConfig
    from edgecam.sources.opencv import OpenCVCameraSource
    with LoopbackCamera(media / "bottle-detection.mp4", stamp=True) as cam:
        src = OpenCVCameraSource(cam.url, SourceConfig(uri=cam.url))
        try:
            frames = [src.read() for _ in range(10)]
        finally:
            src.close()
        indices = [read_stamp(f.image) for f in frames]
        assert None not in indices and indices == sorted(indices) and len(set(indices)) == 10, indices
        ages = [f.captured - cam.sent_time(i) for f, i in zip(frames[2:], indices[2:])]
        assert all(0 <= a < 0.5 for a in ages), ages
        assert cam.frames_sent >= 10
