"""The sinks a run's config asks for, opened all or none (:func:`open_sinks`), and the file
and live outputs behind them (:func:`open_outputs`). Its own module, not the package face:
it opens MQTT's sink, whose module imports edgecam/sinks/base.py."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from edgecam.config import Config, OutputConfig
from edgecam.errors import EdgecamError, OutputError
from edgecam.mqtt.sink import MqttSink, check_files
from edgecam.sinks.base import FrameInfo, Sink, Sinks
from edgecam.sinks.clips import ClipSink
from edgecam.sinks.events import EventsSink
from edgecam.sinks.files import JsonLinesSink, check_writable
from edgecam.sinks.photos import PhotoReport, PhotoSink, wants_photos
from edgecam.sinks.progress import ProgressBar
from edgecam.sinks.retry import Retrying
from edgecam.sinks.video import SegmentedVideo, VideoSink
from edgecam.sinks.web import WebView
from edgecam.sinks.web.metrics import Metrics
from edgecam.sinks.window import open_window
from edgecam.sources.base import Source
from edgecam.store.sink import HistorySink

log = logging.getLogger("edgecam")


class FirstFrameVideo(Sink):
    """The video of a camera still awaited (sources/waiting.py): opened with its first frame,
    at the rate and size the camera turns out to have (the path is checked at the start)."""

    def __init__(self, opener: Callable[[], Sink]):
        self.opener = opener
        self.sink: Optional[Sink] = None
        self.tried = False

    def frame(self, image, info: FrameInfo) -> None:
        if not self.tried:
            self.tried = True
            try:
                self.sink = self.opener()
            except EdgecamError as exc:   # the camera came; the recording cannot: say so, run on
                log.error("not recording: %s", exc)
        if self.sink is not None:
            self.sink.frame(image, info)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


def open_sinks(cfg: Config, source: Source, size: Optional[Tuple[int, int]] = None) -> Sinks:
    """Every sink ``cfg`` asks for, for ``source`` (a live one gets the browser view, a file the
    progress bar): all of them, or none (OutputError) with nothing left behind. ``size``: the
    drawn frames' when it is not the source's (a comparison's panels side by side)."""
    opened: List[Optional[Sink]] = []      # (None: an output not asked for)
    try:
        check_files(cfg.mqtt)
        out = out_video = cfg.output
        if source.waiting and out.video:   # a camera still awaited
            VideoSink.check(out.video)
            opened.append(FirstFrameVideo(lambda: open_live_video(out_video, source.fps or cfg.source.fps,
                                                                  source.size)))
            out = replace(out, video=None)
        if wants_photos(out.video, source):
            opened.append(open_photos(out, source))
            out = replace(out, video=None)
        fps = source.fps or (cfg.source.fps if source.live else 30.0)
        if cfg.output.events and cfg.output.events != "-":
            check_writable(Path(cfg.output.events), "events", overwrite=source.live or out.overwrite)
        opened += open_outputs(out, fps, size or source.size, live=source.live)
        opened += open_tracking_outputs(cfg, source, fps)
        history = next((s for s in opened if isinstance(s, HistorySink)), None)
        if cfg.mqtt.url:
            opened.append(MqttSink(cfg, live=source.live, today=history.today if history else None))
        opened += open_web(cfg, source, history.reader if history else None)
        if source.still:     # what the model saw in each photo, printed (not a progress bar)
            opened.append(PhotoReport(photo_names(source), sys.stderr if "-" in (out.json, out.events) else None))
        elif not source.live:
            opened.append(ProgressBar(source.frame_count, Path(source.name).name[:30]))
        opened.append(open_window(cfg.output.display))
    except BaseException:
        Sinks(opened).close()
        raise
    return Sinks(opened)


def photo_names(source: Source) -> List[str]:
    """The file names of a photo source's photos, by frame index."""
    return [Path(p).name for p in source.paths]


def open_photos(out: OutputConfig, source: Source) -> PhotoSink:
    """Annotated photos for a photo source (``--output out.jpg`` or ``--output DIR/``)."""
    return PhotoSink(out.video or "", list(source.paths), overwrite=out.overwrite)   # (wants_photos: a target)


def open_web(cfg: Config, source: Source, history=None) -> List[Sink]:
    """The browser view and the Prometheus metrics (live sources only). The view serves
    /metrics when prometheus_client is installed; --metrics needs it; ``history``: what its
    review page reads (edgecam/store/queries.py)."""
    out = cfg.output
    if not source.live:
        if out.web or out.metrics:
            log.warning("--web and --metrics serve live sources only "
                        "(a camera, a stream, or a file with --realtime or --loop)")
        return []
    metrics = None
    if out.metrics:
        metrics = Metrics(out.metrics, out.web_hosts)
    elif out.web:
        try:
            metrics = Metrics()
        except OutputError as exc:
            log.info("browser view: no /metrics: %s", exc)
    try:
        web = WebView(out, metrics, history, cfg.teach) if out.web else None
    except BaseException:
        if metrics is not None:
            metrics.close()
        raise
    return [s for s in (metrics, web) if s is not None]


def open_tracking_outputs(cfg: Config, source: Source, fps: float) -> List[Sink]:
    """The events file, the history and the clips folder: in live mode the events file is
    appended (and rotated like the JSON lines) and retried when writing fails, like every live
    output; the history (live mode, history.enabled) is told of the clips, and closed after them."""
    out = cfg.output
    opened: List[Sink] = []
    if out.clips:   # checked in every mode, like every value a mode ignores
        ClipSink.check(out.clips)
    events = out.events
    if events and source.live:
        opened.append(EventsSink(Retrying("events", lambda: JsonLinesSink(
            events, append=True, max_mb=out.json_max_mb, keep=out.json_keep))))
    elif events:
        opened.append(EventsSink(JsonLinesSink(events, overwrite=out.overwrite)))
    clips = ClipSink(out.clips, cfg.clips, fps, source.size) if out.clips and source.live else None
    if cfg.history.enabled and source.live:
        opened.append(HistorySink(cfg.history, clips, pad=cfg.teach.pad if cfg.teach.set else None))
    if clips is not None:
        opened.append(clips)
    elif out.clips:
        log.warning("--clips records live sources only (a camera, a stream, or a file with --realtime or --loop)")
    return opened


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


def open_live_video(out, fps: float, size: Tuple[int, int]) -> Retrying:
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
