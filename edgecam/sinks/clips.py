"""Clips around events (live mode): every frame shown goes into a ring buffer of the last
``clips.pre_s`` seconds, kept as JPEG (a 720p frame is ~2.7 MB raw, ~0.1 MB as JPEG: see
README for the measured figures); an event of a chosen kind starts a clip with that
pre-roll, and it records until ``clips.post_s`` after the last event, so overlapping events
extend one clip. Each clip is a video (the same cut-safe H.264 writer as --output, stamped
with the frames' capture times) and a JSON sidecar naming its events, written when the clip
starts (so a SIGKILL leaves it, ``"complete": false``) and completed when it closes (also on
SIGTERM). The oldest clips go beyond ``clips.keep_mb`` / ``clips.keep_days``. A write that fails
(a full disk) ends the clip with one warning; the service keeps running and the next event
tries again."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from pathlib import Path
from threading import Lock, Thread
from typing import Deque, List, Optional, Tuple

import cv2
import numpy as np

from edgecam.bounds import os_reason, path_text
from edgecam.errors import OutputError
from edgecam.sinks.base import FrameInfo, Sink
from edgecam.sinks.encoders import codec_of
from edgecam.sinks.files import SinkError
from edgecam.sinks.video import VideoSink, prune_oldest

log = logging.getLogger("edgecam.sinks")

DEFAULT_KINDS = ("new", "cross", "enter")
QUALITY = 85
CLOSE_WAIT_S = 70.0       # at most this for an ending clip's encoder at close (it is killed after 60 s)


KEEP_FINISHED = 64   # finished clips' paths kept until the history takes them (it does every 5 s)
LATE_S = 2.0     # seconds an event may be told after its frame (the ring keeps them too)


class Ring:
    """The last ``seconds`` of frames as JPEG (with their source and capture times), at most
    ``max_bytes`` of them."""

    def __init__(self, seconds: float, max_bytes: int):
        self.seconds, self.max_bytes = seconds, max_bytes
        self.items: Deque[Tuple[float, float, bytes]] = deque()
        self.bytes = 0

    def add(self, t: float, captured: float, jpeg: bytes) -> None:
        self.items.append((t, captured, jpeg))
        self.bytes += len(jpeg)
        while self.items and (t - self.items[0][0] > self.seconds or self.bytes > self.max_bytes):
            self.bytes -= len(self.items.popleft()[2])

    def take(self) -> List[Tuple[float, float, bytes]]:
        items, self.items, self.bytes = list(self.items), deque(), 0
        return items


class Clip:
    """One clip: its video, stamped with the frames' capture times (so it lasts what the
    wall clock did, a pause included, held on its last picture), and its sidecar, written
    when the clip starts (``"complete": false``: what a SIGKILL leaves) and again as events
    join it and when it ends."""

    def __init__(self, path: Path, fps: float, size: Tuple[int, int]):
        self.path, self.video = path, VideoSink(str(path), fps, size)
        self.events: List[dict] = []
        self.until = 0.0
        self.first_t: Optional[float] = None
        self.last_t = 0.0
        self.start = 0.0             # the first frame's capture, as the wall clock's time

    def write(self, t: float, captured: float, image: np.ndarray) -> None:
        self.video.write(image, captured)
        if self.first_t is None:     # (a first clip may start at t = 0.0)
            self.first_t = t
            self.start = time.time() - (time.monotonic() - captured)
        self.last_t = t

    def sidecar(self, complete: bool = False) -> None:
        """The clip's JSON beside it, replaced whole (a full disk leaves no half one)."""
        side = {"clip": self.path.name, "start": round(self.start, 3), "start_t": self.first_t,
                "end_t": self.last_t, "seconds": self.video.seconds, "frames": self.video.frames,
                "codec": codec_of(self.video.encoder), "encoder": self.video.encoder, "complete": complete,
                "events": self.events}
        tmp = self.path.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(side, indent=1))
            os.replace(tmp, self.path.with_suffix(".json"))
        except OSError as exc:
            raise SinkError(f"writing the sidecar of {path_text(self.path)} failed: {os_reason(exc)}") from None
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            self.video.close()
        finally:
            self.sidecar(complete=True)


