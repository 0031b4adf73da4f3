"""A bounded hand-over to an encoder's stdin, written from a thread of its own: the output
loop does not wait on the encoder's start (ffmpeg takes 0.1-0.15 s to read its first byte:
a clip's start, pre-roll and first frames, stalled the live output loop that long and lost
a frame or two of a 10 fps camera) nor on one slow frame; only a backlog over the bound
makes it wait (back-pressure, as a pipe gives), so memory stays bounded."""

from __future__ import annotations

import threading
from collections import deque
from typing import IO, Deque, List, Optional, Tuple, Union

Chunk = Union[bytes, memoryview]      # (an array's .data: its bytes, not copied)
MAX_BYTES = 16_000_000    # waiting at most: 11 frames of 720p I420, 32 of 768x432


class Feeder:
    def __init__(self, stream: IO[bytes], max_bytes: int = MAX_BYTES):
        self.stream, self.max_bytes = stream, max_bytes
        self.cond = threading.Condition()
        self.items: Deque[Tuple[List[memoryview], int]] = deque()
        self.bytes = 0
        self.closing = False
        self.error: Optional[BaseException] = None     # the first write that failed
        self.thread = threading.Thread(target=self._run, name="encoder-feed", daemon=True)
        self.thread.start()

    def put(self, *chunks: Chunk) -> None:
        """Queue ``chunks`` (written in order, whole); waits while the backlog is over the bound."""
        views = [memoryview(c) for c in chunks]
        n = sum(v.nbytes for v in views)
        with self.cond:
            self.cond.wait_for(lambda: not self.bytes or self.bytes + n <= self.max_bytes or self.error is not None)
            self.items.append((views, n))
            self.bytes += n
            self.cond.notify_all()

    def _run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: bool(self.items) or self.closing)
                if not self.items:
                    break
                chunks, n = self.items[0]
            if self.error is None:
                try:
                    for chunk in chunks:
                        self.stream.write(chunk)
                except (OSError, ValueError) as exc:     # the encoder is gone (a full disk, a crash)
                    self.error = exc
            with self.cond:
                self.items.popleft()
                self.bytes -= n
                self.cond.notify_all()
        try:
            self.stream.close()                          # the end of the input: the encoder finishes
        except (OSError, ValueError) as exc:
            self.error = self.error or exc

    def close(self) -> None:
        """Write what is queued, then close the stream (from the thread: join() waits for it)."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
