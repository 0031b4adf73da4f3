"""A mounted camera's picture put right: ``source.flip`` (none, h, v, both) and then
``source.rotate`` (0, 90, 180, 270 degrees clockwise), applied to every frame as it leaves
the source, so that the model, the boxes, the overlay and every output see the same,
upright picture. The Pi camera does the flips and 180 in its ISP (a libcamera Transform,
see picam.py) and only 90/270 here; every other source does it all here, with OpenCV."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple, Optional, Tuple, overload

import cv2
import numpy as np

from edgecam.config import SourceConfig
from edgecam.sources.base import Frame, Source
from edgecam.sources.wrapper import Wrapper

FLIPS = ("none", "h", "v", "both")
ROTATIONS = ("0", "90", "180", "270")
_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


class Orientation(NamedTuple):
    """Mirror left-right (``hflip``) and/or top-bottom (``vflip``), then turn ``quarter``
    quarter turns clockwise (0-3)."""

    hflip: bool = False
    vflip: bool = False
    quarter: int = 0

    @classmethod
    def of(cls, flip: str = "none", rotate: str = "0") -> "Orientation":
        return cls(flip in ("h", "both"), flip in ("v", "both"), int(rotate) // 90 % 4)

    @property
    def identity(self) -> bool:
        return self == Orientation()

    def split(self) -> Tuple["Orientation", "Orientation"]:
        """(what a libcamera Transform can do: flips, with 180 as both flips; what is left:
        a quarter turn, or nothing). 180 commutes with the flips, so the order holds."""
        half = self.quarter >= 2
        isp = Orientation(self.hflip != half, self.vflip != half, 0)
        return isp, Orientation(quarter=self.quarter % 2)

    def size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """A (width, height) after this orientation."""
        return (size[1], size[0]) if self.quarter % 2 else size

    @overload
    def apply(self, image: np.ndarray) -> np.ndarray: ...

    @overload
    def apply(self, image: None) -> None: ...

    def apply(self, image: Optional[np.ndarray]) -> Optional[np.ndarray]:
        if image is None or self.identity:
            return image
        if self.hflip or self.vflip:
            image = cv2.flip(image, -1 if self.hflip and self.vflip else 1 if self.hflip else 0)
        if self.quarter:
            image = cv2.rotate(image, _ROTATE[self.quarter * 90])
        return image

    def describe(self) -> str:
        parts = [name for name, on in (("mirrored", self.hflip), ("upside down", self.vflip)) if on]
        if self.quarter:
            parts.append(f"turned {self.quarter * 90}°")
        return ", ".join(parts) or "as captured"


def orientation(cfg: SourceConfig) -> Orientation:
    """The orientation a SourceConfig asks for."""
    return Orientation.of(cfg.flip, str(cfg.rotate))


class Oriented(Wrapper):
    """Any source with its frames flipped and turned (OpenCV), the same source otherwise."""

    def __init__(self, source: Source, turn: Orientation):
        self.turn = turn
        super().__init__(source)

    def sync(self) -> None:
        super().sync()
        self.size = self.turn.size(self.inner.size)

    def read(self) -> Optional[Frame]:
        frame = self.inner.read()
        if frame is None:
            return None
        return replace(frame, image=self.turn.apply(frame.image), lores=self.turn.apply(frame.lores))
