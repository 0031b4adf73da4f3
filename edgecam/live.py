"""Live sources: OpenCV cameras and streams (V4L2, RTSP/HTTP, GStreamer, Jetson CSI), the
Raspberry Pi camera through Picamera2, and ``auto``. Each one is a blocking reader: read()
returns the next frame stamped with its capture time, or None when the camera stopped
delivering (the pipeline then calls reopen() with backoff). Threads live in pipeline.py."""

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
from edgecam.pyenv import Picamera2Unavailable, import_picamera2
from edgecam.sources import Frame, Source, csi_pipeline

log = logging.getLogger("edgecam.source")

NETWORK = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://")
TIMEOUT_MS = 5000          # network open / read timeout: a stalled stream is a stopped camera
MEASURE_S = 1.5            # a stream that declares no frame rate is timed this long when opened
SETTLE_S = 0.4             # ... not counting its first frames (buffered while opening: a burst)
FILE_MODE = "edgecam --source video.mp4 --output out.mp4 --display none"

try:   # edgecam says why a camera can't be opened, in one sentence: not OpenCV's own warnings
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:
    pass


def video_devices() -> List[str]:
    return sorted(glob.glob("/dev/video[0-9]*"), key=lambda p: int(p[len("/dev/video"):]))


class OpenCVCameraSource(Source):
    """A V4L2 webcam (0, /dev/video0), a network stream (rtsp://, http(s)://), a Jetson CSI
    camera (csi://0) or a GStreamer pipeline (any string with '!'), through cv2.VideoCapture."""

    live = True

    def __init__(self, uri: str, cfg: SourceConfig):
        self.uri, self.cfg = uri, cfg
        self.kind, self.target, self.api = self._resolve(uri, cfg)
        self.name = uri
        self._lock = threading.Lock()       # read() and close() never overlap on one capture
        self._index = 0
        self._t0 = time.monotonic()
        self.cap, first = self._open()
        self._pending: Optional[np.ndarray] = first
        self.size = (first.shape[1], first.shape[0])
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else cfg.fps
        if not self._declares_fps():
            self.fps = self._measure_fps() or cfg.fps
        # bounds for health.Beat.within(): how long a read or an open may block here
        self.read_timeout_s = TIMEOUT_MS / 1000 + 5 if self.kind == "stream" else 12.0
        self.open_timeout_s = 2 * TIMEOUT_MS / 1000 + 10 if self.kind == "stream" else 30.0

    def _declares_fps(self) -> bool:
        """MJPEG over HTTP carries no frame rate (FFmpeg then reports 25): it is measured."""
        fourcc = int(self.cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little")
        return not (self.kind == "stream" and self.uri.lower().startswith(("http://", "https://"))
                    and fourcc in (b"MJPG", b"mjpg"))

    def _measure_fps(self) -> float:
        """The stream's frame rate as received over MEASURE_S seconds (0.0 if too few frames);
        the newest frame stays pending for the first read()."""
        t0 = time.monotonic()
        times = []
        while time.monotonic() - t0 < MEASURE_S:
            ok, image = self.cap.read()
            if not ok or image is None:
                break
            self._pending = image
            now = time.monotonic()
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

    def _open(self) -> Tuple[cv2.VideoCapture, np.ndarray]:
        """Open the capture and read one frame; SourceError (one sentence) when it can't."""
        if self.kind == "camera":
            device = self.uri if self.uri.startswith("/dev/") else f"/dev/video{self.uri}"
            if not os.path.exists(device):
                found = ", ".join(video_devices()) or "none"
                raise SourceError(f"camera {device} does not exist (video devices found: {found})")
            if not os.access(device, os.R_OK | os.W_OK):
                raise SourceError(f"cannot open camera {device}: permission denied "
                                  f"(add the user to the 'video' group)")
            index = int(device[len("/dev/video"):])
            cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
            if cap.isOpened():
                if self.cfg.fourcc:
                    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.cfg.fourcc[:4].ljust(4)))
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
                cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            what = f"camera {device}"
        elif self.kind == "gstreamer":
            if not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
                raise SourceError(f"cannot open {self.uri!r}: this OpenCV was built without GStreamer "
                                  f"(on a Jetson, use the system's python3-opencv)")
            cap = cv2.VideoCapture(str(self.target), cv2.CAP_GSTREAMER)
            what = f"GStreamer pipeline {self.uri!r}"
        else:
            cap = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, TIMEOUT_MS,
                                                              cv2.CAP_PROP_READ_TIMEOUT_MSEC, TIMEOUT_MS])
            what = f"stream {self.uri}"
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
                image, self._pending = self._pending, None
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

    def close(self) -> None:
        # a read blocked on a stalled stream holds the lock: leave that capture to the process exit
        if self._lock.acquire(timeout=TIMEOUT_MS / 1000 + 1):
            try:
                if self.cap is not None:
                    self.cap.release()
                    self.cap = None
            finally:
                self._lock.release()


