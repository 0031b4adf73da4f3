"""Counting rules: lines that count crossings and zones that count who enters and leaves.

Lines and zones are given in fractions of the frame (0..1, x right, y down) and look at one
point of each tracked box (its bottom-centre by default: where a person stands).

Direction across a line: turn the line's direction (first point → second) a quarter turn
counter-clockwise as seen on the picture; moving that way is ``in``, the other way ``out``.
So a line drawn top to bottom (``0.45,0,0.45,1``) counts left→right as ``in``; drawn
bottom to top, right→left; a line drawn left to right (``0,0.5,1,0.5``) counts upward
motion as ``in``.

A crossing counts once: an object's side of a line only changes when its point is clearly
past the line, so a box that jitters on the line does not count again, and the path since it
was last clearly on the other side must pass through the drawn segment (not its extension).
"Clearly past" is more than BAND of the frame away; to change sides, also more than BOX_BAND
of the box's own extent across the line: a box's edges jitter in proportion to its size (SSD's
box of a person half out of the picture jumps by a fifth of its height from one frame to the
next), and a fixed band let such a box cross one line 4 times in 5 frames. The side an object
is first seen on needs only BAND: a person who appears a step from the line and crosses it 3
frames later is counted.

A zone is entered (left) once a point has been inside (outside) it ``inertia`` times in a row,
as of the first of them (``rules.inertia``; Frigate's zone inertia, 3 there too): a box that
jumps out of place for a frame or two, as SSD's box of a bottle being put down does, is not a
leave and a new entry.

``observe`` finds what a point's move does (crossings, entries, exits) without counting it;
``record`` counts an event. The tracking stage observes every track from its first detection
and records a tentative track's events once the track is confirmed, with the frames where
they happened (an object confirmed late, already past a line, is still counted)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from edgecam.track.geometry import Point, inside, nearest_edge, segments_cross, side

BAND = 0.01     # fraction of the frame: closer than this to a line is "on" it
BOX_BAND = 0.15  # ... or closer than this share of the box's extent across the line
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
    inside: Dict[int, float] = field(default_factory=dict)   # track -> time it entered (counted objects)

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
    """Where one track stands against one line: the side it was last clearly on (0: it was
    first seen on the line), and where; ``reached``: when it first got to the other side, while
    not yet clearly past it (first seen on the line: when it got to the side it is on now)."""
    sign: float
    point: Point
    reached: object = None
    now: float = 0.0          # first seen on the line: the side of its last point


class Rules:
    """Every line and zone, and each track's state against them: ``observe`` gives the events
    a move makes, ``record`` counts them (``update`` does both)."""

    def __init__(self, lines: Sequence[Line], zones: Sequence[Zone], size: Tuple[int, int], inertia: int = 1):
        self.lines, self.zones = list(lines), list(zones)
        self.w, self.h = size
        self.band = BAND
        self.inertia = inertia
        self.last: Dict[Tuple[int, str], Crossing] = {}
        self.within: Dict[Tuple[int, str], float] = {}    # (track, zone) -> when its point went in
        self.turning: Dict[Tuple[int, str], list] = {}    # (track, zone) -> [points in a row, t, when] the other way

    def frac(self, p: Point) -> Point:
        return (p[0] / self.w, p[1] / self.h) if self.w and self.h else p

    def update(self, tid: int, label: str, point_px: Point, t: float, box=None) -> List[dict]:
        """Events for track ``tid`` whose anchor is at ``point_px`` at time ``t``, counted."""
        events = self.observe(tid, point_px, t, box)
        for e in events:
            e.pop("when")
        return [self.record(tid, label, e) for e in events]

    def observe(self, key: int, point_px: Point, t: float, box=None, when=None) -> List[dict]:
        """What track ``key``'s anchor moving to ``point_px`` at ``t`` does (not counted yet).
        ``box`` (pixels), when given, widens the band by the box's jitter. Each event says
        ``when`` it happened: the ``when`` given with this point (default: ``t``), or for a
        crossing, the one given with the first point on the new side."""
        p, when = self.frac(point_px), t if when is None else when
        events = [e for line in self.lines for e in self._line(line, key, p, box, when)]
        for zone in self.zones:
            k = (key, zone.name)
            if inside(zone.points, p) == (k in self.within) or self._near_edge(zone, k, p, box):
                self.turning.pop(k, None)
                continue
            turn = self.turning.setdefault(k, [0, t, when])   # the first point the other way
            turn[0] += 1
            if turn[0] < self.inertia:
                continue                        # not yet: a box that jumps for a frame or two
            del self.turning[k]
            if k in self.within:
                events.append(dict(self._leave(zone, key, turn[1]), when=turn[2]))
            else:
                self.within[k] = turn[1]
                events.append({"event": "enter", "zone": zone.name, "when": turn[2]})
        return events

    def record(self, key: int, label: str, e: dict) -> dict:
        """Count event ``e`` of track ``key`` (now shown as ``label``); ``e`` comes back."""
        if e["event"] == "cross":
            line = next((x for x in self.lines if x.name == e["line"]), None)
            if line is not None:
                per = line.counts.setdefault(label, {"in": 0, "out": 0})
                per[e["direction"]] += 1
        zone = next((z for z in self.zones if z.name == e.get("zone")), None)
        if zone is not None and e["event"] == "enter":
            zone.entered[label] = zone.entered.get(label, 0) + 1
            zone.inside[key] = e.get("t", 0.0)
        elif zone is not None and e["event"] == "leave":
            zone.inside.pop(key, None)
        return e

    def _band(self, line: Line, length: float, box) -> float:
        return self._edge_band(line.p1, line.p2, length, box)

    def _edge_band(self, p1: Point, p2: Point, length: float, box) -> float:
        """How far past the line or edge p1-p2 a point of ``box`` must be to have clearly gone."""
        if box is None or not length:
            return self.band
        x1, y1, x2, y2 = box
        nx, ny = (p2[1] - p1[1]) / length, (p2[0] - p1[0]) / length
        extent = abs(nx) * (x2 - x1) / max(self.w, 1) + abs(ny) * (y2 - y1) / max(self.h, 1)
        return max(self.band, BOX_BAND * extent)

    def _near_edge(self, zone: Zone, k, p: Point, box) -> bool:
        """A track inside ``zone`` whose anchor is outside it but within the jitter band of its
        edge has not clearly left: a box that stretches for a frame or two (a hand that takes
        a bottle, measured) would otherwise leave and enter again. Entering needs no band."""
        if k not in self.within:
            return False
        d, a, b = nearest_edge(zone.points, p)
        return d <= self._edge_band(a, b, math.hypot(b[0] - a[0], b[1] - a[1]), box)

    def _line(self, line: Line, key: int, p: Point, box, when) -> List[dict]:
        # the side, scaled so that |s| is the distance in frame fractions (y scaled like x)
        length = math.hypot(line.p2[0] - line.p1[0], line.p2[1] - line.p1[1])
        s = side(line.p1, line.p2, p) / length
        k = (key, line.name)
        before = self.last.get(k)
        if before is None or before.sign == 0:
            return self._first(line, k, before, s, p, self._band(line, length, box), when)
        turned = (before.sign > 0) != (s > 0)
        before.reached = (before.reached or when) if turned else None
        if abs(s) <= self.band or turned and abs(s) <= self._band(line, length, box):
            return []              # on the line, or on a side it has not clearly reached: wait
        self.last[k] = Crossing(s, p)
        if not turned:
            return []
        if not segments_cross(before.point, p, line.p1, line.p2):
            return []                                   # went around the end of the line
        return [_cross(line, s, before.reached)]

    def _first(self, line: Line, k, before: Optional[Crossing], s: float, p: Point, band: float,
               when) -> List[dict]:
        """A track's first points against a line. Seen first within its jitter band of the
        drawn segment, it is on the line: where it then goes clearly is a crossing (a car SSD
        first finds on the gate's line, driving through it). Seen first clearly on one side,
        that is its side."""
        if before is None:
            if abs(s) <= band and _along(line, p):
                self.last[k] = Crossing(0.0, p, when, s)
            elif abs(s) > self.band:
                self.last[k] = Crossing(s, p)
            return []
        if (s > 0) != (before.now > 0):
            before.reached, before.now = when, s
        if abs(s) <= band:
            return []
        self.last[k] = Crossing(s, p)
        return [_cross(line, s, before.reached)]

    def _leave(self, zone: Zone, key: int, t: float) -> dict:
        since = self.within.pop((key, zone.name))
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

    def set_zones(self, zones: Sequence[Zone]) -> None:
        """New zones while running: a zone keeps its entries by name, and who is inside while
        its points stay; a moved zone's insiders are learnt anew (they enter it again)."""
        old = {zone.name: zone for zone in self.zones}
        kept = set()
        for zone in zones:
            before = old.get(zone.name)
            if before is not None:
                zone.entered = before.entered
                if before.points == zone.points:
                    zone.inside = before.inside
                    kept.add(zone.name)
        self.within = {k: v for k, v in self.within.items() if k[1] in kept}
        self.turning = {k: v for k, v in self.turning.items() if k[1] in kept}
        self.zones = list(zones)       # one assignment: the inference thread sees old or new

    def forget(self, key: int, t: float) -> List[dict]:
        """A track is gone: it leaves every zone it was in (not counted yet: see record)."""
        for k in [k for k in self.last if k[0] == key]:
            del self.last[k]
        for k in [k for k in self.turning if k[0] == key]:
            del self.turning[k]
        return [self._leave(z, key, t) for z in self.zones if (key, z.name) in self.within]

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


def _cross(line: Line, s: float, when) -> dict:
    return {"event": "cross", "line": line.name, "direction": "in" if s < 0 else "out", "when": when}


def _along(line: Line, p: Point) -> bool:
    """Whether ``p`` lies beside the drawn segment (not beyond its ends)."""
    dx, dy = line.p2[0] - line.p1[0], line.p2[1] - line.p1[1]
    u = ((p[0] - line.p1[0]) * dx + (p[1] - line.p1[1]) * dy) / (dx * dx + dy * dy)
    return 0.0 <= u <= 1.0


def build_rules(lines: Sequence[str], zones: Sequence[dict], size: Tuple[int, int],
                inertia: int = 1) -> Optional[Rules]:
    if not lines and not zones:
        return None
    return Rules([Line.parse(s, i) for i, s in enumerate(lines)],
                 [Zone.parse(z, i) for i, z in enumerate(zones)], size, inertia)
