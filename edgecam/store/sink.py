"""HistorySink: what the pipeline calls, each call O(1) and never waiting (the writer thread
does the rest, edgecam/store/writer.py).

  result()           (the inference thread) the events: today's totals, this minute's counts,
                     and the events kept until their frame is drawn
  frame()/refresh()  (the output loop) an event's drawn frame, shrunk to history.snapshot_px
                     wide, goes with it
  either of them     the counts handed over every COUNTS_S (whole values per minute, so that
                     one dropped is replaced by the next), the clips the clip sink finished, a
                     status sample every STATUS_S"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from edgecam.bounds import path_text
from edgecam.sinks.base import FrameInfo, Sink
from edgecam.statedir import state_dir
from edgecam.store import db
from edgecam.store.queries import History, today_totals
from edgecam.store.writer import RETRY_S, Writer
from edgecam.teach.embedder import crop_of
from edgecam.track.today import Today

log = logging.getLogger("edgecam.store")

COUNTS_S = 5.0          # the counts handed to the writer this often (and at the end)
STATUS_S = 60.0         # a status sample this often
PICTURE_WAIT_S = 2.0    # an event whose frame is not drawn within this long is kept without a snapshot
MAX_WAITING = 64        # events waiting for their frame; beyond, kept without a snapshot
NOT_SAMPLED = ("latest", "models")
CROP_PX = 160           # an event's clean crop (what a browser can teach from) at most this long a side


def history_path() -> Path:
    return state_dir() / "history.db"


class HistorySink(Sink):
    def __init__(self, history, clips: Optional[Any] = None, path: Optional[Path] = None,
                 pad: Optional[float] = None):
        """``history``: the config's history section; ``clips``: the run's ClipSink, if any
        (its finished clips, ``finished``, are recorded); ``pad``: each event keeps a clean crop,
        its box grown by this much (teach.pad, with --teach: what the browser teaches from;
        None: no crops)."""
        self.pad = pad
        self.path = path or history_path()
        self.snapshot_px = history.snapshot_px
        self.wants_frames = self.snapshot_px > 0           # (snapshots need the drawn frames)
        self.run = int(time.time() * 1000)
        self.failed: Optional[str] = None                  # why the file could not be opened at the start
        # what the start found, said once the run runs (a start refused by another output says only that)
        self.said: Optional[Tuple[int, str, tuple]] = None
        self.today = Today(self._seed())
        self.writer = Writer(self.path, self.run, history.keep_days, history.max_mb)
        self.writer.failing = self.failed                  # (said once: here)
        self.writer.start()
        self.reader = History(self.path, clips.pre_s if clips is not None else 0.0)
        self.clips = clips
        self.lock = threading.Lock()
        self.waiting: List[Tuple[float, int, float, dict]] = []    # (when, frame, ts, event)
        self.minutes: Dict[int, Dict[db.CountKey, int]] = {}
        self.t0: Optional[float] = None          # the wall time of the run's t = 0
        self.counts_at = self.status_at = 0.0
        self.live_status: Callable[[], dict] = dict
        self.events = 0

    def _seed(self) -> Dict[db.CountKey, int]:
        """Today's totals so far (made anew where the file is corrupt); none when it cannot be read."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = db.open_db(self.path)
            try:
                seed = today_totals(conn)
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            self.failed = str(exc) or type(exc).__name__
            self.said = (logging.ERROR, "history: cannot open %s: %s (the run goes on; today's totals start from "
                         "zero; trying again every %g s)", (path_text(self.path), self.failed, RETRY_S))
            return {}
        if seed:
            self.said = (logging.INFO, "history: today's totals resumed from %s (%d counted since midnight)",
                         (path_text(self.path), sum(seed.values())))
        return seed

    # -- the inference thread -----------------------------------------------------------------
    def result(self, result) -> None:
        self._tick()
        if not result.events:
            return
        now = time.time()
        ts = now - (time.monotonic() - result.captured) if result.captured else now
        if self.t0 is None:
            self.t0 = ts - result.t
        with self.lock:
            for event in result.events:
                self.events += 1
                key = self.today.add(event)
                if key is not None:
                    per = self.minutes.setdefault(int(ts // 60 * 60), {})
                    per[key] = per.get(key, 0) + 1
                if len(self.waiting) < MAX_WAITING and self.snapshot_px:
                    self.waiting.append((time.monotonic(), result.frame, ts, event))
                else:
                    self.writer.put("event", (ts, event, None))

    # -- the output loop -------------------------------------------------------------------------
    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        self.refresh(image, info)

    def refresh(self, image: Optional[np.ndarray], info: FrameInfo) -> None:
        if self.waiting:
            self._pictures(image, info)
        self._tick()

    def _tick(self) -> None:
        """The counts and the finished clips every COUNTS_S, a status sample every STATUS_S (from
        whichever thread calls first: results, or frames while no result comes)."""
        if self.said is not None:
            said, self.said = self.said, None
            log.log(said[0], said[1], *said[2])
        now = time.monotonic()
        with self.lock:
            counts, sample = now - self.counts_at >= COUNTS_S, now - self.status_at >= STATUS_S
            self.counts_at = now if counts else self.counts_at
            self.status_at = now if sample else self.status_at
        if counts:
            self._hand_counts()
            self._finished_clips()
        if sample:
            self._sample()

    def _pictures(self, image: Optional[np.ndarray], info: FrameInfo) -> None:
        drawn = info.result.frame if info.result is not None and image is not None else None
        late = time.monotonic() - PICTURE_WAIT_S
        with self.lock:
            ready = [w for w in self.waiting if (drawn is not None and w[1] <= drawn) or w[0] < late]
            self.waiting = [w for w in self.waiting if w not in ready]
        small = self.shrink(image) if image is not None and any(w[1] <= (drawn or -1) for w in ready) else None
        raw = getattr(info.frame, "image", None)
        # the boxes as drawn on this frame (a later camera frame than the result's: moved with their tracks)
        boxes = {d.id: list(d.box) for d in getattr(info.result, "detections", None) or [] if d.id is not None}
        for _, frame, ts, event in ready:
            pictured = drawn is not None and frame <= drawn
            box = boxes.get(event.get("id"), event.get("box"))
            self.writer.put("event", (ts, event, small if pictured else None,
                                      self.crop(raw, box) if pictured else None))

    def crop(self, raw: Optional[np.ndarray], box) -> Optional[np.ndarray]:
        """The event's object on the clean frame (teach.pad around its box), at most CROP_PX a side."""
        if raw is None or self.pad is None or not isinstance(box, list) or len(box) != 4:
            return None
        crop = crop_of(raw, box, self.pad)
        h, w = crop.shape[:2]
        if min(h, w) < 2:
            return None
        scale = min(1.0, CROP_PX / max(h, w))
        return crop.copy() if scale == 1.0 else cv2.resize(crop, (max(2, round(w * scale)), max(2, round(h * scale))),
                                                           interpolation=cv2.INTER_AREA)

    def shrink(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        if w <= self.snapshot_px:
            return image.copy()
        return cv2.resize(image, (self.snapshot_px, max(1, round(h * self.snapshot_px / w))),
                          interpolation=cv2.INTER_LINEAR)     # (INTER_AREA: 2.5 ms on 720p, this 0.2 ms)

    def _hand_counts(self) -> None:
        """Every minute's counts not yet handed over, as they stand; past minutes are done."""
        with self.lock:
            if not self.minutes:
                return
            minutes = {m: dict(per) for m, per in self.minutes.items()}
        if self.writer.put("counts", minutes):
            current = int(time.time() // 60 * 60)
            with self.lock:
                for m in [m for m in self.minutes if m < current and self.minutes[m] == minutes.get(m)]:
                    del self.minutes[m]

    def _finished_clips(self) -> None:
        finished = self.clips.finished if self.clips is not None else None
        while finished:
            try:
                path = finished.popleft()      # (the clip sink appends from its own thread)
            except IndexError:
                return
            self.writer.put("clip", (self.t0 if self.t0 is not None else time.time(), str(path)))

    def _sample(self) -> None:
        try:
            status = {k: v for k, v in self.live_status().items() if k not in NOT_SAMPLED}
        except RuntimeError:          # the tracking counts changed while read: the next sample
            return
        self.writer.put("status", (time.time(), status))

    # -- the rest ----------------------------------------------------------------------------------
    def watch(self, status: Callable[[], dict]) -> None:
        self.live_status = status

    def status(self) -> dict:
        return {"events": self.events, **self.writer.status()}

    def close(self) -> None:
        with self.lock:
            waiting, self.waiting = self.waiting, []
        for _, _, ts, event in waiting:
            self.writer.put("event", (ts, event, None))
        self._finished_clips()
        self.counts_at = 0.0
        self._hand_counts()
        self.writer.close()
