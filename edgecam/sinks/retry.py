"""A live output that fails alone: the service keeps running, the output comes back."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from edgecam.bounds import show
from edgecam.errors import OutputError
from edgecam.sinks.base import Sink

log = logging.getLogger("edgecam.sinks")

RETRY_S = 5.0             # a failed output is reopened this often
SETTLE_S = 2.0            # and is back only once it has written this long without failing: at
                          # a full disk's edge a reopened file takes a few lines into its last
                          # page and fails again, which is the same outage, not a new one


class Retrying(Sink):
    """A live output that keeps the service alive when it fails: the failed sink is closed,
    the error logged once at error level, and a new one opened every ``retry_s`` seconds
    until writing works again (a full SD card must not stop the browser view)."""

    def __init__(self, name: str, opener: Callable[[], Sink], retry_s: float = RETRY_S,
                 healthy_after: int = 1):
        self.name = name
        self._lock = threading.Lock()
        self.healthy_after = healthy_after   # writes that prove it works again (an encoder takes a few)
        self.opener = opener
        self.retry_s = retry_s
        self.sink: Optional[Sink] = opener()          # at start a failure is the run's one-sentence error
        self.wants_frames = self.sink.wants_frames
        self.failing_since: Optional[float] = None
        self.next_try = 0.0
        self.written = 0
        self.reopened = 0.0

    def result(self, result) -> None:
        self._call("result", result)

    def frame(self, image, info) -> None:
        self._call("frame", image, info)

    def write(self, item) -> bool:
        """Write ``item``; False when the output is down (and the item dropped)."""
        return self._call("write", item)

    def _call(self, method: str, *args) -> bool:
        """The sink's ``method``; False when the output is down (and the item dropped)."""
        if self.sink is None and not self._reopen():
            return False
        try:
            getattr(self.sink, method)(*args)
        except Exception as exc:
            self._fail(exc)
            return False
        self.written += 1
        if self.failing_since is not None and time.monotonic() - self.reopened >= SETTLE_S:
            self._back()
        return True

    def _back(self) -> None:
        # (results come from the inference thread, frames from the output loop: both may see
        # the output back at once, and it is said once)
        with self._lock:
            since = self.failing_since
            if since is None or self.written < self.healthy_after:
                return
            self.failing_since = None
        log.info("%s: writing again after %.0f s", self.name, time.monotonic() - since)

    def _fail(self, exc: Exception) -> None:
        text = (str(exc) if isinstance(exc, OutputError)
                else f"{self.name} failed: {type(exc).__name__}: {show(str(exc))}")
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            log.error("%s; retrying every %g s while the rest keeps running", text, self.retry_s)
        else:
            log.debug("%s still failing: %s", self.name, text)
        self._close_quietly()
        self.next_try = time.monotonic() + self.retry_s

    def _reopen(self) -> bool:
        if time.monotonic() < self.next_try:
            return False
        self.next_try = time.monotonic() + self.retry_s
        try:
            self.sink = self.opener()
        except Exception as exc:
            log.debug("%s cannot be reopened yet: %s", self.name, exc)
            return False
        self.written, self.reopened = 0, time.monotonic()
        return True

    def _close_quietly(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            try:
                sink.close()
            except Exception as exc:
                log.debug("closing the failed %s: %s", self.name, exc)

    def close(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            if self.failing_since is not None:
                self._back()         # it wrote since it was reopened: say so, however short
            sink.close()
