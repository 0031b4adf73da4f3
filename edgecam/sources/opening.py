"""The source a URI names (:func:`open_source`): a file, a folder of images, a webcam, a
stream, a GStreamer pipeline or the Pi camera, flipped and turned as the config asks."""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Optional

from edgecam.bounds import not_regular, path_text
from edgecam.config import SourceConfig
from edgecam.errors import SourceError
from edgecam.sources.base import Source
from edgecam.sources.files import IMAGE_EXTS, ImageSource, VideoFileSource, list_images
from edgecam.sources.opencv import OpenCVCameraSource, video_devices
from edgecam.sources.picam import PiCamera2Source, picamera2_attached
from edgecam.sources.transform import Oriented, orientation

log = logging.getLogger("edgecam.source")

FILE_MODE = "edgecam --source video.mp4 --output out.mp4 --display none"


def source_kind(uri: str) -> str:
    """Which kind of source a URI names: auto, picamera2, camera (OpenCV: webcams, streams,
    GStreamer) or file (a video, an image, a folder or a glob of images)."""
    uri = str(uri).strip()
    if uri == "auto":
        return "auto"
    if uri == "picamera2" or uri.startswith("picamera2:"):
        return "picamera2"
    if uri.isdigit() or uri.startswith("/dev/video") or "://" in uri or "!" in uri:
        return "camera"
    return "file"


def open_source(cfg: SourceConfig, model_size: Optional[int] = None) -> Source:
    """The source named by ``cfg.uri``, its frames flipped and turned as ``cfg`` asks (the
    Pi camera does that itself); SourceError (one sentence) when it can't be opened."""
    source = _open(cfg, model_size)
    turn = orientation(cfg)
    if turn.identity or isinstance(source, PiCamera2Source):
        return source
    return Oriented(source, turn)


def _open(cfg: SourceConfig, model_size: Optional[int]) -> Source:
    uri = str(cfg.uri).strip()
    kind = source_kind(uri)
    if kind == "auto":
        return auto_source(cfg, model_size)
    if kind == "picamera2":
        return PiCamera2Source(cfg, model_size)
    if kind == "camera":
        if cfg.loop:
            log.warning("--loop plays video files only: ignored for camera %s", uri)
        return OpenCVCameraSource(uri, cfg)
    return open_file(uri, cfg.realtime, cfg.loop)


def open_file(uri: str, realtime: bool = False, loop: bool = False) -> Source:
    """A folder of images, one image, a glob of images, or a video file (``loop``: played
    as a camera, from the start again at its end)."""
    path = Path(uri).expanduser()
    if loop and (path.is_dir() or path.suffix.lower() in IMAGE_EXTS):
        log.warning("--loop plays video files only: ignored for %s", path_text(path))
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise SourceError(f"folder {path} has no images ({', '.join(sorted(IMAGE_EXTS))})")
        return ImageSource(images, str(path))
    if not path.exists() and any(ch in uri for ch in "*?["):
        images = sorted(Path(p) for p in glob.glob(uri) if Path(p).suffix.lower() in IMAGE_EXTS)
        if images:
            return ImageSource(images, uri)
    if path.suffix.lower() in IMAGE_EXTS:
        if not path.is_file():
            problem = not_regular(path) if path.exists() else None
            why = "cannot be read: " + problem if problem else "does not exist"
            raise SourceError(f"image file {path_text(path)} {why}")
        return ImageSource([path], str(path))
    return VideoFileSource(path, realtime=realtime, loop=loop)


def auto_source(cfg: SourceConfig, model_size: Optional[int] = None) -> Source:
    """The Pi camera if one is attached, else the first V4L2 device, else a clear error."""
    ok, why = picamera2_attached()
    if ok:
        return PiCamera2Source(cfg, model_size)
    tried = [why]
    devices = video_devices()
    for device in devices:
        try:
            return OpenCVCameraSource(device, cfg)
        except SourceError as exc:
            tried.append(str(exc))
    if not devices:
        tried.append("no /dev/video* device")
    raise SourceError(f"no camera found ({'; '.join(tried)}): name one with --source "
                      f"(0, /dev/video0, rtsp://..., http://...), or run on a file: `{FILE_MODE}`")
