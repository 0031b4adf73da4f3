"""Talking to systemd: the sd_notify datagram protocol, spoken directly (no dependency).

systemd starts a ``Type=notify`` service with ``NOTIFY_SOCKET`` set to an AF_UNIX datagram
socket (a path, or an abstract name written with a leading '@') and, with ``WatchdogSec=``,
``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). The service sends newline-separated ``KEY=VALUE``
lines to it:

  READY=1        the first frame has gone through the pipeline, or the service is up and
                 waiting for a camera that is not there yet (not merely: the process runs)
  WATCHDOG=1     every WATCHDOG_USEC/4 from a watchdog thread, while every worker thread
                 checks in (edgecam/pipeline/health.py): a stuck inference or output thread stops the pings
                 and gets the service restarted; a frozen or absent camera does not
  STATUS=...     one line for ``systemctl status``: model and FPS
  RELOADING=1    a SIGHUP reload began (READY=1 again when it is done)
  STOPPING=1     shutting down

Without ``NOTIFY_SOCKET`` nothing is attempted: :func:`notifier_from_env` returns the
pipeline's no-op :class:`~edgecam.pipeline.hooks.Hooks`. The variables are removed from the
environment once read, so that processes edgecam starts (GStreamer helpers, a shell) do not
inherit them and speak for the service; a forked child never sends (the PID is checked),
which keeps ``NotifyAccess=main`` true.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import socket
import threading
import time
from typing import Optional

from edgecam.pipeline.health import Heartbeat, Watchdog
from edgecam.pipeline.hooks import Hooks
from edgecam.pipeline.meter import RateMeter

log = logging.getLogger("edgecam.systemd")

#: watchdog ping interval when the socket is there but WATCHDOG_USEC is not
DEFAULT_PING_S = 1.0
#: the notifier's own STATUS= line (file mode) no more often than this
STATUS_EVERY_S = 5.0


def socket_address(value: str):
    """NOTIFY_SOCKET's value as a socket address: '@name' is Linux's abstract namespace."""
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


class Notifier(Hooks):
    """Pipeline hooks that report to systemd over ``NOTIFY_SOCKET``."""

    supervised = True        # a camera missing at start is waited for, not an exit

    def __init__(self, address: str, watchdog_usec: Optional[int] = None, model: str = ""):
        if not address or not (address.startswith("/") or address.startswith("@")):
            raise ValueError(f"NOTIFY_SOCKET must be an absolute path or an '@' abstract name, not {address!r}")
        self.address = address
        self.model = model              # the model in use, for STATUS=
        self.watchdog_usec = watchdog_usec
        self.interval = watchdog_usec / 2 / 1e6 if watchdog_usec else DEFAULT_PING_S
        # a worker silent for half of WatchdogSec is stuck; pings go twice as often as needed
        self._heartbeat = Heartbeat(grace=max(self.interval, 0.5))
        self._watchdog = Watchdog(self._heartbeat, self._ping, self.interval / 2)
        self.pid = os.getpid()
        self.meter = RateMeter(window=5.0)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)  # a full socket buffer must never stall the pipeline
        self._addr = socket_address(address)
        self._lock = threading.Lock()
        self._last_ping = float("-inf")
        self._last_status = float("-inf")  # when anyone last sent STATUS=
        self._ready = False
        self._failed = False
        self.sent = 0

    # -- the protocol ------------------------------------------------------------------
    def notify(self, *lines: str) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines. Never raises; logs one warning if it fails."""
        if os.getpid() != self.pid:  # a forked child is not the main PID
            return False
        payload = "\n".join(lines).encode("utf-8", "replace")
        with self._lock:
            try:
                self._sock.sendto(payload, self._addr)
            except OSError as exc:
                if not self._failed:
                    self._failed = True
                    log.warning("cannot notify systemd at %s: %s (further failures are not logged)",
                                self.address, exc)
                return False
            self.sent += 1
        log.debug("sd_notify: %s", " ".join(lines))
        return True

    def _status_line(self) -> str:
        return f"STATUS={self.model or 'edgecam'}: inference {self.meter.rate:.1f} FPS"

    # -- Hooks -------------------------------------------------------------------------
    def ready(self, status: str = "") -> None:
        """READY=1 (once), and from then on the watchdog thread pings while all is well."""
        if not self._ready:
            self._ready = True
            self._last_status = self._last_ping = time.monotonic()
            line = (status or f"{self.model or 'edgecam'}: running").replace("\n", " ")
            self.notify("READY=1", "STATUS=" + line)
            log.info("told systemd: ready (%s)", line)
            if self.watchdog_usec:
                self._watchdog.start()

    def _ping(self) -> None:
        """From the watchdog thread, while no worker is stuck."""
        now = time.monotonic()
        self._last_ping = now
        lines = ["WATCHDOG=1"]
        if now - self._last_status >= STATUS_EVERY_S:  # the pipeline has not said anything lately
            self._last_status = now
            lines.append(self._status_line())
        self.notify(*lines)

    def alive(self) -> None:
        """After every result: counted for the STATUS= line's FPS."""
        self.meter.tick()

    def status(self, text: str) -> None:
        self._last_status = time.monotonic()
        self.notify("STATUS=" + text.replace("\n", " "))

    def model_loaded(self, name: str) -> None:
        self.model = name

    def reloading(self) -> None:
        # MONOTONIC_USEC lets Type=notify-reload (systemd 253+) match the reload; older ignore it
        self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                    "STATUS=reloading config")

    def reloaded(self, text: str = "") -> None:
        """READY=1 after a reload (applied or refused)."""
        self._last_status = time.monotonic()
        line = (text or f"{self.model or 'edgecam'}: running").replace("\n", " ")
        self.notify("READY=1", "STATUS=" + line)

    def stopping(self) -> None:
        self._watchdog.stop()
        self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        self._watchdog.stop()
        self._sock.close()


def notifier_from_env(environ=None, unset: bool = True) -> Hooks:
    """A :class:`Notifier` when systemd (or a test playing it) set ``NOTIFY_SOCKET``, else the
    no-op :class:`Hooks`. The variables are removed from ``os.environ`` once read."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    usec_text = env.get("WATCHDOG_USEC", "")
    pid_text = env.get("WATCHDOG_PID", "")
    if unset:
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(key, None)
    if not address:
        return Hooks()
    usec: Optional[int] = None
    if usec_text:
        try:
            usec = int(usec_text)
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r: not a whole number", usec_text)
        if usec is not None and usec <= 0:
            usec = None
    if usec is not None and pid_text:
        try:
            if int(pid_text) != os.getpid():
                log.debug("WATCHDOG_PID=%s is not this process: no watchdog interval from systemd", pid_text)
                usec = None
        except ValueError:
            usec = None
    try:
        notifier = Notifier(address, usec)
    except (ValueError, OSError) as exc:
        log.warning("not notifying systemd: %s", exc)
        return Hooks()
    # a watchdog timeout kills us with SIGABRT: print every thread's stack first, so that the
    # journal shows where the pipeline hung
    if not faulthandler.is_enabled():
        faulthandler.enable(all_threads=True)
    log.info("notifying systemd at %s (watchdog ping every %.1f s while no thread is stuck)", address,
             notifier.interval / 2)
    return notifier
