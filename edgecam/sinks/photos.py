"""Photos in, annotated photos out: a photo with ``--output out.jpg`` (or .png, ...) is written
annotated at its own size; a folder (or a glob) of photos with ``--output DIR/`` gives one
annotated photo per input in DIR, under the input's name. Like the video, an existing file
is refused without ``--overwrite``, and every name is checked before anything is written;
the folder the photos come from is never written into. A photo run also prints what the
model saw in each photo: the top-k classes with their scores, or the detections."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, TextIO

import cv2

from edgecam.bounds import path_text
from edgecam.errors import OutputError
from edgecam.sinks.base import FrameInfo, Sink
from edgecam.sinks.files import SinkError, check_writable
from edgecam.sources.base import Source

log = logging.getLogger("edgecam.sinks")

PHOTO_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def is_folder_target(target: str) -> bool:
    """``--output DIR/`` (a trailing slash) or an existing folder."""
    return target.endswith(("/", os.sep)) or Path(target).is_dir()


def wants_photos(target: Optional[str], source: Source) -> bool:
    """Whether ``--output target`` asks for annotated photos of a photo source: a photo file
    name, or a folder (a video name still makes a video of the photos)."""
    if not target or not source.still:
        return False
    return is_folder_target(target) or Path(target).suffix.lower() in PHOTO_EXTS


class PhotoSink(Sink):
    """Each annotated photo to its file: ``target`` itself for one photo, ``target/NAME`` for
    each photo of a folder (``names``: the source's file names, by frame index)."""

    def __init__(self, target: str, inputs: Sequence[Path], overwrite: bool = False):
        names = [Path(p).name for p in inputs]
        self.folder = Path(target) if is_folder_target(target) else None
        if self.folder is None and len(names) > 1:
            raise OutputError(f"cannot write {len(names)} annotated photos to one file {path_text(target)}: "
                              f"name a folder (--output {Path(target).stem}/)")
        self.paths = [self.folder / n for n in names] if self.folder is not None else [Path(target)]
        self._check(overwrite)
        same = {p.resolve() for p in self.paths} & {Path(p).resolve() for p in inputs}
        if same:
            raise OutputError(f"cannot write the annotated photo over its input {path_text(sorted(same)[0])}: "
                              f"name another {'folder' if self.folder is not None else 'file'}")
        self.written: List[Path] = []

    def _check(self, overwrite: bool) -> None:
        if self.folder is not None:
            if not self.folder.is_dir():
                try:
                    self.folder.mkdir()
                except OSError as exc:
                    raise OutputError(f"cannot make the folder {path_text(self.folder)} for the annotated "
                                      f"photos: {(exc.strerror or str(exc)).lower()}") from None
        elif self.paths[0].suffix.lower() not in PHOTO_EXTS:
            raise OutputError(f"cannot write a photo to {path_text(self.paths[0])}: use a "
                              f"{', '.join(PHOTO_EXTS)} file name")
        for path in self.paths:
            check_writable(path, "the annotated photo", overwrite)

    def frame(self, image, info: FrameInfo) -> None:
        index = info.frame.index if info.frame is not None else len(self.written)
        path = self.paths[index] if self.folder is not None else self.paths[0]
        try:
            ok = cv2.imwrite(str(path), image)
        except cv2.error as exc:
            raise SinkError(f"cannot write the annotated photo {path_text(path)}: {exc}") from None
        if not ok:
            raise SinkError(f"cannot write the annotated photo {path_text(path)}: OpenCV has no "
                            f"encoder for {path.suffix or 'a name without an extension'}")
        self.written.append(path)

    def close(self) -> None:
        if len(self.written) == 1:
            log.info("wrote the annotated photo %s", path_text(self.written[0]))
        elif self.written:
            log.info("wrote %d annotated photos to %s", len(self.written), path_text(self.folder))


class PhotoReport(Sink):
    """What the model saw in each photo, printed as it comes: the top-k classes with their
    scores (a classifier) or every detection with its score and box (SSD)."""

    wants_frames = False

    def __init__(self, names: Sequence[str], stream: Optional[TextIO] = None):
        self.names = list(names)
        self.stream = stream

    def result(self, result) -> None:
        name = self.names[result.frame] if 0 <= result.frame < len(self.names) else f"photo {result.frame}"
        print("\n".join(report_lines(name, result)), file=self.stream or sys.stdout, flush=True)


def report_lines(name: str, result) -> List[str]:
    """``name: ...`` and one indented line per class or detection of ``result`` (or per model,
    for a comparison's result: edgecam/model/compare.py)."""
    parts = getattr(result, "parts", None)
    if parts is not None:
        lines = [f"{name}:"]
        for part in parts:
            lines += ["  " + line for line in report_lines(f"{part.model} ({part.inference_ms:.1f} ms)", part)]
        return lines
    if result.task == "detect":
        items = [f"{d.label} {d.score * 100:.0f}% at ({d.box[0]:.0f}, {d.box[1]:.0f})-({d.box[2]:.0f}, "
                 f"{d.box[3]:.0f})" for d in sorted(result.detections, key=lambda d: -d.score)]
        empty = "no detection above the threshold"
    else:
        items = [f"{c.score * 100:5.1f}%  {c.label}" for c in result.classes]
        empty = "no class"
    return [f"{name}:"] + ["  " + item for item in items or [empty]]
