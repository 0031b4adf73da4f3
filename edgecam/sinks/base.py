"""The sink side: one base type for everything results and drawn frames go to, and one
fan-out that the app opens once and closes once, in file mode and live mode alike.

A sink is told about three things, each from one thread that the runner chooses:

  result(result)        every result, as it is made (the JSON lines, a progress bar, MQTT)
  frame(image, info)    a new frame, drawn (the video file, the window, the browser view)
  refresh(image, info)  the frame on screen redrawn without a new camera frame (a new result
                        landed, or nothing came for a while): a display shows it, a recording
                        does not

and gives back :class:`Intent` s: what the person watching asked for (quit, pause, a snapshot,
another model). A key press or a browser request becomes an intent here, never a key code;
the runner answers each with what it did. In live mode a sink is also told each change of a
live setting, by any route (``tuned``: the MQTT sink announces new lines and zones)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, NamedTuple, Optional

import numpy as np

log = logging.getLogger("edgecam.sinks")


class Intent(NamedTuple):
    """Something the person watching asked for."""

    kind: str                   # one of the names below
    key: Optional[str] = None    # for SET: the live control (edgecam.config.CONTROLS), by key or short name
    value: Any = None            # for SET: its new value, unchecked (the runner checks it)
    # told what was done: (done, one sentence, the value in force)
    reply: Optional[Callable[[bool, str, Any], None]] = None


QUIT = "quit"                   # q, Esc, the window closed
PAUSE = "pause"                 # space: stop inferring, freeze the picture (toggles)
OVERLAY = "overlay"             # o: drawing on/off (toggles)
SNAPSHOT = "snapshot"           # s: save the picture on screen
NEXT_MODEL = "next-model"       # m, or the browser's "next model"
SET = "set"                     # a live setting changed (browser controls and model choice, MQTT set topics)


def _no_status() -> dict:
    return {}


@dataclass
class FrameInfo:
    """What comes with a drawn frame: the result drawn on it (its boxes where they were drawn:
    moved with their tracks between results), the live status (a callable, so that only a
    sink that needs it, the browser view, pays for building it), and the source's frame
    (its clean picture, its capture time)."""

    result: Any = None
    status: Callable[[], dict] = _no_status
    frame: Any = None


class Sink:
    """Where results and drawn frames go. Open in the constructor (raise OutputError with one
    sentence when it can't), write synchronously, leave a complete file at close()."""

    wants_frames = True         # drawn frames (False: only results)

    def result(self, result) -> None:
        """A result, as it is made."""

    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        """A new frame, drawn."""

    def refresh(self, image: Optional[np.ndarray], info: FrameInfo) -> None:
        """The frame on screen, redrawn: not a new frame (nothing is recorded). None: no
        picture yet, only the status changed."""

    def intents(self) -> List[Intent]:
        """What the person watching asked for since the last call."""
        return []

    def watch(self, status: Callable[[], dict]) -> None:
        """Live mode, once at the start: the live status, for a sink that reads it on its own
        schedule (the metrics, when scraped)."""

    def tuned(self, key: str, value: Any) -> None:
        """Live mode: a live setting changed, by any route (edgecam/pipeline/tuning.py);
        ``value`` is in force now. Called on the output loop: queue, never wait."""

    def close(self) -> None:
        """Finish: the file is complete, the window gone, the server stopped."""


class Sinks(Sink):
    """The fan-out: every sink, told in order; closed all at once, each even if another fails."""

    def __init__(self, sinks: Iterable[Optional[Sink]] = ()):
        self.sinks: List[Sink] = [s for s in sinks if s is not None]
        self._framed = [s for s in self.sinks if s.wants_frames]

    @property
    def wants_frames(self) -> bool:                  # type: ignore[override]
        return bool(self._framed)

    def of_type(self, cls: type) -> List[Sink]:
        return [s for s in self.sinks if isinstance(s, cls)]

    def result(self, result) -> None:
        for s in self.sinks:
            s.result(result)

    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        for s in self._framed:
            s.frame(image, info)

    def refresh(self, image: Optional[np.ndarray], info: FrameInfo) -> None:
        for s in self._framed:
            s.refresh(image, info)

    def intents(self) -> List[Intent]:
        out: List[Intent] = []
        for s in self.sinks:
            out += s.intents()
        return out

    def watch(self, status: Callable[[], dict]) -> None:
        for s in self.sinks:
            s.watch(status)

    def tuned(self, key: str, value: Any) -> None:
        for s in self.sinks:
            s.tuned(key, value)

    def close(self) -> None:
        for s in reversed(self.sinks):
            try:
                s.close()
            except Exception as exc:  # closing one must not keep the others open
                log.warning("closing %s failed: %s", type(s).__name__, exc)
