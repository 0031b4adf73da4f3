"""Events per second over the last few seconds (camera frames, results, watchdog pings)."""

from __future__ import annotations

import collections
import time
from typing import Optional


class RateMeter:
    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: collections.deque = collections.deque()

    def tick(self, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        self.times.append(now)
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()

    @property
    def rate(self) -> float:
        if len(self.times) < 2:
            return 0.0
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0
