"""The history's reading side (the browser view's workers, the start's totals): each call opens
its own read-only connection (WAL: readers never wait for the writer, nor it for them).

Times are seconds since 1970 (UTC); hours and days are local, as the device's clock keeps them."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from edgecam.store.db import CountKey, connect

MAX_LIMIT = 1000
BUCKETS = {   # a count's minute -> the start of its bucket (local hours and days)
    "minute": "minute",
    "hour": "CAST(strftime('%s', strftime('%Y-%m-%d %H:00:00', minute, 'unixepoch', 'localtime'), 'utc') AS INTEGER)",
    "day": "CAST(strftime('%s', date(minute, 'unixepoch', 'localtime'), 'utc') AS INTEGER)",
}
EVENT_COLUMNS = ("id, ts, kind, track, label, place, direction, data, clip, clip_at, snapshot IS NOT NULL, "
                 "crop IS NOT NULL")


def midnight(now: Optional[float] = None) -> float:
    """Today's local midnight, in seconds since 1970."""
    day = dt.datetime.fromtimestamp(time.time() if now is None else now).date()
    return dt.datetime.combine(day, dt.time()).timestamp()


class History:
    """Read the history at ``path`` (sqlite3.Error when it cannot be read)."""

    def __init__(self, path: Path, pre_s: float = 0.0):
        self.path, self.pre_s = path, pre_s

    def _conn(self) -> sqlite3.Connection:
        return connect(self.path, readonly=True)

    def events(self, since: Optional[float] = None, until: Optional[float] = None, label: Optional[str] = None,
               place: Optional[str] = None, limit: int = 100) -> List[dict]:
        """Events, newest first (without their snapshots: ``snapshot`` says whether one is kept)."""
        where, args = _window("ts", since, until)
        for column, value in (("label", label), ("place", place)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        sql = (f"SELECT {EVENT_COLUMNS} FROM events" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY ts DESC, id DESC LIMIT ?")
        with self._conn() as conn:
            rows = conn.execute(sql, (*args, max(1, min(limit, MAX_LIMIT)))).fetchall()
        return [_event(r) for r in rows]

    def snapshot(self, event_id: int) -> Optional[bytes]:
        with self._conn() as conn:
            row = conn.execute("SELECT snapshot FROM events WHERE id = ?", (event_id,)).fetchone()
        return row[0] if row and row[0] else None

    def crop(self, event_id: int) -> Optional[Tuple[bytes, dict]]:
        """An event's clean crop (JPEG, the object without drawing) and the event, or None."""
        with self._conn() as conn:
            row = conn.execute("SELECT crop, data FROM events WHERE id = ?", (event_id,)).fetchone()
        return (row[0], json.loads(row[1] or "{}")) if row and row[0] else None

    def clip(self, clip_id: int) -> Optional[Tuple[str, Optional[float]]]:
        """A clip's path and length in seconds, or None."""
        with self._conn() as conn:
            row = conn.execute("SELECT path, seconds FROM clips WHERE id = ?", (clip_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def counts(self, since: Optional[float] = None, until: Optional[float] = None, by: str = "hour") -> List[dict]:
        """Counts per bucket (``by``: minute, hour or day), line or zone, label and direction."""
        where, args = _window("minute", since, until)
        bucket = BUCKETS[by]
        sql = (f"SELECT {bucket} AS b, place, label, what, SUM(n) FROM counts"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " GROUP BY b, place, label, what ORDER BY b, place, label, what")
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [{"t": r[0], "place": r[1], "label": r[2], "what": r[3], "n": r[4]} for r in rows if r[4]]

    def labels(self) -> Tuple[List[str], List[str]]:
        """The labels and the lines/zones the history holds (for the review page's filters)."""
        with self._conn() as conn:
            labels = [r[0] for r in conn.execute("SELECT DISTINCT label FROM counts UNION "
                                                 "SELECT DISTINCT label FROM events WHERE label IS NOT NULL")]
            places = [r[0] for r in conn.execute("SELECT DISTINCT place FROM counts")]
        return sorted(labels), sorted(places)


def today_totals(conn: sqlite3.Connection, now: Optional[float] = None) -> Dict[CountKey, int]:
    """Today's counts (since local midnight) per line or zone, label and direction."""
    rows = conn.execute("SELECT place, label, what, SUM(n) FROM counts WHERE minute >= ? GROUP BY place, label, what",
                        (int(midnight(now)),)).fetchall()
    return {(r[0], r[1], r[2]): int(r[3]) for r in rows if r[3]}


def _window(column: str, since: Optional[float], until: Optional[float]) -> Tuple[List[str], list]:
    where: List[str] = []
    args: list = []
    if since is not None:
        where.append(f"{column} >= ?")
        args.append(since)
    if until is not None:
        where.append(f"{column} < ?")
        args.append(until)
    return where, args


def _event(r) -> dict:
    try:
        data = json.loads(r[7]) if r[7] else {}
    except ValueError:
        data = {}
    return {"id": r[0], "ts": round(r[1], 3), "time": dt.datetime.fromtimestamp(r[1]).isoformat(timespec="seconds"),
            "event": r[2], "track": r[3], "label": r[4], "place": r[5], "direction": r[6],
            "score": data.get("score"), "seconds": data.get("seconds"), "clip": r[8], "clip_at": r[9],
            "snapshot": bool(r[10]), "crop": bool(r[11]), "detected_as": data.get("detected_as")}
