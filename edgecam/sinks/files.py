"""File sinks: the annotated video and the JSON lines, and snapshot PNGs. Each one writes
synchronously; the runner decides which thread calls it. Every close() leaves a complete file."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

from edgecam.errors import OutputError
from edgecam.sandbox import write_refusal
from edgecam.sinks.base import FrameInfo, Sink

log = logging.getLogger("edgecam.sinks")

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


def check_writable(path: Path, what: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"cannot write {what} to {path}: it is a folder")
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} to {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {what} to {path}: {write_refusal(folder)}")


class VideoSink(Sink):
    """An annotated video at the source's size and frame rate (MPEG-4 in .mp4, MJPEG in .avi):
    every new frame, none of the redraws."""

    @staticmethod
    def check(path: str) -> None:
        """OutputError (one sentence) unless a video can be written to ``path``."""
        if Path(path).suffix.lower() not in FOURCC:
            raise OutputError(f"cannot write video {path}: use a .mp4, .mov, .mkv or .avi file name")
        check_writable(Path(path), "the annotated video")

    def __init__(self, path: str, fps: float, size: Tuple[int, int]):
        self.check(path)
        self.path = Path(path)
        ext = self.path.suffix.lower()
        self.size = size
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC[ext]), fps, size)
        if not self.writer.isOpened():
            raise OutputError(f"cannot write video {path}: OpenCV could not open an encoder for it")
        self.frames = 0

    def frame(self, image: np.ndarray, info: FrameInfo) -> None:
        self.write(image)

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class JsonLinesSink(Sink):
    """One complete JSON object per result, a line each, flushed line by line, so a stop leaves
    no half line. Written from the inference thread in live mode: a lock keeps lines whole."""

    wants_frames = False

    def __init__(self, path: str):
        self.path = Path(path)
        self._lock = threading.Lock()
        if str(path) == "-":
            self.f, self._own = sys.stdout, False
            return
        check_writable(self.path, "JSON lines")
        try:
            self.f, self._own = open(self.path, "w", encoding="utf-8"), True
        except OSError as exc:
            raise OutputError(f"cannot write JSON lines to {path}: {write_refusal(self.path.parent, exc)}") from None

    def result(self, result) -> None:
        self.write(result.to_json())

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self.f.write(line)
            self.f.flush()

    def close(self) -> None:
        if self.f is not None:
            if self._own:
                self.f.close()
            else:
                self.f.flush()
            self.f = None


def open_outputs(video_path: Optional[str], json_path: Optional[str], fps: float,
                 size: Tuple[int, int]) -> Tuple[Optional[VideoSink], Optional[JsonLinesSink]]:
    """The annotated video and the JSON lines, both or neither: every path is checked before
    anything is created, and a video already created is removed if the JSON file then fails."""
    if video_path:
        VideoSink.check(video_path)
    if json_path and json_path != "-":
        check_writable(Path(json_path), "JSON lines")
    video = VideoSink(video_path, fps, size) if video_path else None
    try:
        jsonl = JsonLinesSink(json_path) if json_path else None
    except OutputError:
        if video is not None:
            video.close()
            video.path.unlink(missing_ok=True)
        raise
    return video, jsonl


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
