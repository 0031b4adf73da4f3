"""A camera that is not there yet: a service started before the camera is plugged in waits
for it (under systemd; at a terminal a missing camera is one sentence and exit 1)."""

from __future__ import annotations

from typing import Callable, Optional

from edgecam.config import SourceConfig
from edgecam.errors import SourceError
from edgecam.sources.base import Frame, Source
from edgecam.sources.opencv import NETWORK
from edgecam.sources.wrapper import Wrapper


def is_camera(uri: str) -> bool:
    """Whether ``uri`` names a camera or a stream (something that can appear later), not a file."""
    uri = str(uri).strip()
    return (uri == "auto" or uri.startswith("picamera2") or uri.isdigit() or uri.startswith("/dev/video")
            or (uri.startswith("csi://") and uri[6:].isdigit()) or "!" in uri or uri.lower().startswith(NETWORK))


class Absent(Source):
    """The camera not there yet: no frames, its URI and configured size, and why it is not."""

    live = True
    reconnectable = True
    waiting = True

    def __init__(self, cfg: SourceConfig, error: str):
        self.name, self.size, self.error = str(cfg.uri), (cfg.width, cfg.height), error
        self.read_timeout_s = self.open_timeout_s = 30.0

    def read(self) -> Optional[Frame]:
        return None

    def reopen(self) -> None:
        raise SourceError(self.error)


class WaitingCamera(Wrapper):
    """A camera that could not be opened at start, waited for: read() gives None (so the
    live pipeline reconnects with backoff) until reopen() manages to open it; from then on
    it is that camera. ``waiting`` says whether it has ever opened; ``error`` why not."""

    def __init__(self, cfg: SourceConfig, opener: Callable[[], Source], error: str):
        self._opener = opener
        self.absent = Absent(cfg, error)
        super().__init__(self.absent)

    def reopen(self) -> None:
        if self.inner is not self.absent:
            super().reopen()
            return
        try:
            self.inner = self._opener()
        except SourceError as exc:
            self.absent.error = str(exc)
            raise
        finally:
            self.sync()
