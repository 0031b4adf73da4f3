"""A camera that is not there yet: a service started before the camera is plugged in waits
for it (under systemd; at a terminal a missing camera is one sentence and exit 1)."""

from __future__ import annotations

from typing import Optional

from edgecam.config import SourceConfig
from edgecam.errors import SourceError
from edgecam.sources.base import Frame, Source
from edgecam.sources.opencv import NETWORK


def is_camera(uri: str) -> bool:
    """Whether ``uri`` names a camera or a stream (something that can appear later), not a file."""
    uri = str(uri).strip()
    return (uri == "auto" or uri.startswith("picamera2") or uri.isdigit() or uri.startswith("/dev/video")
            or (uri.startswith("csi://") and uri[6:].isdigit()) or "!" in uri or uri.lower().startswith(NETWORK))


class WaitingCamera(Source):
    """A camera that could not be opened at start, waited for: read() gives None (so the
    live pipeline reconnects with backoff) until reopen() manages to open it; from then on
    it is that camera. ``waiting`` says whether it has ever opened; ``error`` why not."""

    live = True
    reconnectable = True

    def __init__(self, cfg: SourceConfig, opener, error: str):
        self.cfg, self._opener, self.error = cfg, opener, error
        self.name = str(cfg.uri)
        self.size = (cfg.width, cfg.height)
        self.fps = None
        self.inner: Optional[Source] = None
        self.read_timeout_s = self.open_timeout_s = 30.0

    @property
    def waiting(self) -> bool:
        return self.inner is None

    def read(self) -> Optional[Frame]:
        return self.inner.read() if self.inner is not None else None

    def reopen(self) -> None:
        if self.inner is not None:
            self.inner.reopen()
            return
        try:
            self.inner = self._opener()
        except SourceError as exc:
            self.error = str(exc)
            raise
        self.name, self.size, self.fps = self.inner.name, self.inner.size, self.inner.fps
        for key in ("read_timeout_s", "open_timeout_s"):
            setattr(self, key, getattr(self.inner, key, 30.0))

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
