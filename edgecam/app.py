"""The app: open the model, the source and the sinks once, run the mode the source calls for,
close everything once, print the summary."""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Optional

import cv2

from edgecam.config import Config
from edgecam.model import ModelSwitcher, load_model
from edgecam.model.fetch import provision_configured
from edgecam.pipeline import Hooks, StopFlag, run_file, run_live
from edgecam.service.reload import Reloader
from edgecam.service.systemd import journal_log_levels, notifier_from_env
from edgecam.sinks import open_sinks
from edgecam.sources import open_source

log = logging.getLogger("edgecam")


def main(cfg: Config, fetch: bool = False) -> int:
    """`edgecam [flags]`: provision the model first with ``fetch``, then run."""
    quiet_native_logs()
    if fetch:
        provision_configured(cfg)
    return run(cfg)


def quiet_native_logs() -> None:
    """Keep FFmpeg's and OpenCV's own chatter (e.g. "moov atom not found") off the terminal:
    edgecam reports a bad video or camera in one sentence of its own. FFmpeg reads its level
    when OpenCV's FFmpeg backend starts, at the first capture, so this runs before any."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:   # an OpenCV without it (some 4.x wheels): the variable above does it
        pass


def run(cfg: Config, hooks: Optional[Hooks] = None, stop: Optional[StopFlag] = None) -> int:
    """Run the pipeline on ``cfg`` until the source ends or ``stop`` (default: SIGINT/SIGTERM)."""
    if hooks is None:
        hooks = notifier_from_env()
        journal_log_levels()
    # signals first: a SIGTERM or `systemctl reload` (SIGHUP) while the model loads must not kill us
    stop = stop or StopFlag()
    stop.install()
    try:
        model = load_model(cfg)
        source = open_source(cfg.source, model.size)
    except BaseException:
        stop.restore()
        raise
    hooks.model_loaded(model.name)
    sinks = None
    try:
        sinks = open_sinks(cfg, source)
        if source.live:
            switcher = ModelSwitcher(cfg)
            summary = run_live(cfg, source, model, stop, sinks, hooks, switcher=switcher,
                               on_reload=Reloader(cfg, hooks, switcher))
        else:
            summary = run_file(cfg, source, model, stop, sinks, hooks)
    finally:
        hooks.stopping()
        if sinks is not None:
            sinks.close()
        source.close()
        stop.restore()
    # JSON lines on stdout stay pure JSON: the summary goes to stderr then
    print(summary.format(), file=sys.stderr if cfg.output.json == "-" else sys.stdout, flush=True)
    return 130 if stop.signal == signal.SIGINT else 0
