"""The annotated video: encoded by an ffmpeg process (H.264 where an encoder works, see
encoders.py) into a container that plays when cut (fragmented MP4 with a fragment per key
frame every half second, Matroska with half-second clusters), so a crash, a SIGKILL, a full
disk or a power cut loses at most the last half second; a write error is reported with its
cause. Each frame keeps its own time (mkv.py): a live recording lasts as long as the wall
clock did, whatever rate the camera really delivered. Live mode records time-stamped segments
with oldest-first deletion beyond a size or age cap, so restarts never destroy a recording."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

from edgecam.bounds import os_reason, path_text, show
from edgecam.errors import OutputError
from edgecam.sinks import encoders, mkv
from edgecam.sinks.base import FrameInfo, Sink
from edgecam.sinks.feeder import Feeder
from edgecam.sinks.files import SinkError, check_writable

log = logging.getLogger("edgecam.sinks")

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
_CAUSES = ("No space left on device", "Input/output error", "Read-only file system",
           "Disk quota exceeded", "File too large", "Permission denied", "Stale file handle")


def _cause(stderr: str, code: Optional[int]) -> str:
    """The reason an ffmpeg process gave up, from its error output."""
    for cause in _CAUSES:
        if cause.lower() in stderr.lower():
            return cause
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines:
        return f"the encoder said {show(lines[-1].strip())}"
    return f"the encoder (ffmpeg) ended with code {code}"


class VideoSink(Sink):
    """An annotated video at the source's size: H.264 (MPEG-4 Part 2 where ffmpeg has no
    H.264 encoder that works) in a fragmented .mp4 (.m4v, .mov) or in .mkv, MJPEG in .avi,
    encoded by an ffmpeg process that playback-safe containers and real error reports need.
    Each frame is stamped with the time ``write`` is given (file mode: n / fps, every frame
    of the source in order; live: its capture time, see SegmentedVideo). Without ffmpeg,
    OpenCV's writer at ``fps`` (say so once)."""

    _warned = False

    @staticmethod
    def check(path: str, overwrite: bool = True) -> None:
        """OutputError (one sentence) unless a video can be written to ``path``."""
        if Path(path).suffix.lower() not in FOURCC:
            raise OutputError(f"cannot write video {path_text(path)}: use a .mp4, .mov, .mkv or .avi file name")
        check_writable(Path(path), "the annotated video", overwrite)

    def __init__(self, path: str, fps: float, size: Tuple[int, int], overwrite: bool = True):
        self.check(path, overwrite)
        self.path = Path(path)
        self.size = size
        self.fps = fps
        self.frames = 0
        self.first_t: Optional[float] = None   # the first frame's time (what write() was given)
        self.last_ms = -1                       # the last frame's, in ms after the first
        self.proc: Optional[subprocess.Popen] = None
        self.feeder: Optional[Feeder] = None
        self.writer: Optional[cv2.VideoWriter] = None
        self.failed = False
        self.encoder = ""
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            self._start(ffmpeg, fps)
        else:
            self._opencv(fps)

    @staticmethod
    def prepare(size: Tuple[int, int]) -> None:
        """Choose the encoder for ``size`` now (its probe takes ~0.3 s): a clip's first frames
        are not the time to try encoders."""
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            encoders.choose(ffmpeg, _even(size))

    @property
    def seconds(self) -> float:
        """How long the video plays: from the first frame to the last, which lasts 1 / fps."""
        if not self.frames:
            return 0.0
        return round(self.last_ms / 1000 + (1 / self.fps if self.fps else 0.0), 3)

    def _start(self, ffmpeg: str, fps: float) -> None:
        self.even = _even(self.size)
        self.encoder = "mjpeg" if self.path.suffix.lower() == ".avi" else encoders.choose(ffmpeg, self.even)
        cmd = encoders.command(ffmpeg, self.path, fps, self.even, self.encoder)
        try:  # what ffmpeg would only report later: a folder or a file system that refuses the file
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        except OSError as exc:
            raise OutputError(f"cannot write the annotated video to {path_text(self.path)}: "
                              f"{(exc.strerror or str(exc)).lower()}") from None
        self._stderr = tempfile.TemporaryFile()
        try:  # its own session: Ctrl-C stops edgecam, which then closes the video properly
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._stderr, start_new_session=True)
        except OSError as exc:
            raise OutputError(f"cannot write video {path_text(self.path)}: ffmpeg cannot be "
                              f"started ({os_reason(exc)})") from None
        assert self.proc.stdin is not None                   # (stdin=PIPE)
        self.feeder = Feeder(self.proc.stdin)
        self.feeder.put(mkv.header(self.even, fps))

    def _opencv(self, fps: float) -> None:
        if not VideoSink._warned:
            VideoSink._warned = True
            log.warning("ffmpeg is not installed: recording with OpenCV's writer, whose files a crash "
                        "or a full disk leaves unplayable (sudo apt install ffmpeg)")
        fourcc = cv2.VideoWriter.fourcc(*FOURCC[self.path.suffix.lower()])
        self.writer = cv2.VideoWriter(str(self.path), fourcc, fps, self.size)
        if not self.writer.isOpened():
            raise OutputError(f"cannot write video {path_text(self.path)}: OpenCV could not open an encoder for it")

    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        self.write(image)          # file mode: every frame of the source, at n / fps as it was

    def write(self, image: np.ndarray, t: Optional[float] = None) -> None:
        """Add ``image`` at time ``t`` (seconds, any origin; None: n / fps)."""
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if t is None:
            t = self.frames / self.fps if self.fps else 0.0
        if self.first_t is None:
            self.first_t = t
        # milliseconds, always rising (a frame at the time of the one before would be dropped)
        ms = max(self.last_ms + 1, round((t - self.first_t) * 1000))
        if self.proc is not None:
            w, h = self.even
            yuv = cv2.cvtColor(np.ascontiguousarray(image[:h, :w], dtype=np.uint8), cv2.COLOR_BGR2YUV_I420)
            self._send(mkv.cluster_head(ms, yuv.nbytes), yuv.data)
        elif self.writer is not None:
            self.writer.write(image)
        self.last_ms = ms
        self.frames += 1

    def _send(self, *chunks) -> None:
        """To the encoder, through the feeder's thread; SinkError once a write has failed."""
        if self.feeder is None:
            return
        if self.feeder.error is not None:
            raise self._failure(self.feeder.error)
        self.feeder.put(*chunks)

    def _failure(self, exc: BaseException) -> SinkError:
        """The encoder is gone: why, in one sentence."""
        self.failed = True
        code = _wait(self.proc, 5.0) if self.proc is not None else None
        self._stderr.seek(0)
        text = self._stderr.read(64 * 1024).decode("utf-8", "replace")
        cause = _cause(text, code) if text or code else os_reason(exc) if isinstance(exc, OSError) else str(exc)
        return SinkError(f"writing the annotated video to {path_text(self.path)} failed: {cause}")

    def close(self) -> None:
        """Finish the file; SinkError if the encoder could not (the file still plays up
        to its last complete fragment)."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.proc is None:
            return
        feeder, self.feeder = self.feeder, None
        if feeder is not None:
            feeder.close()               # what is queued goes in, then the end of the input
        code = _wait(self.proc, 60.0)    # (a hung encoder is killed: the feeder's write fails, it ends)
        if feeder is not None:
            feeder.join(5.0)
        try:
            # 255: ffmpeg stopped by a signal, file finished; no frame: ffmpeg finds no stream,
            # and there is nothing to lose
            if code not in (0, 255) and not self.failed and self.frames:
                raise self._failure(OSError(errno.EIO, "the encoder failed"))
        finally:
            self.proc = None
            self._stderr.close()


def _even(size: Tuple[int, int]) -> Tuple[int, int]:
    """4:2:0 needs even sides: an odd last column or row is cut."""
    return (size[0] - size[0] % 2, size[1] - size[1] % 2)


def _wait(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def prune_oldest(files: List[Path], keep_mb: float, keep_s: float, what: str,
                 companions: Callable[[Path], List[Path]] = lambda p: []) -> List[Path]:
    """Delete the oldest of ``files`` (given oldest first), each with its ``companions`` (a
    clip's sidecar), while they total over ``keep_mb`` or are older than ``keep_s`` seconds
    (0: no cap); returns what went. The live segments' caps and the clips folder's."""
    groups = [[p, *[c for c in companions(p) if c.exists()]] for p in files if p.exists()]
    sizes = [sum(f.stat().st_size for f in group) for group in groups]
    total = sum(sizes)
    cutoff = time.time() - keep_s
    gone: List[Path] = []
    for group, size in zip(groups, sizes):
        p = group[0]
        too_big = keep_mb > 0 and total > keep_mb * 1e6
        too_old = keep_s > 0 and p.stat().st_mtime < cutoff
        if not (too_big or too_old):
            continue
        for f in group:
            f.unlink(missing_ok=True)
        total -= size
        gone.append(p)
    if gone:
        log.info("deleted %d old %s(s) to stay under the cap (oldest: %s)", len(gone), what, gone[0].name)
    return gone


class SegmentedVideo(Sink):
    """Live recording: a new time-stamped file (``NAME-YYYYmmdd-HHMMSS.EXT`` beside the
    configured ``NAME.EXT``) at each start and every ``segment_s`` seconds; before each new
    file the oldest ones are deleted while they total over ``keep_mb`` or are older than
    ``keep_hours`` (0: no cap). A restart never touches a recording already made."""

    def __init__(self, base: str, fps: float, size: Tuple[int, int], segment_s: float = 0.0,
                 keep_mb: float = 0.0, keep_hours: float = 0.0):
        VideoSink.check(base)
        self.base = Path(base)
        self.fps, self.size = fps, size
        self.segment_s, self.keep_mb, self.keep_hours = segment_s, keep_mb, keep_hours
        self.current: Optional[VideoSink] = None
        self.closers: List[threading.Thread] = []
        self._open()

    def files(self) -> List[Path]:
        """This recording's segments, oldest first (the names sort by time)."""
        stem, ext = self.base.stem, self.base.suffix
        folder = self.base.parent
        return sorted(p for p in folder.glob(f"{stem}-[0-9]*{ext}")
                      if len(p.name) >= len(stem) + 17
                      and p.name[len(stem) + 1:len(stem) + 16].replace("-", "").isdigit())

    def _name(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.base.with_name(f"{self.base.stem}-{stamp}{self.base.suffix}")
        n = 1
        while path.exists():
            path = self.base.with_name(f"{self.base.stem}-{stamp}-{n}{self.base.suffix}")
            n += 1
        return path

    def prune(self) -> List[Path]:
        """Delete the oldest segments beyond the size and age caps; returns what went."""
        files = [p for p in self.files() if self.current is None or p != self.current.path]
        return prune_oldest(files, self.keep_mb, self.keep_hours * 3600, "recording")

    def _open(self) -> None:
        try:
            self.prune()
        except OSError as exc:
            log.warning("cannot delete old recordings: %s", os_reason(exc))
        self.current = VideoSink(str(self._name()), self.fps, self.size)
        self.opened = time.monotonic()

    @property
    def path(self) -> Path:
        return self.current.path if self.current else self.base

    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        self.write(image, info.frame.captured if info.frame is not None else None)

    def write(self, image: np.ndarray, captured: Optional[float] = None) -> None:
        """Add ``image`` at its capture time (time.monotonic(); None: now), so the recording
        lasts what the wall clock did, at whatever rate the camera really delivers."""
        if self.segment_s > 0 and time.monotonic() - self.opened >= self.segment_s:
            old, self.current = self.current, None
            try:
                self._open()         # the next segment first: no frame waits for the last to finish
            finally:
                self._finish_behind(old)
        if self.current is None:
            raise SinkError(f"the annotated video {path_text(self.base)} was closed")
        self.current.write(image, time.monotonic() if captured is None else captured)

    def _finish_behind(self, segment: Optional[VideoSink]) -> None:
        """Finish ``segment`` in a thread (ffmpeg's flush and exit take 0.15-0.25 s)."""
        self.closers = [c for c in self.closers if c.is_alive()]
        if segment is not None:
            closer = threading.Thread(target=_finish_logged, args=(segment,), name="segment-close", daemon=True)
            self.closers.append(closer)
            closer.start()

    def close(self) -> None:
        current, self.current = self.current, None
        for closer in self.closers:
            closer.join(70.0)             # (a hung encoder is killed after 60 s)
        if current is not None:
            _finish(current)


def _finish_logged(segment: VideoSink) -> None:
    try:
        _finish(segment)
    except Exception as exc:
        log.error("%s", exc)


def _finish(segment: VideoSink) -> None:
    """Close a segment; one that failed, or closed, before holding a frame is no recording."""
    try:
        segment.close()
    finally:
        try:
            if not segment.frames or segment.failed and segment.path.stat().st_size < 4096:
                segment.path.unlink()
        except OSError:
            pass
