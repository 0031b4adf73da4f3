"""Sources: where frames come from, behind one URI (like jetson-inference's videoSource).

  a video file          every frame, in order (``realtime`` paces it at its own rate)
  an image / a folder   each image once
  0, /dev/video0        a USB/V4L2 webcam through OpenCV (width, height, fps, MJPG)
  rtsp:// http(s)://    a network camera or stream
  csi://0               a Jetson CSI camera (nvarguscamerasrc GStreamer pipeline)
  '... ! ... ! appsink' any GStreamer pipeline
  picamera2             the Raspberry Pi camera (main + lores streams)
  auto                  picamera2 if a Pi camera is attached, else the first V4L2 device

A source's ``read()`` blocks until the next frame and returns None when it has ended (files)
or has stopped delivering (cameras: the pipeline reopens it). Threads live in pipeline.py."""

from __future__ import annotations

import glob
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np

from edgecam.bounds import path_text, not_regular, show
from edgecam.config import SourceConfig
from edgecam.errors import SourceError

log = logging.getLogger("edgecam.source")

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".h264", ".mpg", ".mpeg", ".ts", ".gif"}


@dataclass
class Frame:
    index: int            # 0, 1, 2 ... in the order frames were captured
    t: float              # seconds: position in the media (files) or since the source opened (live)
    captured: float       # time.monotonic() when the frame was captured (or stamped by a camera)
    image: np.ndarray     # BGR, HxWx3 uint8
    lores: Optional[np.ndarray] = None   # a model-sized copy made by the camera (picamera2)


class Source:
    name: str = "source"
    live: bool = False
    fps: Optional[float] = None
    frame_count: Optional[int] = None
    size: Tuple[int, int] = (0, 0)
    still: bool = False                   # photos: resize with INTER_AREA

    def read(self) -> Optional[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def reopen(self) -> None:
        """Reconnect a live source that stopped delivering (raises SourceError while it's gone)."""
        raise SourceError(f"{self.name} cannot be reopened")


class VideoFileSource(Source):
    def __init__(self, path: Path, realtime: bool = False):
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            problem = not_regular(self.path) if self.path.exists() else None
            raise SourceError(f"video file {path_text(path)} {'cannot be read: ' + problem if problem else 'does not exist'}")
        self.cap = _open_file(self.path)
        first = None
        if self.cap.isOpened():
            ok, first = self.cap.read()
            first = first if ok else None
        if first is None:
            self.cap.release()
            raise SourceError(f"cannot read {path}: it is not a video OpenCV can decode, or it is corrupt")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 30.0
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = n if n > 0 else None
        self.size = (first.shape[1], first.shape[0])
        self._pending: Optional[np.ndarray] = first
        self._index = 0
        self.realtime = realtime
        self.live = realtime
        self._t0: Optional[float] = None

    def read(self) -> Optional[Frame]:
        if self._pending is not None:
            img, self._pending = self._pending, None
        else:
            ok, img = self.cap.read()
            if not ok:
                return None
        i = self._index
        self._index += 1
        t = i / self.fps
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic()
            delay = self._t0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return Frame(i, t, time.monotonic(), img)

    def close(self) -> None:
        self.cap.release()


def _open_file(path: Path) -> cv2.VideoCapture:
    """A decoder on one thread: the interpreter's threads already fill the cores, and a
    threaded decoder only competes with them (measured: 0.2-0.3 ms less CPU per frame)."""
    try:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        if cap.isOpened():
            return cap
    except (cv2.error, AttributeError, TypeError):  # an OpenCV without these parameters
        pass
    return cv2.VideoCapture(str(path))


class ImageSource(Source):
    still = True

    def __init__(self, paths: List[Path], name: str):
        self.name = name
        self.fps = 1.0
        # the size comes from the first image that decodes; the unreadable ones before it are
        # named (one warning each), and a folder with none at all is an error
        first = None
        for skipped, path in enumerate(paths):
            first = self._load(path, strict=len(paths) == 1)
            if first is not None:
                break
        if first is None:
            raise SourceError(f"{path_text(name)} has no image OpenCV can decode "
                              f"({len(paths)} file(s) tried, the first being {path_text(paths[0].name)})")
        self.paths = paths[skipped:]
        self.frame_count = len(self.paths)
        self._i = 0
        self.size = (first.shape[1], first.shape[0])

    @staticmethod
    def _load(path: Path, strict: bool) -> Optional[np.ndarray]:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            if strict:
                raise SourceError(f"cannot read {path_text(path)}: it is not an image OpenCV can decode")
            log.warning("skipping %s: not an image OpenCV can decode", path)
        return img

    def read(self) -> Optional[Frame]:
        while self._i < len(self.paths):
            path = self.paths[self._i]
            self._i += 1
            img = self._load(path, strict=False)
            if img is not None:
                return Frame(self._i - 1, float(self._i - 1), time.monotonic(), img)
        return None


def list_images(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def csi_pipeline(sensor: int, width: int, height: int, fps: float) -> str:
    """The GStreamer pipeline for a Jetson CSI camera (as jetson-inference's csi://N)."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={width}, "
            f"height={height}, framerate={int(round(fps))}/1, format=NV12 ! nvvidconv ! "
            f"video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
            f"appsink drop=true max-buffers=1 sync=false")


def open_source(cfg: SourceConfig, model_size: Optional[int] = None) -> Source:
    """The source named by ``cfg.uri``; SourceError (one sentence) when it can't be opened."""
    uri = str(cfg.uri).strip()
    if uri == "auto":
        from edgecam.live import auto_source
        return auto_source(cfg, model_size)
    if uri == "picamera2" or uri.startswith("picamera2:"):
        from edgecam.live import PiCamera2Source
        return PiCamera2Source(cfg, model_size)
    if uri.isdigit() or uri.startswith("/dev/video") or "://" in uri or "!" in uri:
        from edgecam.live import OpenCVCameraSource
        return OpenCVCameraSource(uri, cfg)
    path = Path(uri).expanduser()
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise SourceError(f"folder {path} has no images ({', '.join(sorted(IMAGE_EXTS))})")
        return ImageSource(images, str(path))
    if path.suffix.lower() in IMAGE_EXTS:
        if not path.is_file():
            problem = not_regular(path) if path.exists() else None
            raise SourceError(f"image file {path_text(path)} {'cannot be read: ' + problem if problem else 'does not exist'}")
        return ImageSource([path], str(path))
    if not path.exists() and any(ch in uri for ch in "*?["):
        images = sorted(Path(p) for p in glob.glob(uri) if Path(p).suffix.lower() in IMAGE_EXTS)
        if images:
            return ImageSource(images, uri)
    return VideoFileSource(path, realtime=cfg.realtime)
