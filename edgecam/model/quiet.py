"""The TFLite runtime's own chatter, kept off the user's terminal: its C++ side writes
"INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to stderr (file descriptor 2, out
of Python's reach) when an interpreter is made ready. :func:`runtime_chatter_hidden` catches
fd 2 around that, drops those INFO lines and writes anything else back to stderr, so a real
error from the runtime still shows. With ``--log-level debug`` nothing is hidden."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from typing import Iterator

log = logging.getLogger("edgecam.model")

# what the runtime prints at every interpreter it readies: nothing a user can act on
CHATTER = re.compile(rb"^INFO: (Created TensorFlow Lite (XNNPACK )?delegate for CPU\.|"
                     rb"Initialized TensorFlow Lite runtime\.)\s*$")
_lock = threading.Lock()     # fd 2 is the process's: one redirection at a time


def drop_chatter(text: bytes) -> bytes:
    """``text`` without the runtime's INFO lines."""
    return b"".join(line for line in text.splitlines(keepends=True) if not CHATTER.match(line))


@contextlib.contextmanager
def runtime_chatter_hidden() -> Iterator[None]:
    """fd 2 caught while the block runs (an interpreter made and allocated); what it caught is
    written back to stderr afterwards, less the runtime's INFO lines. A no-op at debug level."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    with _lock, tempfile.TemporaryFile() as caught:
        _flush()
        saved = os.dup(2)
        try:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                _flush()
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        caught.seek(0)
        rest = drop_chatter(caught.read())
        if rest:
            os.write(2, rest)


def _flush() -> None:
    for stream in (sys.stderr, sys.__stderr__):      # (sys.__stderr__ is None without a console)
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
