"""Sinks: where results and drawn frames go, behind one base type (like jetson-inference's
videoOutput and picamera2's outputs/).

  base.py      Sink, the Sinks fan-out, FrameInfo, Intent (what a key or a browser asks for)
  overlay.py   boxes, labels, top-k and the heads-up display, drawn on a frame (pure)
  layout.py    where the overlay's HUD, captions and arrows go, clear of the labels (pure)
  files.py     the JSON lines, snapshot PNGs
  video.py     the annotated video: an ffmpeg process, cut-safe containers, live segments and
               their caps (prune_oldest, also the clips folder's)
  encoders.py  the ffmpeg command: H.264 by the first encoder that works, else MPEG-4 Part 2
  mkv.py       the Matroska stream piped to ffmpeg: each frame with its own time
  feeder.py    the bounded hand-over to the encoder's stdin, from a thread
  window.py    the window / kiosk (keys become intents)
  web/         the browser view (MJPEG, status, controls; bounded server, token) and /metrics
  progress.py  file mode's progress bar on a terminal
  photos.py    annotated photos out, and what the model saw in each photo, printed
  events.py    tracking events as JSON lines
  clips.py     live mode: a clip around each event, with pre-roll from a ring buffer
  (MQTT, with Home Assistant discovery, is a sink of its own package: edgecam/mqtt/)

  opening.py   open_sinks: the sinks a config asks for, all or none, once per run (not
               re-exported here: it opens MQTT's sink, and edgecam/mqtt/sink.py imports base.py,
               so this face importing it would make a cycle)

Sinks never import the pipeline: the runners call them; the app closes them once. This file
only re-exports."""

from edgecam.sinks.base import (NEXT_MODEL, OVERLAY, PAUSE, QUIT, SET, SNAPSHOT, FrameInfo, Intent,
                                Sink, Sinks)
from edgecam.sinks.clips import ClipSink
from edgecam.sinks.events import EventsSink
from edgecam.sinks.files import JsonLinesSink, SinkError, save_snapshot
from edgecam.sinks.photos import PhotoReport, PhotoSink
from edgecam.sinks.progress import ProgressBar
from edgecam.sinks.retry import Retrying
from edgecam.sinks.video import SegmentedVideo, VideoSink
from edgecam.sinks.web import WebView
from edgecam.sinks.window import Window

__all__ = ["Sink", "Sinks", "FrameInfo", "Intent", "QUIT", "PAUSE", "OVERLAY", "SNAPSHOT", "SET", "NEXT_MODEL",
           "save_snapshot", "VideoSink", "SegmentedVideo", "JsonLinesSink", "Retrying", "SinkError",
           "PhotoSink", "PhotoReport", "Window", "WebView", "ProgressBar", "EventsSink", "ClipSink"]
