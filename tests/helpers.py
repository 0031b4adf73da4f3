"""What the tests share besides fixtures (those are conftest.py's): running edgecam as a user
does, reading a video as a player does, cutting a clip of real footage, a free port. Tests
import it as a module (``from helpers import run_edgecam``), which pytest puts on the path
with the tests' folder."""

from __future__ import annotations

import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def run_edgecam(*args, timeout: float = 300, env: dict | None = None, **kw):
    """`python -m edgecam ARGS` in a subprocess, as a user runs it."""
    import subprocess
    import sys
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("DISPLAY", None) if "DISPLAY" not in (env or {}) else None
    return subprocess.run([sys.executable, "-m", "edgecam", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, **kw)


def ffprobe(path: Path) -> dict:
    """Frame count (decoded), size, rate and codec of a video, as a player sees it."""
    import json
    import shutil
    import subprocess
    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe (Debian package ffmpeg) is not installed")
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames,width,height,r_frame_rate,codec_name",
                          "-of", "json", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"ffprobe cannot read {path}: {out.stderr.strip()}"
    s = json.loads(out.stdout)["streams"][0]
    num, den = s["r_frame_rate"].split("/")
    return {"frames": int(s["nb_read_frames"]), "width": s["width"], "height": s["height"],
            "fps": int(num) / int(den), "codec": s["codec_name"]}


def write_clip(video: Path, out: Path, frames: int, first: int = 0, fps: float = 0.0) -> Path:
    """``frames`` frames of a real video from frame ``first``, as a file of their own (MPEG-4,
    at ``fps``, or the video's own rate)."""
    import cv2
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    fps = fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer = None
    for _ in range(frames):
        ok, image = cap.read()
        assert ok, f"{video} has fewer than {first + frames} frames"
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (image.shape[1], image.shape[0]))
        writer.write(image)
    cap.release()
    writer.release()
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# what a run may print besides its error: the runtime's delegate note, and edgecam's own INFO
# notes (the int8 file made at a model's first start, measured once per machine)
NOTES = ("INFO: Created TensorFlow Lite", "INFO edgecam.")


def one_sentence(r) -> str:
    """The one error sentence of a refused run ``r`` (a CompletedProcess), notes aside."""
    err = [line for line in r.stderr.splitlines() if not line.startswith(NOTES)]
    assert "Traceback" not in r.stderr, r.stderr
    assert len(err) == 1 and err[0].startswith("edgecam: error: "), r.stderr
    return err[0]


class PageServer:
    """Another server on another port of 127.0.0.1 (Home Assistant, Node-RED, an attacker's
    page): ``answer(path)`` gives (content type, body); every request's path and headers are
    kept in ``seen``."""

    def __init__(self, answer):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append((self.path, dict(self.headers)))
                kind, body = answer(self.path)
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def stop_edgecam(p, log: Path) -> str:
    """SIGTERM a running ``python -m edgecam`` whose stderr goes to ``log``: it exits 0 with no
    traceback; its log's text."""
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    text = log.read_text()
    assert p.returncode == 0 and "Traceback" not in text, text[-2000:]
    return text
