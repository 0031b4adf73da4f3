"""Postprocess: raw (dequantized) outputs to results. Classification: top-k labels with
scores in [0, 1]. Detection (TFLite_Detection_PostProcess): labelled boxes in frame pixels.
Pure functions, no state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Dict, List, Optional, Sequence

import numpy as np

from edgecam.model.engine import OutputInfo
from edgecam.model.labels import Labels
from edgecam.model.preprocess import Transform

ROLES = ("boxes", "classes", "scores", "count")  # the op's own output order (TF1 models keep it)


@dataclass(frozen=True)
class Classification:
    class_id: int
    label: str
    score: float

    def to_json(self) -> dict:
        return {"label": self.label, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Detection:
    class_id: int
    label: str
    score: float
    box: tuple  # x1, y1, x2, y2 in frame pixels
    id: Optional[int] = None   # the tracked object's id (edgecam/track/), when tracking
    detected_as: Optional[str] = None   # the detector's label, where a taught set relabelled it (edgecam/teach/)
    taught: Optional[float] = None      # ... and the similarity to the taught label's mean

    def to_json(self) -> dict:
        d = {"label": self.label, "score": round(self.score, 4), "box": [round(v, 1) for v in self.box]}
        if self.id is not None:
            d["id"] = self.id
        if self.detected_as is not None:
            d["detected_as"], d["taught"] = self.detected_as, self.taught
        return d


def top_k(scores: np.ndarray, labels: Labels, k: int, only: Collection[str] = ()) -> List[Classification]:
    """The ``k`` best classes (of those labelled ``only``, when given)."""
    s = np.asarray(scores, dtype=np.float32).reshape(-1)
    if s.min() < 0 or s.max() > 1.0001 or abs(float(s.sum()) - 1) > 0.1 and s.max() > 1:
        e = np.exp(s - s.max())   # logits, not probabilities
        s = e / e.sum()
    if only:
        keep = np.array([labels[i] in only for i in range(s.size)])
        s = np.where(keep, s, -1.0)
        k = min(k, int(keep.sum()))
        if k == 0:
            return []
    k = min(k, s.size)
    idx = np.argpartition(-s, k - 1)[:k]
    idx = idx[np.argsort(-s[idx], kind="stable")]
    return [Classification(int(i), labels[int(i)], float(min(max(s[i], 0.0), 1.0))) for i in idx]


def detection_roles(outputs: Sequence[OutputInfo], ops: Sequence[dict] = ()) -> Dict[str, int]:
    """Which output position holds boxes, classes, scores and count. TF1 exports keep the
    op's order; TF2 exports reorder the outputs, so match by the graph, then by name, then by shape."""
    by_tensor = {o.index: i for i, o in enumerate(outputs)}
    for op in ops:
        if "Detection_PostProcess" in str(op.get("op_name", "")) or op.get("op_name") == "CUSTOM":
            outs = [int(t) for t in op.get("outputs", [])]
            if len(outs) == 4 and all(t in by_tensor for t in outs):
                return {role: by_tensor[t] for role, t in zip(ROLES, outs)}
    roles: Dict[str, int] = {}
    for i, o in enumerate(outputs):
        n = o.name.lower()
        for role, keys in (("boxes", ("box",)), ("classes", ("class",)), ("scores", ("score",)),
                           ("count", ("num", "count"))):
            if any(k in n for k in keys) and role not in roles:
                roles[role] = i
    if len(roles) == 4:
        return roles
    # by shape: boxes are (1, N, 4), count is (1,); classes and scores are both (1, N)
    # and are told apart by their values in decode()
    roles = {}
    pair = []
    for i, o in enumerate(outputs):
        if len(o.shape) == 3 and o.shape[-1] == 4:
            roles["boxes"] = i
        elif int(np.prod(o.shape)) == 1:
            roles["count"] = i
        else:
            pair.append(i)
    if "boxes" not in roles or "count" not in roles or len(pair) != 2:
        raise ValueError("the model's outputs are not those of TFLite_Detection_PostProcess "
                         "(boxes, classes, scores, count)")
    roles["classes"], roles["scores"] = pair
    roles["_by_value"] = 1
    return roles


def decode_detections(outputs: Sequence[np.ndarray], roles: Dict[str, int], labels: Labels,
                      transform: Transform, threshold: float) -> List[Detection]:
    boxes = np.asarray(outputs[roles["boxes"]]).reshape(-1, 4)
    classes = np.asarray(outputs[roles["classes"]]).reshape(-1)
    scores = np.asarray(outputs[roles["scores"]]).reshape(-1)
    if roles.get("_by_value") and _looks_like_classes(scores) and not _looks_like_classes(classes):
        classes, scores = scores, classes
    count = int(np.asarray(outputs[roles["count"]]).reshape(-1)[0])
    count = max(0, min(count, boxes.shape[0], scores.shape[0]))
    out = []
    for i in range(count):
        score = float(scores[i])
        if score < threshold:
            continue
        cid = int(round(float(classes[i])))
        ymin, xmin, ymax, xmax = (float(v) for v in boxes[i])
        out.append(Detection(cid, labels[cid], score, transform.box_to_frame(ymin, xmin, ymax, xmax)))
    out.sort(key=lambda d: -d.score)
    return out


def _looks_like_classes(a: np.ndarray) -> bool:
    return a.size > 0 and bool(np.all(a == np.round(a))) and float(a.max()) > 1


def is_detector(outputs: Sequence[OutputInfo], ops: Sequence[dict] = ()) -> bool:
    try:
        detection_roles(outputs, ops)
        return len(outputs) == 4
    except ValueError:
        return False
