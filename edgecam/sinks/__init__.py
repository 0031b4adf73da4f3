"""Sinks: where results and drawn frames go, behind one base type (like jetson-inference's
videoOutput and picamera2's outputs/).

  base.py      Sink, the Sinks fan-out, FrameInfo, Intent (what a key or a browser asks for)
  overlay.py   boxes, labels, top-k and the heads-up display, drawn on a frame (pure)
  files.py     the annotated video, the JSON lines, snapshot PNGs
  window.py    the window / kiosk (keys become intents)
  web.py       the browser view (MJPEG, status, model switch)
  progress.py  file mode's progress bar on a terminal
  events.py    tracking events as JSON lines
  clips.py     live mode: a clip around each event, with pre-roll from a ring buffer

Sinks never import the pipeline: the runners call them. :func:`open_sinks` opens the ones a
config asks for, all or none, once per run; the app closes them once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List

from edgecam.config import Config
from edgecam.sinks.base import (MODEL, NEXT_MODEL, OVERLAY, PAUSE, QUIT, SNAPSHOT, FrameInfo, Intent,
                                Sink, Sinks)
from edgecam.sinks.clips import ClipSink
from edgecam.sinks.events import EventsSink
from edgecam.sinks.files import JsonLinesSink, VideoSink, check_writable, open_outputs, save_snapshot
from edgecam.sinks.progress import ProgressBar
from edgecam.sinks.web import WebView
from edgecam.sinks.window import Window, open_window

__all__ = ["Sink", "Sinks", "FrameInfo", "Intent", "QUIT", "PAUSE", "OVERLAY", "SNAPSHOT", "NEXT_MODEL",
           "MODEL", "open_sinks", "open_outputs", "save_snapshot", "VideoSink", "JsonLinesSink", "Window",
           "WebView", "ProgressBar", "EventsSink", "ClipSink"]

log = logging.getLogger("edgecam")


def open_sinks(cfg: Config, source) -> Sinks:
    """Every sink ``cfg`` asks for, for ``source`` (a live one gets the browser view, a file the
    progress bar): all of them, or none (OutputError) with nothing left behind."""
    opened: List[Sink] = []
    try:
        fps = source.fps or (cfg.source.fps if source.live else 30.0)
        if cfg.output.events and cfg.output.events != "-":
            check_writable(Path(cfg.output.events), "events")
        opened += open_outputs(cfg.output.video, cfg.output.json, fps, source.size)
        if cfg.output.events:
            opened.append(EventsSink(cfg.output.events))
        if cfg.output.clips and source.live:
            opened.append(ClipSink(cfg.output.clips, cfg.clips, fps, source.size))
        elif cfg.output.clips:
            log.warning("--clips records live sources only (a camera, a stream, or a file with --realtime)")
        if source.live and cfg.output.web:
            opened.append(WebView(cfg.output.web))
        elif cfg.output.web:
            log.warning("--web serves live sources only (a camera, a stream, or a file with --realtime)")
        if not source.live:
            opened.append(ProgressBar(source.frame_count, Path(source.name).name[:30]))
        opened.append(open_window(cfg.output.display))
    except BaseException:
        Sinks(opened).close()
        raise
    return Sinks(opened)
