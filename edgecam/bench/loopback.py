"""A loopback camera for tests and benchmarks: real footage served as MJPEG over HTTP on
127.0.0.1, at the video's own frame rate, looped, like a network camera.

(Shipped in the package for `edgecam bench`'s live-latency run; tests/loopback.py re-exports
it for the tests.)

    with LoopbackCamera("bottle-detection.mp4") as cam:
        url = cam.url                # http://127.0.0.1:PORT/stream.mjpg
        cam.stop(); cam.restart()    # the camera goes away and comes back on the same port
        cam.freeze(); cam.thaw()     # a hung camera: connections are accepted, nothing is sent

One encoder thread decodes and JPEG-encodes each frame once; every viewer gets the newest
frame. ``stamp=True`` makes each frame say which one it is, so that a client can measure
frame age (see ``read_stamp``, ``sent_time``):

- a 24-block strip (16x16 px each, black = 0, white = 1) at the image's bottom-right
  corner: 4 sync blocks (1010) then the frame index in 20 bits, most significant first.
  It survives JPEG and resizing to >= 1/4 scale; ``read_stamp(image)`` decodes it from a
  decoded BGR frame (edgecam's Frame.image, or an output frame drawn without the overlay).
- a JPEG COM segment ``edgecam-loopback frame=N`` for clients that read the raw bytes.
- ``sent_time(N)``: time.monotonic() when frame N was handed to the viewers. CLOCK_MONOTONIC
  is one clock for every process on the machine, so it compares with Frame.captured and
  with a subprocess's monotonic times.
"""

from __future__ import annotations

import collections
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

BLOCK = 16
SYNC = (1, 0, 1, 0)
BITS = 20
BOUNDARY = "loopbackframe"
COMMENT = b"edgecam-loopback frame="


