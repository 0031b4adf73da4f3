"""Every thread edgecam runs starts here (the browser view's HTTP threads aside), and every
hand-over between threads is one of these: a leaky slot of one (live), a bounded queue put
that gives up once stopped (file), a stop flag set by signals and keys."""

from __future__ import annotations

import logging
import queue
import signal
import threading
from typing import Any, Callable, List, Optional, Tuple

log = logging.getLogger("edgecam.pipeline")

END = object()    # the source has ended: every reader of a slot sees it


class LatestSlot:
    """A leaky queue of one (the Coral camera example's): put() replaces what is there,
    counting it as dropped; get() takes the newest."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._has = False
        self.dropped = 0

    def put(self, item) -> None:
        with self._cond:
            if self._has and item is not END:
                self.dropped += 1
            self._item, self._has = item, True
            self._cond.notify_all()

    def offer(self, item, newer: Callable[[Any, Any], bool]) -> None:
        """put(item), unless what is waiting is ``newer(waiting, item)``: then it stays, and
        ``item`` is not counted as dropped (the reader takes the newer one instead)."""
        with self._cond:
            if self._has and (self._item is END or newer(self._item, item)):
                return
            self._item, self._has = item, True
            self._cond.notify_all()

    def get(self, timeout: float):
        """The newest item; None after ``timeout`` seconds with nothing new."""
        with self._cond:
            if not self._has and not self._cond.wait_for(lambda: self._has, timeout):
                return None
            item, self._item, self._has = self._item, None, False
            if item is END:  # END stays, so that every reader sees it
                self._item, self._has = END, True
            return item


class StopFlag:
    """Set by SIGINT/SIGTERM (installed on the main thread) or by a key press; SIGHUP sets
    ``reload`` instead."""

    def __init__(self):
        self.event = threading.Event()
        self.signal: Optional[int] = None
        self.reload = threading.Event()
        self._old = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._on_signal)
        if hasattr(signal, "SIGHUP"):   # not on Windows
            self._old[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda s, f: self.reload.set())

    def _on_signal(self, signum, frame) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting
        self.signal = signum
        self.event.set()

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def is_set(self) -> bool:
        return self.event.is_set()

    def set(self) -> None:
        self.event.set()

    def wait(self, seconds: float) -> bool:
        return self.event.wait(seconds)


def put_until_stopped(q: queue.Queue, item, stop: StopFlag) -> bool:
    """Put ``item`` unless stopped first: after a stop nobody may be taking from ``q``."""
    while True:
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            if stop.is_set():
                return False


class Workers:
    """A runner's threads: started by name, each recording the exception it died of. Leaving
    the ``with`` block sets the stop flag, joins each thread (a bounded wait) and re-raises
    the first thread's error on the calling thread."""

    def __init__(self, stop: StopFlag):
        self.stop = stop
        self._threads: List[Tuple[threading.Thread, float]] = []
        self.errors: List[BaseException] = []

    def start(self, name: str, target: Callable[[], None], join_timeout: float = 30.0) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # re-raised on the calling thread
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append((thread, join_timeout))
        thread.start()

    def failed(self) -> bool:
        return bool(self.errors)

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop.set()
        for thread, timeout in self._threads:
            thread.join(timeout)
        if self.errors and exc is None:
            raise self.errors[0]
