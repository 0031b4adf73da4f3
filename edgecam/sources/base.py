"""What every source gives: frames stamped with their capture time, from a ``read()`` that
blocks until the next one. Threads live in edgecam/pipeline/."""

from __future__ import annotations

import threading
from typing import Optional, Tuple

import cv2
import numpy as np

from edgecam.errors import SourceError


class Frame:
    """One frame. ``image`` (BGR, HxWx3 uint8) is decoded on first use when the source hands
    over the camera's encoded bytes (``packet``, a JPEG): a frame nobody looks at costs nothing."""

    __slots__ = ("index", "t", "captured", "lores", "packet", "size", "_image", "_lock")

    def __init__(self, index: int, t: float, captured: float, image: Optional[np.ndarray] = None,
                 lores: Optional[np.ndarray] = None, packet: Optional[np.ndarray] = None,
                 size: Tuple[int, int] = (0, 0)):
        self.index = index          # 0, 1, 2 ... in the order frames were captured
        self.t = t                  # seconds: position in the media (files) or since the source opened (live)
        self.captured = captured    # time.monotonic() when the frame was captured (or stamped by a camera)
        self.lores = lores          # a model-sized copy made by the camera (picamera2)
        self.packet = packet        # the encoded frame (MJPEG), when the image is not decoded yet
        self.size = size            # (width, height) the packet decodes to
        self._image = image
        self._lock = threading.Lock() if image is None else None

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            with self._lock:        # the inference thread and the display may both ask
                if self._image is None:
                    self._image = decode_jpeg(self.packet, self.size)
        return self._image


def decode_jpeg(packet: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """A JPEG frame as BGR (libjpeg-turbo); a frame too damaged to decode comes out black."""
    image = cv2.imdecode(packet, cv2.IMREAD_COLOR)
    if image is None:
        return np.zeros((max(1, size[1]), max(1, size[0]), 3), np.uint8)
    return image


class Source:
    """A frame source behind one URI (like jetson-inference's videoSource)."""

    name: str = "source"
    live: bool = False                    # a camera (keep only the newest frame) or a file (every frame)
    still: bool = False                   # photos: resize with INTER_AREA
    reconnectable: bool = False           # reopen() brings it back after it stopped delivering
    fps: Optional[float] = None
    frame_count: Optional[int] = None
    size: Tuple[int, int] = (0, 0)

    def read(self) -> Optional[Frame]:
        """The next frame; None when it has ended (files) or stopped delivering (cameras)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def reopen(self) -> None:
        """Reconnect a live source that stopped delivering (raises SourceError while it's gone)."""
        raise SourceError(f"{self.name} cannot be reopened")
