"""The history's writer thread: the pipeline hands it items through a bounded queue and never
waits (a full queue drops the item, counts it, and says so once); the thread encodes the
snapshots, writes a batch per transaction, and prunes.

A write that fails (a full disk, the file gone read-only) rolls back whole, is said once in one
error line, and is tried again every RETRY_S with what came meanwhile (at most MAX_PENDING
items kept; beyond, the oldest are dropped and counted): nothing already stored is touched.
Edgecam runs this thread outside edgecam/pipeline/, like the browser view's server."""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, List, Optional, Tuple

import cv2

from edgecam.bounds import path_text
from edgecam.store import db

log = logging.getLogger("edgecam.store")

QUEUE = 256             # items waiting for the writer
MAX_PENDING = 2000      # items kept (encoded) while writes fail
RETRY_S = 30.0          # a failed write (or open) is tried again this often
PRUNE_S = 600.0         # pruning by age and size this often
BATCH = 200             # items per transaction at most
QUALITY = 70            # the snapshots' JPEG quality
MAX_SIDECAR = 1 << 20   # bytes of a clip's sidecar read
Item = Tuple[str, Any]


class Writer:
    def __init__(self, path: Path, run: int, keep_days: float, max_mb: float):
        self.path, self.run, self.keep_days, self.max_mb = path, run, keep_days, max_mb
        self.queue: "queue.Queue[Optional[Item]]" = queue.Queue(QUEUE)
        self.pending: List[Item] = []
        self.conn: Optional[sqlite3.Connection] = None
        self.failing: Optional[str] = None       # why writing fails now
        self.retry_at = self.prune_at = 0.0
        self.stats = {"written": 0, "dropped": 0, "failed_writes": 0}
        self.said_full = False
        self.cpu_s = 0.0                          # the thread's CPU time so far (encoding, writing, pruning)
        self.thread = threading.Thread(target=self._run, name="edgecam-history", daemon=True)

    def start(self) -> "Writer":
        if self.failing:                          # (the file could not be opened: tried again later)
            self.retry_at = time.monotonic() + RETRY_S
        self.thread.start()
        return self

    # -- the pipeline's side: never waits -----------------------------------------------------------
    def put(self, kind: str, data: Any) -> bool:
        try:
            self.queue.put_nowait((kind, data))
            return True
        except queue.Full:
            self.stats["dropped"] += 1
            if not self.said_full:
                self.said_full = True
                log.warning("history: the writer is behind; items are dropped (counted in /status history.dropped)")
            return False

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (within ``timeout``) and stop."""
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self.thread.join(timeout)

    def status(self) -> dict:
        return {**self.stats, "queued": self.queue.qsize(), "pending": len(self.pending),
                "failing": self.failing}

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        closing = False
        while not closing:
            closing = self._take(timeout=1.0)
            now = time.monotonic()
            if now >= self.retry_at or closing:
                self._write(now)
            if self.conn is not None and now >= self.prune_at and not self.failing:
                self.prune_at = now + PRUNE_S
                self._prune()
            self.cpu_s = time.thread_time()
        if self.conn is not None:
            self.conn.close()

    def _take(self, timeout: float) -> bool:
        """Move what is queued to ``pending`` (encoded); True when asked to close."""
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return False
        while item is not None:
            self.pending.append(_encoded(item))
            if len(self.pending) > MAX_PENDING:
                del self.pending[0]
                self.stats["dropped"] += 1
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return False
        return True

    def _write(self, now: float) -> None:
        while self.pending:
            batch = self.pending[:BATCH]
            try:
                conn = self._connection()
                with conn:
                    for kind, data in batch:
                        self._apply(conn, kind, data)
            except (sqlite3.Error, OSError) as exc:
                return self._failed(exc, now)
            del self.pending[:len(batch)]
            self.stats["written"] += len(batch)
            if self.failing:
                log.warning("history: writing again (%s before)", self.failing)
                self.failing = None

    def _connection(self) -> sqlite3.Connection:
        if self.conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = db.open_db(self.path)
        return self.conn

    def _failed(self, exc: Exception, now: float) -> None:
        self.stats["failed_writes"] += 1
        self.retry_at = now + RETRY_S
        if self.conn is not None and isinstance(exc, sqlite3.Error) and db.corrupt(exc):
            self.conn.close()                # reopened next time: moved aside, made anew
            self.conn = None
        if self.failing is None:
            self.failing = str(exc) or type(exc).__name__
            log.error("history: cannot write to %s: %s (the run goes on; trying again every %g s)",
                      path_text(self.path), self.failing, RETRY_S)

    def _apply(self, conn: sqlite3.Connection, kind: str, data: Any) -> None:
        if kind == "event":
            ts, event, jpeg, crop = data
            db.add_event(conn, self.run, ts, event, jpeg, crop)
        elif kind == "counts":
            db.set_counts(conn, self.run, data)
        elif kind == "status":
            db.add_status(conn, self.run, *data)
        elif kind == "clip":
            ts, path, side = data
            db.add_clip(conn, self.run, ts, path, side)

    def _prune(self) -> None:
        try:
            deleted = db.prune(self._connection(), self.keep_days, self.max_mb)
        except (sqlite3.Error, OSError) as exc:
            return self._failed(exc, time.monotonic())
        if deleted:
            log.info("history: %d old rows deleted (history.keep_days, history.max_mb)", deleted)


def _encoded(item: Item) -> Item:
    """An item as it is kept until written: an event's picture as JPEG, a clip's sidecar read."""
    kind, data = item
    if kind == "event":              # (the annotated snapshot, the object's clean crop)
        ts, event, image, *crop = data
        return kind, (ts, event, _jpeg(image), _jpeg(crop[0] if crop else None))
    if kind == "clip":                   # (the wall time of the run's t = 0, the video)
        t0, path = data
        side = _sidecar(Path(path))
        wall, start = side.get("start"), side.get("start_t")        # ("start": the wall clock, when given)
        ts = wall if _number(wall) else t0 + start if _number(start) else time.time()
        return kind, (ts, str(path), side)
    return item


def _jpeg(image) -> Optional[bytes]:
    if image is None:
        return None
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return buf.tobytes() if ok else None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sidecar(video: Path) -> dict:
    """A clip's JSON sidecar (an empty one when it cannot be read)."""
    try:
        with open(video.with_suffix(".json"), "rb") as f:
            side = json.loads(f.read(MAX_SIDECAR))
        return side if isinstance(side, dict) else {}
    except (OSError, ValueError):
        return {}
