"""Compare models live: ``--compare v1_0.25_128,v2,v3`` runs the same frames through each model
(one task: classifiers, or detectors) and shows them side by side, each with its own
latency and result, so the accuracy/speed trade-off is seen on one's own camera.

A :class:`CompareModel` honours the Model protocol the runners take (interface.py: infer, replica, set_threads,
size, ...): it runs each model on the frame in turn and returns a :class:`CompareResult` that
carries every model's own result. The overlay (edgecam/sinks/overlay.py) draws one panel per
model, side by side, into one frame, so every frame sink (window, browser, video) gets the
composite, at :func:`composite_size`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

import cv2
import numpy as np

from edgecam.config import Config
from edgecam.errors import UsageError
from edgecam.model.loader import Keep, Model, load_model
from edgecam.model.results import Result

log = logging.getLogger("edgecam.model")

MAX_MODELS = 4
MAX_WIDTH = 1920      # the composite's widest: panels are scaled down to fit


def compare_names(text: Optional[str]) -> List[str]:
    """The model names of ``--compare A,B[,C,D]``: 2 to 4 of them, each once."""
    names = [n.strip() for n in str(text or "").split(",") if n.strip()]
    if not 2 <= len(names) <= MAX_MODELS or len(set(names)) != len(names):
        raise UsageError(f"--compare takes 2 to {MAX_MODELS} different models separated by commas "
                         f"(e.g. v1_0.25_128,v2,v3), not {text!r}")
    return names


@dataclass
class CompareResult(Result):
    """One frame's result from each model (``parts``, in the order compared); ``shape`` is the
    (height, width) of the image they ran on, which their boxes are in."""

    parts: List[Result] = field(default_factory=list)
    shape: Tuple[int, int] = (0, 0)

    def to_json(self) -> dict:
        return {"frame": self.frame, "t": round(self.t, 4), "model": self.model,
                "inference_ms": round(self.inference_ms, 2), "models": [p.to_json() for p in self.parts]}

    def labels(self) -> List[str]:
        return [f"{p.model}: {label}" for p in self.parts for label in p.labels()]


class CompareEngine:
    """What the runners read of a model's engine: the last run's time and span (all models)."""

    def __init__(self, parts: List[Model]):
        self.parts = parts
        # no thread placement (edgecam/model/cores.py): the models' interpreters take turns
        # on one thread, each with its own workers, so there is no core per worker to give
        self.workers: List[int] = []

    @property
    def last_ms(self) -> float:
        return sum(m.engine.last_ms for m in self.parts)

    @property
    def last_span(self) -> Tuple[float, float]:
        return self.parts[0].engine.last_span[0], self.parts[-1].engine.last_span[1]

    @property
    def threads(self) -> int:
        return self.parts[0].engine.threads


class CompareModel:
    """Several models of one task as one: each frame through each model, in turn."""

    alpha: Optional[float] = None          # each model has its own (the overlay shows each panel's)
    cost_line = ""

    def __init__(self, parts: List[Model]):
        self.parts = parts
        self.task = "compare"                 # no tracking, no model switch: each model is its own
        self.kind = parts[0].task
        self.name = "compare: " + ", ".join(m.name for m in parts)
        self.engine = CompareEngine(parts)

    @property
    def size(self) -> int:                    # a camera's lores stream big enough for every model
        return max(m.size for m in self.parts)

    @property
    def rho(self) -> float:
        return self.parts[0].rho

    @property
    def defaults(self) -> Keep:               # the live settings come with each call (infer's keep)
        return self.parts[0].defaults

    @property
    def madds(self) -> Optional[int]:          # every model's, per frame (None: one not measured)
        each = [m.madds for m in self.parts]
        return None if None in each else sum(n for n in each if n is not None)

    def set_threads(self, threads: int) -> None:
        for m in self.parts:
            m.set_threads(threads)

    def replica(self) -> "CompareModel":
        return CompareModel([m.replica() for m in self.parts])

    def infer(self, image: np.ndarray, index: int = 0, t: float = 0.0, captured: float = 0.0,
              interpolation: int = cv2.INTER_LINEAR, keep: Optional[Keep] = None) -> CompareResult:
        parts = [m.infer(image, index, t, captured, interpolation, keep) for m in self.parts]
        return CompareResult(index, t, "compare", sum(p.inference_ms for p in parts), "compare",
                             captured=captured, parts=parts, shape=image.shape[:2])


def load_compare(cfg: Config, load=load_model) -> CompareModel:
    """The models of ``model.compare``, each loaded as ``model.name`` would be (at its own ρ);
    UsageError in one sentence when they do not share a task."""
    if cfg.preprocess.rho is not None:
        log.warning("--rho is ignored with --compare: name the variants to compare (e.g. v1_0.25_128)")
    parts = [load(one) for one in each_compared(cfg)]
    tasks = {m.task for m in parts}
    if len(tasks) > 1:
        which = ", ".join(f"{m.name} {'detects' if m.task == 'detect' else 'classifies'}" for m in parts)
        raise UsageError(f"--compare needs models of one task, classifiers or detectors ({which})")
    return CompareModel(parts)


def each_compared(cfg: Config) -> List[Config]:
    """``cfg`` once per model of ``model.compare`` (for --fetch), or itself alone."""
    if not cfg.model.compare:
        return [cfg]
    return [replace(cfg, model=replace(cfg.model, name=n, compare=None), preprocess=replace(cfg.preprocess, rho=None))
            for n in compare_names(cfg.model.compare)]


def panel_size(size: Tuple[int, int], n: int) -> Tuple[int, int]:
    """One panel's (width, height): the frame's, scaled down so that ``n`` fit in MAX_WIDTH
    (even numbers: the video encoder's 4:2:0 wants them)."""
    w, h = size
    scale = min(1.0, MAX_WIDTH / (n * w))
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def composite_size(model, size: Tuple[int, int]) -> Optional[Tuple[int, int]]:
    """The drawn frame's (width, height) for ``model`` on frames of ``size``: ``n`` panels side
    by side for a CompareModel, None (the frame's own size) for one model."""
    parts = getattr(model, "parts", None)
    if not parts:
        return None
    w, h = panel_size(size, len(parts))
    return w * len(parts), h
