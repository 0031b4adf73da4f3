"""The Raspberry Pi camera through Picamera2: ``main`` at the configured size for display,
``lores`` at the model's input size so that the camera's ISP does the resize."""

from __future__ import annotations

import logging
import time
from typing import Any, Optional, Tuple

import cv2
import numpy as np

from edgecam.config import SourceConfig
from edgecam.errors import SourceError
from edgecam.pyenv import Picamera2Unavailable, import_picamera2, libcamera_transform
from edgecam.sources.base import Frame, Source
from edgecam.sources.transform import orientation

log = logging.getLogger("edgecam.source")


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
    earlier only YUV420, converted here with one cvtColor. ``source.flip`` and a 180° turn
    are a libcamera Transform (done by the ISP, for both streams); 90° and 270°, which the
    ISP cannot do, are turned here after capture."""

    name = "picamera2"
    live = True
    reconnectable = True
    fps: float                            # always known: the configured rate

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
        self.capture_size = self.size = (cfg.width, cfg.height)
        isp, self.turn = orientation(cfg).split()
        self.transform = None if isp.identity else libcamera_transform(isp.hflip, isp.vflip)
        self.fps = cfg.fps
        self.lores_format: Optional[str] = None
        self._index = 0
        self._t0 = time.monotonic()
        self.cam: Any = None                # a Picamera2 (which has no type information)
        self._start()

    def _config(self, lores_format: Optional[str]) -> dict:
        main = {"size": self.capture_size, "format": "RGB888"}
        lores = ({"size": (self.model_size, self.model_size), "format": lores_format}
                 if lores_format else None)
        frame_us = int(1_000_000 / self.fps)
        extra = {"transform": self.transform} if self.transform is not None else {}
        return self.cam.create_preview_configuration(
            main=main, lores=lores, buffer_count=4, display=None,
            controls={"FrameDurationLimits": (frame_us, frame_us)}, **extra)

    def _start(self) -> None:
        try:
            self.cam = self.Picamera2(self.camera_num)
        except Exception as exc:
            raise SourceError(f"cannot open the Pi camera {self.camera_num}: {exc} "
                              f"(is another program using it?)") from None
        # lores at the model's size: RGB where the ISP allows it (Pi 5), else YUV420 (Pi 4 and
        # earlier), else no lores at all (a software resize): the lores may not exceed main
        fits = self.model_size and self.model_size <= min(self.capture_size)
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
            w, h = self.capture_size
            raise SourceError(f"cannot configure the Pi camera at {w}x{h}: {error}")
        if self.lores_format is None:
            log.info("Pi camera: no lores stream at %s px, resizing in software", self.model_size)
        actual = self.cam.camera_config["main"]["size"] if hasattr(self.cam, "camera_config") else None
        if actual:
            self.capture_size = tuple(actual)
        self.size = self.turn.size(self.capture_size)
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
        image = self.turn.apply(to_bgr(main, "RGB888", self.capture_size[0]))
        small = (self.turn.apply(to_bgr(lores, self.lores_format, self.model_size))
                 if lores is not None and self.lores_format and self.model_size else None)   # (lores: both set)
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
