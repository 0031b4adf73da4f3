"""The events sink: one JSON line per tracking event (new, lost, cross, enter, leave), written
as each result brings them, through the same whole-line writer as the per-frame JSON lines
(a line is complete or absent; a stop or a crash loses none already written)."""

from __future__ import annotations

from edgecam.sinks.base import Sink
from edgecam.sinks.files import JsonLinesSink


class EventsSink(Sink):
    wants_frames = False

    def __init__(self, path: str):
        self.lines = JsonLinesSink(path)
        self.written = 0

    def result(self, result) -> None:
        for event in getattr(result, "events", ()):
            self.lines.write(event)
            self.written += 1

    def close(self) -> None:
        self.lines.close()
