"""Which detections count at all (labels, per-label scores, box sizes) and when a tracked
object is shown (hysteresis: seen in N of the last M inferences). Pure, no state of their own."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple


class DetectionFilter:
    """Allow and deny lists, per-label minimum scores, and box area as a fraction of the frame."""

    def __init__(self, allow: Sequence[str] = (), deny: Sequence[str] = (),
                 min_score: Optional[Dict[str, float]] = None, min_area: float = 0.0, max_area: float = 1.0,
                 size: Tuple[int, int] = (1, 1)):
        self.allow, self.deny = set(allow), set(deny)
        self.min_score = dict(min_score or {})
        self.min_area, self.max_area = min_area, max_area
        self.frame_area = float(max(1, size[0] * size[1]))

    @property
    def active(self) -> bool:
        return bool(self.allow or self.deny or self.min_score or self.min_area > 0 or self.max_area < 1)

    def keep(self, d) -> bool:
        if self.allow and d.label not in self.allow or d.label in self.deny:
            return False
        if d.score < self.min_score.get(d.label, 0.0):
            return False
        x1, y1, x2, y2 = d.box
        area = max(0.0, x2 - x1) * max(0.0, y2 - y1) / self.frame_area
        return self.min_area <= area <= self.max_area

    def __call__(self, detections: Sequence) -> List:
        return [d for d in detections if self.keep(d)] if self.active else list(detections)


def shown(seen: Sequence[bool], n: int) -> bool:
    """Hysteresis: an object is shown while it was detected in at least ``n`` of the inferences
    in ``seen`` (the last M, newest last)."""
    return sum(1 for s in seen if s) >= n
