"""Multi-object tracking by IoU, ByteTrack-style (Zhang et al., 2022), with tentative tracks
that hold on. Each track's box is predicted to the detections' time with a constant-velocity
(alpha-beta) filter. Detections scoring at least ``high`` are matched to the confirmed tracks
first, then to the tentative ones; then the tracks seen lately may take a low-score detection
(a person half hidden scores low but is still the same person; a weak object whose score
flickers around the threshold stays one track instead of dying at its first miss). Only high
detections start tracks, and a track gets its public id once ``min_hits`` of its detections
scored high (on the first inference every high detection does: there is nothing to confirm
against yet). Every track, tentative or confirmed, survives ``max_missed`` inferences without a
detection, coasting on its velocity; while it coasts (a person hidden behind another) it is
matched where its full rate puts it (the drawn boxes move by half of it: see GAIN).

Association ignores the label: SSD's label for one object flickers (a car called ``parking
meter``, then ``suitcase``; a bottle that turns ``vase``), so a track keeps its id through it
and takes the label it has been given most, weighted by score. The label only breaks near-ties
between competitors (a bottle in the hand of an arm called ``person``). Duplicate suppression
(SSD's second, smaller box inside one object) is within a label, on the first inference too:
a bottle inside the box of the arm that holds it is an object of its own.

The assignment is optimal (scipy's linear_sum_assignment) when scipy is installed (the
``tracking`` extra), else greedy, best IoU first; with the few boxes a camera sees they
differ only when two tracks compete for two boxes in a crossing pattern."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecam.model.postprocess import Detection
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
COAST_GAIN = 1.0               # a track missed since: matched where its full rate puts it (see _match)
MIN_SPEED = 0.6
HORIZON_S = 1.0                # a box is never predicted further than this past its last detection
LOW_IOU = 0.5                  # the low-score stage needs a closer match
LOW_GAP = 1                    # ... and a track missed at most this many inferences in a row
DUPLICATE = 0.7                # a detection this much inside a matched one of its label is the same object twice
SAME_LABEL = 0.05              # added to the IoU of a same-label pair: breaks near-ties between competitors


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

    def at(self, t: float, gain: float = GAIN) -> Tuple[float, float, float, float]:
        """The box predicted at time ``t``: moved by ``gain`` x its rate, and only when it moves
        faster than MIN_SPEED box widths a second (slower is the detector's jitter)."""
        dt = min(max(t - self.t, 0.0), HORIZON_S)
        if np.hypot(self.rate[0], self.rate[1]) < MIN_SPEED * max(self.last[2], 1.0):
            return _box(self.last)
        return _box(self.last + gain * self.rate * dt)

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
    label: str                    # the label given most, weighted by score (see vote)
    score: float
    box: Tuple[float, float, float, float]   # the last detection's box
    motion: Motion
    first_t: float
    id: Optional[int] = None      # the public id, given on confirmation
    hits: int = 1                 # detections matched, low ones included
    strong: int = 1               # of those, scoring at least ``high``
    missed: int = 0
    seen: Deque[bool] = field(default_factory=lambda: deque(maxlen=1))   # hysteresis window
    shown: bool = False           # has been shown (a "new" event went out)
    votes: Dict[str, float] = field(default_factory=dict)   # label -> summed score
    classes: Dict[str, int] = field(default_factory=dict)   # label -> class id
    taught: Dict[str, str] = field(default_factory=dict)    # taught label -> the detector's (edgecam/teach/)
    # (event, where) not sent yet
    pending: Deque[Tuple[dict, dict]] = field(default_factory=lambda: deque(maxlen=PENDING))

    def vote(self, d) -> None:
        """Count ``d``'s label (weighted by its score); the track takes the label with most."""
        self.votes[d.label] = self.votes.get(d.label, 0.0) + float(d.score)
        self.classes.setdefault(d.label, d.class_id)
        if d.detected_as:
            self.taught[d.label] = d.detected_as
        self.label = max(self.votes, key=self.votes.__getitem__)
        self.class_id = self.classes[self.label]


PENDING = 64     # events a track keeps while it is tentative or hidden (the oldest go first)


@dataclass
class Update:
    """What one inference did to the tracks."""
    matched: List[Tuple[Track, Detection]]     # (track, detection) pairs, this inference, tentative
                                               # tracks and new ones included (``id`` None until confirmed)
    lost: List[Track]                          # tracks dropped now


class Tracker:
    def __init__(self, iou: float = 0.2, max_missed: int = 15, min_hits: int = 2, window: int = 1):
        self.iou, self.max_missed, self.min_hits, self.window = iou, max_missed, min_hits, window
        self.tracks: List[Track] = []
        self.next_key = self.next_id = 1
        self.updates = 0

    def update(self, detections: Sequence, t: float, high: float) -> Update:
        """Match ``detections`` (with .box, .score, .class_id, .label) made at time ``t``:
        confirmed tracks take the high scores, then tentative ones; then the tracks seen lately
        may take a low one; the high detections left start tracks."""
        high_d = [d for d in detections if d.score >= high]
        low_d = [d for d in detections if d.score < high]
        confirmed = [tr for tr in self.tracks if tr.id is not None]
        matched, left, high_left = self._match(confirmed, high_d, t, self.iou)
        newer, newer_left, high_left = self._match([tr for tr in self.tracks if tr.id is None], high_left,
                                                   t, self.iou)
        recent = [tr for tr in left + newer_left if tr.missed < LOW_GAP + 1]
        more, recent_left, _ = self._match(recent, low_d, t, LOW_IOU)
        matched += newer + more
        unmatched = [tr for tr in left + newer_left if tr not in recent] + recent_left
        for tr, d in matched:
            self._hit(tr, d, t, d.score >= high)
        lost = self._miss(unmatched)
        matched += self._start_new(high_left, matched, t)
        self.updates += 1
        return Update(matched, lost)

    def _start_new(self, dets: Sequence, matched: List[Tuple[Track, Detection]], t: float):
        """Tracks for the high detections no track took, best first, except a box mostly
        inside a taken box of its own label (SSD's second box for one object)."""
        taken = [(d.label, tr.label, d.box) for tr, d in matched]
        started = []
        for d in sorted(dets, key=lambda d: -d.score):
            same = np.array([box for a, b, box in taken if d.label in (a, b)]).reshape(-1, 4)
            if same.size and covered(d.box, same) >= DUPLICATE:
                continue
            tr = self._start(d, t)
            taken.append((d.label, d.label, d.box))
            started.append((tr, d))
        return started

    def _match(self, tracks: List[Track], dets: Sequence, t: float, minimum: float):
        if not tracks or not dets:
            return [], list(tracks), list(dets)
        predicted = np.array([tr.motion.at(t, COAST_GAIN if tr.missed else GAIN) for tr in tracks])
        scores = iou_matrix(predicted, np.array([d.box for d in dets]))
        same = np.array([[tr.label == d.label for d in dets] for tr in tracks])
        pairs = assign(np.where(scores >= minimum, scores + SAME_LABEL * same, 0.0), minimum)
        rows, cols = {r for r, _ in pairs}, {c for _, c in pairs}
        return ([(tracks[r], dets[c]) for r, c in pairs], [tr for i, tr in enumerate(tracks) if i not in rows],
                [d for j, d in enumerate(dets) if j not in cols])

    def _hit(self, tr: Track, d, t: float, strong: bool) -> None:
        tr.motion.correct(d.box, t, first=tr.hits == 1)
        tr.hits += 1
        tr.strong += int(strong)
        tr.missed = 0
        tr.score, tr.box = d.score, tuple(d.box)
        tr.vote(d)
        tr.seen.append(True)
        if tr.id is None and tr.strong >= self.min_hits:
            self._confirm(tr)

    def _miss(self, tracks: List[Track]) -> List[Track]:
        lost = []
        for tr in tracks:
            tr.missed += 1
            tr.seen.append(False)
            if tr.missed > self.max_missed:
                self.tracks.remove(tr)
                lost.append(tr)
        return lost

    def _start(self, d, t: float) -> Track:
        tr = Track(self.next_key, d.class_id, d.label, d.score, tuple(d.box), Motion(_cxcywh(d.box), t), t,
                   seen=deque([True], maxlen=self.window))
        tr.vote(d)
        self.next_key += 1
        self.tracks.append(tr)
        if self.updates == 0 or self.min_hits <= 1:
            self._confirm(tr)
        return tr

    def _confirm(self, tr: Track) -> None:
        tr.id = self.next_id
        self.next_id += 1
