"""Events per second over the last few seconds (camera frames, results, watchdog pings)."""

from __future__ import annotations

import collections
import time
from typing import Optional


class RateMeter:
    """Events per second over the last ``window`` seconds, as of now: it falls to 0 within
    ``window`` seconds of the events stopping (an outage reads 0, not the last rate).
    ``settle(hold)`` at a (re)connect starts afresh and ignores the next ``hold`` seconds:
    a stream's first frames (one read while opening, others buffered meanwhile) arrive back to
    back and would read as a multiple of the camera's rate."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: collections.deque = collections.deque()
        self._hold_until = float("-inf")

    def settle(self, hold: float = 1.0, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        self.times.clear()
        self._hold_until = now + hold

    def tick(self, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        if now < self._hold_until:
            return
        self.times.append(now)
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()

    def rate_at(self, now: float) -> float:
        times = [t for t in list(self.times) if now - t <= self.window]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(now - times[0], times[-1] - times[0], 1e-6)

    @property
    def rate(self) -> float:
        return self.rate_at(time.monotonic())
