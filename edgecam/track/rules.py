"""Counting rules: lines that count crossings and zones that count who enters and leaves.

Lines and zones are given in fractions of the frame (0..1, x right, y down) and look at one
point of each tracked box (its bottom-centre by default: where a person stands).

Direction across a line: turn the line's direction (first point → second) a quarter turn
counter-clockwise as seen on the picture; moving that way is ``in``, the other way ``out``.
So a line drawn top to bottom (``0.45,0,0.45,1``) counts left→right as ``in``; drawn
bottom to top, right→left; a line drawn left to right (``0,0.5,1,0.5``) counts upward
motion as ``in``.

A crossing counts once: an object's side of a line only changes when its point is clearly
past the line (more than BAND of the frame away), so a box that jitters on the line does
not count again, and the path since it was last clearly on the other side must pass through
the drawn segment (not its extension)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from edgecam.track.geometry import Point, inside, segments_cross, side

BAND = 0.01     # fraction of the frame's diagonal: closer than this to a line is "on" it
MAX_NAME = 40


def _fraction(text: str, what: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number between 0 and 1, not {str(text)[:20]!r}") from None
    if not (0.0 <= v <= 1.0) or math.isnan(v):
        raise ValueError(f"{what} must be between 0 and 1 (a fraction of the frame), not {v:g}")
    return v


def _name(value, default: str) -> str:
    name = str(value if value is not None else default).strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"a line or zone name must be 1 to {MAX_NAME} printable characters")
    return name


def parse_line(spec) -> str:
    """Check ``X1,Y1,X2,Y2[,NAME]`` (fractions); the spec itself comes back."""
    Line.parse(spec, 0)
    return str(spec)


def parse_zone(spec) -> dict:
    """Check ``{name: NAME, points: [[x, y], ...]}`` (fractions, 3 points or more)."""
    Zone.parse(spec, 0)
    return {"name": spec.get("name"), "points": [[float(x), float(y)] for x, y in spec["points"]]}


@dataclass
class Line:
    name: str
    p1: Point            # fractions of the frame
    p2: Point
    counts: Dict[str, Dict[str, int]] = field(default_factory=dict)   # label -> {"in": n, "out": n}

    @classmethod
    def parse(cls, spec, index: int) -> "Line":
        parts = [p.strip() for p in str(spec).split(",")]
        if len(parts) not in (4, 5):
            raise ValueError(f"a line is X1,Y1,X2,Y2[,NAME] in fractions of the frame, not {str(spec)[:40]!r}")
        x1, y1, x2, y2 = (_fraction(p, "a line's coordinate") for p in parts[:4])
        if (x1, y1) == (x2, y2):
            raise ValueError(f"a line needs two different points, not {str(spec)[:40]!r}")
        return cls(_name(parts[4] if len(parts) == 5 else None, f"line{index + 1}"), (x1, y1), (x2, y2))

    def total(self, direction: str) -> int:
        return sum(c.get(direction, 0) for c in self.counts.values())


@dataclass
class Zone:
    name: str
    points: List[Point]  # fractions of the frame
    entered: Dict[str, int] = field(default_factory=dict)    # label -> entries
    inside: Dict[int, float] = field(default_factory=dict)   # track id -> time it entered

    @classmethod
    def parse(cls, spec, index: int) -> "Zone":
        if not isinstance(spec, dict) or set(spec) - {"name", "points"} or "points" not in spec:
            raise ValueError("a zone is {name: NAME, points: [[x, y], [x, y], [x, y], ...]}")
        pts = spec["points"]
        if not isinstance(pts, list) or len(pts) < 3 or len(pts) > 64 or \
                not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pts):
            raise ValueError("a zone's points are 3 to 64 [x, y] pairs in fractions of the frame")
        points = [(_fraction(x, "a zone's coordinate"), _fraction(y, "a zone's coordinate")) for x, y in pts]
        return cls(_name(spec.get("name"), f"zone{index + 1}"), points)


@dataclass
class Crossing:
    """Where one track stands against one line: the side it was last clearly on, and where."""
    sign: float
    point: Point


class Rules:
    """Every line and zone, and each track's state against them; ``update`` gives the events."""

    def __init__(self, lines: Sequence[Line], zones: Sequence[Zone], size: Tuple[int, int]):
        self.lines, self.zones = list(lines), list(zones)
        self.w, self.h = size
        self.band = BAND
        self.last: Dict[Tuple[int, str], Crossing] = {}

    def frac(self, p: Point) -> Point:
        return (p[0] / self.w, p[1] / self.h) if self.w and self.h else p

    def update(self, tid: int, label: str, point_px: Point, t: float) -> List[dict]:
        """Events for track ``tid`` whose anchor is at ``point_px`` at time ``t``."""
        p = self.frac(point_px)
        events = [e for line in self.lines for e in self._line(line, tid, label, p)]
        for zone in self.zones:
            now_in = inside(zone.points, p)
            if now_in and tid not in zone.inside:
                zone.inside[tid] = t
                zone.entered[label] = zone.entered.get(label, 0) + 1
                events.append({"event": "enter", "zone": zone.name})
            elif not now_in and tid in zone.inside:
                events.append(self._leave(zone, tid, t))
        return events

    def _line(self, line: Line, tid: int, label: str, p: Point) -> List[dict]:
        # the side, scaled so that |s| is the distance in frame fractions (y scaled like x)
        length = math.hypot(line.p2[0] - line.p1[0], line.p2[1] - line.p1[1])
        s = side(line.p1, line.p2, p) / length
        if abs(s) <= self.band:
            return []                                   # on the line: wait until clearly past it
        key = (tid, line.name)
        before = self.last.get(key)
        self.last[key] = Crossing(s, p)
        if before is None or (before.sign > 0) == (s > 0):
            return []
        if not segments_cross(before.point, p, line.p1, line.p2):
            return []                                   # went around the end of the line
        direction = "in" if s < 0 else "out"
        per = line.counts.setdefault(label, {"in": 0, "out": 0})
        per[direction] += 1
        return [{"event": "cross", "line": line.name, "direction": direction}]

    def _leave(self, zone: Zone, tid: int, t: float) -> dict:
        since = zone.inside.pop(tid)
        return {"event": "leave", "zone": zone.name, "seconds": round(max(0.0, t - since), 3)}

    def set_lines(self, lines: Sequence[Line]) -> None:
        """New lines while running (the browser's line editing, SIGHUP): a line keeps its counts
        by name; where one moved, every object's side of it is learnt anew (no false crossing)."""
        old = {line.name: line for line in self.lines}
        for line in lines:
            before = old.get(line.name)
            if before is not None:
                line.counts = before.counts
                if (before.p1, before.p2) != (line.p1, line.p2):
                    self.last = {k: v for k, v in self.last.items() if k[1] != line.name}
        self.lines = list(lines)       # one assignment: the inference thread sees old or new

    def forget(self, tid: int, t: float) -> List[dict]:
        """A track is gone: it leaves every zone it was in."""
        for key in [k for k in self.last if k[0] == tid]:
            del self.last[key]
        return [self._leave(z, tid, t) for z in self.zones if tid in z.inside]

    def counts(self) -> dict:
        """Counts per line and zone, per label (for /status and the summary)."""
        out: dict = {}
        for line in self.lines:
            out[line.name] = {"in": line.total("in"), "out": line.total("out"), "by_label": line.counts}
        for zone in self.zones:
            out[zone.name] = {"entered": sum(zone.entered.values()), "inside": len(zone.inside),
                              "by_label": zone.entered}
        return out

    def texts(self) -> List[Tuple[str, List[Point], str]]:
        """What the overlay draws: (kind, points in pixels, caption) per line and zone. Where
        more than one label was counted on a line or zone, each non-zero figure is split by label,
        most first: ``gate: in 3 (car 2, person 1) out 0``; otherwise ``door: in 5 out 0``."""
        def split(per: Dict[str, int], several: bool) -> str:
            parts = sorted(((n, k) for k, n in per.items() if n), key=lambda nk: (-nk[0], nk[1]))
            return f" ({', '.join(f'{k} {n}' for n, k in parts)})" if several and parts else ""

        out = []
        for line in self.lines:
            pts = [(line.p1[0] * self.w, line.p1[1] * self.h), (line.p2[0] * self.w, line.p2[1] * self.h)]
            several = len([k for k, c in line.counts.items() if any(c.values())]) > 1
            ways = [f"{d} {line.total(d)}" + split({k: c.get(d, 0) for k, c in line.counts.items()}, several)
                    for d in ("in", "out")]
            out.append(("line", pts, f"{line.name}: {' '.join(ways)}"))
        for zone in self.zones:
            pts = [(x * self.w, y * self.h) for x, y in zone.points]
            several = len([k for k, n in zone.entered.items() if n]) > 1
            out.append(("zone", pts, f"{zone.name}: {len(zone.inside)} in, {sum(zone.entered.values())} entered"
                        + split(zone.entered, several)))
        return out


def build_rules(lines: Sequence[str], zones: Sequence[dict], size: Tuple[int, int]) -> Optional[Rules]:
    if not lines and not zones:
        return None
    return Rules([Line.parse(s, i) for i, s in enumerate(lines)],
                 [Zone.parse(z, i) for i, z in enumerate(zones)], size)
