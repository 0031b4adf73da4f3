"""What the runners, sinks and tracking take as a model, declared: :class:`Model`. The TFLite
model (loader.py) and a comparison of several (compare.py) both honour it, and the type
checker (mypy, run by scripts/test) holds them to it: a member missing or of another type in
either is an error where it is passed to a runner, not an AttributeError at run time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Protocol, Tuple

import numpy as np

from edgecam.model.results import Result


@dataclass(frozen=True)
class Keep:
    """What a result keeps, passed with each inference (the live settings, as Frigate passes
    ``detect(tensor, threshold)``): detections scoring ``threshold`` or more (down to ``floor``,
    when tracking continues its tracks on weaker ones), a classifier's ``top_k`` best classes,
    only the labels in ``classes`` (empty: all). Frozen: a change is a new Keep, so an inference
    thread never sees half of one."""

    threshold: float = 0.5
    top_k: int = 3
    classes: FrozenSet[str] = frozenset()
    floor: Optional[float] = None

    @property
    def lowest(self) -> float:
        return self.threshold if self.floor is None else min(self.floor, self.threshold)


class EngineView(Protocol):
    """What is read of a model's interpreter: the last run's time and span, its threads."""

    @property
    def last_ms(self) -> float: ...

    @property
    def last_span(self) -> Tuple[float, float]: ...

    @property
    def threads(self) -> int: ...

    @property
    def workers(self) -> List[int]: ...


class Model(Protocol):
    """A frame in, a :class:`Result` out; its name, task and input size; its threads. What a
    result keeps (threshold, top_k, classes, the tracker's floor) comes with each call
    (``keep``: the live settings, edgecam/pipeline/tuning.py); ``defaults`` when it does not."""

    name: str
    task: str                          # classify, detect, or compare (compare.py)
    alpha: Optional[float]
    cost_line: str

    @property
    def defaults(self) -> Keep: ...

    @property
    def engine(self) -> EngineView: ...

    @property
    def size(self) -> int: ...

    @property
    def rho(self) -> float: ...

    @property
    def madds(self) -> Optional[int]: ...

    def set_threads(self, threads: int) -> None: ...

    def replica(self) -> Model: ...

    def infer(self, image: np.ndarray, index: int = 0, t: float = 0.0, captured: float = 0.0,
              interpolation: int = ..., keep: Optional[Keep] = None) -> Result: ...
