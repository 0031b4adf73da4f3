"""The motion gate: run the model only when something moved. Each frame is compared, as a
small grey copy, with the copy of the last frame the model saw: when fewer than
``min_changed`` of its pixels changed by more than ``pixel_delta`` grey levels, the model is
skipped and the tracks coast. Comparing with the last inferred frame (not the previous one)
lets slow change add up until it counts. The model still runs every ``max_skip_s``.

Cost: a 96-pixel-wide grey copy of each frame (one INTER_AREA resize and a 3x3 blur)."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

WIDTH = 96


def small_grey(frame) -> np.ndarray:
    """A WIDTH-wide, slightly blurred grey copy of a source Frame's picture."""
    h, w = frame.image.shape[:2]
    small = cv2.resize(frame.image, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)


class MotionGate:
    def __init__(self, pixel_delta: int = 16, min_changed: float = 0.002, max_skip_s: float = 10.0):
        self.pixel_delta, self.min_changed, self.max_skip_s = pixel_delta, min_changed, max_skip_s
        self.reference: Optional[np.ndarray] = None
        self.inferred_t = 0.0
        self.skipped = 0

    def changed(self, grey: np.ndarray) -> float:
        """The fraction of pixels that moved since the last inferred frame."""
        if self.reference is None or self.reference.shape != grey.shape:
            return 1.0
        return float(np.count_nonzero(cv2.absdiff(grey, self.reference) > self.pixel_delta)) / grey.size

    def infer(self, frame) -> bool:
        """Whether the model should see ``frame`` (a source Frame with .t)."""
        grey = small_grey(frame)
        due = frame.t - self.inferred_t >= self.max_skip_s
        if due or self.changed(grey) >= self.min_changed:
            self.reference, self.inferred_t = grey, frame.t
            return True
        self.skipped += 1
        return False


def gate_for(cfg) -> Optional[MotionGate]:
    m = cfg.motion
    return MotionGate(m.pixel_delta, m.min_changed, m.max_skip_s) if m.gate else None
