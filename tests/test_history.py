"""The history (edgecam/store/), for real: a SQLite file written by its own thread, read back
through the review's queries; bounded by age and size, oldest first; a SIGKILL mid-write
leaves every committed row and a file that opens; a corrupt file is moved aside in one
sentence; a full disk (a real tmpfs) fails the writes in one error line, keeps what was stored,
never blocks the caller, and writes again once space returns. The live run (today's totals
across a restart, the review page in Chromium) is in test_history_live.py."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgecam.model.results import Result
from edgecam.sinks.base import FrameInfo
from edgecam.sinks.web.protocol import Request
from edgecam.sinks.web.review import Review
from edgecam.sources import Frame
from edgecam.store import db, writer
from edgecam.store.queries import History, today_totals
from edgecam.store.settings import HistoryConfig
from edgecam.store.sink import HistorySink
from edgecam.track.today import Today, with_today
from test_survive import fill, small_disk  # noqa: F401 (the fixture)

EVENT = {"event": "cross", "line": "door", "direction": "in", "id": 1, "label": "person", "t": 1.0,
         "frame": 10, "score": 0.9, "box": [1, 2, 3, 4]}


def picture(seed: int = 0) -> np.ndarray:
    """A 320x180 picture that JPEG does not shrink to nothing (noise)."""
    return np.random.default_rng(seed).integers(0, 255, (180, 320, 3), dtype=np.uint8)


def write(path: Path, items, keep_days: float = 30, max_mb: float = 500) -> writer.Writer:
    w = writer.Writer(path, 1, keep_days, max_mb).start()
    for kind, data in items:
        assert w.put(kind, data)
    w.close()
    return w


def rows(path: Path, sql: str):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_events_counts_and_clips_are_stored_and_read_back(tmp_path):
    path, now = tmp_path / "history.db", time.time()
    minute = int(now // 60 * 60)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 1000)
    clip.with_suffix(".json").write_text('{"start_t": 0.5, "seconds": 3.0, "frames": 30, '
                                         '"events": [{"event": "cross", "id": 1, "t": 1.0}]}')
    write(path, [("event", (now - 5, dict(EVENT, event="new"), picture())), ("event", (now, EVENT, picture(1))),
                 ("counts", {minute: {("door", "person", "in"): 2, ("door", "person", "out"): 1}}),
                 ("counts", {minute: {("door", "person", "in"): 3, ("door", "person", "out"): 1}}),  # replaced
                 ("status", (now, {"frames": 5})), ("clip", (now - 1.0, str(clip)))])
    h = History(path)
    events = h.events()
    assert [e["event"] for e in events] == ["cross", "new"] and events[0]["snapshot"]   # newest first
    assert events[0]["clip"] == 1 and events[0]["clip_at"] == 0.5 and events[1]["clip"] is None
    assert h.snapshot(events[0]["id"])[:2] == b"\xff\xd8"                               # a JPEG
    assert h.clip(1) == (str(clip), 3.0)
    assert h.events(label="car") == [] and len(h.events(place="door")) == 2 and len(h.events(limit=1)) == 1
    assert h.events(since=now - 1) == events[:1]
    by_hour = h.counts(by="hour")
    assert {(r["what"], r["n"]) for r in by_hour} == {("in", 3), ("out", 1)}
    assert by_hour[0]["t"] <= minute < by_hour[0]["t"] + 3600
    with sqlite3.connect(path) as conn:
        assert today_totals(conn) == {("door", "person", "in"): 3, ("door", "person", "out"): 1}
    assert rows(path, "PRAGMA journal_mode")[0][0] == "wal"


def test_pruned_by_age_and_by_size_oldest_first(tmp_path):
    path, now = tmp_path / "history.db", time.time()
    old = [("event", (now - 40 * 86400, EVENT, picture(i))) for i in range(3)]
    new = [("event", (now - 100 + i, dict(EVENT, id=i), picture(i))) for i in range(60)]   # ~60 x 55 KB
    write(path, old + new)
    conn = db.open_db(path)
    before = db.used_bytes(conn)
    deleted = db.prune(conn, keep_days=30, max_mb=1.0)
    left = [r[0] for r in conn.execute("SELECT track FROM events ORDER BY ts")]
    assert deleted > 3 and db.used_bytes(conn) <= 1e6 < before
    assert left == list(range(60 - len(left), 60)) and left, left                 # the newest kept
    conn.close()
    assert path.stat().st_size < before                                            # given back to the disk
    print(f"pruned {deleted} rows: {before / 1e6:.1f} MB in use -> {path.stat().st_size / 1e6:.2f} MB file")


KILLED = """
import sys, time, numpy as np
from pathlib import Path
from edgecam.store import writer
w = writer.Writer(Path(sys.argv[1]), 7, 30, 500).start()
img = np.random.default_rng(0).integers(0, 255, (180, 320, 3), dtype=np.uint8)
i = 0
while True:
    if w.put("event", (time.time(), {"event": "new", "id": i, "label": "x", "t": i}, img)):
        i += 1
    if w.stats["written"] and i % 50 == 0:
        print(w.stats["written"], flush=True)
    time.sleep(0.001)