class ClipSink(Sink):
    @staticmethod
    def check(folder: str) -> None:
        """OutputError (one sentence) unless ``folder`` is a folder clips can be written to."""
        if not Path(folder).is_dir():
            raise OutputError(f"cannot write clips to {path_text(folder)}: it is not a folder")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"cannot write clips to {path_text(folder)}: permission denied")

    def __init__(self, folder: str, clips, fps: float, size: Tuple[int, int]):
        self.check(folder)
        self.folder = Path(folder)
        self.pre_s, self.post_s, self.annotated = clips.pre_s, clips.post_s, clips.annotated
        self.kinds = set(clips.events or DEFAULT_KINDS)
        self.labels = set(clips.labels)
        self.fps, self.size = fps, size
        # the ring holds LATE_S more than the pre-roll: an event is told when its track is confirmed,
        # some results after the frame it happened on (a slow model: most of a second, measured)
        self.ring = Ring(clips.pre_s + LATE_S, int(clips.buffer_mb * 1e6))
        self.keep_mb, self.keep_s = clips.keep_mb, clips.keep_days * 86400
        self.pending: List[dict] = []
        self.lock = Lock()
        self.clip: Optional[Clip] = None
        self.failing = False
        # finished clips the history (edgecam/store/sink.py) has not taken yet: the newest KEEP_FINISHED
        self.finished: Deque[Path] = deque(maxlen=KEEP_FINISHED)
        self.clips_written = 0
        self.closers: List[Thread] = []
        self.prune()
        VideoSink.prepare(size)

    def result(self, result) -> None:                 # the inference thread
        wanted = [e for e in result.events
                  if e["event"] in self.kinds and (not self.labels or e["label"] in self.labels)]
        if wanted:
            with self.lock:
                self.pending += wanted

    def frame(self, image: np.ndarray, info: FrameInfo) -> None:     # the output loop
        source = info.frame
        captured = source.captured if source is not None else time.monotonic()
        t = source.t if source is not None else captured
        picture = image if self.annotated or source is None else source.image
        with self.lock:
            events, self.pending = self.pending, []
        if events:
            self.start(events, t)
        if self.clip is None:
            self.ring.add(t, captured, self.jpeg(picture))
            return
        self.record(t, captured, picture)
        if events:
            self.mark()
        if self.clip is not None and t > self.clip.until:
            self.finish()

    @staticmethod
    def jpeg(picture: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        return buf.tobytes() if ok else b""

    def files(self) -> List[Path]:
        """The clips in the folder, oldest first (the names sort by time)."""
        return sorted(self.folder.glob("clip-[0-9]*.mp4"))

    def prune(self) -> None:
        """The oldest clips (with their sidecars) deleted beyond ``clips.keep_mb`` and
        ``clips.keep_days``, as the live segments are (video.prune_oldest)."""
        try:
            prune_oldest(self.files(), self.keep_mb, self.keep_s, "clip", lambda p: [p.with_suffix(".json")])
        except OSError as exc:
            log.warning("cannot delete old clips: %s", os_reason(exc))

    def start(self, events: List[dict], t: float) -> None:
        if self.clip is None:
            self.prune()
            name = time.strftime("clip-%Y%m%d-%H%M%S") + f"-{events[0]['event']}-{events[0]['id']}.mp4"
            try:
                self.clip = Clip(self.folder / name, self.fps, self.size)
            except Exception as exc:
                return self.fail(exc, name)
            since = min(e["t"] for e in events) - self.pre_s      # pre_s before the event itself
            for ring_t, captured, jpeg in self.ring.take():
                if ring_t < since:
                    continue
                image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                if image is not None and not self.record(ring_t, captured, image):
                    return
        self.clip.events += events
        self.clip.until = max(self.clip.until, max(e["t"] for e in events) + self.post_s)

    def mark(self) -> None:
        """The sidecar now, with the events so far: a clip cut by SIGKILL or a power cut keeps them."""
        clip = self.clip
        if clip is None:
            return
        try:
            clip.sidecar()
        except Exception as exc:
            self.fail(exc, clip.path.name)

    def record(self, t: float, captured: float, image: np.ndarray) -> bool:
        clip = self.clip
        if clip is None:          # (ended by a failure)
            return False
        try:
            clip.write(t, captured, image)
            return True
        except Exception as exc:
            self.fail(exc, clip.path.name)
            return False

    def fail(self, exc: Exception, name: str) -> None:
        if not self.failing:
            log.warning("clip %s ended: %s (the next event tries again)", name, exc)
        self.failing = True
        clip, self.clip = self.clip, None
        if clip is not None:
            try:
                clip.close()
            except Exception:
                pass
            try:
                empty = clip.video.frames == 0 or clip.path.stat().st_size == 0
            except OSError:
                empty = True
            if empty:                                  # nothing of it could be written
                clip.path.unlink(missing_ok=True)
                clip.path.with_suffix(".json").unlink(missing_ok=True)

    def finish(self) -> None:
        """End the clip: its encoder finishes in a thread of its own (0.15-0.25 s for ffmpeg to
        flush and exit, which would stall the output loop and drop frames of the next pre-roll)."""
        clip, self.clip = self.clip, None
        if clip is None:
            return
        self.closers = [c for c in self.closers if c.is_alive()]
        closer = Thread(target=self._finish, args=(clip,), name="clip-close", daemon=True)
        self.closers.append(closer)
        closer.start()

    def _finish(self, clip: Clip) -> None:
        try:
            clip.close()
        except Exception as exc:
            return self.fail(exc, clip.path.name)
        self.failing = False
        self.finished.append(clip.path)
        self.clips_written += 1
        log.info("clip %s: %d frames, %d events", clip.path.name, clip.video.frames, len(clip.events))

    def status(self) -> dict:
        return {"recording": self.clip.path.name if self.clip else None, "clips": self.clips_written,
                "buffer_mb": round(self.ring.bytes / 1e6, 2), "buffer_frames": len(self.ring.items)}

    def close(self) -> None:
        if self.clip is not None:
            self.finish()
        for closer in self.closers:
            closer.join(CLOSE_WAIT_S)
