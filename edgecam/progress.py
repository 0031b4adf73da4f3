"""A small terminal progress bar (drawn only on a terminal, on stderr)."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    def __init__(self, total: Optional[float], label: str, unit: str = "frames",
                 stream: Optional[TextIO] = None, enabled: Optional[bool] = None,
                 scale: float = 1.0, scale_unit: str = ""):
        self.total = total if total and total > 0 else None
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0.0
        self.start = time.monotonic()
        self._last = 0.0
        self.scale = scale
        self.scale_unit = scale_unit
        self.extra = ""

    def update(self, n: float = 1, extra: str = "") -> None:
        self.done += n
        if extra:
            self.extra = extra
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or (self.total and self.done >= self.total)):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-6)
        rate = self.done / elapsed
        shown = f"{self.done * self.scale:.1f}{self.scale_unit}" if self.scale != 1 else f"{int(self.done)}"
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            total = f"{self.total * self.scale:.1f}{self.scale_unit}" if self.scale != 1 else f"{int(self.total)}"
            eta = (self.total - self.done) / rate if rate > 0 else 0
            line = f"{self.label} [{bar:<30}] {frac * 100:5.1f}% {shown}/{total} {self.unit} eta {eta:4.0f}s"
        else:
            line = f"{self.label} {shown} {self.unit}"
        rate_txt = f" {rate * self.scale:.1f} {self.scale_unit or self.unit}/s"
        if self.scale_unit:
            line = line.replace(f" {self.unit} eta", " eta").rstrip()
        self.stream.write("\r" + line + rate_txt + (" " + self.extra if self.extra else "") + "\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