"""


def test_sigkill_mid_write_keeps_every_committed_row(tmp_path):
    path = tmp_path / "history.db"
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], stdout=subprocess.PIPE, text=True)
    written = 0
    while written < 300:                      # killed while it writes, batch after batch
        line = p.stdout.readline()
        assert line, "the writer ended"
        written = int(line)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    ids = [r[0] for r in rows(path, "SELECT track FROM events ORDER BY id")]
    assert len(ids) >= written and ids == list(range(len(ids)))    # every committed row, in order, whole
    conn = db.open_db(path)                   # opens as is (nothing moved aside)
    conn.close()
    assert not (tmp_path / "history.db.corrupt").exists()
    print(f"SIGKILL after {written} rows reported written: {len(ids)} kept, integrity ok")


def test_a_corrupt_file_is_moved_aside_in_one_sentence(tmp_path, caplog):
    path = tmp_path / "history.db"
    path.write_bytes(b"this is no database " * 500)
    with caplog.at_level(logging.WARNING, "edgecam.store"):
        sink = HistorySink(HistoryConfig(), path=path)
        sink.close()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "moved aside" in said[0] and "starting a new one" in said[0], said
    assert (tmp_path / "history.db.corrupt").read_bytes().startswith(b"this is no database")
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]


def test_full_disk_fails_in_one_line_keeps_what_is_stored_and_writes_again(small_disk, monkeypatch,  # noqa: F811
                                                                          caplog):
    monkeypatch.setattr(writer, "RETRY_S", 1.0)
    path = small_disk / "history.db"
    w = writer.Writer(path, 1, 30, 500).start()
    with caplog.at_level(logging.INFO, "edgecam.store"):
        for i in range(20):
            w.put("event", (time.time(), dict(EVENT, id=i), picture(i)))
        _wait(lambda: w.stats["written"] == 20)
        filler = fill(small_disk, leave_kb=64)
        worst, i = 0.0, 20
        while not w.failing and i < 400:                 # the disk fills up under the writes
            t0 = time.perf_counter()
            w.put("event", (time.time(), dict(EVENT, id=i), picture(i)))
            worst = max(worst, time.perf_counter() - t0)
            i += 1
            time.sleep(0.01)
        assert w.failing, "the disk never filled"
        time.sleep(2.5)                                   # retried twice meanwhile, still full
        assert rows(path, "SELECT COUNT(*) FROM events")[0][0] >= 20      # what was stored is there
        filler.unlink()                                   # space returns
        _wait(lambda: not w.failing and not w.pending and w.queue.empty(), 10)
        w.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "full" in errors[0] and "trying again" in errors[0], errors
    assert sum("writing again" in r.getMessage() for r in caplog.records) == 1
    stored = rows(path, "SELECT track FROM events ORDER BY id")
    assert [r[0] for r in stored] == list(range(i)) and rows(path, "PRAGMA integrity_check") == [("ok",)]
    assert worst < 0.05, f"put() took {worst * 1000:.1f} ms"      # the caller never waits for the disk
    print(f"disk full: {errors[0]!r}; {i} events all stored after space returned; put() at most "
          f"{worst * 1e6:.0f} µs")


def _wait(check, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("query", ["by=week", "since=yesterday", "limit=0", "limit=5000", "colour=red"])
def test_bad_query_parameters_are_one_sentence(query, tmp_path):
    write(tmp_path / "h.db", [])
    path = "/api/counts" if query.startswith("by") else "/api/events"
    reply = Review(History(tmp_path / "h.db")).handle(Request("GET", f"{path}?{query}", {"host": "x"}))
    head, _, body = reply.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and body.count(b"\n") == 1 and len(body) < 200, reply.data
    print(query, "->", body.decode().strip())


def test_the_history_costs_the_pipeline_little(tmp_path):
    """The sink's calls on the pipeline's threads, timed: per event (result() and its snapshot
    shrunk on the output loop) and per frame without an event (frame())."""
    sink = HistorySink(HistoryConfig(), path=tmp_path / "history.db")
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    quiet = Result.skipped(_frame(frame, 0), "m", "detect")
    t0 = time.perf_counter()
    for _ in range(2000):
        sink.frame(frame, FrameInfo(quiet))
    per_frame = (time.perf_counter() - t0) / 2000
    n, spent = 200, 0.0
    for i in range(n):
        r = Result.skipped(_frame(frame, i + 1), "m", "detect")
        r.events = [dict(EVENT, id=i, frame=i + 1)]
        t0 = time.perf_counter()
        sink.result(r)
        sink.frame(frame, FrameInfo(r))
        spent += time.perf_counter() - t0
        time.sleep(0.005)                              # (as a camera would: the writer keeps up)
    per_event = spent / n
    sink.close()
    stored = rows(tmp_path / "history.db", "SELECT COUNT(*), AVG(LENGTH(snapshot)) FROM events")[0]
    assert stored[0] == n and sink.writer.stats["dropped"] == 0
    print(f"history cost on the pipeline: {per_frame * 1e6:.1f} µs per frame, {per_event * 1e3:.2f} ms "
          f"per event (720p frame, 320 px snapshot of {stored[1] / 1000:.1f} KB); its writer thread "
          f"{sink.writer.cpu_s / n * 1e3:.2f} ms CPU per event")
    assert per_frame < 2e-4 and per_event < 0.01


def _frame(image, index: int):
    return Frame(index, index / 30, time.monotonic(), image)


def test_todays_totals_start_again_at_midnight_and_show_on_the_overlay():
    yesterday = dt.date.today() - dt.timedelta(days=1)
    today = Today({("door", "person", "in"): 5, ("desk", "cup", "entered"): 2}, day=yesterday)
    assert today.totals() == {} and today.current_day() == dt.date.today()        # midnight passed
    today = Today({("door", "person", "in"): 5, ("desk", "cup", "entered"): 2})
    today.add(dict(EVENT, direction="out"))
    today.add({"event": "leave", "zone": "desk", "label": "cup"})                   # (not counted)
    assert today.totals()["door"] == {"in": 5, "out": 1, "by_label": {"person": {"in": 5, "out": 1}}}
    assert today.of("desk", zone=True) == {"today_entered": 2}
    scene = with_today([("line", [], "door: in 0 out 1"), ("zone", [], "desk: 0 in, 0 entered")], today.totals())
    assert [s[2] for s in scene] == ["door: in 0 out 1; today in 5 out 1", "desk: 0 in, 0 entered; today 2"]


def test_an_events_clean_crop_is_kept_and_an_older_file_gets_the_column(tmp_path):
    """The crop a browser teaches from (edgecam/sinks/web/teach.py): stored beside the snapshot;
    a history made before crops is given the column at its opening, its events kept."""
    path, now = tmp_path / "history.db", time.time()
    with sqlite3.connect(path) as conn:                 # the events table as it was before crops
        conn.execute("CREATE TABLE events(id INTEGER PRIMARY KEY, ts REAL NOT NULL, run INTEGER NOT NULL, t REAL, "
                     "kind TEXT NOT NULL, track INTEGER, label TEXT, place TEXT, direction TEXT, data TEXT, "
                     "clip INTEGER, clip_at REAL, snapshot BLOB)")
        conn.execute("INSERT INTO events(ts, run, kind, label, data) VALUES (?, 1, 'new', 'person', '{}')", (now,))
    crop = picture(2)[:40, :30]
    write(path, [("event", (now, EVENT, picture(), crop))])
    h = History(path)
    events = h.events()
    assert [e["crop"] for e in events] == [True, False]
    jpeg, event = h.crop(events[0]["id"])
    assert jpeg[:2] == b"\xff\xd8" and event["label"] == "person" and h.crop(events[1]["id"]) is None
    sink = HistorySink(HistoryConfig(), path=tmp_path / "other.db", pad=0.1)
    try:
        raw = picture(3)
        small = sink.crop(raw, [10, 20, 110, 170])           # teach.pad around the box, at most CROP_PX a side
        assert max(small.shape[:2]) == 160
        assert sink.crop(raw, None) is None and sink.crop(None, [1, 2, 3, 4]) is None
    finally:
        sink.close()
