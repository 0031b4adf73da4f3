"""Health: is every worker thread making progress? What systemd's watchdog is told.

Each long-lived worker (capture, inference, output) holds a :class:`Beat` and checks in as it
goes round its loop: ``beat.alive()`` means "I just made progress, expect me again within the
grace period"; ``with beat.within(seconds):`` brackets a call that may block but is bounded
(a camera read with a timeout, a reconnect, a backoff wait, a model load). A worker is healthy
while the deadline its last check-in set has not passed.

:class:`Watchdog` is the thread that pings systemd (WATCHDOG=1) every ``period`` seconds, but
only while :meth:`Heartbeat.stuck` is empty: the ping says "no thread is stuck", not "frames
arrive". A frozen or absent camera therefore never starves it (the capture thread sits in a
bounded read or backoff), while an inference or output thread stuck in a call stops the pings
and systemd restarts the service.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional

log = logging.getLogger("edgecam.health")


class Beat:
    """One worker's check-ins."""

    def __init__(self, heartbeat: "Heartbeat", name: str):
        self.heartbeat, self.name = heartbeat, name
        self.last = time.monotonic()
        self.deadline = self.last + heartbeat.grace

    def alive(self) -> None:
        """Progress now; the next check-in is due within the grace period."""
        self.last = time.monotonic()
        self.deadline = self.last + self.heartbeat.grace

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """A call ahead that may block, but for at most ``seconds``: healthy until then."""
        self.last = time.monotonic()
        self.deadline = self.last + seconds + self.heartbeat.grace
        try:
            yield
        finally:
            self.alive()

    def done(self) -> None:
        """The worker ended as it should: stop watching it."""
        self.heartbeat.forget(self)


class Heartbeat:
    """The workers of one process, and which of them are overdue."""

    def __init__(self, grace: float = 15.0):
        self.grace = grace
        self._beats: Dict[int, Beat] = {}
        self._lock = threading.Lock()

    def worker(self, name: str) -> Beat:
        beat = Beat(self, name)
        with self._lock:
            self._beats[id(beat)] = beat
        return beat

    def forget(self, beat: Beat) -> None:
        with self._lock:
            self._beats.pop(id(beat), None)

    def stuck(self, now: Optional[float] = None) -> List[str]:
        """The workers past their deadline: ``["inference (no progress for 15.2 s)"]``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            beats = list(self._beats.values())
        return [f"{b.name} (no progress for {now - b.last:.1f} s)" for b in beats if now > b.deadline]


class Watchdog(threading.Thread):
    """Calls ``ping()`` every ``period`` seconds while no worker of ``heartbeat`` is stuck."""

    def __init__(self, heartbeat: Heartbeat, ping: Callable[[], None], period: float):
        super().__init__(name="edgecam-watchdog", daemon=True)
        self.heartbeat, self.ping, self.period = heartbeat, ping, period
        self._stop = threading.Event()
        self.withheld = False        # pings are being withheld (logged once per episode)

    def run(self) -> None:
        while not self._stop.is_set():
            stuck = self.heartbeat.stuck()
            if not stuck:
                if self.withheld:
                    log.warning("watchdog: every thread is making progress again; pinging systemd")
                    self.withheld = False
                self.ping()
            elif not self.withheld:
                self.withheld = True
                log.error("watchdog: %s stuck; not pinging systemd, which restarts the service "
                          "unless it recovers", ", ".join(stuck))
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
