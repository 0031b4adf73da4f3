"""The history's SQLite file: opened in WAL mode (a write is whole or absent after a SIGKILL
or a power cut; readers never block the writer), its tables, the writes, and pruning.

A file SQLite cannot read (not a database, a malformed page) is moved aside as
``history.db.corrupt`` (the one before it replaced: one is kept) with one warning, and a new
one is made. Pruning deletes the oldest rows first: what is older than ``keep_days``, then,
while the file's pages in use pass ``max_mb``, the oldest events (their snapshots are the
bulk), then status samples, then counts; freed pages are given back to the file system
(auto_vacuum = incremental)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from edgecam.bounds import path_text

log = logging.getLogger("edgecam.store")

BUSY_MS = 5000          # another process writing (a second edgecam): wait this long
PRUNE_BATCH = 500       # rows deleted per statement while over the size cap
SCHEMA = """
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, ts REAL NOT NULL, run INTEGER NOT NULL,
    t REAL, kind TEXT NOT NULL, track INTEGER, label TEXT, place TEXT, direction TEXT, data TEXT,
    clip INTEGER, clip_at REAL, snapshot BLOB, crop BLOB);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_track ON events(run, track);
CREATE TABLE IF NOT EXISTS clips(id INTEGER PRIMARY KEY, ts REAL NOT NULL, run INTEGER NOT NULL,
    path TEXT NOT NULL, seconds REAL, start_t REAL, frames INTEGER, events INTEGER);
CREATE INDEX IF NOT EXISTS clips_ts ON clips(ts);
CREATE TABLE IF NOT EXISTS counts(minute INTEGER NOT NULL, run INTEGER NOT NULL, place TEXT NOT NULL,
    label TEXT NOT NULL, what TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY(minute, run, place, label, what)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS status(ts REAL NOT NULL, run INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS status_ts ON status(ts);
"""
CountKey = Tuple[str, str, str]     # (line or zone, label, in | out | entered)


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the history at ``path`` (the caller's thread only)."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_MS / 1000)
    else:
        conn = sqlite3.connect(str(path), timeout=BUSY_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    return conn


def corrupt(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says the file is not a readable database (not: locked, full, absent)."""
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def open_db(path: Path) -> sqlite3.Connection:
    """The history at ``path``, made when absent; a corrupt one moved aside (one warning) and
    made anew. sqlite3.Error when it cannot be opened or made (a full disk, no permission)."""
    try:
        return _open(path)
    except sqlite3.DatabaseError as exc:
        if not corrupt(exc):
            raise
        aside = path.with_name(path.name + ".corrupt")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(path) + suffix)
            if part.exists():
                os.replace(part, Path(str(aside) + suffix))
        log.warning("history: %s could not be read (%s): moved aside to %s, starting a new one",
                    path_text(path), exc, path_text(aside))
        return _open(path)


def _open(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    try:
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")       # (only before the first table)
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise sqlite3.OperationalError("the file system does not allow WAL mode")
        conn.execute("PRAGMA synchronous=NORMAL")                 # WAL: a power cut loses at most the last commits
        check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")
        conn.executescript(SCHEMA)
        if "crop" not in [r[1] for r in conn.execute("PRAGMA table_info(events)")]:   # (a file made before crops)
            conn.execute("ALTER TABLE events ADD COLUMN crop BLOB")
    except BaseException:
        conn.close()
        raise
    return conn


# -- writes (the writer thread: each call inside its transaction) ----------------------------------
def add_event(conn: sqlite3.Connection, run: int, ts: float, event: dict, snapshot: Optional[bytes],
              crop: Optional[bytes] = None) -> None:
    place = event.get("line") or event.get("zone")
    conn.execute("INSERT INTO events(ts, run, t, kind, track, label, place, direction, data, snapshot, crop) "
                 "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                 (ts, run, event.get("t"), event.get("event", "?"), event.get("id"), event.get("label"), place,
                  event.get("direction"), json.dumps(event, default=str), snapshot, crop))


def set_counts(conn: sqlite3.Connection, run: int, minutes: Dict[int, Dict[CountKey, int]]) -> None:
    """Each minute's counts of this run, as they stand (whole values: sent again, replaced)."""
    conn.executemany("INSERT OR REPLACE INTO counts(minute, run, place, label, what, n) VALUES (?,?,?,?,?,?)",
                     [(m, run, *key, n) for m, per in minutes.items() for key, n in per.items()])


def add_status(conn: sqlite3.Connection, run: int, ts: float, status: dict) -> None:
    conn.execute("INSERT INTO status(ts, run, data) VALUES (?,?,?)", (ts, run, json.dumps(status, default=str)))


def add_clip(conn: sqlite3.Connection, run: int, ts: float, path: str, side: dict) -> int:
    """A finished clip (its sidecar ``side``); its events, stored before, point to it."""
    events: List[dict] = [e for e in side.get("events") or [] if isinstance(e, dict)]
    start = side.get("start_t")
    cur = conn.execute("INSERT INTO clips(ts, run, path, seconds, start_t, frames, events) VALUES (?,?,?,?,?,?,?)",
                       (ts, run, path, side.get("seconds"), start, side.get("frames"), len(events)))
    clip = int(cur.lastrowid or 0)
    conn.executemany("UPDATE events SET clip=?, clip_at=? WHERE run=? AND track=? AND kind=? AND t=?",
                     [(clip, _offset(e.get("t"), start), run, e.get("id"), e.get("event"), e.get("t"))
                      for e in events])
    return clip


def _offset(t, start) -> Optional[float]:
    if isinstance(t, (int, float)) and isinstance(start, (int, float)):
        return round(max(0.0, t - start), 3)
    return None


# -- pruning ----------------------------------------------------------------------------------
def used_bytes(conn: sqlite3.Connection) -> int:
    pages, free, size = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count",
                                                                                "page_size"))
    return (pages - free) * size


def prune(conn: sqlite3.Connection, keep_days: float, max_mb: float, now: Optional[float] = None) -> int:
    """Delete what is older than ``keep_days``, then the oldest rows while over ``max_mb``;
    the rows deleted come back. Commits as it goes (the writer's transaction is not open)."""
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    deleted = 0
    with conn:
        for table, column in (("events", "ts"), ("clips", "ts"), ("status", "ts"), ("counts", "minute")):
            deleted += conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,)).rowcount
    for table, n in _oldest_first(conn, max_mb * 1e6):
        oldest = ("minute <= (SELECT MIN(minute) FROM counts)" if table == "counts" else
                  f"rowid IN (SELECT rowid FROM {table} ORDER BY rowid LIMIT {n})")
        with conn:
            deleted += conn.execute(f"DELETE FROM {table} WHERE {oldest}").rowcount
    if deleted:
        conn.executescript("PRAGMA incremental_vacuum;")          # (execute() frees one page only)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()   # the file shrinks now
    return deleted


def _oldest_first(conn: sqlite3.Connection, limit: float) -> Iterable[Tuple[str, int]]:
    """The table to delete from next, and how many of its oldest rows, while the file is over
    ``limit`` bytes (the share of its rows that is the share of the bytes over, at most PRUNE_BATCH)."""
    for table in ("events", "status", "counts"):
        while True:
            used = used_bytes(conn)
            rows = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            if used <= limit or not rows:
                break
            yield table, min(PRUNE_BATCH, int(rows * (used - limit) / used) + 1)
