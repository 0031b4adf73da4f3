"""The tracking stage, between postprocess and the sinks: filters a result's detections,
tracks them (ids), applies the hysteresis, the lines and the zones, and puts the events on
the result. Called from one thread, in frame order (file mode's main thread, live mode's
inference thread); ``predicted`` may be called from another (the live display)."""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Set, Tuple

from edgecam.model.postprocess import Detection
from edgecam.track.filters import DetectionFilter, shown
from edgecam.track.geometry import anchor
from edgecam.track.rules import Line, Rules, build_rules
from edgecam.track.tracker import Motion, Track, Tracker


def tracking_on(cfg, task: str, still: bool) -> bool:
    """``track.enabled`` (null: on for a detection model on video or a camera)."""
    if task != "detect":
        return False
    return (not still) if cfg.track.enabled is None else bool(cfg.track.enabled)


class TrackStage:
    def __init__(self, cfg, size: Tuple[int, int]):
        f, t = cfg.filters, cfg.track
        self.cfg = cfg
        self.filter = DetectionFilter(f.allow, f.deny, f.min_score, f.min_area, f.max_area, size)
        self.n = f.show_after
        self.tracker = Tracker(t.iou, t.max_missed, t.min_hits, window=max(f.show_after, f.of_last))
        self.rules: Optional[Rules] = build_rules(cfg.rules.lines, cfg.rules.zones, size)
        self.size, self.line_specs = size, list(cfg.rules.lines)
        self.anchor = cfg.rules.anchor
        self.objects: Dict[str, Set[int]] = {}
        self.view: Tuple[Tuple[Detection, Motion], ...] = ()

    def attach(self, model) -> None:
        """Let ``model`` keep detections down to ``track.low`` (the tracker's second stage)."""
        model.floor = self.cfg.track.low

    def step(self, result, high: float):
        """``result`` with its detections tracked (ids, only the objects shown) and its events."""
        if not result.inferred:
            return self.coast(result)
        update = self.tracker.update(self.filter(result.detections), result.t, high)
        events: List[dict] = []
        out: List[Detection] = []
        view = []
        for tr, d in update.matched:
            if tr.id is None or not shown(tr.seen, self.n):
                continue
            det = replace(d, id=tr.id)
            out.append(det)
            view.append((det, _copy(tr.motion)))
            if not tr.shown:
                tr.shown = True
                self.objects.setdefault(tr.label, set()).add(tr.id)
                events.append(self._event("new", tr, result))
            if self.rules is not None:
                point = anchor(d.box, self.anchor)
                events += [self._event(e, tr, result) for e in self.rules.update(tr.id, tr.label, point, result.t)]
        for tr in update.lost:
            if tr.shown:
                leave = self.rules.forget(tr.id, result.t) if self.rules is not None else []
                events += [self._event(e, tr, result) for e in leave] + [self._event("lost", tr, result)]
        result.detections, result.events = out, events
        self.view = tuple(view)
        return result

    def coast(self, result):
        """A frame the model skipped: the objects shown last, where their motion puts them now."""
        result.detections = self.predicted(result.t)
        return result

    def predicted(self, t: float) -> List[Detection]:
        """The objects shown at the last inference, at their predicted place at time ``t``."""
        return [replace(d, box=m.at(t)) for d, m in self.view]

    @staticmethod
    def _event(what, tr: Track, result) -> dict:
        e = {"event": what} if isinstance(what, str) else dict(what)
        e.update({"id": tr.id, "label": tr.label, "score": round(tr.score, 4), "frame": result.frame,
                  "t": round(result.t, 4), "box": [round(v, 1) for v in tr.box]})
        return e

    def set_lines(self, specs: Sequence[str]) -> None:
        """The counting lines, changed while running (``X1,Y1,X2,Y2[,NAME]`` each)."""
        lines = [Line.parse(spec, i) for i, spec in enumerate(specs)]
        if self.rules is None:
            self.rules = Rules(lines, [], self.size)
        else:
            self.rules.set_lines(lines)
        self.line_specs = list(specs)

    def counts(self) -> dict:
        return self.rules.counts() if self.rules is not None else {}

    def objects_per_label(self) -> Dict[str, int]:
        return {label: len(ids) for label, ids in sorted(self.objects.items())}

    def status(self) -> dict:
        """For the browser's /status."""
        return {"objects": self.objects_per_label(), "tracks": len(self.view), "counts": self.counts(),
                "lines": list(self.line_specs)}

    def scene(self) -> Sequence:
        """What the overlay draws besides the boxes: lines and zones with their counts."""
        return self.rules.texts() if self.rules is not None else ()


def _copy(m: Motion) -> Motion:
    return Motion(m.last.copy(), m.t, m.rate.copy())
