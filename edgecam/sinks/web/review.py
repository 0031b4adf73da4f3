"""The review page and the history's JSON API (edgecam/store/; each request is checked by the
Guard first, as every route is):

  GET /review                 the page: events newest first with thumbnails, filters, the clip
                              player, the charts (it holds no data: its script asks for it)
  GET /api/events?since=&until=&label=&place=&limit=&format=json|csv   events, newest first
  GET /api/events/ID.jpg      an event's annotated snapshot
  GET /api/labels             the labels and the lines/zones the history holds (the filters)
  GET /api/chart.svg?by=hour|day   the counts per hour (last 48 h) or per day (last 30 days) per
                              line/zone, direction and label, drawn here as SVG: whole at once
  GET /api/counts?since=&until=&by=minute|hour|day&format=json|csv     counts per bucket
  GET /api/clips/ID           a clip's video; a Range request gets 206 and that part (the
                              browser seeks), at most CHUNK bytes per answer

Times are seconds since 1970 or ISO dates (``2026-12-05T08:00``, local time when no zone is
given). A bad parameter is answered 400 with one sentence; a history that cannot be read, 503."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import os
import re
import sqlite3
import time
from typing import Callable, Dict, List, Optional, Protocol, Tuple

from edgecam.bounds import show
from edgecam.sinks.web.protocol import Request, response, text
from edgecam.sinks.web.review_page import chart, review_page
from edgecam.sinks.web.server import Reply

log = logging.getLogger("edgecam.web")

CHUNK = 1 << 20             # bytes of a clip per Range answer
WHOLE = 16 << 20            # a clip asked for without Range is answered whole up to this size
MAX_NAME = 40
JSON = "application/json"
VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mkv": "video/x-matroska", ".webm": "video/webm",
               ".mov": "video/quicktime", ".avi": "video/x-msvideo"}
SNAPSHOT = re.compile(r"/api/events/(\d{1,12})\.jpg")
CLIP = re.compile(r"/api/clips/(\d{1,12})")
RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Reader(Protocol):
    """What the review reads (edgecam/store/queries.py's History)."""

    pre_s: float

    def events(self, since: Optional[float] = None, until: Optional[float] = None, label: Optional[str] = None,
               place: Optional[str] = None, limit: int = 100) -> List[dict]: ...

    def snapshot(self, event_id: int) -> Optional[bytes]: ...

    def clip(self, clip_id: int) -> Optional[Tuple[str, Optional[float]]]: ...

    def counts(self, since: Optional[float] = None, until: Optional[float] = None,
               by: str = "hour") -> List[dict]: ...

    def labels(self) -> Tuple[List[str], List[str]]: ...


class Bad(ValueError):
    """A bad query parameter: its sentence is the 400's."""


class Review:
    def __init__(self, history: Optional[Reader]):
        self.history = history
        self.gets: Dict[str, Callable[[Request], bytes]] = {
            "/api/events": self.events, "/api/counts": self.counts,
            "/api/labels": self.labels, "/api/chart.svg": self.chart}

    def handles(self, path: str) -> bool:
        return path in self.gets or path.startswith("/api/")

    def handle(self, req: Request) -> Reply:
        if self.history is None:
            return Reply(text(404, "no history: it is kept in live mode with history.enabled (the default)"))
        try:
            route = self.gets.get(req.path)
            if route is not None:
                return Reply(route(req))
            for pattern, serve in ((SNAPSHOT, self.snapshot), (CLIP, self.clip)):
                m = pattern.fullmatch(req.path)
                if m:
                    return Reply(serve(req, int(m.group(1))))
            return Reply(text(404, "not found"))
        except Bad as exc:
            return Reply(text(400, str(exc)))
        except sqlite3.Error as exc:
            log.warning("review: the history cannot be read: %s", exc)
            return Reply(text(503, "the history cannot be read now (the log says why)"))

    def page_html(self) -> bytes:
        """The page's shell (the routes serve it to anyone, as the live page: it holds no data)."""
        return review_page(self.history.pre_s if self.history else 0.0)

    def labels(self, req: Request) -> bytes:
        _query(req, set())
        labels, places = self.history.labels() if self.history else ([], [])
        return response(200, JSON, json.dumps({"labels": labels, "places": places}).encode())

    def chart(self, req: Request) -> bytes:
        by = _query(req, {"by"}).get("by", "hour")
        if by not in ("hour", "day"):
            raise Bad(f"by must be hour or day, not {show(by, 20)}")
        back, title = ((48 * 3600, "counts per hour, last 48 hours") if by == "hour"
                       else (30 * 86400, "counts per day, last 30 days"))
        rows = self.history.counts(time.time() - back, None, by) if self.history else []
        return response(200, "image/svg+xml", chart(rows, by, title).encode())

    def events(self, req: Request) -> bytes:
        q = _query(req, {"since", "until", "label", "place", "limit", "format"})
        rows = self.history.events(_time(q, "since"), _time(q, "until"), _name(q, "label"), _name(q, "place"),
                                   _limit(q)) if self.history else []
        columns = ["id", "time", "ts", "event", "label", "place", "direction", "track", "score", "seconds", "clip"]
        return _answer(q, {"events": rows}, rows, columns)

    def counts(self, req: Request) -> bytes:
        q = _query(req, {"since", "until", "by", "format"})
        by = q.get("by", "hour")
        if by not in ("minute", "hour", "day"):
            raise Bad(f"by must be minute, hour or day, not {show(by, 20)}")
        rows = self.history.counts(_time(q, "since"), _time(q, "until"), by) if self.history else []
        for r in rows:
            r["time"] = dt.datetime.fromtimestamp(r["t"]).isoformat(timespec="minutes")
        return _answer(q, {"by": by, "counts": rows}, rows, ["time", "t", "place", "label", "what", "n"])

    def snapshot(self, req: Request, event_id: int) -> bytes:
        jpeg = self.history.snapshot(event_id) if self.history else None
        return response(200, "image/jpeg", jpeg) if jpeg else text(404, "no snapshot kept for this event")

    def clip(self, req: Request, clip_id: int) -> bytes:
        found = self.history.clip(clip_id) if self.history else None
        if found is None:
            return text(404, "no such clip")
        path = found[0]
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                start, end = _range(req.header("range"), size)
                if start is None and size > WHOLE:
                    return text(416, f"the clip is larger than {WHOLE >> 20} MB: ask for a Range of it")
                f.seek(start or 0)
                data = f.read((end - (start or 0) + 1) if start is not None else size)
        except OSError:
            return text(404, "this clip is no longer kept")
        ctype = VIDEO_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")
        if start is None:
            return response(200, ctype, data, headers={"Accept-Ranges": "bytes"})
        return response(206, ctype, data, headers={"Accept-Ranges": "bytes",
                                                   "Content-Range": f"bytes {start}-{start + len(data) - 1}/{size}"})


def _range(header: str, size: int) -> Tuple[Optional[int], int]:
    """(first, last) byte of a Range header (first None: no Range, the whole file); at most
    CHUNK bytes; Bad for a range this file does not have."""
    if not header:
        return None, size - 1
    m = RANGE.fullmatch(header.strip())
    if not m or not (m.group(1) or m.group(2)):
        raise Bad("Range must be bytes=FIRST-[LAST] or bytes=-LENGTH (one range)")
    if m.group(1):
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else size - 1
    else:
        first, last = max(0, size - int(m.group(2))), size - 1
    if first >= size or last < first:
        raise Bad(f"the Range is outside the clip ({size} bytes)")
    return first, min(last, size - 1, first + CHUNK - 1)


def _answer(q: Dict[str, str], body: dict, rows: List[dict], columns: List[str]) -> bytes:
    fmt = q.get("format", "json")
    if fmt == "json":
        return response(200, JSON, json.dumps(body).encode())
    if fmt != "csv":
        raise Bad(f"format must be json or csv, not {show(fmt, 20)}")
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return response(200, "text/csv; charset=utf-8", out.getvalue().encode(),
                    headers={"Content-Disposition": 'attachment; filename="edgecam.csv"'})


def _query(req: Request, known: set) -> Dict[str, str]:
    unknown = sorted(set(req.query) - known - {"token", "ticket"})     # (the view's, checked by the Guard)
    if unknown:
        raise Bad(f"unknown parameter {show(unknown[0], 30)}: use {', '.join(sorted(known))}")
    return req.query


def _time(q: Dict[str, str], key: str) -> Optional[float]:
    value = q.get(key, "").strip()
    if not value:
        return None
    try:
        t = float(value)
        if math.isfinite(t) and abs(t) < 1e11:
            return t
    except ValueError:
        try:
            return dt.datetime.fromisoformat(value).timestamp()
        except (ValueError, OverflowError, OSError):
            pass
    raise Bad(f"{key} must be a time: seconds since 1970 or an ISO date such as 2026-12-05T08:00, "
              f"not {show(value, 30)}")


def _name(q: Dict[str, str], key: str) -> Optional[str]:
    value = q.get(key, "")
    if len(value) > MAX_NAME or not value.isprintable():
        raise Bad(f"{key} must be a name of 1 to {MAX_NAME} printable characters")
    return value or None


def _limit(q: Dict[str, str]) -> int:
    value = q.get("limit", "100")
    if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= 1000:
        raise Bad(f"limit must be a whole number from 1 to 1000, not {show(value, 20)}")
    return int(value)
