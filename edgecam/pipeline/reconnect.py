"""A live source that stopped delivering, reopened with backoff (0.5 s doubling up to
``source.reconnect_max_s``), one log line per attempt, the watchdog fed meanwhile."""

from __future__ import annotations

import logging

from edgecam.errors import SourceError
from edgecam.pipeline.hooks import Hooks
from edgecam.pipeline.sync import StopFlag
from edgecam.sources import Source

log = logging.getLogger("edgecam.pipeline")

FIRST_DELAY_S = 0.5


class Reconnector:
    def __init__(self, source: Source, max_delay: float, hooks: Hooks, stop: StopFlag):
        self.source, self.max_delay, self.hooks, self.stop = source, max_delay, hooks, stop
        self.delay = FIRST_DELAY_S
        self.reconnects = 0

    def connected(self) -> None:
        """Frames flow again: the next outage starts from the first delay."""
        self.delay = FIRST_DELAY_S

    def reconnect(self) -> bool:
        """Reopen the source until it answers (True) or the run stops (False)."""
        self.hooks.status(f"reconnecting to {self.source.name}")
        log.warning("%s stopped delivering frames; reconnecting", self.source.name)
        while not self.stop.wait(self.delay):
            # reconnecting is work in progress, not a hang: keep systemd's watchdog fed
            # (each wait is at most source.reconnect_max_s, well inside WatchdogSec)
            self.hooks.alive()
            try:
                self.source.reopen()
            except SourceError as exc:
                self.delay = min(self.delay * 2, self.max_delay)
                log.warning("%s; next try in %.1f s", exc, self.delay)
                continue
            self.reconnects += 1
            log.info("%s reconnected (reconnect #%d)", self.source.name, self.reconnects)
            return True
        return False
