"""File sinks: the JSON lines and snapshot PNGs (the annotated video: video.py). Each one
writes synchronously; the runner decides which thread calls it. Every close() leaves a
complete file: a JSON line is written whole or not at all (one write, undone if it falls
short), and an appended file whose last line was torn by a power cut is repaired when it is
reopened. File mode never overwrites an existing output without ``output.overwrite``
(--overwrite, -y); live mode appends JSON lines, rotating by size."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from edgecam.bounds import name_problem, not_regular, os_reason, path_text
from edgecam.errors import OutputError
from edgecam.sandbox import write_refusal
from edgecam.sinks.base import Sink

log = logging.getLogger("edgecam.sinks")


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


class JsonLinesSink(Sink):
    """One complete JSON object per line: each line is one write() that is undone if it
    falls short, so a full disk or a stop never leaves half a line. ``append`` (live mode)
    keeps what is there, after cutting a torn last line left by a power cut; ``max_mb``
    rotates the file to NAME.1 ... NAME.``keep`` when it grows past that size. Written from
    the inference thread in live mode: a lock keeps lines whole."""

    wants_frames = False

    def __init__(self, path: str, append: bool = False, overwrite: bool = True,
                 max_mb: float = 0.0, keep: int = 5):
        self.path = Path(path)
        self._lock = threading.Lock()
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
            raise OutputError(f"cannot write JSON lines to {path_text(self.path)}: "
                              f"{write_refusal(self.path.parent, exc)}") from None

    def _repair(self) -> None:
        """Cut a torn last line (no newline at the end) back to the last whole line."""
        end, fd = self.size, self._opened()
        if os.pread(fd, 1, end - 1) == b"\n":
            return
        pos = end
        while pos > 0:
            start = max(0, pos - 65536)
            chunk = os.pread(fd, pos - start, start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                pos = start + nl + 1
                break
            pos = start
        os.ftruncate(fd, pos)
        self.size = pos
        log.warning("%s ended in a torn line (a crash or a power cut): removed its %d bytes",
                    path_text(self.path), end - pos)

    def result(self, result) -> None:
        self.write(result.to_json())

    def write(self, record: dict) -> None:
        with self._lock:
            self._write(record)

    def _write(self, record: dict) -> None:
        line = json_line(record)
        if self.f is not None:
            self.f.write(line)
            self.f.flush()
            return
        data = line.encode("utf-8")
        if self.max_bytes and self.size and self.size + len(data) > self.max_bytes:
            self._rotate()
        start, fd = self.size, self._opened()
        try:
            done = os.write(fd, data)
            if done < len(data):  # a short write: the next one says why (ENOSPC, EIO ...)
                done += os.write(fd, data[done:])
            if done < len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            try:
                os.ftruncate(fd, start)  # never half a line
            except OSError:
                pass
            raise SinkError(f"writing JSON lines to {path_text(self.path)} failed: {os_reason(exc)}") from None
        self.size = start + done

    def _opened(self) -> int:
        """The file's descriptor; SinkError when it is not open (a rotation that failed)."""
        if self.fd is None:
            raise SinkError(f"JSON lines to {path_text(self.path)}: the file is not open")
        return self.fd

    def _rotate(self) -> None:
        os.close(self._opened())
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
    return json.dumps(record, separators=(",", ":")) + "\n"


def save_snapshot(image: np.ndarray, folder: str) -> Optional[Path]:
    """``image`` as edgecam-YYYYmmdd-HHMMSS.png in ``folder`` (made when missing); a snapshot
    that cannot be written is logged and never stops the pipeline (None)."""
    directory = Path(folder)
    path = directory / time.strftime("edgecam-%Y%m%d-%H%M%S.png")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        saved, why = cv2.imwrite(str(path), image), None
    except OSError as exc:
        saved, why = False, exc
    if not saved:
        log.error("cannot save a snapshot to %s: %s", path, write_refusal(directory, why))
        return None
    log.info("snapshot saved to %s", path)
    return path