# ---------------------------------------------------------------------------------------------
# Raspberry Pi camera (Picamera2): main at display size, lores at the model's input size

def to_bgr(array: np.ndarray, fmt: str, width: int) -> np.ndarray:
    """A Picamera2 array as BGR: "RGB888" is B,G,R in memory (as OpenCV wants), "BGR888" is
    R,G,B, "XRGB8888" is B,G,R,X, "XBGR8888" R,G,B,X, "YUV420" is I420 of shape (h*3/2, stride)."""
    if fmt == "RGB888":
        return array
    if fmt == "BGR888":
        return cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if fmt == "XRGB8888":
        return np.ascontiguousarray(array[:, :, :3])
    if fmt == "XBGR8888":
        return cv2.cvtColor(array, cv2.COLOR_RGBA2BGR)
    if fmt in ("YUV420", "YVU420"):
        code = cv2.COLOR_YUV2BGR_I420 if fmt == "YUV420" else cv2.COLOR_YUV2BGR_YV12
        bgr = cv2.cvtColor(array, code)
        return bgr if bgr.shape[1] == width else np.ascontiguousarray(bgr[:, :width])
    raise SourceError(f"unsupported Picamera2 format {fmt}")


class PiCamera2Source(Source):
    """The Pi camera with two streams: ``main`` at the configured size for display, ``lores``
    at the model's input size so the ISP does the resize. Pi 5 gives RGB lores; a Pi 4 or
    earlier only YUV420, converted here with one cvtColor."""

    name = "picamera2"
    live = True

    def __init__(self, cfg: SourceConfig, model_size: Optional[int] = None, camera_num: int = 0):
        self.cfg, self.model_size = cfg, model_size
        self.Picamera2 = import_picamera2()
        if ":" in str(cfg.uri):                         # picamera2:1 for the second camera
            tail = str(cfg.uri).split(":", 1)[1]
            camera_num = int(tail) if tail.isdigit() else camera_num
        self.camera_num = camera_num
        if not self.Picamera2.global_camera_info():
            raise SourceError("no Pi camera is attached (Picamera2 found none): check the ribbon "
                              "cable and `rpicam-hello --list-cameras`")
        self.size = (cfg.width, cfg.height)
        self.fps = cfg.fps
        self.lores_format: Optional[str] = None
        self._index = 0
        self._t0 = time.monotonic()
        self.cam = None
        self._start()

    def _config(self, lores_format: Optional[str]) -> dict:
        main = {"size": self.size, "format": "RGB888"}
        lores = ({"size": (self.model_size, self.model_size), "format": lores_format}
                 if lores_format else None)
        frame_us = int(1_000_000 / self.fps)
        return self.cam.create_preview_configuration(
            main=main, lores=lores, buffer_count=4, display=None,
            controls={"FrameDurationLimits": (frame_us, frame_us)})

    def _start(self) -> None:
        try:
            self.cam = self.Picamera2(self.camera_num)
        except Exception as exc:
            raise SourceError(f"cannot open the Pi camera {self.camera_num}: {exc} "
                              f"(is another program using it?)") from None
        # lores at the model's size: RGB where the ISP allows it (Pi 5), else YUV420 (Pi 4 and
        # earlier), else no lores at all (a software resize): the lores may not exceed main
        fits = self.model_size and self.model_size <= min(self.size)
        attempts = ["RGB888", "YUV420", None] if fits else [None]
        error: Optional[Exception] = None
        for fmt in attempts:
            try:
                self.cam.configure(self._config(fmt))
                self.lores_format = fmt
                break
            except (RuntimeError, ValueError) as exc:
                error = exc
                log.debug("Picamera2 rejected lores %s: %s", fmt, exc)
        else:
            self.close()
            raise SourceError(f"cannot configure the Pi camera at {self.size[0]}x{self.size[1]}: {error}")
        if self.lores_format is None:
            log.info("Pi camera: no lores stream at %s px, resizing in software", self.model_size)
        actual = self.cam.camera_config["main"]["size"] if hasattr(self.cam, "camera_config") else None
        if actual:
            self.size = tuple(actual)
        self.cam.start()
        self.name = f"picamera2 ({self.size[0]}x{self.size[1]}" + (
            f", lores {self.model_size}px {self.lores_format})" if self.lores_format else ")")

    def read(self) -> Optional[Frame]:
        if self.cam is None:
            return None
        try:
            if self.lores_format:
                if hasattr(self.cam, "capture_arrays"):        # both streams of one request
                    (main, lores), _ = self.cam.capture_arrays(["main", "lores"])
                else:
                    main, lores = self.cam.capture_array("main"), self.cam.capture_array("lores")
            else:
                main, lores = self.cam.capture_array("main"), None
        except Exception as exc:  # libcamera errors are plain RuntimeErrors
            log.warning("Pi camera stopped delivering: %s", exc)
            return None
        now = time.monotonic()
        image = to_bgr(main, "RGB888", self.size[0])
        small = to_bgr(lores, self.lores_format, self.model_size) if lores is not None else None
        frame = Frame(self._index, now - self._t0, now, image, small)
        self._index += 1
        return frame

    def reopen(self) -> None:
        self.close()
        try:
            self._start()
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(f"cannot reopen the Pi camera: {exc}") from None

    def close(self) -> None:
        if self.cam is not None:
            cam, self.cam = self.cam, None
            for step in (cam.stop, cam.close):
                try:
                    step()
                except Exception as exc:
                    log.debug("Picamera2 %s: %s", step.__name__, exc)


