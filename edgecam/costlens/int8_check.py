"""Is the int8 file the published model? Its outputs compared with the published file's.

The same comparison serves the check at conversion (a few built-in probe images, well under a
second) and the test over real media (tests/test_int8.py: every photo for the classifiers, every
frame of both videos for the SSD). The bar, per frame:

* classifier: the same top-1, the same top-5 set, every score within 1 percentage point;
* detector: above the threshold, the same number of detections, each published one matched by
  one of the same class with IoU >= 0.9. (Over a video the test asks this of 99% of the
  detections and 99% of the frames: a score at the threshold may cross it by one step.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from edgecam.model.engine import Engine
from edgecam.model.postprocess import detection_roles, is_detector

TOP = 5
SCORE_PP = 1.0          # classifier scores within 1 percentage point
IOU = 0.9
THRESHOLD = 0.5
# the probes are not photos: an SSD finds nothing in them above 0.5, so at conversion every one
# of its candidates (10 for the published SSD) is compared, whatever its score
PROBE_THRESHOLD = 0.0


@dataclass
class Tally:
    """Frames compared and how they agreed (the figures the README and `models info` show)."""

    frames: int = 0
    top1_same: int = 0
    top5_same: int = 0
    max_pp: float = 0.0                             # largest score difference, percentage points
    detections: int = 0                             # published detections above the threshold
    matched: int = 0                                # ... matched (same class, IoU >= 0.9)
    count_same: int = 0                             # frames with as many detections both ways
    min_iou: float = 1.0
    failures: List[str] = field(default_factory=list)

    def classifier_equal(self) -> bool:
        return self.top1_same == self.top5_same == self.frames and self.max_pp <= SCORE_PP

    def detector_equal(self, share: float = 1.0) -> bool:
        return (self.matched >= share * self.detections and self.count_same >= share * self.frames)

    def line(self, task: str) -> str:
        if task == "detect":
            return (f"{self.frames} frames: {self.matched}/{self.detections} detections matched (IoU >= {IOU}, "
                    f"lowest {self.min_iou:.3f}), count equal on {self.count_same}/{self.frames} frames")
        return (f"{self.frames} images: top-1 equal {self.top1_same}/{self.frames}, top-5 set equal "
                f"{self.top5_same}/{self.frames}, scores within {self.max_pp:.2f} pp")


def add_classification(tally: Tally, a: np.ndarray, b: np.ndarray, what: str = "") -> None:
    """One image's scores, published (a) and int8 (b), both dequantized."""
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    ta, tb = np.argsort(-a, kind="stable")[:TOP], np.argsort(-b, kind="stable")[:TOP]
    tally.frames += 1
    same1 = ta[0] == tb[0] or a[tb[0]] == a[ta[0]]     # a tie is the same answer
    same5 = set(ta) == set(tb) or np.isclose(np.sort(a[ta]), np.sort(a[tb])).all()
    tally.top1_same += bool(same1)
    tally.top5_same += bool(same5)
    pp = float(np.abs(a - b).max()) * 100.0
    tally.max_pp = max(tally.max_pp, pp)
    if not (same1 and same5 and pp <= SCORE_PP):
        tally.failures.append(f"{what}: top-1 {ta[0]} vs {tb[0]}, scores {pp:.2f} pp apart")


def _above(outputs: Sequence[np.ndarray], roles: dict, threshold: float) -> List[Tuple[int, np.ndarray]]:
    scores = np.asarray(outputs[roles["scores"]]).reshape(-1)
    classes = np.asarray(outputs[roles["classes"]]).reshape(-1)
    boxes = np.asarray(outputs[roles["boxes"]]).reshape(-1, 4)
    count = int(np.asarray(outputs[roles["count"]]).reshape(-1)[0])
    n = min(count, scores.size)
    return [(int(classes[i]), boxes[i]) for i in range(n) if scores[i] >= threshold]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Boxes as (ymin, xmin, ymax, xmax)."""
    h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = h * w
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else float(np.allclose(a, b))


def add_detections(tally: Tally, a: Sequence[np.ndarray], b: Sequence[np.ndarray], roles: dict,
                   threshold: float = THRESHOLD, what: str = "") -> None:
    """One frame's raw SSD outputs, published (a) and int8 (b): detections above threshold."""
    da, db = _above(a, roles, threshold), _above(b, roles, threshold)
    tally.frames += 1
    tally.detections += len(da)
    tally.count_same += len(da) == len(db)
    free = list(db)
    for cls, box in da:
        best = max(((iou(box, bb), k) for k, (cb, bb) in enumerate(free) if cb == cls), default=(0.0, -1))
        tally.min_iou = min(tally.min_iou, best[0])
        if best[0] >= IOU:
            tally.matched += 1
            free.pop(best[1])
    if len(da) != len(db) or len(free):
        tally.failures.append(f"{what}: {len(da)} detections vs {len(db)}")


def probes(height: int, width: int) -> List[Tuple[str, np.ndarray]]:
    """Built-in probe images (RGB uint8): a gradient, a blank, smooth colour noise, bars. Not
    photos: they exercise every layer's range quickly, without shipping an image."""
    y, x = np.mgrid[0:height, 0:width]
    gradient = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                         (x + y) * 255 // max(1, width + height - 2)], -1)
    rng = np.random.default_rng(20)
    coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3)).astype(np.float64)
    rows = np.linspace(0, coarse.shape[0] - 1, height).astype(int)
    cols = np.linspace(0, coarse.shape[1] - 1, width).astype(int)
    noise = coarse[rows][:, cols]
    bars = np.where(((x // max(1, width // 8)) % 2)[..., None] == 1, [200, 40, 40], [30, 60, 200])
    blank = np.full((height, width, 3), 128)
    return [(name, np.asarray(img, np.uint8)) for name, img in
            (("gradient", gradient), ("blank", blank), ("smooth noise", noise), ("bars", bars))]


def compare_files(published, converted, runtime: str = "auto") -> Tuple[str, Tally]:
    """(task, tally) of the two files on the probe images, one thread each."""
    a, b = Engine(published, 1, runtime), Engine(converted, 1, runtime)
    detector = is_detector(a.outputs, a.ops())
    roles = detection_roles(a.outputs, a.ops()) if detector else {}
    tally = Tally()
    for name, rgb in probes(a.input.height, a.input.width):
        x = rgb[np.newaxis]                         # the probes are model-sized already
        if detector:
            add_detections(tally, a.run(x), b.run(x), roles, PROBE_THRESHOLD, name)
        else:
            add_classification(tally, a.run(x)[0], b.run(x)[0], name)
    return ("detect" if detector else "classify"), tally


def bar(task: str) -> str:
    if task == "detect":
        return f"every detection matched, same class and IoU >= {IOU}, and as many on every image"
    return f"the same top-1 and top-{TOP} set, every score within {SCORE_PP:g} pp"


def equal(task: str, tally: Tally) -> bool:
    return tally.detector_equal() if task == "detect" else tally.classifier_equal()
