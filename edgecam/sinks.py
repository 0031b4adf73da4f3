"""Sinks: where annotated frames and results go. Each one writes synchronously; the
pipeline decides which thread calls it. Every sink's close() leaves a complete file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

from edgecam.errors import OutputError
from edgecam.sandbox import write_refusal

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


def check_writable(path: Path, what: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"cannot write {what} to {path}: it is a folder")
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} to {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {what} to {path}: {write_refusal(folder)}")


class VideoSink:
    """An annotated video at the source's size and frame rate (MPEG-4 in .mp4, MJPEG in .avi)."""

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

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class JsonLinesSink:
    """One complete JSON object per line, flushed line by line, so a stop leaves no half line."""

    def __init__(self, path: str):
        self.path = Path(path)
        if str(path) == "-":
            import sys
            self.f, self._own = sys.stdout, False
            return
        check_writable(self.path, "JSON lines")
        try:
            self.f, self._own = open(self.path, "w", encoding="utf-8"), True
        except OSError as exc:
            raise OutputError(f"cannot write JSON lines to {path}: {write_refusal(self.path.parent, exc)}") from None

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record, separators=(",", ":")) + "\n")
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
