"""Where the overlay's pieces go, as pixel rectangles (x1, y1, x2, y2; the far edges
excluded): the heads-up display in a free corner, each line's or zone's caption where no
object's label is, and the arrow that shows which side of a line is ``in``. Pure functions on
sizes and points: edgecam/sinks/overlay.py measures the text and draws.

The rule, everywhere: a piece has a short list of places in order of preference; it takes
the first that touches nothing it must keep clear of, and where every place is taken, the
one covered least (the first of those, so that it does not jump between equals). Object
labels are drawn last, so where nothing was free a label is on top, never under."""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

Rect = Tuple[int, int, int, int]
Point = Tuple[float, float]


def overlap(a: Rect, b: Rect) -> int:
    """The area two rectangles share (0 when they only touch)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0


def covered(r: Rect, others: Sequence[Rect]) -> int:
    return sum(overlap(r, o) for o in others)


def first_free(candidates: Sequence[Rect], avoid: Sequence[Rect]) -> Rect:
    """The first candidate that overlaps nothing in ``avoid``, else the one covered least."""
    best, least = candidates[0], None
    for r in candidates:
        area = covered(r, avoid)
        if area == 0:
            return r
        if least is None or area < least:
            best, least = r, area
    return best


def union(a: Rect, b: Rect) -> Rect:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def fit(r: Rect, size: Tuple[int, int]) -> Rect:
    """``r`` moved (not shrunk) to lie inside a frame of ``size`` (w, h), as far as it fits."""
    w, h = size
    dx = max(0, -r[0]) or min(0, w - r[2])
    dy = max(0, -r[1]) or min(0, h - r[3])
    return r[0] + dx, r[1] + dy, r[2] + dx, r[3] + dy


def corners(size: Tuple[int, int], wh: Tuple[int, int], margin: int) -> List[Rect]:
    """A ``wh`` block in each corner of the frame: top-left, top-right, bottom-left, bottom-right
    (the HUD's places, in that order: top-left is where it has always been)."""
    (w, h), (bw, bh) = size, wh
    xs, ys = (margin, w - margin - bw), (margin, h - margin - bh)
    return [fit((x, y, x + bw, y + bh), size) for y in ys for x in xs]


def in_normal(p1: Point, p2: Point) -> Point:
    """The unit vector to a line's ``in`` side: its direction p1→p2 turned a quarter turn
    counter-clockwise as seen on the picture (y down), the convention of
    edgecam/track/rules.py; geometry.side(p1, p2, p1 + n) is negative there, as ``in`` is."""
    dx, dy = p2[0] - p1[0], p2[1] - p1[1]
    length = math.hypot(dx, dy) or 1.0
    return dy / length, -dx / length


def beside(p: Point, n: Point, wh: Tuple[int, int], gap: float) -> Rect:
    """A ``wh`` block next to point ``p`` in direction ``n`` (a unit vector), ``gap`` pixels
    clear of it: the block's centre moves out by its own half-extent along ``n`` plus the gap."""
    bw, bh = wh
    reach = (abs(n[0]) * bw + abs(n[1]) * bh) / 2 + gap
    cx, cy = p[0] + n[0] * reach, p[1] + n[1] * reach
    x, y = int(round(cx - bw / 2)), int(round(cy - bh / 2))
    return x, y, x + bw, y + bh


def arrow(p1: Point, p2: Point, length: float) -> Tuple[Point, Point]:
    """A line's ``in`` arrow: from the middle of the line, ``length`` pixels to its in side."""
    n = in_normal(p1, p2)
    mid = ((p1[0] + p2[0]) / 2, (p1[1] + p2[1]) / 2)
    return mid, (mid[0] + n[0] * length, mid[1] + n[1] * length)


def line_spots(p1: Point, p2: Point, wh: Tuple[int, int], gap: float, size: Tuple[int, int]) -> List[Rect]:
    """Places for a line's caption: beside its first point, its second, its middle; at each
    on the in side first, then the out side (the in side at the first point is where a caption
    of a line drawn top to bottom always sat: right of its top end)."""
    n = in_normal(p1, p2)
    out = []
    for t in (0.0, 1.0, 0.5):
        p = (p1[0] + (p2[0] - p1[0]) * t, p1[1] + (p2[1] - p1[1]) * t)
        out += [fit(beside(p, (s * n[0], s * n[1]), wh, gap), size) for s in (1, -1)]
    return out


def zone_spots(points: Sequence[Point], wh: Tuple[int, int], size: Tuple[int, int]) -> List[Rect]:
    """Places for a zone's caption: inside the corners of the zone's bounding box (top-left
    first, where it always was), just outside its top and bottom edges, then on its centre."""
    (bw, bh) = wh
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x1, y1, x2, y2 = int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys))
    cx, cy = (x1 + x2 - bw) // 2, (y1 + y2 - bh) // 2
    spots = [(x1, y1), (x2 - bw, y1), (x1, y2 - bh), (x2 - bw, y2 - bh), (x1, y1 - bh), (x1, y2), (cx, cy)]
    return [fit((x, y, x + bw, y + bh), size) for x, y in spots]
