"""Counts scored against the truth: a ground-truth file a person writes by hand in a few
minutes (YAML), and what a run reported (its events, and its JSON lines when there are any).

The truth file (every part but ``lines`` or ``zones`` or ``objects`` optional)::

    frames: 1394                   # the video's length (checks the windows below)
    labels: [person]               # count only these labels' events (default: all)
    lines:
      door:                        # a line of the run, by name
        at: 0.45,0,0.45,1          # where it is (edgecam eval adds it to the run it makes)
        in: 5                      # crossings in this direction ...
        out: [[120, 140]]          # ... or each with its frame window [first, last]
    zones:
      shelf:
        points: [[0.1, 0.5], [0.3, 0.5], [0.3, 1], [0.1, 1]]
        entered: 3                 # or windows, as crossings
        inside_at_end: 1
    objects:
      person: 6                    # distinct objects per label (the others: 0)
    presence:
      person: [[60, 197], [227, 450]]   # each object's frames: ids are matched to them

A crossing with a window matches a counted crossing of its line and direction whose frame
lies in the window (give or take ``tolerance`` frames); without windows, counted and true
numbers are compared. The count error is (missed + false) over the true crossings and
entries. Pure: no model, no files (edgecam/evaluate.py reads and runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, TypedDict

import numpy as np

from edgecam.errors import UsageError
from edgecam.track.rules import parse_line, parse_zone
from edgecam.track.tracker import assign

Window = Tuple[int, int]
MAX_ITEMS = 10000            # windows, objects, intervals: a hand-written file has far fewer


class TruthError(UsageError):
    """A ground-truth file that cannot be used (exit code 2)."""


@dataclass
class Tally:
    """One line's direction or one zone's entries: the truth against what was counted."""
    truth: int
    counted: int
    matched: int

    @property
    def missed(self) -> int:
        return self.truth - self.matched

    @property
    def false(self) -> int:
        return self.counted - self.matched

    def to_json(self) -> dict:
        return {"truth": self.truth, "counted": self.counted, "matched": self.matched,
                "missed": self.missed, "false": self.false}


@dataclass
class Truth:
    lines: Dict[str, dict] = field(default_factory=dict)      # name -> {"at": spec, "in": .., "out": ..}
    zones: Dict[str, dict] = field(default_factory=dict)      # name -> {"points", "entered", "inside_at_end"}
    objects: Optional[Dict[str, int]] = None
    presence: Dict[str, List[Window]] = field(default_factory=dict)
    labels: Tuple[str, ...] = ()
    frames: Optional[int] = None

    def line_specs(self) -> List[str]:
        """The lines the truth places (``X1,Y1,X2,Y2,NAME``), for a run made to be scored."""
        return [f"{v['at']},{k}" for k, v in self.lines.items() if v.get("at")]

    def zone_specs(self) -> List[dict]:
        return [{"name": k, "points": v["points"]} for k, v in self.zones.items() if v.get("points")]

    def windows(self) -> Iterable[Tuple[str, Window]]:
        """Every frame window in the file, with what it belongs to."""
        for name, spec in self.lines.items():
            for d in ("in", "out"):
                if isinstance(spec[d], list):
                    yield from ((f"line {name!r} {d}", w) for w in spec[d])
        for name, spec in self.zones.items():
            if isinstance(spec["entered"], list):
                yield from ((f"zone {name!r}", w) for w in spec["entered"])
        for label, ws in self.presence.items():
            yield from ((f"presence of {label!r}", w) for w in ws)

    def check_frames(self, frames: int) -> None:
        """TruthError when a window lies outside a video of ``frames`` frames."""
        for what, (a, b) in self.windows():
            if b >= frames:
                raise TruthError(f"the truth's {what} window [{a}, {b}] lies outside the video "
                                 f"(frames 0 to {frames - 1})")


def parse_truth(doc, shown: str) -> Truth:
    """A Truth from a parsed YAML document; TruthError (one sentence) when it is malformed."""
    if not isinstance(doc, dict) or not doc:
        raise TruthError(f"{shown} is not a ground-truth file: expected lines, zones or objects")
    unknown = set(doc) - {"video", "frames", "labels", "lines", "zones", "objects", "presence"}
    if unknown:
        raise TruthError(f"{shown}: unknown key {sorted(unknown)[0]!r} (known: video, frames, labels, "
                         "lines, zones, objects, presence)")
    t = Truth(frames=_count(doc.get("frames"), "frames") if doc.get("frames") is not None else None,
              labels=tuple(_names(doc.get("labels", []), "labels")))
    t.lines = {name: _line(name, spec) for name, spec in _section(doc, "lines").items()}
    t.zones = {name: _zone(name, spec) for name, spec in _section(doc, "zones").items()}
    if "objects" in doc:
        t.objects = {str(k): _count(v, f"objects {k!r}") for k, v in _section(doc, "objects").items()}
    t.presence = {str(k): _windows(v, f"presence of {k!r}") for k, v in _section(doc, "presence").items()}
    if not (t.lines or t.zones or t.objects is not None):
        raise TruthError(f"{shown} gives no lines, zones or objects to score")
    for label, ws in t.presence.items():
        if t.objects is not None and len(ws) != t.objects.get(label, 0):
            raise TruthError(f"{shown}: presence gives {len(ws)} intervals of {label!r} but objects says "
                             f"{t.objects.get(label, 0)}")
    if t.frames is not None:
        t.check_frames(t.frames)
    return t


def _section(doc: dict, key: str) -> dict:
    value = doc.get(key) or {}
    if not isinstance(value, dict) or len(value) > MAX_ITEMS:
        raise TruthError(f"the truth's {key!r} must be a mapping of names, as in `{key}: {{name: ...}}`")
    return value


def _count(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10 ** 9:
        raise TruthError(f"the truth's {what} must be a whole number of 0 or more, not {str(v)[:20]!r}")
    return v


def _names(v, what: str) -> List[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise TruthError(f"the truth's {what} must be a list of labels")
    return v


def _windows(v, what: str) -> List[Window]:
    if not isinstance(v, list) or len(v) > MAX_ITEMS:
        raise TruthError(f"the truth's {what} must be a list of [first, last] frame windows")
    out = []
    for w in v:
        if not (isinstance(w, list) and len(w) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                           for x in w) and 0 <= w[0] <= w[1]):
            raise TruthError(f"the truth's {what} has {str(w)[:30]!r}: a window is [first, last], "
                             "0 <= first <= last, in frames")
        out.append((w[0], w[1]))
    return out


def _crossings(v, what: str):
    return _windows(v, what) if isinstance(v, list) else _count(v, what)


def _line(name, spec) -> dict:
    if not isinstance(spec, dict) or set(spec) - {"at", "in", "out"}:
        raise TruthError(f"the truth's line {name!r} must be {{at: X1,Y1,X2,Y2, in: N, out: N}}")
    out = {"at": None, "in": _crossings(spec.get("in", 0), f"line {name!r} in"),
           "out": _crossings(spec.get("out", 0), f"line {name!r} out")}
    if spec.get("at") is not None:
        try:
            parse_line(f"{spec['at']},{name}")
        except ValueError as err:
            raise TruthError(f"the truth's line {name!r}: {err}") from None
        out["at"] = str(spec["at"])
    return out


def _zone(name, spec) -> dict:
    if not isinstance(spec, dict) or set(spec) - {"points", "entered", "inside_at_end"}:
        raise TruthError(f"the truth's zone {name!r} must be {{points: [...], entered: N, inside_at_end: N}}")
    out = {"points": None, "entered": _crossings(spec.get("entered", 0), f"zone {name!r} entered"),
           "inside_at_end": None if spec.get("inside_at_end") is None
           else _count(spec["inside_at_end"], f"zone {name!r} inside_at_end")}
    if spec.get("points") is not None:
        try:
            out["points"] = parse_zone({"name": str(name), "points": spec["points"]})["points"]
        except (ValueError, TypeError) as err:
            raise TruthError(f"the truth's zone {name!r}: {err}") from None
    return out


def match(truth, frames: Sequence[int], tolerance: int) -> Tally:
    """``truth`` (a number, or frame windows) against the frames of what was counted."""
    if not isinstance(truth, list):
        return Tally(truth, len(frames), min(truth, len(frames)))
    free = sorted(frames)
    matched = 0
    for a, b in sorted(truth, key=lambda w: w[1]):      # earliest-ending window first: greedy is optimal
        hit = next((f for f in free if a - tolerance <= f <= b + tolerance), None)
        if hit is not None:
            free.remove(hit)
            matched += 1
    return Tally(len(truth), len(frames), matched)


@dataclass
class Objects:
    """One label's objects: true ones against the run's ids."""
    truth: int
    ids: int
    matched: int          # true objects that got at least one id
    fragments: int        # extra ids on true objects (one object seen as two or more)

    @property
    def missed(self) -> int:
        return self.truth - self.matched

    @property
    def false(self) -> int:
        return self.ids - self.matched - self.fragments

    def to_json(self) -> dict:
        return {"truth": self.truth, "ids": self.ids, "matched": self.matched, "missed": self.missed,
                "fragments": self.fragments, "false": self.false}


def objects(truth: int, spans: List[Window], presence: Optional[List[Window]]) -> Objects:
    """A label's ids (each with the frames it was seen over) against ``truth`` objects. With
    ``presence``: ids and true intervals are paired one to one by their overlap in time (IoU,
    the best sum); an id left over that overlaps an interval is a fragment of it, else false."""
    if not presence:
        matched = min(truth, len(spans))
        return Objects(truth, len(spans), matched, 0 if truth == 0 else len(spans) - matched)
    overlap = np.array([[_iou(s, p) for p in presence] for s in spans]).reshape(len(spans), len(presence))
    pairs = assign(overlap, 1e-9)
    paired = {r for r, _ in pairs}
    fragments = sum(1 for r in range(len(spans)) if r not in paired and overlap[r].max(initial=0) > 0)
    return Objects(truth, len(spans), len(pairs), fragments)


def _iou(a: Window, b: Window) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return max(0, inter) / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


class ZoneScore(TypedDict):
    entered: Tally
    inside_at_end: Dict[str, Optional[int]]     # truth (None: not in the truth file), counted


@dataclass
class Report:
    lines: Dict[str, Dict[str, Tally]]
    zones: Dict[str, ZoneScore]
    objects: Dict[str, Objects]

    @property
    def error(self) -> Tuple[int, int]:
        """(missed + false, true crossings and entries): the overall count error."""
        tallies = [t for per in self.lines.values() for t in per.values()] + \
                  [z["entered"] for z in self.zones.values()]
        return sum(t.missed + t.false for t in tallies), sum(t.truth for t in tallies)

    def to_json(self) -> dict:
        wrong, total = self.error
        return {"lines": {k: {d: t.to_json() for d, t in v.items()} for k, v in self.lines.items()},
                "zones": {k: {"entered": v["entered"].to_json(), "inside_at_end": v["inside_at_end"]}
                          for k, v in self.zones.items()},
                "objects": {k: v.to_json() for k, v in self.objects.items()},
                "count_error": wrong, "truth_total": total,
                "count_error_rate": round(wrong / total, 4) if total else 0.0}

    def format(self) -> str:
        rows = []
        for name, per in self.lines.items():
            for d, t in per.items():
                rows.append(f"  line {name} {d}: " + _tally(t))
        for name, z in self.zones.items():
            inside = z["inside_at_end"]
            end = ("" if inside["truth"] is None
                   else f"; inside at the end: truth {inside['truth']}, counted {inside['counted']}")
            rows.append(f"  zone {name} entered: " + _tally(z["entered"]) + end)
        for label, o in self.objects.items():
            rows.append(f"  objects {label}: truth {o.truth}, ids {o.ids}, matched {o.matched}, missed {o.missed}, "
                        f"fragments {o.fragments}, false {o.false}")
        wrong, total = self.error
        rate = f" ({100 * wrong / total:.1f}%)" if total else ""
        rows.append(f"  count error: {wrong} of {total} true crossings and entries{rate}")
        return "\n".join(rows)


def _tally(t: Tally) -> str:
    return f"truth {t.truth}, counted {t.counted}, matched {t.matched}, missed {t.missed}, false {t.false}"


def score(truth: Truth, events: Sequence[dict], spans: Dict[int, Window], tolerance: int = 15) -> Report:
    """Score a run's ``events`` (and each id's frames, ``spans``) against ``truth``."""
    events = [e for e in events if not truth.labels or e.get("label") in truth.labels]
    lines = {}
    for name, spec in truth.lines.items():
        lines[name] = {d: match(spec[d], [e["frame"] for e in events if e["event"] == "cross"
                                          and e.get("line") == name and e.get("direction") == d], tolerance)
                       for d in ("in", "out")}
    zones: Dict[str, ZoneScore] = {}
    for name, spec in truth.zones.items():
        enters = [e["frame"] for e in events if e["event"] == "enter" and e.get("zone") == name]
        leaves = sum(1 for e in events if e["event"] == "leave" and e.get("zone") == name)
        zones[name] = {"entered": match(spec["entered"], enters, tolerance),
                       "inside_at_end": {"truth": spec["inside_at_end"], "counted": len(enters) - leaves}}
    return Report(lines, zones, _objects(truth, events, spans))


def _objects(truth: Truth, events: Sequence[dict], spans: Dict[int, Window]) -> Dict[str, Objects]:
    if truth.objects is None:
        return {}
    label_of: Dict[int, str] = {}
    for e in events:                                  # the last word on each id: its final label
        if e.get("id") is not None:
            label_of[e["id"]] = e["label"]
    out = {}
    for label in sorted(set(truth.objects) | set(label_of.values())):
        ids = [i for i, lab in label_of.items() if lab == label]
        out[label] = objects(truth.objects.get(label, 0), [spans.get(i, (0, 0)) for i in ids],
                             truth.presence.get(label))
    return out


def frame_spans(records: Iterable[dict]) -> Tuple[Dict[int, Window], int]:
    """Each id's first and last frame from a run's JSON lines (the frames it was shown on),
    and the number of frames."""
    spans: Dict[int, Window] = {}
    n = 0
    for n, rec in enumerate(records, start=1):   # noqa: B007 (read after the loop: the count)
        for d in rec.get("detections", ()):
            i = d.get("id") if isinstance(d, dict) else None
            if i is not None:
                spans[i] = (spans.get(i, (rec["frame"],))[0], rec["frame"])
    return spans, n


def spans_from(events: Sequence[dict], last_frame: int) -> Dict[int, Window]:
    """Each id's frames from its events alone: ``new`` to ``lost``, or to the end."""
    spans: Dict[int, Window] = {}
    for e in events:
        i = e.get("id")
        if i is None:
            continue
        if e["event"] == "new":
            spans[i] = (e["frame"], last_frame)
        elif e["event"] == "lost" and i in spans:
            spans[i] = (spans[i][0], e["frame"])
    return spans
