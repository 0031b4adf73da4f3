"""Box and line geometry for the tracker and the counting rules: pure functions on plain
tuples and numpy arrays. Boxes are (x1, y1, x2, y2) in frame pixels; points are (x, y)."""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

Point = Tuple[float, float]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N x 4) with every box in ``b`` (M x 4): an N x M array."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a = np.asarray(a, np.float64)[:, None, :]
    b = np.asarray(b, np.float64)[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    return float(iou_matrix(np.array([a]), np.array([b]))[0, 0])


ANCHORS = ("bottom", "center", "top")


def anchor(box: Sequence[float], where: str = "bottom") -> Point:
    """The point of a box that lines and zones look at: its bottom-centre (where a person
    stands), its centre or its top-centre."""
    x1, y1, x2, y2 = box
    y = {"bottom": y2, "center": (y1 + y2) / 2, "top": y1}[where]
    return ((x1 + x2) / 2, y)


def side(p1: Point, p2: Point, p: Point) -> float:
    """Positive on one side of the line p1→p2, negative on the other (the z of the cross
    product in picture coordinates, y down); its magnitude is the distance times |p2 - p1|."""
    return (p2[0] - p1[0]) * (p[1] - p1[1]) - (p2[1] - p1[1]) * (p[0] - p1[0])


def segments_cross(a1: Point, a2: Point, b1: Point, b2: Point) -> bool:
    """Whether segment a1-a2 meets segment b1-b2 (touching counts)."""
    d1, d2 = side(b1, b2, a1), side(b1, b2, a2)
    d3, d4 = side(a1, a2, b1), side(a1, a2, b2)
    return (d1 * d2 <= 0) and (d3 * d4 <= 0)


def nearest_edge(polygon: Sequence[Point], p: Point) -> Tuple[float, Point, Point]:
    """The distance from ``p`` to ``polygon``'s outline, and the ends of the edge it is nearest."""
    best = (math.inf, polygon[0], polygon[0])
    for i in range(len(polygon)):
        a, b = polygon[i], polygon[(i + 1) % len(polygon)]
        dx, dy = b[0] - a[0], b[1] - a[1]
        span = dx * dx + dy * dy
        u = min(1.0, max(0.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / span)) if span else 0.0
        d = math.hypot(p[0] - a[0] - u * dx, p[1] - a[1] - u * dy)
        if d < best[0]:
            best = (d, a, b)
    return best


def inside(polygon: Sequence[Point], p: Point) -> bool:
    """Whether ``p`` is inside ``polygon`` (even-odd rule)."""
    x, y = p
    n, hit = len(polygon), False
    for i in range(n):
        (xa, ya), (xb, yb) = polygon[i], polygon[(i + 1) % n]
        if (ya > y) != (yb > y) and x < xa + (y - ya) * (xb - xa) / (yb - ya):
            hit = not hit
    return hit
