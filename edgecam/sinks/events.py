"""The events sink: one JSON line per tracking event (new, lost, cross, enter, leave), written
as each result brings them, through the same whole-line writer as the per-frame JSON lines
(a line is complete or absent; a stop or a crash loses none already written)."""

from __future__ import annotations

from edgecam.model.results import Result
from edgecam.sinks.base import Sink


class EventsSink(Sink):
    """``lines``: a JsonLinesSink (file mode: a failed write stops the run in one sentence) or
    a Retrying one (live mode: the service keeps running and the file is reopened)."""

    wants_frames = False

    def __init__(self, lines):
        self.lines = lines
        self.written = 0

    def result(self, result: Result) -> None:
        for event in result.events:            # (Result declares them: none without tracking)
            self.lines.write(event)
            self.written += 1

    def close(self) -> None:
        self.lines.close()
