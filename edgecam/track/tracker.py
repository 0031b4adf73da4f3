"""Multi-object tracking by IoU, ByteTrack-style (Zhang et al., 2022): each track's box is
predicted to the detections' time with a constant-velocity (alpha-beta) filter; detections
with a high score are matched to the predicted boxes first, then the tracks still unmatched
try the low-score detections (a person half hidden scores low but is still the same person);
only high-score detections start tracks. A track gets its id once seen ``min_hits`` times (on
the first inference every high detection does: there is nothing to confirm against yet) and
survives ``max_missed`` inferences without a detection, coasting on its velocity.

The assignment is optimal (scipy's linear_sum_assignment) when scipy is installed (the
``tracking`` extra), else greedy, best IoU first; with the few boxes a camera sees they
differ only when two tracks compete for two boxes in a crossing pattern."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Deque, List, Optional, Sequence, Tuple

import numpy as np

from edgecam.track.geometry import iou_matrix

try:  # an optional extra: the greedy assignment below serves without it
    from scipy.optimize import linear_sum_assignment
except ImportError:   # pragma: no cover - depends on the install
    linear_sum_assignment = None

ALPHA, BETA = 0.7, 0.38        # alpha-beta filter gains (critically damped: beta = alpha²/(2-alpha))
SIZE_RATE = 0.0                # box sizes are not extrapolated (their change is mostly SSD jitter)
# Measured on the person clip (people walk, stop, turn; SSD boxes jitter by ~10 px): moving a
# box by its full estimated rate drew it worse than not moving it at all (mean IoU 0.865 vs
# 0.870 against the model's own box on that frame); half the rate, for objects that move
# more than 0.6 box widths a second, drew it better (0.877). See scripts/measure-tracking.
GAIN = 0.5
MIN_SPEED = 0.6
HORIZON_S = 1.0                # a box is never predicted further than this past its last detection
LOW_IOU = 0.5                  # the second stage (low scores) needs a closer match
DUPLICATE = 0.7                # a detection this much inside a matched one is the same object twice


def assign(scores: np.ndarray, minimum: float, exact: Optional[bool] = None) -> List[Tuple[int, int]]:
    """Pairs (row, column) maximising the summed ``scores`` (IoU), each at least ``minimum``.
    ``exact``: scipy's optimal assignment (default: when installed), else greedy."""
    if scores.size == 0:
        return []
    if exact is None:
        exact = linear_sum_assignment is not None
    if exact:
        cost = np.where(scores >= minimum, 1.0 - scores, 1e6)
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if scores[r, c] >= minimum]
    pairs, used_r, used_c = [], set(), set()
    for flat in np.argsort(-scores, axis=None, kind="stable"):
        r, c = divmod(int(flat), scores.shape[1])
        if scores[r, c] < minimum:
            break
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


def covered(box: Sequence[float], others: np.ndarray) -> float:
    """The largest share of ``box``'s area that one of ``others`` covers."""
    x1, y1, x2, y2 = box
    w = np.clip(np.minimum(others[:, 2], x2) - np.maximum(others[:, 0], x1), 0, None)
    h = np.clip(np.minimum(others[:, 3], y2) - np.maximum(others[:, 1], y1), 0, None)
    area = max((x2 - x1) * (y2 - y1), 1e-9)
    return float((w * h).max() / area)


def _cxcywh(box: Sequence[float]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], np.float64)


def _box(s: np.ndarray) -> Tuple[float, float, float, float]:
    cx, cy, w, h = s
    w, h = max(w, 1.0), max(h, 1.0)
    return (float(cx - w / 2), float(cy - h / 2), float(cx + w / 2), float(cy + h / 2))


@dataclass(eq=False)
class Motion:
    """A box's last detected centre and size, the rate (per second) they change at, and the
    time of that detection. The rate comes from an alpha-beta filter over the detections;
    the prediction starts from the last detection itself (a smoothed position lags behind a
    walking person: measured, see README)."""
    last: np.ndarray
    t: float
    rate: np.ndarray = field(default_factory=lambda: np.zeros(4))
    smooth: Optional[np.ndarray] = None

    def at(self, t: float) -> Tuple[float, float, float, float]:
        """The box predicted at time ``t``: moved by GAIN x its rate, and only when it moves
        faster than MIN_SPEED box widths a second (slower is the detector's jitter)."""
        dt = min(max(t - self.t, 0.0), HORIZON_S)
        if np.hypot(self.rate[0], self.rate[1]) < MIN_SPEED * max(self.last[2], 1.0):
            return _box(self.last)
        return _box(self.last + GAIN * self.rate * dt)

    def correct(self, box: Sequence[float], t: float, first: bool) -> None:
        z, dt = _cxcywh(box), t - self.t
        smooth = self.last if self.smooth is None else self.smooth
        if dt <= 0:
            self.last = z
            return
        if first:                                   # the second sighting: the velocity as seen
            self.rate, self.smooth = (z - smooth) / dt, z
        else:
            predicted = smooth + self.rate * min(dt, HORIZON_S)
            r = z - predicted
            self.smooth = predicted + ALPHA * r
            self.rate = self.rate + BETA * r / dt
        self.rate[2:] *= SIZE_RATE
        self.last, self.t = z, t


