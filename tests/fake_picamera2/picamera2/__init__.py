"""A stand-in for Picamera2 on a machine without a Pi camera: the real API's shape
(Picamera2.global_camera_info, create_preview_configuration(main=, lores=, ...), configure,
start, capture_array(name), capture_arrays(names), stop, close) and its array layouts, fed
with real frames from a video file (env FAKE_PICAMERA2_VIDEO), paced at the video's rate.
A configuration's ``transform`` (a libcamera.Transform, see ../libcamera) flips every stream;
a transpose is refused, as the Pi's ISP cannot do one.

Layouts as the real library returns them: "RGB888" is B,G,R in memory, "BGR888" R,G,B,
"XRGB8888" B,G,R,255, "XBGR8888" R,G,B,255, "YUV420" I420 planes in an array of shape
(h*3/2, stride) with the stride padded to 64 bytes. env FAKE_PICAMERA2_PLATFORM: "vc4"
(Pi 4 and earlier, the default: the lores stream must be YUV) or "pisp" (Pi 5)."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
from libcamera import Transform

FORMATS = ("RGB888", "BGR888", "XRGB8888", "XBGR8888", "YUV420")
opened: list = []          # every camera made, for the tests to inspect


def _video() -> str:
    return os.environ.get("FAKE_PICAMERA2_VIDEO", "")


class Picamera2:
    @staticmethod
    def global_camera_info() -> list:
        if not os.path.isfile(_video()):
            return []
        return [{"Model": "imx708", "Location": 2, "Rotation": 180, "Num": 0,
                 "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a"}]

    def __init__(self, camera_num: int = 0):
        if camera_num >= len(self.global_camera_info()):
            raise IndexError("list index out of range")     # what the real one raises
        self.platform = os.environ.get("FAKE_PICAMERA2_PLATFORM", "vc4").lower()
        self.cap = cv2.VideoCapture(_video())
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.period = 1.0 / (fps if 0 < fps < 1000 else 30.0)
        self.camera_config = None
        self.started = self.closed = False
        self.captures = 0
        self._next = 0.0
        opened.append(self)

    def create_preview_configuration(self, main=None, lores=None, raw=None, transform=None,
                                     colour_space=None, buffer_count=4, controls=None,
                                     display="main", encode="main", queue=True, sensor=None) -> dict:
        main = {"format": "XBGR8888", "size": (640, 480), **(main or {})}
        if lores is not None:
            lores = {"format": "YUV420", "size": (320, 240), **lores}
        return {"use_case": "preview", "transform": Transform() if transform is None else transform,
                "colour_space": colour_space,
                "buffer_count": buffer_count, "queue": queue, "main": main, "lores": lores,
                "raw": raw, "controls": dict(controls or {}), "display": display, "encode": encode}

    def configure(self, config: dict) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        for name in ("main", "lores"):
            stream = config.get(name)
            if stream is None:
                continue
            if stream["format"] not in FORMATS:
                raise RuntimeError(f"Invalid format {stream['format']}")
            w, h = stream["size"]
            if stream["format"] == "YUV420" and (w % 2 or h % 2):
                raise RuntimeError(f"{name} stream: YUV420 needs even width and height")
        transform = config.get("transform")
        if transform is not None and transform.transpose:   # the Pi's ISP flips, it cannot transpose
            raise RuntimeError("transform: transpose is not supported on this camera")
        if config.get("lores") is not None:
            (mw, mh), (lw, lh) = config["main"]["size"], config["lores"]["size"]
            if lw > mw or lh > mh:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if self.platform == "vc4" and config["lores"]["format"] != "YUV420":
                raise RuntimeError("lores stream must be YUV")
        self.camera_config = config

    def start(self) -> None:
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.stop()
        self.cap.release()
        self.closed = True

    def capture_array(self, name: str = "main") -> np.ndarray:
        return self.capture_arrays([name])[0][0]

    def capture_arrays(self, names=("main",)):
        """One camera frame as every named stream, and its metadata."""
        if not self.started:
            raise RuntimeError("Camera is not running")
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next = max(self._next + self.period, time.monotonic())
        ok, bgr = self.cap.read()
        if not ok:                                   # loop the footage
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self.cap.read()
        if not ok:
            raise RuntimeError("camera frontend has timed out")
        self.captures += 1
        transform = self.camera_config.get("transform")
        if transform is not None and (transform.hflip or transform.vflip):   # the ISP's flips, every stream
            bgr = cv2.flip(bgr, -1 if transform.hflip and transform.vflip else 1 if transform.hflip else 0)
        arrays = [self._layout(bgr, self.camera_config[n]) for n in names]
        return arrays, {"SensorTimestamp": time.monotonic_ns(), "FrameDuration": int(self.period * 1e6)}

    @staticmethod
    def _layout(bgr: np.ndarray, stream: dict) -> np.ndarray:
        w, h = stream["size"]
        if (bgr.shape[1], bgr.shape[0]) != (w, h):   # the ISP scales the whole field of view
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
        fmt = stream["format"]
        if fmt == "RGB888":
            return bgr
        if fmt == "BGR888":
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if fmt == "XRGB8888":
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
        if fmt == "XBGR8888":
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
        i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
        stride = (w + 63) // 64 * 64
        y = np.zeros((h, stride), np.uint8)
        y[:, :w] = i420[:w * h].reshape(h, w)
        planes = [y.reshape(-1)]
        for k in range(2):
            plane = np.zeros((h // 2, stride // 2), np.uint8)
            start = w * h + k * (w // 2) * (h // 2)
            plane[:, :w // 2] = i420[start:start + (w // 2) * (h // 2)].reshape(h // 2, w // 2)
            planes.append(plane.reshape(-1))
        return np.concatenate(planes).reshape(h * 3 // 2, stride)
