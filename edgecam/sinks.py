"""Sinks: where annotated frames and results go. Each one writes synchronously; the
pipeline decides which thread calls it.

Outputs survive whatever stops a run:
- the annotated video is encoded by an ffmpeg process into a container that plays when cut
  (fragmented MP4 with a fragment per key frame every half second, Matroska with half-second
  clusters), so a crash, a SIGKILL, a full disk or a power cut loses at most the last half
  second; a write error is reported with its cause;
- a JSON line is written whole or not at all (one write, undone if it falls short), and an
  appended file whose last line was torn by a power cut is repaired when it is reopened.

File mode never overwrites an existing output without ``output.overwrite`` (--overwrite, -y);
live mode appends JSON lines (rotating by size) and records time-stamped video segments with
oldest-first deletion beyond a size or age cap, so restarts never destroy a recording."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

from edgecam.bounds import path_text, name_problem, not_regular, os_reason, show
from edgecam.errors import OutputError
from edgecam.sandbox import write_refusal

log = logging.getLogger("edgecam.sinks")

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
_MPEG4 = ["-c:v", "mpeg4", "-q:v", "4"]
_FRAGMENTED = ["-movflags", "frag_keyframe+empty_moov+default_base_moof"]
MUXER = {".mp4": [*_MPEG4, *_FRAGMENTED, "-f", "mp4"], ".m4v": [*_MPEG4, *_FRAGMENTED, "-f", "mp4"],
         ".mov": [*_MPEG4, *_FRAGMENTED, "-f", "mov"],
         ".mkv": [*_MPEG4, "-cluster_time_limit", "500", "-f", "matroska"],
         ".avi": ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-f", "avi"]}
KEYFRAME_S = 0.5          # a key frame (and so a fragment or cluster) every half second
RETRY_S = 5.0             # live mode: a failed output is reopened this often
_CAUSES = ("No space left on device", "Input/output error", "Read-only file system",
           "Disk quota exceeded", "File too large", "Permission denied", "Stale file handle")


class SinkError(OutputError):
    """Writing an output failed mid-run (a full disk, an I/O error): one sentence naming
    the file and the cause."""


def check_writable(path: Path, what: str, overwrite: bool = True) -> None:
    """OutputError (one sentence) unless ``what`` can be written to ``path``."""
    shown = path_text(path)
    problem = name_problem(str(path))
    if problem:
        raise OutputError(f"cannot write {what} to {shown}: {problem}")
    folder = path.parent if str(path.parent) else Path(".")
    problem = not_regular(path)
    if problem:
        raise OutputError(f"cannot write {what} to {shown}: {problem}")
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} to {shown}: folder {path_text(folder)} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {what} to {shown}: {write_refusal(folder)}")
    if path.exists() and not overwrite:
        raise OutputError(f"{shown} already exists: pass --overwrite (or -y) to replace it, "
                          f"or choose another name")


def _cause(stderr: str, code: Optional[int]) -> str:
    """The reason an ffmpeg process gave up, from its error output."""
    for cause in _CAUSES:
        if cause.lower() in stderr.lower():
            return cause
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines:
        return f"the encoder said {show(lines[-1].strip())}"
    return f"the encoder (ffmpeg) ended with code {code}"


class VideoSink:
    """An annotated video at the source's size and frame rate: MPEG-4 in a fragmented .mp4
    (.m4v, .mov) or in .mkv, MJPEG in .avi, encoded by an ffmpeg process that playback-safe
    containers and real error reports need. Without ffmpeg, OpenCV's writer (say so once)."""

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
        self.frames = 0
        self.proc: Optional[subprocess.Popen] = None
        self.writer = None
        self.failed = False
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg:
            self._start(ffmpeg, fps)
        else:
            self._opencv(fps)

    def _start(self, ffmpeg: str, fps: float) -> None:
        w, h = self.size
        cmd = [ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{fps:.6g}", "-i", "pipe:0",
               "-an", "-g", str(max(1, round(fps * KEYFRAME_S))), "-threads", "1", "-flush_packets", "1",
               *MUXER[self.path.suffix.lower()], str(self.path)]
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

    def _opencv(self, fps: float) -> None:
        if not VideoSink._warned:
            VideoSink._warned = True
            log.warning("ffmpeg is not installed: recording with OpenCV's writer, whose files a crash "
                        "or a full disk leaves unplayable (sudo apt install ffmpeg)")
        fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
        self.writer = cv2.VideoWriter(str(self.path), fourcc, fps, self.size)
        if not self.writer.isOpened():
            raise OutputError(f"cannot write video {path_text(self.path)}: OpenCV could not open an encoder for it")

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if self.proc is not None:
            try:
                self.proc.stdin.write(np.ascontiguousarray(image, dtype=np.uint8))
            except (OSError, ValueError) as exc:
                raise self._failure(exc) from None
        else:
            self.writer.write(image)
        self.frames += 1

    def _failure(self, exc: BaseException) -> SinkError:
        """The encoder is gone: why, in one sentence."""
        self.failed = True
        code = _wait(self.proc, 5.0)
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
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        code = _wait(self.proc, 60.0)
        try:
            if code not in (0, 255) and not self.failed:  # 255: ffmpeg stopped by a signal, file finished
                raise self._failure(OSError(errno.EIO, "the encoder failed"))
        finally:
            self.proc = None
            self._stderr.close()


