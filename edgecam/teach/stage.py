"""The teach stage of a run, between inference and tracking (one thread, in frame order):

* ``--teach SET``: each detection's crop is embedded and goes to the nearest taught label when
  its similarity clears the margin: relabelled (``label`` the taught one, ``detected_as`` the
  detector's, ``taught`` the similarity), or dropped for ``not-<its label>``. The tracker, the
  lines, zones, clips and MQTT then see the taught label. Cost is bounded: a detection that
  overlaps (IoU >= MATCH_IOU) one of the same detector label embedded less than
  ``teach.every_s`` ago takes its answer (an object is embedded when it appears, then every
  every_s), and what is remembered is at most MEMORY boxes.
* ``--teach-frame SET``: the frame (or ``teach.region``) is embedded each result and goes to the
  nearest label; a new state is reported after winning ``teach.hold`` results in a row: on the
  result (``state``, JSON lines) and as a ``state`` event.

Both sets are looked at every RELOAD_S seconds (:func:`taught.stamp`): an example added or
removed (``edgecam teach SET --add``, or a browser) is used within seconds, no restart; a set
that became bad (say, an unreadable image) keeps the last good one and says why once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from edgecam.errors import EdgecamError, UsageError
from edgecam.model.postprocess import Detection
from edgecam.provision.embed_cache import ensure
from edgecam.teach import taught
from edgecam.teach.embedder import Embedder, region_box
from edgecam.teach.settings import parse_region
from edgecam.track.geometry import iou

log = logging.getLogger("edgecam.teach")

MATCH_IOU = 0.3
MEMORY = 256                                       # boxes remembered (oldest forgotten first)
RELOAD_S = 2.0


class Watched:
    """A taught set, rebuilt when its folder changes (at most every RELOAD_S)."""

    def __init__(self, folder: str, model: str, embedder: Embedder):
        self.folder, self.model, self.embedder = Path(folder), model, embedder
        self.stamp = taught.stamp(self.folder)
        self.set, _ = taught.build(self.folder, model, embedder.name, embedder.model.sha256, embedder)
        self.checked, self.refused = time.monotonic(), ""

    def fresh(self) -> bool:
        """True when the set was rebuilt now."""
        now = time.monotonic()
        if now - self.checked < RELOAD_S:
            return False
        self.checked = now
        stamp = taught.stamp(self.folder)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        try:
            self.set, n = taught.build(self.folder, self.model, self.embedder.name, self.embedder.model.sha256,
                                       self.embedder)
        except EdgecamError as exc:
            if str(exc) != self.refused:
                log.warning("the taught set changed, and is refused (the last good one stays): %s", exc)
            self.refused = str(exc)
            return False
        self.refused = ""
        log.info("the taught set %s changed: %d examples (%d embedded now)", self.folder, len(self.set.entries), n)
        return True


class Relabel:
    def __init__(self, watched: Watched, margin: Optional[float], every_s: float, pad: float):
        self.watched, self.margin_set, self.every_s, self.pad = watched, margin, every_s, pad
        self.memory: List[list] = []               # [detector label, box, (label index, sim), t embedded]
        self.suppressed = self.relabelled = 0

    def margin(self, index: int) -> float:
        return float(self.watched.set.margins[index]) if self.margin_set is None else self.margin_set

    def __call__(self, detections: List[Detection], image: np.ndarray, t: float) -> List[Detection]:
        if self.watched.fresh():
            self.memory.clear()
        out = []
        for d in detections:
            label = self._answer(d, image, t)
            if label is None:
                out.append(d)
            elif label[0] is not None:
                out.append(label[0])
        return out

    def _answer(self, d: Detection, image: np.ndarray, t: float) -> Optional[Tuple[Optional[Detection]]]:
        """None: kept as detected; (None,): suppressed; (detection,): relabelled."""
        s = self.watched.set
        among = [i for i, name in enumerate(s.labels) if name == taught.NOT + d.label or not taught.is_not(name)]
        if not among:
            return None
        index, sim = self._recall(d, t) or self._embed(d, image, t, among)
        if sim < self.margin(index):
            return None
        name = s.labels[index]
        if taught.is_not(name):
            self.suppressed += 1
            return (None,)
        self.relabelled += 1
        return (replace(d, label=name, class_id=100 + index, detected_as=d.label, taught=round(sim, 4)),)

    def _recall(self, d: Detection, t: float) -> Optional[Tuple[int, float]]:
        best, found = MATCH_IOU, None
        for m in self.memory:
            if m[0] == d.label and t - m[3] < self.every_s:
                overlap = iou(m[1], d.box)
                if overlap >= best:
                    best, found = overlap, m
        if found is None:
            return None
        found[1] = d.box
        return found[2]

    def _embed(self, d: Detection, image: np.ndarray, t: float, among: List[int]) -> Tuple[int, float]:
        answer = self.watched.set.nearest(self.watched.embedder(image, d.box, self.pad), among)
        self.memory = [m for m in self.memory if t - m[3] < self.every_s and iou(m[1], d.box) < MATCH_IOU]
        self.memory = self.memory[-(MEMORY - 1):] + [[d.label, d.box, answer, t]]
        return answer


class FrameState:
    def __init__(self, watched: Watched, region: Optional[List[float]], hold: int):
        self.watched, self.region, self.hold = watched, region, hold
        self.label: Optional[str] = None
        self.similarity = 0.0
        self.candidate: Tuple[Optional[str], int] = (None, 0)
        self.changes = 0

    def __call__(self, image: np.ndarray, result) -> None:
        self.watched.fresh()
        h, w = image.shape[:2]
        box = region_box(self.region, w, h) if self.region else None
        index, sim = self.watched.set.nearest(self.watched.embedder(image, box))
        name = self.watched.set.labels[index]
        if name == self.label:
            self.candidate, self.similarity = (None, 0), sim
        else:
            n = self.candidate[1] + 1 if self.candidate[0] == name else 1
            self.candidate = (name, n)
            if self.label is None or n >= self.hold:
                result.events.append({"event": "state", "state": name, "was": self.label,
                                      "similarity": round(sim, 4), "frame": result.frame, "t": round(result.t, 4)})
                self.label, self.similarity, self.candidate = name, sim, (None, 0)
                self.changes += 1
        result.state = {"label": self.label, "similarity": round(self.similarity, 4)}


class TeachStage:
    """What a run does with its taught sets (``teach.set``, ``teach.frame_set``)."""

    def __init__(self, relabel: Optional[Relabel], frame: Optional[FrameState], embedder: Embedder):
        self.relabel, self.frame, self.embedder = relabel, frame, embedder
        self.results = 0
        self.started = (embedder.embedded, embedder.ms)   # the sets' own build is not the run's cost

    def step(self, result, image: np.ndarray):
        self.results += 1
        if self.relabel is not None and result.task == "detect" and result.inferred:
            result.detections = self.relabel(result.detections, image, result.t)
        if self.frame is not None and result.inferred:
            self.frame(image, result)
        return result

    def status(self) -> dict:
        """For /status (and MQTT's status): the state, and what teaching has done."""
        out: Dict[str, object] = {"embedded": self.embedder.embedded, "model": self.embedder.name}
        if self.relabel is not None:
            out.update(set=str(self.relabel.watched.folder), labels=self.relabel.watched.set.labels,
                       margins=[round(self.relabel.margin(i), 4) for i in range(len(self.relabel.watched.set.labels))],
                       relabelled=self.relabel.relabelled,
                       suppressed=self.relabel.suppressed)
        if self.frame is not None:
            out.update(state=self.frame.label, states=self.frame.watched.set.labels,
                       similarity=round(self.frame.similarity, 4))
        return out

    def line(self) -> str:
        e = self.embedder
        n, ms = e.embedded - self.started[0], e.ms - self.started[1]
        each, per_result = (ms / n if n else 0.0), (ms / self.results if self.results else 0.0)
        parts = [f"taught ({e.name} embeddings): {n} embedded, {each:.1f} ms each, {per_result:.2f} ms per result"]
        if self.relabel is not None:
            parts.append(f"{self.relabel.relabelled} detections relabelled, {self.relabel.suppressed} suppressed")
        if self.frame is not None:
            parts.append(f"state {self.frame.label} ({self.frame.changes} changes)")
        return "  " + "; ".join(parts)


def open_teach(cfg, threads: int = 0,
               embedder_for: Optional[Callable[[str], Embedder]] = None) -> Optional[TeachStage]:
    """The run's teach stage (None without a taught set); UsageError (exit 2, one sentence) for
    a bad set, before anything else starts."""
    t = cfg.teach
    if not t.set and not t.frame_set:
        if t.region:
            raise UsageError("--teach-region needs --teach-frame SET (the set of states to classify the region into)")
        return None
    try:
        region = parse_region(t.region) if t.region else None
    except ValueError as exc:
        raise UsageError(f"teach.region: {exc}") from None
    folders = [f for f in (t.set, t.frame_set) if f]
    model = t.model or next((m for m in map(taught.recorded_model, folders) if m), None) or "v2"
    threads = threads or cfg.model.threads
    embedder = (embedder_for or (lambda name: Embedder(ensure(cfg, name), threads, cfg.model.runtime)))(model)
    relabel = frame = None
    if t.set:
        relabel = Relabel(Watched(t.set, model, embedder), t.margin, t.every_s, t.pad)
    if t.frame_set:
        watched = Watched(t.frame_set, model, embedder)
        if len(watched.set.labels) < 2:
            raise UsageError(f"the frame set {t.frame_set} has one label ({watched.set.labels[0]}): a state "
                             f"needs two or more (e.g. open/ and closed/)")
        frame = FrameState(watched, region, t.hold)
    return TeachStage(relabel, frame, embedder)
