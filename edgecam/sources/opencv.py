"""Cameras and streams through OpenCV: V4L2 webcams, RTSP/HTTP streams, GStreamer pipelines
and Jetson CSI cameras. read() blocks for the next frame and stamps it with its capture time,
or returns None when the camera stopped delivering (the live runner then calls reopen() with
backoff).

Frames are decoded here, in the capture thread, by FFmpeg as they arrive. Handing MJPEG
packets over undecoded and decoding only the frames used (libjpeg-turbo, on the inference
thread) was tried and measured slower: 0.34 ms to decode instead of 0.6 ms, but the model's
invoke right after it took 7.3 ms instead of 4.0 ms (v1_ssd, 2 threads, 2-core VM, `edgecam
bench` live). The cause was found later: XNNPACK's worker thread woken on the inference
thread's own core (edgecam/model/cores.py now pins them apart); the trial was not repeated
since."""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from typing import List, Optional, Tuple

import cv2
import numpy as np

from edgecam.config import SourceConfig
from edgecam.errors import SourceError
from edgecam.sources.base import Frame, Source

log = logging.getLogger("edgecam.source")

NETWORK = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://")
TIMEOUT_MS = 5000          # network open / read timeout: a stalled stream is a stopped camera
MEASURE_S = 1.5            # a stream that declares no frame rate is timed this long when opened
SETTLE_S = 0.4             # ... not counting its first frames (buffered while opening: a burst)


def video_devices() -> List[str]:
    return sorted(glob.glob("/dev/video[0-9]*"), key=lambda p: int(p[len("/dev/video"):]))