def draw_stamp(image: np.ndarray, index: int) -> None:
    """Write ``index`` into the bottom-right strip of ``image`` (in place)."""
    bits = list(SYNC) + [(index >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    h, w = image.shape[:2]
    x0, y0 = w - BLOCK * len(bits), h - BLOCK
    for i, b in enumerate(bits):
        image[y0:h, x0 + i * BLOCK:x0 + (i + 1) * BLOCK] = 255 if b else 0


def read_stamp(image: np.ndarray, scale: float = 1.0) -> Optional[int]:
    """The frame index stamped by ``draw_stamp`` (``scale``: image size / served size), or None."""
    n = len(SYNC) + BITS
    h, w = image.shape[:2]
    size = BLOCK * scale
    y = int(h - size / 2)
    x0 = w - size * n
    if x0 < 0 or y < 0:
        return None
    xs = [int(x0 + (i + 0.5) * size) for i in range(n)]
    row = image[y, xs].astype(np.int32)          # only the strip's centre pixels, not the image
    gray = row if row.ndim == 1 else row.sum(axis=-1) / row.shape[-1]
    bits = [int(v > 127) for v in gray]
    if tuple(bits[:len(SYNC)]) != SYNC:
        return None
    return int("".join(map(str, bits[len(SYNC):])), 2)


def _with_comment(jpeg: bytes, text: str) -> bytes:
    payload = text.encode("ascii")
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


class LoopbackCamera:
    def __init__(self, video_path, fps: Optional[float] = None, port: int = 0, stamp: bool = False,
                 quality: int = 80):
        self.video_path = Path(video_path)
        cap = cv2.VideoCapture(str(self.video_path))
        ok = cap.isOpened()
        native = cap.get(cv2.CAP_PROP_FPS) if ok else 0
        cap.release()
        if not ok:
            raise FileNotFoundError(f"cannot open video {video_path}")
        self.fps = float(fps or (native if 0 < native < 1000 else 30.0))
        self.port = port
        self.stamp = stamp
        self.quality = quality
        self.frames_sent = 0                     # frames encoded and handed to the viewers
        self.viewers = 0
        self._sent: "collections.OrderedDict[int, float]" = collections.OrderedDict()
        self._cond = threading.Condition()
        self._jpeg: Optional[bytes] = None
        self._seq = 0
        self._running = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._threads: list = []
        self._conns: set = set()
        self._cap: Optional[cv2.VideoCapture] = None
        self._frozen = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def sent_time(self, index: int) -> Optional[float]:
        """time.monotonic() when frame ``index`` was sent (the last 100,000 frames are kept)."""
        with self._cond:
            return self._sent.get(index)

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> str:
        if self._running.is_set():
            return self.url
        cam = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/", "/stream.mjpg", "/video"):
                    self.send_error(404)
                    return
                cam._serve(self)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._running.set()
        self._threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                          name="loopback-http", daemon=True),
                         threading.Thread(target=self._encode_loop, name="loopback-encoder", daemon=True)]
        for t in self._threads:
            t.start()
        with self._cond:  # a started camera has a picture: wait for the first encoded frame
            self._cond.wait_for(lambda: self._seq > 0 or not self._running.is_set(), 10.0)
        return self.url

    def stop(self) -> None:
        """The camera goes away: stop serving and cut every open stream."""
        if not self._running.is_set():
            return
        self._running.clear()
        with self._cond:
            self._cond.notify_all()
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._server = None

    def freeze(self) -> None:
        """The camera hangs: open streams stop getting frames and new viewers get no answer
        at all (TCP accepts, nothing is sent), until thaw()."""
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def restart(self) -> str:
        self.stop()
        return self.start()

    def __enter__(self) -> "LoopbackCamera":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    # internals ----------------------------------------------------------------------------
    def _next_image(self) -> np.ndarray:
        for _ in range(2):
            if self._cap is None:
                self._cap = cv2.VideoCapture(str(self.video_path))
            ok, image = self._cap.read()
            if ok:
                return image
            self._cap.release()          # the end: loop from the start
            self._cap = None
        raise RuntimeError(f"cannot decode {self.video_path}")

    def _encode_loop(self) -> None:
        next_t = time.monotonic()
        while self._running.is_set():
            period = 1.0 / self.fps           # (read each frame: a test may change the camera's rate)
            image = self._next_image()
            index = self.frames_sent
            if self.stamp:
                draw_stamp(image, index)
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            jpeg = buf.tobytes()
            if self.stamp:
                jpeg = _with_comment(jpeg, COMMENT.decode() + str(index))
            if not _sleep_until(next_t, self._running):
                break
            next_t = max(next_t + period, time.monotonic() - period)
            with self._cond:
                self._jpeg = jpeg
                self._seq += 1
                self.frames_sent += 1
                self._sent[index] = time.monotonic()
                if len(self._sent) > 100_000:
                    self._sent.popitem(last=False)
                self._cond.notify_all()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        conn = handler.connection
        with self._cond:
            self._conns.add(conn)
            self.viewers += 1
        try:
            while self._frozen.is_set() and self._running.is_set():
                time.sleep(0.05)              # hung: not even the headers
            handler.send_response(200)
            handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            handler.send_header("Cache-Control", "no-cache")
            handler.end_headers()
            seen = 0
            while True:
                if self._frozen.is_set():
                    if not self._running.is_set():
                        return
                    time.sleep(0.05)          # hung: the stream stays open, nothing comes
                    continue
                with self._cond:
                    self._cond.wait_for(lambda: self._seq != seen or not self._running.is_set(),  # noqa: B023
                                        1.0)   # (B023: the lambda is called here, in this iteration)
                    if not self._running.is_set():
                        return
                    if self._seq == seen or self._jpeg is None:
                        continue
                    jpeg, seen = self._jpeg, self._seq
                handler.wfile.write(b"--" + BOUNDARY.encode() + b"\r\nContent-Type: image/jpeg\r\n"
                                    + f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                handler.wfile.flush()
        except (OSError, ValueError):
            return                        # the viewer went away, or we did
        finally:
            with self._cond:
                self._conns.discard(conn)
                self.viewers -= 1


def _sleep_until(t: float, running: threading.Event) -> bool:
    """Sleep until monotonic time ``t``; False if the camera stopped meanwhile."""
    while running.is_set():
        delay = t - time.monotonic()
        if delay <= 0:
            return True
        time.sleep(min(delay, 0.05))
    return False