def picamera2_attached() -> Tuple[bool, str]:
    """Whether a Pi camera can be used, and what was found (for auto's error)."""
    try:
        Picamera2 = import_picamera2()
    except Picamera2Unavailable as exc:
        if not exc.missing:     # installed but broken: that is the answer, not "no camera"
            raise
        return False, "picamera2 is not importable"
    try:
        cameras = Picamera2.global_camera_info()
    except Exception as exc:
        return False, f"picamera2 failed to list cameras ({exc})"
    return (True, "") if cameras else (False, "picamera2 found no camera")


def auto_source(cfg: SourceConfig, model_size: Optional[int] = None) -> Source:
    """The Pi camera if one is attached, else the first V4L2 device, else a clear error."""
    ok, why = picamera2_attached()
    if ok:
        return PiCamera2Source(cfg, model_size)
    tried = [why]
    devices = video_devices()
    for device in devices:
        try:
            return OpenCVCameraSource(device, cfg)
        except SourceError as exc:
            tried.append(str(exc))
    if not devices:
        tried.append("no /dev/video* device")
    raise SourceError(f"no camera found ({'; '.join(tried)}): name one with --source "
                      f"(0, /dev/video0, rtsp://..., http://...), or run on a file: `{FILE_MODE}`")


# ---------------------------------------------------------------------------------------------
# A camera that is not there yet (a service started before the camera is plugged in)

def is_camera(uri: str) -> bool:
    """Whether ``uri`` names a camera or a stream (something that can appear later), not a file."""
    uri = str(uri).strip()
    return (uri == "auto" or uri.startswith("picamera2") or uri.isdigit() or uri.startswith("/dev/video")
            or (uri.startswith("csi://") and uri[6:].isdigit()) or "!" in uri or uri.lower().startswith(NETWORK))


class WaitingCamera(Source):
    """A camera that could not be opened at start, waited for: read() gives None (so the
    live pipeline reconnects with backoff) until reopen() manages to open it; from then on
    it is that camera. ``waiting`` says whether it has ever opened; ``error`` why not."""

    live = True

    def __init__(self, cfg: SourceConfig, opener, error: str):
        self.cfg, self._opener, self.error = cfg, opener, error
        self.name = str(cfg.uri)
        self.size = (cfg.width, cfg.height)
        self.fps = None
        self.inner: Optional[Source] = None
        self.read_timeout_s = self.open_timeout_s = 30.0

    @property
    def waiting(self) -> bool:
        return self.inner is None

    def read(self) -> Optional[Frame]:
        return self.inner.read() if self.inner is not None else None

    def reopen(self) -> None:
        if self.inner is not None:
            self.inner.reopen()
            return
        try:
            self.inner = self._opener()
        except SourceError as exc:
            self.error = str(exc)
            raise
        self.name, self.size, self.fps = self.inner.name, self.inner.size, self.inner.fps
        for key in ("read_timeout_s", "open_timeout_s"):
            setattr(self, key, getattr(self.inner, key, 30.0))

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
