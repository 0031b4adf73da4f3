"""What every source gives: frames stamped with their capture time, from a ``read()`` that
blocks until the next one. Threads live in edgecam/pipeline/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from edgecam.errors import SourceError


@dataclass
class Frame:
    index: int            # 0, 1, 2 ... in the order frames were captured
    t: float              # seconds: position in the media (files) or since the source opened (live)
    captured: float       # time.monotonic() when the frame was captured (or stamped by a camera)
    image: np.ndarray     # BGR, HxWx3 uint8
    lores: Optional[np.ndarray] = None   # a model-sized copy made by the camera (picamera2)


class Source:
    """A frame source behind one URI (like jetson-inference's videoSource). Everything the
    runners and sinks ask a source is declared here, with the value of a source that does not
    set it (nothing probes a source with getattr): wrappers copy exactly these (wrapper.py)."""

    name: str = "source"
    live: bool = False                    # a camera (keep only the newest frame) or a file (every frame)
    still: bool = False                   # photos: resize with INTER_AREA
    reconnectable: bool = False           # reopen() brings it back after it stopped delivering
    fps: Optional[float] = None
    frame_count: Optional[int] = None
    size: Tuple[int, int] = (0, 0)
    paths: Sequence[Path] = ()            # a photo source's photos, by frame index
    waiting: bool = False                 # a camera awaited, never opened yet (waiting.py)
    error: str = ""                       # why it is awaited: the last failure to open it
    read_timeout_s: float = 12.0          # a read() longer than this is a stuck source (watchdog)
    open_timeout_s: float = 30.0          # and so is a reopen() longer than this

    def read(self) -> Optional[Frame]:
        """The next frame; None when it has ended (files) or stopped delivering (cameras)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def reopen(self) -> None:
        """Reconnect a live source that stopped delivering (raises SourceError while it's gone)."""
        raise SourceError(f"{self.name} cannot be reopened")
