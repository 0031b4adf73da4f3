"""The tracking stage, between postprocess and the sinks: filters a result's detections,
tracks them (ids), applies the hysteresis, the lines and the zones, and puts the events on
the result. Called from one thread, in frame order (file mode's main thread, live mode's
inference thread); ``predicted`` may be called from another (the live display)."""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple

from edgecam.model.postprocess import Detection
from edgecam.track.filters import DetectionFilter, shown
from edgecam.track.geometry import anchor
from edgecam.track.rules import Line, Rules, Zone, build_rules
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
        # labels are filtered on what a track is called (its vote), the rest on each detection
        self.filter = DetectionFilter((), (), f.min_score, f.min_area, f.max_area, size)
        self.allow, self.deny = set(f.allow), set(f.deny)
        self.n = f.show_after
        self.tracker = Tracker(t.iou, t.max_missed, t.min_hits, window=max(f.show_after, f.of_last))
        self.rules: Optional[Rules] = build_rules(cfg.rules.lines, cfg.rules.zones, size, cfg.rules.inertia)
        self.size, self.line_specs, self.zone_specs = size, list(cfg.rules.lines), list(cfg.rules.zones)
        self.anchor = cfg.rules.anchor
        self.objects: Dict[str, int] = {}         # objects shown since the start, per label
        self.counted: Dict[int, str] = {}         # shown track (key) -> the label it is counted under
        self.view: Tuple[Tuple[Detection, Motion], ...] = ()

    @property
    def floor(self) -> float:
        """The lowest score the model should keep (passed with each inference): ``track.low``,
        for the tracker's second stage."""
        return self.cfg.track.low

    def step(self, result, high: float):
        """``result`` with its detections tracked (ids, only the objects shown) and its events."""
        if not result.inferred:
            return self.coast(result)
        update = self.tracker.update(self.filter(result.detections), result.t, high)
        events: List[dict] = []
        out: List[Detection] = []
        view = []
        for tr, d in update.matched:
            self._observe(tr, d, result)
            if tr.id is None or not shown(tr.seen, self.n) or not self._wanted(tr.label):
                continue
            det = replace(d, id=tr.id, label=tr.label, class_id=tr.class_id)
            out.append(det)
            view.append((det, _copy(tr.motion)))
            events += self._show(tr, result)
        for tr in update.lost:
            if self.rules is not None:
                tr.pending.extend((e, _stamp(tr, result)) for e in self.rules.forget(tr.key, result.t))
            if tr.shown:
                events += self._flush(tr) + [self._event({"event": "lost"}, tr, result)]
                del self.counted[tr.key]
        result.detections, result.events = out, result.events + events   # (a taught state's event first)
        self.view = tuple(view)
        return result

    def _observe(self, tr: Track, d: Detection, result) -> None:
        """What the track's move does to the lines and zones, kept until it can be sent."""
        if self.rules is not None:
            point = anchor(d.box, self.anchor)
            events = self.rules.observe(tr.key, point, result.t, d.box, when=_stamp(tr, result))
            tr.pending.extend((e, e.pop("when")) for e in events)

    def _wanted(self, label: str) -> bool:
        """filters.allow / deny, on the label a track is called (not each detection's)."""
        return (not self.allow or label in self.allow) and label not in self.deny

    def _show(self, tr: Track, result) -> List[dict]:
        """A confirmed track shown on this result: "new" the first time, then what it did
        (as a tentative track too), counted under the label it has now."""
        events = []
        if not tr.shown:
            tr.shown = True
            events.append(self._event({"event": "new"}, tr, result))
        label = self.counted.get(tr.key)
        if label != tr.label:                      # first shown, or its vote changed its label
            if label is not None:
                self.objects[label] -= 1
            self.objects[tr.label] = self.objects.get(tr.label, 0) + 1
            self.counted[tr.key] = tr.label
        return events + self._flush(tr)

    def _flush(self, tr: Track) -> List[dict]:
        out = []
        while tr.pending:
            e, stamp = tr.pending.popleft()
            if self.rules is not None:
                self.rules.record(tr.key, tr.label, dict(e, t=stamp["t"]))
            out.append({**e, "id": tr.id, "label": tr.label, **_taught(tr), **stamp})
        return out

    def coast(self, result):
        """A frame the model skipped: the objects shown last, where their motion puts them now."""
        result.detections = self.predicted(result.t)
        return result

    def predicted(self, t: float) -> List[Detection]:
        """The objects shown at the last inference, at their predicted place at time ``t``."""
        return [replace(d, box=m.at(t)) for d, m in self.view]

    @staticmethod
    def _event(what: dict, tr: Track, result) -> dict:
        return {**what, "id": tr.id, "label": tr.label, **_taught(tr), **_stamp(tr, result)}

    def set_lines(self, specs: Sequence[str]) -> None:
        """The counting lines, changed while running (``X1,Y1,X2,Y2[,NAME]`` each)."""
        lines = [Line.parse(spec, i) for i, spec in enumerate(specs)]
        if self.rules is None:
            self.rules = Rules(lines, [], self.size, self.cfg.rules.inertia)
        else:
            self.rules.set_lines(lines)
        self.line_specs = list(specs)

    def set_zones(self, specs: Sequence[dict]) -> None:
        """The zones, changed while running (``{name, points}`` each); entries kept by name."""
        zones = [Zone.parse(spec, i) for i, spec in enumerate(specs)]
        if self.rules is None:
            self.rules = Rules([], zones, self.size, self.cfg.rules.inertia)
        else:
            self.rules.set_zones(zones)
        self.zone_specs = list(specs)

    def counts(self) -> dict:
        return self.rules.counts() if self.rules is not None else {}

    def objects_per_label(self) -> Dict[str, int]:
        return {label: n for label, n in sorted(self.objects.items()) if n}

    def in_view(self) -> Dict[str, int]:
        """Objects shown at the last inference, per label."""
        out: Dict[str, int] = {}
        for d, _ in self.view:
            out[d.label] = out.get(d.label, 0) + 1
        return dict(sorted(out.items()))

    def status(self) -> dict:
        """For the browser's /status: objects in view now, and seen since the start (per label)."""
        return {"in_view": self.in_view(), "seen": self.objects_per_label(), "tracks": len(self.view),
                "counts": self.counts(), "lines": list(self.line_specs), "zones": list(self.zone_specs)}

    def scene(self) -> Sequence:
        """What the overlay draws besides the boxes: lines and zones with their counts."""
        return self.rules.texts() if self.rules is not None else ()


def _stamp(tr: Track, result) -> dict:
    """Where and when an event of track ``tr`` happens: on this result, at its box."""
    return {"score": round(tr.score, 4), "frame": result.frame, "t": round(result.t, 4),
            "box": [round(v, 1) for v in tr.box]}


def _taught(tr: Track) -> dict:
    """A taught label's event names the detector's label beside it (edgecam/teach/)."""
    return {"detected_as": tr.taught[tr.label]} if tr.label in tr.taught else {}


def _copy(m: Motion) -> Motion:
    return Motion(m.last.copy(), m.t, m.rate.copy())
