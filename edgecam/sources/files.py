"""File sources: a video file (every frame, in order; ``realtime`` paces it at its own rate,
as if it were a camera), one image, or a folder of images (each once)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

from edgecam.bounds import not_regular, path_text
from edgecam.errors import SourceError
from edgecam.sources.base import Frame, Source

log = logging.getLogger("edgecam.source")

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".h264", ".mpg", ".mpeg", ".ts", ".gif"}


class VideoFileSource(Source):
    """Every frame of a video file, in order; ``realtime``: paced at the file's own rate, as a
    camera would deliver them (live mode); ``loop``: that, and from the start again at the
    end (jetson-inference's --input-loop), the frame index still counting up."""

    fps: float                            # always known: the file's, or 30

    def __init__(self, path: Path, realtime: bool = False, loop: bool = False):
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            problem = not_regular(self.path) if self.path.exists() else None
            why = "cannot be read: " + problem if problem else "does not exist"
            raise SourceError(f"video file {path_text(path)} {why}")
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
        self.loop = loop
        self.realtime = realtime or loop
        self.live = self.realtime
        self.loops = 0
        self._t0: Optional[float] = None

    def read(self) -> Optional[Frame]:
        if self._pending is not None:
            img, self._pending = self._pending, None
        else:
            ok, img = self.cap.read()
            if not ok and self.loop:
                ok, img = self._restart()
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

    def _restart(self):
        """The first frame again (reopened: a seek to 0 is not reliable in every container)."""
        self.cap.release()
        self.cap = _open_file(self.path)
        self.loops += 1
        log.debug("%s: from the start again (loop %d)", self.name, self.loops)
        return self.cap.read() if self.cap.isOpened() else (False, None)

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
        for skipped, path in enumerate(paths):   # noqa: B007 (read after the loop: how many failed)
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