def _wait(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class SegmentedVideo:
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
        self._open()

    def files(self) -> List[Path]:
        """This recording's segments, oldest first (the names sort by time)."""
        stem, ext = self.base.stem, self.base.suffix
        folder = self.base.parent
        return sorted(p for p in folder.glob(f"{stem}-[0-9]*{ext}")
                      if len(p.name) >= len(stem) + 17 and p.name[len(stem) + 1:len(stem) + 16].replace("-", "").isdigit())

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
        gone: List[Path] = []
        sizes = {p: p.stat().st_size for p in files if p.exists()}
        total = sum(sizes.values())
        cutoff = time.time() - self.keep_hours * 3600
        for p in files:
            too_big = self.keep_mb > 0 and total > self.keep_mb * 1e6
            too_old = self.keep_hours > 0 and p.stat().st_mtime < cutoff
            if not (too_big or too_old):
                continue
            p.unlink(missing_ok=True)
            total -= sizes.get(p, 0)
            gone.append(p)
        if gone:
            log.info("deleted %d old recording(s) to stay under the cap (oldest: %s)", len(gone), gone[0].name)
        return gone

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

    def write(self, image: np.ndarray) -> None:
        if self.segment_s > 0 and time.monotonic() - self.opened >= self.segment_s:
            self.close()
            self._open()
        self.current.write(image)

    def close(self) -> None:
        current, self.current = self.current, None
        if current is None:
            return
        try:
            current.close()
        finally:  # a segment that failed before holding a frame is no recording
            try:
                if current.failed and current.path.stat().st_size < 4096:
                    current.path.unlink()
            except OSError:
                pass


class JsonLinesSink:
    """One complete JSON object per line: each line is one write() that is undone if it
    falls short, so a full disk or a stop never leaves half a line. ``append`` (live mode)
    keeps what is there, after cutting a torn last line left by a power cut; ``max_mb``
    rotates the file to NAME.1 ... NAME.``keep`` when it grows past that size."""

    def __init__(self, path: str, append: bool = False, overwrite: bool = True,
                 max_mb: float = 0.0, keep: int = 5):
        self.path = Path(path)
        self.fd: Optional[int] = None
        self.f = None
        if str(path) == "-":
            self.f = sys.stdout
            return
        check_writable(self.path, "JSON lines", overwrite or append)
        self.append, self.max_bytes, self.keep = append, int(max_mb * 1e6), keep
        self._open()

    def _open(self) -> None:
        flags = os.O_CREAT | os.O_CLOEXEC | (os.O_RDWR | os.O_APPEND if self.append else os.O_WRONLY | os.O_TRUNC)
        try:
            self.fd = os.open(self.path, flags, 0o644)
            self.size = os.fstat(self.fd).st_size
            if self.append and self.size:
                self._repair()
        except OSError as exc:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            raise OutputError(f"cannot write JSON lines to {path_text(self.path)}: {os_reason(exc)}") from None

    def _repair(self) -> None:
        """Cut a torn last line (no newline at the end) back to the last whole line."""
        end = self.size
        if os.pread(self.fd, 1, end - 1) == b"\n":
            return
        pos = end
        while pos > 0:
            start = max(0, pos - 65536)
            chunk = os.pread(self.fd, pos - start, start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                pos = start + nl + 1
                break
            pos = start
        os.ftruncate(self.fd, pos)
        self.size = pos
        log.warning("%s ended in a torn line (a crash or a power cut): removed its %d bytes",
                    path_text(self.path), end - pos)

    def write(self, record: dict) -> None:
        line = json_line(record)
        if self.f is not None:
            self.f.write(line)
            self.f.flush()
            return
        data = line.encode("utf-8")
        if self.max_bytes and self.size and self.size + len(data) > self.max_bytes:
            self._rotate()
        start = self.size
        try:
            done = os.write(self.fd, data)
            if done < len(data):  # a short write: the next one says why (ENOSPC, EIO ...)
                done += os.write(self.fd, data[done:])
            if done < len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            try:
                os.ftruncate(self.fd, start)  # never half a line
            except OSError:
                pass
            raise SinkError(f"writing JSON lines to {path_text(self.path)} failed: {os_reason(exc)}") from None
        self.size = start + done

    def _rotate(self) -> None:
        os.close(self.fd)
        self.fd = None
        for i in range(self.keep - 1, 0, -1):
            older = Path(f"{self.path}.{i}")
            if older.exists():
                older.replace(f"{self.path}.{i + 1}")
        self.path.replace(f"{self.path}.1")
        self._open()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.f is not None:
            self.f.flush()
            self.f = None


def json_line(record: dict) -> str:
    import json
    return json.dumps(record, separators=(",", ":")) + "\n"


class Retrying:
    """A live output that keeps the service alive when it fails: the failed sink is closed,
    the error logged once at error level, and a new one opened every ``retry_s`` seconds
    until writing works again (a full SD card must not stop the browser view)."""

    def __init__(self, name: str, opener: Callable[[], object], retry_s: float = RETRY_S,
                 healthy_after: int = 1):
        self.name = name
        self.healthy_after = healthy_after   # writes that prove it works again (an encoder takes a few)
        self.opener = opener
        self.retry_s = retry_s
        self.sink = opener()          # at start a failure is the run's one-sentence error
        self.failing_since: Optional[float] = None
        self.next_try = 0.0
        self.written = 0

    def write(self, item) -> bool:
        """Write ``item``; False when the output is down (and the item dropped)."""
        if self.sink is None and not self._reopen():
            return False
        try:
            self.sink.write(item)
        except Exception as exc:
            self._fail(exc)
            return False
        self.written += 1
        if self.failing_since is not None and self.written >= self.healthy_after:
            log.info("%s: writing again after %.0f s", self.name, time.monotonic() - self.failing_since)
            self.failing_since = None
        return True

    def _fail(self, exc: Exception) -> None:
        text = str(exc) if isinstance(exc, OutputError) else f"{self.name} failed: {type(exc).__name__}: {show(str(exc))}"
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            log.error("%s; retrying every %g s while the rest keeps running", text, self.retry_s)
        else:
            log.debug("%s still failing: %s", self.name, text)
        self._close_quietly()
        self.next_try = time.monotonic() + self.retry_s

    def _reopen(self) -> bool:
        if time.monotonic() < self.next_try:
            return False
        self.next_try = time.monotonic() + self.retry_s
        try:
            self.sink = self.opener()
        except Exception as exc:
            log.debug("%s cannot be reopened yet: %s", self.name, exc)
            return False
        self.written = 0
        return True

    def _close_quietly(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            try:
                sink.close()
            except Exception as exc:
                log.debug("closing the failed %s: %s", self.name, exc)

    def close(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.close()


def open_outputs(out, fps: float, size: Tuple[int, int], live: bool = False):
    """The annotated video and the JSON lines of the output config ``out``, both or neither:
    every path is checked before anything is created, and a video already created is
    removed if the JSON file then fails. File mode: a VideoSink and a JsonLinesSink that
    refuse an existing file unless ``out.overwrite``; live mode: Retrying segmented video
    and appended (rotated) JSON lines."""
    if out.video:
        VideoSink.check(out.video, overwrite=live or out.overwrite)
    if out.json and out.json != "-":
        check_writable(Path(out.json), "JSON lines", overwrite=live or out.overwrite)
    if live:
        return _open_live(out, fps, size)
    video = VideoSink(out.video, fps, size, overwrite=out.overwrite) if out.video else None
    try:
        jsonl = JsonLinesSink(out.json, overwrite=out.overwrite) if out.json else None
    except OutputError:
        if video is not None:
            video.close()
            video.path.unlink(missing_ok=True)
        raise
    return video, jsonl


def open_live_video(out, fps: float, size: Tuple[int, int]) -> "Retrying":
    """Live mode's annotated video: time-stamped segments, retried when writing fails."""
    return Retrying("the annotated video", lambda: SegmentedVideo(
        out.video, fps, size, out.segment_s, out.keep_mb, out.keep_hours), healthy_after=30)


def _open_live(out, fps: float, size: Tuple[int, int]):
    jsonl = Retrying("JSON lines", lambda: JsonLinesSink(out.json, append=True, max_mb=out.json_max_mb,
                                                         keep=out.json_keep)) if out.json else None
    try:
        video = open_live_video(out, fps, size) if out.video else None
    except OutputError:
        if jsonl is not None:
            jsonl.close()
        raise
    return video, jsonl
