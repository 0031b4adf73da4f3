"""A live source that stopped delivering (or a camera not there yet, waited for under
systemd), reopened with backoff: 0.5 s doubling up to ``source.reconnect_max_s``, one log line
per attempt. Every wait and every open is bounded work checked in with the capture thread's
heartbeat, so a frozen or absent camera never looks like a hang to the watchdog."""

from __future__ import annotations

import logging

from edgecam.errors import SourceError
from edgecam.pipeline.health import Beat
from edgecam.pipeline.hooks import Hooks
from edgecam.pipeline.state import LiveState
from edgecam.pipeline.sync import StopFlag
from edgecam.sources import Source

log = logging.getLogger("edgecam.pipeline")

FIRST_DELAY_S = 0.5


def status_line(state: LiveState, source: Source) -> str:
    """systemd's STATUS= line in live mode."""
    if state.status == "waiting for camera":
        return f"{state.model.name}: waiting for camera {source.name} ({source.error})"
    return (f"{state.model.name}: camera {state.camera.rate:.1f} FPS, inference "
            f"{state.inference.rate:.1f} FPS, {state.status}")


class Reconnector:
    def __init__(self, source: Source, max_delay: float, hooks: Hooks, stop: StopFlag, state: LiveState,
                 beat: Beat):
        self.source, self.max_delay, self.hooks, self.stop = source, max_delay, hooks, stop
        self.state, self.beat = state, beat

    def reconnect(self) -> bool:
        """Reopen the source until it delivers (True), or the run stops (False)."""
        source, state = self.source, self.state
        delay, waiting = FIRST_DELAY_S, source.waiting
        state.status = "waiting for camera" if waiting else "reconnecting"
        self.hooks.status(status_line(state, source))
        if not waiting:
            log.warning("%s stopped delivering frames; reconnecting", source.name)
        while True:
            with self.beat.within(delay):
                if self.stop.wait(delay):
                    return False
            try:
                with self.beat.within(source.open_timeout_s):
                    source.reopen()
            except SourceError as exc:
                delay = min(delay * 2, self.max_delay)
                log.warning("%s; next try in %.1f s", exc, delay)
                if waiting:
                    self.hooks.status(status_line(state, source))
                continue
            if waiting:
                log.info("camera %s is here: starting", source.name)
            else:
                state.reconnects += 1
                log.info("%s reconnected (reconnect #%d)", source.name, state.reconnects)
            state.camera.settle()
            return True
