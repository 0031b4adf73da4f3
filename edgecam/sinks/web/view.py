"""The browser view as a sink: the runner hands over each drawn frame (O(1), a reference) and
the live status (a callable, read when a client asks); the server's workers encode a frame
to JPEG at most once, whoever watches, and only while someone does."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Callable, List, Optional, Tuple

import cv2
import numpy as np

from edgecam.bounds import show
from edgecam.config import parse_address
from edgecam.errors import OutputError
from edgecam.sinks.base import FrameInfo, Intent, Sink
from edgecam.sinks.web.routes import BOUNDARY, Controls, Routes
from edgecam.sinks.web.security import Guard, is_loopback, load_token
from edgecam.sinks.web.server import Server
from edgecam.sinks.web.teach import Teach

log = logging.getLogger("edgecam.web")
QUALITY = 80


def _no_status() -> dict:
    return {}


class WebView(Sink):
    def __init__(self, out, metrics=None, history=None, teach=None):
        """``out``: the output config (web, web_token, web_auth, web_public_view, web_hosts,
        web_max_connections, web_max_viewers); ``metrics``: what GET /metrics serves;
        ``history``: what the review page reads (edgecam/store/queries.py); ``teach``: the
        config's teach section (its set is what the browser teaches, /api/teach)."""
        host, port = parse_address(out.web)
        local = is_loopback(host)
        # on loopback a token is needed only when one was configured
        wanted = out.web_auth != "none" and (not local or bool(out.web_token))
        token, generated = load_token(out.web_token) if wanted else (None, None)
        guard = Guard(host, token, writes_need_token=True, views_need_token=not local and not out.web_public_view,
                      names=out.web_hosts)
        self._lock = threading.Lock()
        self._image: Optional[np.ndarray] = None
        self._seq = 0                                  # frames published
        self._jpeg: Tuple[int, bytes] = (0, b"")       # (seq, bytes) of the last encoded frame
        self._encode_lock = threading.Lock()
        self._status: Callable[[], dict] = _no_status
        self._clean: Tuple[Optional[np.ndarray], Any] = (None, None)   # the latest clean frame, its result
        self.encoded = 0
        self.controls = Controls()
        taught = Teach(teach.set if teach else None, teach.pad if teach else 0.1, history, self.clean)
        routes = Routes(self, guard, self.controls, metrics, history, taught)
        try:
            self.server = Server(host, port, routes.handle, out.web_max_connections, out.web_max_viewers,
                                 frames=self.part)
        except OSError as exc:
            if generated is not None:          # never used nor shown: generate it at the next start
                generated.unlink(missing_ok=True)
            reason = "the port is already in use" if exc.errno == 98 else (exc.strerror or str(exc))
            raise OutputError(f"cannot serve the browser view on {show(host)}:{port}: {reason} "
                              f"(choose another with --web HOST:PORT)") from None
        self.host, self.port = host, self.server.address[1]
        self.server.start()
        self._announce(out, local, token, generated)

    def _announce(self, out, local: bool, token: Optional[str], generated) -> None:
        name = socket.gethostname() if self.host in ("0.0.0.0", "::") else \
            f"[{self.host}]" if ":" in self.host else self.host
        url = f"http://{name}:{self.port}/"
        if token is None and (local or out.web_auth != "none"):
            log.info("browser view: %s", url)
        elif token is None:
            log.warning("browser view: %s with --web-auth none: anyone who can reach it can watch it and "
                        "change what it runs", url)
        elif generated is not None:
            log.warning("browser view: %s?token=%s (token generated into %s; it is not logged again)",
                        url, token, generated)
        else:
            where = "output.web_token" if out.web_token else "the token in the state folder"
            log.info("browser view: %s (%s with %s)", url, "changes" if local else "viewing and changes", where)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # the runner's side --------------------------------------------------------------------------
    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        self.refresh(image, info)

    def refresh(self, image: Optional[np.ndarray], info: FrameInfo) -> None:
        if image is not None and info.frame is not None:     # (references: teaching cuts a crop from them)
            self._clean = (info.frame.image, info.result)
        self.publish(image, info.status)

    def intents(self) -> List[Intent]:
        return self.controls.take()

    def publish(self, image: Optional[np.ndarray], status: Callable[[], dict]) -> None:
        """The latest drawn frame (None: no new picture) and the status. Never blocks on viewers."""
        self._status = status
        if image is not None:
            with self._lock:
                self._image = image
                self._seq += 1
            self.server.new_frame()

    def close(self) -> None:
        self.server.close()

    # the server's side --------------------------------------------------------------------------
    def clean(self) -> Tuple[Optional[np.ndarray], Any]:
        """The latest clean frame and the result drawn on it (what a live detection is taught from)."""
        return self._clean

    def jpeg(self) -> Tuple[int, bytes]:
        """The newest frame as JPEG, encoded at most once per frame whoever asks."""
        with self._encode_lock:
            with self._lock:
                seq, image = self._seq, self._image
            if image is not None and self._jpeg[0] != seq:
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
                if ok:
                    self._jpeg = (seq, buf.tobytes())
                    self.encoded += 1
            return self._jpeg

    def part(self) -> Tuple[int, bytes]:
        """The newest frame as one part of the MJPEG stream."""
        seq, jpeg = self.jpeg()
        if not jpeg:
            return 0, b""
        return seq, (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                     + jpeg + b"\r\n")

    def status(self) -> dict:
        for _ in range(3):   # the tracking counts may change while they are read: read again
            try:
                status = dict(self._status())
                break
            except RuntimeError:
                status = {}
        return dict(status, web={**self.server.snapshot(), "published": self._seq, "encoded": self.encoded})
