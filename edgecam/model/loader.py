"""A model ready for the pipeline: resolve a catalogue name or .tflite path, apply ρ,
load labels, and run preprocess -> inference -> postprocess on one frame."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from edgecam.config import Config
from edgecam.errors import UsageError
from edgecam.costlens import costs
from edgecam.model import labels as labelmod
from edgecam.provision import catalog, int8_cache
from edgecam.model.engine import Engine
from edgecam.model.interface import Keep
from edgecam.model.postprocess import decode_detections, detection_roles, is_detector, top_k
from edgecam.model.preprocess import Plan, plan, preprocess
from edgecam.model.results import Result

log = logging.getLogger("edgecam.model")


class Model:
    def __init__(self, name: str, engine: Engine, labels: labelmod.Labels, task: str,
                 alpha: Optional[float], base: int, threshold: float, top_k: int, resize: str):
        self.name = name
        self.engine = engine
        self.labels = labels
        self.task = task
        self.alpha = alpha
        self.base = base
        self.defaults = Keep(threshold, top_k)   # what infer() keeps when not told (file mode, the bench)
        self.resize = resize
        self.roles = detection_roles(engine.outputs, engine.ops()) if task == "detect" else {}
        self._plans: Dict[Tuple[int, int], Plan] = {}
        self.cost_line = ""
        self.madds: Optional[int] = None      # mult-adds per inference (the graph run), if readable
        self.file_note = ""                   # which file runs (published or int8) and why

    def _engine(self, threads: int) -> Engine:
        engine = Engine(self.engine.path, threads, self.engine.runtime)
        h, w = self.engine.input.height, self.engine.input.width
        if (engine.input.height, engine.input.width) != (h, w):
            engine.resize_input(h, w)  # the same ρ as this one
        return engine

    def set_threads(self, threads: int) -> None:
        """Run on a new interpreter with ``threads`` threads (no-op if it already has them)."""
        if threads != self.engine.threads:
            self.engine = self._engine(threads)

    def replica(self) -> "Model":
        """The same model on an interpreter of its own, for frame-parallel inference."""
        twin = copy.copy(self)
        twin.engine = self._engine(self.engine.threads)
        twin._plans = {}
        return twin

    @property
    def size(self) -> int:
        return self.engine.input.width

    @property
    def rho(self) -> float:
        return self.size / self.base

    def infer(self, image: np.ndarray, index: int = 0, t: float = 0.0, captured: float = 0.0,
              interpolation: int = cv2.INTER_LINEAR, keep: Optional[Keep] = None) -> Result:
        keep = keep or self.defaults
        h, w = image.shape[:2]
        p = self._plans.get((w, h))
        if p is None:
            p = self._plans[(w, h)] = plan(w, h, self.engine.input.width, self.engine.input.height, self.resize)
        tensor, transform = preprocess(image, self.engine.input, self.resize,
                                       interpolation, p)
        outputs = self.engine.run(tensor)
        r = Result(index, t, self.name, self.engine.last_ms, self.task, captured=captured)
        if self.task == "detect":
            r.detections = decode_detections(outputs, self.roles, self.labels, transform, keep.lowest)
            if keep.classes:
                r.detections = [d for d in r.detections if d.label in keep.classes]
        else:
            r.classes = top_k(outputs[0], self.labels, keep.top_k, keep.classes)
        return r


def _resolve_spec(cfg: Config) -> Tuple[Optional[catalog.ModelSpec], Path]:
    where = catalog.locate(cfg.model.name, cfg.preprocess.rho, cfg.model.dir).require()
    if where.spec is not None and where.spec.name != cfg.model.name:
        log.info("rho=%g: using %s (%d px)", cfg.preprocess.rho, where.spec.name, where.spec.size)
    return where.spec, where.path


def supported_rhos(spec: Optional[catalog.ModelSpec], base: int, native: int) -> str:
    sizes = sorted({m.size for m in catalog.variants(spec)} if spec else {native})
    return ", ".join(f"{s / base:.3g} ({s}px)" for s in sizes)


def load_model(cfg: Config) -> Model:
    spec, path = _resolve_spec(cfg)
    choice = int8_cache.choose(path, cfg.model.int8, cfg.model.runtime)
    # one note line where there is news (a model the converter refuses, a conversion made now);
    # `edgecam models info` and `edgecam doctor` say it every time
    log.log(logging.INFO if choice.news else logging.DEBUG, "%s: %s", spec.name if spec else path.name,
            choice.reason)
    engine = Engine(choice.path, threads=cfg.model.threads, runtime=cfg.model.runtime)
    if spec is not None:
        task, base, alpha, name = spec.task, spec.base, spec.alpha, spec.name
    else:
        task = "detect" if is_detector(engine.outputs, engine.ops()) else "classify"
        base, alpha, name = (300 if task == "detect" else 224), None, path.stem
    rho = cfg.preprocess.rho
    if rho is not None:
        want = int(round(rho * base))
        if want != engine.input.width and not engine.resize_input(want, want):
            raise UsageError(f"model '{name}' cannot run at rho={rho:g} ({want}px): "
                             f"it supports rho = {supported_rhos(spec, base, engine.input.width)}")
    num_classes = None
    if task == "classify":
        num_classes = int(np.prod(engine.outputs[0].shape))
    lines, offset = _labels(cfg, spec, path, task, num_classes)
    labels = labelmod.Labels(lines, offset)
    model = Model(name, engine, labels, task, alpha, base, cfg.postprocess.threshold,
                  cfg.postprocess.top_k, cfg.preprocess.resize)
    model.defaults = Keep(cfg.postprocess.threshold, cfg.postprocess.top_k, frozenset(cfg.postprocess.classes))
    model.file_note = choice.reason
    cost = _cost(engine)
    model.madds = cost.madds if cost else None
    if cfg.overlay.show_cost:
        model.cost_line = _line(cost)
    return model


def cost_line(engine: Engine) -> str:
    """'325M mult-adds, 93% in 1x1 convs' from the graph being run (empty if unreadable)."""
    return _line(_cost(engine))


def _line(c: Optional[costs.ModelCost]) -> str:
    return f"{c.madds / 1e6:.0f}M mult-adds, {c.pointwise_share * 100:.0f}% in 1x1 convs" if c else ""


def _cost(engine: Engine) -> Optional[costs.ModelCost]:
    """The graph's costs (None if unreadable: the overlay line and the metrics' label are niceties)."""
    try:
        return costs.analyze(engine.path, engine.interpreter)
    except Exception as exc:
        log.debug("no cost: %s", exc)
        return None


def _labels(cfg: Config, spec, path: Path, task: str, num_classes: Optional[int]):
    if cfg.model.labels:
        lines = labelmod.load_file(Path(cfg.model.labels).expanduser(), num_classes)
        return lines, labelmod.infer_offset(lines, num_classes, task)
    if spec is not None:
        lines = labelmod.load_file(catalog.labels_path(spec, catalog.model_dir(cfg.model.dir)))
        return lines, spec.labels.offset
    meta = labelmod.from_metadata(path)
    if meta:
        return meta, labelmod.infer_offset(meta, num_classes, task)
    log.warning("model %s has no labels (no --labels and no TFLite metadata): showing class ids", path.name)
    return [], 0
