"""What inference gives: a Result per frame, with Detections (boxes in frame pixels) or
Classifications (the top-k)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from edgecam.model.postprocess import Classification, Detection

__all__ = ["Result", "Detection", "Classification"]


@dataclass
class Result:
    frame: int
    t: float
    model: str
    inference_ms: float
    task: str
    detections: List[Detection] = field(default_factory=list)
    classes: List[Classification] = field(default_factory=list)
    captured: float = 0.0          # monotonic capture time of the frame behind it
    inferred: bool = True          # False: the motion gate skipped the model (tracks coasted)
    events: List[dict] = field(default_factory=list)   # what tracking and the rules saw happen
    state: Optional[dict] = None   # the frame's taught state (edgecam/teach/): {label, similarity}

    def to_json(self) -> dict:
        d = {"frame": self.frame, "t": round(self.t, 4), "model": self.model,
             "inference_ms": round(self.inference_ms, 2)}
        if not self.inferred:
            d["inferred"] = False
        if self.task == "detect":
            d["detections"] = [x.to_json() for x in self.detections]
        else:
            d["classes"] = [x.to_json() for x in self.classes]
        if self.state is not None:
            d["state"], d["state_similarity"] = self.state["label"], self.state["similarity"]
        return d

    @classmethod
    def skipped(cls, frame, model: str, task: str) -> "Result":
        """A frame the motion gate kept from the model (the tracks coast over it)."""
        return cls(frame.index, frame.t, model, 0.0, task, captured=frame.captured, inferred=False)

    def labels(self) -> List[str]:
        if self.task == "detect":
            return [d.label for d in self.detections]
        return [self.classes[0].label] if self.classes else []