@dataclass(eq=False)
class Track:
    key: int                      # internal, from creation
    class_id: int
    label: str
    score: float
    box: Tuple[float, float, float, float]   # the last detection's box
    motion: Motion
    first_t: float
    id: Optional[int] = None      # the public id, given on confirmation
    hits: int = 1
    missed: int = 0
    seen: Deque[bool] = field(default_factory=lambda: deque(maxlen=1))   # hysteresis window
    shown: bool = False           # has been shown (a "new" event went out)


@dataclass
class Update:
    """What one inference did to the tracks."""
    matched: List[Tuple[Track, object]]        # (track, detection) pairs, this inference (with new
                                               # tracks confirmed at once)
    lost: List[Track]                          # tracks dropped now


class Tracker:
    def __init__(self, iou: float = 0.2, max_missed: int = 15, min_hits: int = 2, window: int = 1):
        self.iou, self.max_missed, self.min_hits, self.window = iou, max_missed, min_hits, window
        self.tracks: List[Track] = []
        self.next_key = self.next_id = 1
        self.updates = 0

    def update(self, detections: Sequence, t: float, high: float) -> Update:
        """Match ``detections`` (with .box, .score, .class_id, .label) made at time ``t``:
        confirmed tracks take the high scores, then those seen last time may take a low one,
        then unconfirmed tracks take what high scores are left; the rest start tracks."""
        high_d = [d for d in detections if d.score >= high]
        low_d = [d for d in detections if d.score < high]
        confirmed = [tr for tr in self.tracks if tr.id is not None]
        matched, left, high_left = self._match(confirmed, high_d, t, self.iou)
        recent = [tr for tr in left if tr.missed == 0]
        more, recent_left, _ = self._match(recent, low_d, t, LOW_IOU)
        newer, newer_left, high_left = self._match([tr for tr in self.tracks if tr.id is None], high_left,
                                                   t, self.iou)
        matched += more + newer
        unmatched = [tr for tr in left if tr not in recent] + recent_left + newer_left
        for tr, d in matched:
            self._hit(tr, d, t)
        lost = self._miss(unmatched)
        taken = np.array([d.box for _, d in matched]).reshape(-1, 4)
        for d in high_left:
            if not taken.size or covered(d.box, taken) < DUPLICATE:
                tr = self._start(d, t)
                if tr.id is not None:
                    matched.append((tr, d))
        self.updates += 1
        return Update(matched, lost)

    def _match(self, tracks: List[Track], dets: Sequence, t: float, minimum: float):
        if not tracks or not dets:
            return [], list(tracks), list(dets)
        predicted = np.array([tr.motion.at(t) for tr in tracks])
        scores = iou_matrix(predicted, np.array([d.box for d in dets]))
        same = np.array([[tr.class_id == d.class_id for d in dets] for tr in tracks])
        pairs = assign(np.where(same, scores, 0.0), minimum)
        rows, cols = {r for r, _ in pairs}, {c for _, c in pairs}
        return ([(tracks[r], dets[c]) for r, c in pairs], [tr for i, tr in enumerate(tracks) if i not in rows],
                [d for j, d in enumerate(dets) if j not in cols])

    def _hit(self, tr: Track, d, t: float) -> None:
        tr.motion.correct(d.box, t, first=tr.hits == 1)
        tr.hits += 1
        tr.missed = 0
        tr.score, tr.box = d.score, tuple(d.box)
        tr.seen.append(True)
        if tr.id is None and tr.hits >= self.min_hits:
            self._confirm(tr)

    def _miss(self, tracks: List[Track]) -> List[Track]:
        lost = []
        for tr in tracks:
            tr.missed += 1
            tr.seen.append(False)
            if tr.id is None or tr.missed > self.max_missed:   # an unconfirmed track gets no second chance
                self.tracks.remove(tr)
                lost.append(tr)
        return lost

    def _start(self, d, t: float) -> Track:
        tr = Track(self.next_key, d.class_id, d.label, d.score, tuple(d.box), Motion(_cxcywh(d.box), t), t,
                   seen=deque([True], maxlen=self.window))
        self.next_key += 1
        self.tracks.append(tr)
        if self.updates == 0 or self.min_hits <= 1:
            self._confirm(tr)
        return tr

    def _confirm(self, tr: Track) -> None:
        tr.id = self.next_id
        self.next_id += 1
