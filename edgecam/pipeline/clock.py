"""Stage timing, injected into a runner: the default clock does nothing (and costs nothing in
the hot loop); `edgecam bench` passes a :class:`StageTimes` that keeps every duration."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Dict, List, Tuple

STAGES = ("decode", "preprocess", "inference", "postprocess", "overlay", "output")


class StageClock:
    """No timing: now() is 0 and nothing is kept."""

    def now(self) -> float:
        return 0.0

    def add(self, stage: str, seconds: float) -> None:
        pass

    def model(self, start: float, span: Tuple[float, float]) -> None:
        """Model.infer() began at ``start``; its engine ran over ``span`` (engine.last_span)."""


NO_CLOCK = StageClock()


class StageTimes(StageClock):
    """Every duration per stage, in seconds (list.append is atomic: threads may share it)."""

    def __init__(self):
        self.times: Dict[str, List[float]] = defaultdict(list)
        for stage in STAGES:
            self.times[stage] = []

    def now(self) -> float:
        return time.perf_counter()

    def add(self, stage: str, seconds: float) -> None:
        self.times[stage].append(seconds)

    def model(self, start: float, span: Tuple[float, float]) -> None:
        end = time.perf_counter()
        b0, b1 = span
        self.times["preprocess"].append(b0 - start)
        self.times["inference"].append(b1 - b0)
        self.times["postprocess"].append(end - b1)
