"""The base of sources that wrap a source: flips and turns (transform.py), a camera awaited
(waiting.py), the bench's cut and stamped sources (edgecam/bench/variants.py)."""

from __future__ import annotations

from typing import Optional

from edgecam.sources.base import Frame, Source

# what a source says about itself (every attribute Source declares), copied from the inner one
DECLARED = ("name", "live", "still", "reconnectable", "fps", "frame_count", "size", "paths", "waiting", "error",
            "read_timeout_s", "open_timeout_s")


class Wrapper(Source):
    """A source passed through: it reads, closes and reopens the inner source and says what it
    says, copied when wrapped and again after every reopen() (which can change them: a camera
    awaited takes its camera's name and size when it opens, and a failure's reason).
    Subclasses change what they change in :meth:`sync`."""

    def __init__(self, inner: Source):
        self.inner = inner
        self.sync()

    def sync(self) -> None:
        for key in DECLARED:
            setattr(self, key, getattr(self.inner, key))

    def read(self) -> Optional[Frame]:
        return self.inner.read()

    def reopen(self) -> None:
        try:
            self.inner.reopen()
        finally:    # a failed reopen can change what it says too (a waiting camera's error)
            self.sync()

    def close(self) -> None:
        self.inner.close()
