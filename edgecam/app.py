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
from edgecam.errors import SourceError
from edgecam.model.loader import load_model
from edgecam.model.switch import ModelSwitcher
from edgecam.model.compare import composite_size, each_compared, load_compare
from edgecam.provision.fetch import provision_configured
from edgecam.pipeline import Hooks, StopFlag, run_file, run_live
from edgecam.service.reload import Reloader
from edgecam.service.journal import journal_log_levels
from edgecam.service.systemd import notifier_from_env
from edgecam.sinks.opening import open_sinks
from edgecam.sources.waiting import WaitingCamera, is_camera
from edgecam.sources import open_source
from edgecam.teach.stage import open_teach
from edgecam.track.stage import tracking_on

log = logging.getLogger("edgecam")


def main(cfg: Config, fetch: bool = False) -> int:
    """`edgecam [flags]`: provision the model first with ``fetch``, then run."""
    quiet_native_logs()
    if fetch:
        for one in each_compared(cfg):      # the model, or each model compared
            provision_configured(one)
    return run(cfg)


def quiet_native_logs() -> None:
    """Keep FFmpeg's and OpenCV's own chatter (e.g. "moov atom not found") off the terminal:
    edgecam reports a bad video or camera in one sentence of its own. FFmpeg reads its level
    when OpenCV's FFmpeg backend starts, at the first capture, so this runs before any."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:   # OpenCV 4.11 (the last for numpy 1.x: a Pi's) has only cv2.setLogLevel;
        # the variable above is read when cv2 is imported, too late here
        set_level = getattr(cv2, "setLogLevel", None)
        if set_level is not None:
            set_level(2)     # ERROR (0 silent, 1 fatal, 2 error, 3 warning)


def warn_untracked(cfg: Config, task: str, still: bool) -> None:
    """Events, lines, zones and clips need tracking: say so once when it is off."""
    wanted = [name for name, on in (("--events", cfg.output.events), ("lines", cfg.rules.lines),
                                    ("zones", cfg.rules.zones), ("clips", cfg.output.clips)) if on]
    if wanted and not tracking_on(cfg, task, still):
        why = {"detect": "tracking is off (track.enabled)", "compare": "--compare does not track"}.get(
            task, "the model is a classifier")
        log.warning("%s need tracking, but %s: nothing will be counted", ", ".join(wanted), why)


def run(cfg: Config, hooks: Optional[Hooks] = None, stop: Optional[StopFlag] = None) -> int:
    """Run the pipeline on ``cfg`` until the source ends or ``stop`` (default: SIGINT/SIGTERM)."""
    if hooks is None:
        hooks = notifier_from_env()
        journal_log_levels()
    # signals first: a SIGTERM or `systemctl reload` (SIGHUP) while the model loads must not kill us
    stop = stop or StopFlag()
    stop.install()
    try:
        model = load_compare(cfg) if cfg.model.compare else load_model(cfg)
        teach = open_teach(cfg)             # a bad taught set: one sentence, exit 2, before the source
        source = open_or_wait(cfg, model.size, hooks)
    except BaseException:
        stop.restore()
        raise
    hooks.model_loaded(model.name)
    warn_untracked(cfg, model.task, source.still)
    sinks = None
    try:
        # a comparison's panels side by side (drawn by the overlay: --no-overlay, the plain picture)
        sinks = open_sinks(cfg, source, composite_size(model, source.size) if cfg.overlay.enabled else None)
        if source.live:
            if source.waiting:   # up and waiting: systemctl start returns
                hooks.ready(f"{model.name}: waiting for camera {source.name} ({source.error})")
            switcher = ModelSwitcher(cfg)
            reloader = Reloader(cfg, hooks)
            summary = run_live(cfg, source, model, stop, sinks, hooks, switcher=switcher, on_reload=reloader,
                               teach=teach)
        else:
            summary = run_file(cfg, source, model, stop, sinks, hooks, teach=teach)
    finally:
        hooks.stopping()
        if sinks is not None:
            sinks.close()
        source.close()
        stop.restore()
    # JSON lines on stdout stay pure JSON: the summary goes to stderr then
    stdout_taken = "-" in (cfg.output.json, cfg.output.events)
    print(summary.format() + ("\n" + teach.line() if teach is not None else ""),
          file=sys.stderr if stdout_taken else sys.stdout, flush=True)
    return 130 if stop.signal == signal.SIGINT else 0


def open_or_wait(cfg: Config, model_size: int, hooks: Hooks):
    """The configured source; under systemd, a camera that cannot be opened yet is waited for
    (a WaitingCamera) instead of an exit that would have the service restarted in a loop.
    At a terminal it stays one sentence and exit 1."""
    try:
        return open_source(cfg.source, model_size)
    except SourceError as exc:
        if not hooks.supervised or not is_camera(cfg.source.uri):
            raise
        log.warning("%s; waiting for the camera (retrying with backoff)", exc)
        return WaitingCamera(cfg.source, lambda: open_source(cfg.source, model_size), str(exc))