def csi_pipeline(sensor: int, width: int, height: int, fps: float) -> str:
    """The GStreamer pipeline for a Jetson CSI camera (as jetson-inference's csi://N)."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={width}, "
            f"height={height}, framerate={int(round(fps))}/1, format=NV12 ! nvvidconv ! "
            f"video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
            f"appsink drop=true max-buffers=1 sync=false")


class OpenCVCameraSource(Source):
    """A V4L2 webcam (0, /dev/video0), a network stream (rtsp://, http(s)://), a Jetson CSI
    camera (csi://0) or a GStreamer pipeline (any string with '!'), through cv2.VideoCapture."""

    live = True
    reconnectable = True

    def __init__(self, uri: str, cfg: SourceConfig):
        self.uri, self.cfg = uri, cfg
        self.kind, self.target, self.api = self._resolve(uri, cfg)
        self.name = uri
        self._lock = threading.Lock()       # read() and close() never overlap on one capture
        self._index = 0
        self._t0 = time.monotonic()
        cap, first = self._open()
        self.cap: Optional[cv2.VideoCapture] = cap     # None once closed
        self._pending: Optional[np.ndarray] = first
        self._pending_t = time.monotonic()  # when it came: its capture time (recordings stamp frames with it)
        self.size = (first.shape[1], first.shape[0])
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else cfg.fps
        if not self._declares_fps(cap):
            self.fps = self._measure_fps(cap) or cfg.fps
        # bounds for health.Beat.within(): how long a read or an open may block here
        self.read_timeout_s = TIMEOUT_MS / 1000 + 5 if self.kind == "stream" else 12.0
        self.open_timeout_s = 2 * TIMEOUT_MS / 1000 + 10 if self.kind == "stream" else 30.0

    def _declares_fps(self, cap: cv2.VideoCapture) -> bool:
        """MJPEG over HTTP carries no frame rate (FFmpeg then reports 25): it is measured."""
        return not (self.kind == "stream" and self.uri.lower().startswith(("http://", "https://"))
                    and _fourcc(cap) in ("MJPG", "mjpg"))

    def _measure_fps(self, cap: cv2.VideoCapture) -> float:
        """The stream's frame rate as received over MEASURE_S seconds (0.0 if too few frames);
        the newest frame stays pending for the first read()."""
        t0 = time.monotonic()
        times = []
        while time.monotonic() - t0 < MEASURE_S:
            ok, image = cap.read()
            if not ok or image is None:
                break
            now = time.monotonic()
            self._pending, self._pending_t = image, now
            if now - t0 >= SETTLE_S:
                times.append(now)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 3 else 0.0
        log.info("%s declares no frame rate: measured %.1f FPS", self.uri, fps)
        return round(fps, 2) if 1 <= fps <= 240 else 0.0

    @staticmethod
    def _resolve(uri: str, cfg: SourceConfig) -> Tuple[str, object, int]:
        if uri.isdigit() or uri.startswith("/dev/video"):
            return "camera", uri, cv2.CAP_V4L2
        if uri.startswith("csi://"):
            sensor = uri[len("csi://"):] or "0"
            if not sensor.isdigit():
                raise SourceError(f"bad CSI camera {uri!r}: use csi://0, csi://1, ...")
            return "gstreamer", csi_pipeline(int(sensor), cfg.width, cfg.height, cfg.fps), cv2.CAP_GSTREAMER
        if "!" in uri:
            return "gstreamer", uri, cv2.CAP_GSTREAMER
        if uri.lower().startswith(NETWORK):
            return "stream", uri, cv2.CAP_FFMPEG
        raise SourceError(f"unknown source {uri!r}: use auto, picamera2, 0, /dev/video0, rtsp://..., "
                          f"http://..., csi://0, a GStreamer pipeline, a video file or an image folder")

    def _capture(self) -> Tuple[cv2.VideoCapture, str]:
        """The opened cv2.VideoCapture (maybe not isOpened()) and what to call it in a message."""
        if self.kind == "camera":
            device = self.uri if self.uri.startswith("/dev/") else f"/dev/video{self.uri}"
            if not os.path.exists(device):
                found = ", ".join(video_devices()) or "none"
                raise SourceError(f"camera {device} does not exist (video devices found: {found})")
            if not os.access(device, os.R_OK | os.W_OK):
                raise SourceError(f"cannot open camera {device}: permission denied "
                                  f"(add the user to the 'video' group)")
            cap = cv2.VideoCapture(int(device[len("/dev/video"):]), cv2.CAP_V4L2)
            if cap.isOpened():
                if self.cfg.fourcc:
                    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.cfg.fourcc[:4].ljust(4)))
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
                cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            return cap, f"camera {device}"
        if self.kind == "gstreamer":
            if not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
                raise SourceError(f"cannot open {self.uri!r}: this OpenCV was built without GStreamer "
                                  f"(on a Jetson, use the system's python3-opencv)")
            return cv2.VideoCapture(str(self.target), cv2.CAP_GSTREAMER), f"GStreamer pipeline {self.uri!r}"
        cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, TIMEOUT_MS,
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, TIMEOUT_MS])
        return cap, f"stream {self.uri}"

    def _open(self) -> Tuple[cv2.VideoCapture, np.ndarray]:
        """Open the capture and read one frame; SourceError (one sentence) when it can't."""
        cap, what = self._capture()
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok or first is None:
            cap.release()
            why = ("it did not deliver a frame" if self.kind == "camera" else
                   "no stream answered there, or it is not a video stream" if self.kind == "stream" else
                   "the pipeline did not start")
            raise SourceError(f"cannot open {what}: {why}")
        return cap, first

    def read(self) -> Optional[Frame]:
        with self._lock:
            if self.cap is None:
                return None
            if self._pending is not None:
                image, self._pending, now = self._pending, None, self._pending_t
            else:
                ok, image = self.cap.read()   # as fast as frames come: no backlog in OpenCV's buffer
                if not ok or image is None:
                    return None
                now = time.monotonic()
            frame = Frame(self._index, now - self._t0, now, image)
            self._index += 1
            return frame

    def reopen(self) -> None:
        with self._lock:
            if self.cap is not None:
                self.cap.release()
                self.cap = None
            self.cap, self._pending = self._open()
            self._pending_t = time.monotonic()

    def close(self) -> None:
        # a read blocked on a stalled stream holds the lock: leave that capture to the process exit
        if self._lock.acquire(timeout=TIMEOUT_MS / 1000 + 1):
            try:
                if self.cap is not None:
                    self.cap.release()
                    self.cap = None
            finally:
                self._lock.release()


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
    return "".join(chr((code >> 8 * i) & 0xFF) for i in range(4))
