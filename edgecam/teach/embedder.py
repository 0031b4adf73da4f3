"""Crops and frames to embeddings: the embedding model (provision/embed_cache.py) run on a box
of the frame, grown by ``pad`` on each side and resized by the model's own preprocessing
(model/preprocess.py, stretch), normalised to length 1."""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from edgecam.model.engine import Engine
from edgecam.model.preprocess import preprocess
from edgecam.provision.embed_cache import EmbeddingModel


class Embedder:
    def __init__(self, model: EmbeddingModel, threads: int = 1, runtime: str = "auto"):
        self.model = model
        self.engine = Engine(model.path, threads, runtime)
        self.embedded = 0                          # crops and frames embedded since the start
        self.ms = 0.0                              # the time they took in all (preprocess + model)

    @property
    def name(self) -> str:
        return self.model.name

    def __call__(self, image: np.ndarray, box: Optional[Sequence[float]] = None, pad: float = 0.0) -> np.ndarray:
        """The normalised embedding of ``image`` (BGR), or of its ``box`` (x1, y1, x2, y2 pixels)."""
        crop = image if box is None else crop_of(image, box, pad)
        t0 = cv2.getTickCount()
        tensor, _ = preprocess(crop, self.engine.input, "stretch", cv2.INTER_AREA)
        v = self.engine.run(tensor)[0].reshape(-1).astype(np.float32)
        self.ms += (cv2.getTickCount() - t0) * 1000.0 / cv2.getTickFrequency()
        self.embedded += 1
        return v / max(float(np.linalg.norm(v)), 1e-12)


def crop_of(image: np.ndarray, box: Sequence[float], pad: float) -> np.ndarray:
    """The box grown by ``pad`` of its size on each side, clipped to the image (at least 2x2)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    gx, gy = (x2 - x1) * pad, (y2 - y1) * pad
    a, b = int(max(0, np.floor(x1 - gx))), int(max(0, np.floor(y1 - gy)))
    c, d = int(min(w, np.ceil(x2 + gx))), int(min(h, np.ceil(y2 + gy)))
    c, d = max(c, min(w, a + 2)), max(d, min(h, b + 2))
    return image[b:d, a:c]


def region_box(region: Sequence[float], width: int, height: int) -> Sequence[float]:
    """A region in fractions of the frame, in pixels."""
    x1, y1, x2, y2 = region
    return (x1 * width, y1 * height, x2 * width, y2 * height)
