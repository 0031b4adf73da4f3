"""What the runners, sinks and tracking take as a model, declared: :class:`Model`. The TFLite
model (loader.py) and a comparison of several (compare.py) both honour it, and the type
checker (mypy, run by scripts/test) holds them to it: a member missing or of another type in
either is an error where it is passed to a runner, not an AttributeError at run time."""

from __future__ import annotations

from typing import FrozenSet, List, Optional, Protocol, Tuple

import numpy as np

from edgecam.model.results import Result


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
    """A frame in, a :class:`Result` out; its name, task and input size; the settings a
    running app changes (threshold, top_k, classes, floor; threads)."""

    name: str
    task: str                          # classify, detect, or compare (compare.py)
    alpha: Optional[float]
    cost_line: str
    floor: Optional[float]             # tracking keeps detections down to this score
    threshold: float
    top_k: int
    classes: FrozenSet[str]            # only these labels (empty: all)

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
              interpolation: int = ...) -> Result: ...
