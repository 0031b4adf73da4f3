"""The app: one config in, the pipeline run, a summary out."""

from __future__ import annotations

import logging
import signal
import sys

from edgecam import catalog, display
from edgecam.config import Config
from edgecam.errors import EdgecamError, SourceError
from edgecam.model import Model, load_model
from edgecam.pipeline import Hooks, LiveOutputs, StopFlag, run_file, run_live
from edgecam.reload import Reloader
from edgecam.sources import open_source

log = logging.getLogger("edgecam")


def make_window(cfg: Config):
    if cfg.output.display == "none":
        return None
    if not display.has_screen():
        log.warning("no screen (DISPLAY is not set): running without a window (--display none)")
        return None
    return display.Window(fullscreen=cfg.output.display == "fullscreen")


def run(cfg: Config, hooks: Hooks | None = None, stop: StopFlag | None = None) -> int:
    """Run the pipeline on ``cfg`` until the source ends or ``stop`` (default: SIGINT/SIGTERM)."""
    if hooks is None:
        from edgecam.systemd import journal_log_levels, notifier_from_env
        hooks = notifier_from_env()
        journal_log_levels()
    # signals first: a SIGTERM or `systemctl reload` (SIGHUP) while the model loads must not kill us
    stop = stop or StopFlag()
    stop.install()
    try:
        model = load_model(cfg)
        source = open_or_wait(cfg, model.size, hooks)
    except BaseException:
        stop.restore()
        raise
    if hasattr(hooks, "model"):
        hooks.model = model.name  # for systemd's STATUS= line
    window = web = outputs = None
    try:
        window = make_window(cfg)
        if source.live:
            if cfg.output.web:
                from edgecam.web import WebView
                web = WebView(cfg.output.web)
            outputs = LiveOutputs(cfg, source, window, web)
            if getattr(source, "waiting", False):   # up and waiting: systemctl start returns
                hooks.ready(f"{model.name}: waiting for camera {source.name} ({source.error})")
            summary = run_live(cfg, source, model, stop, outputs, hooks,
                               switch_model=lambda m, name=None: next_model(cfg, m, name),
                               on_reload=Reloader(cfg, hooks, outputs),
                               models=switchable_models(cfg, model.task))
        else:
            if cfg.output.web:
                log.warning("--web serves live sources only (a camera, a stream, or a file with --realtime)")
            summary = run_file(cfg, source, model, stop, hooks=hooks, window=window)
    finally:
        hooks.stopping()
        if outputs is not None:
            outputs.close()
        elif window is not None:
            window.close()
        source.close()
        stop.restore()
    # JSON lines on stdout stay pure JSON: the summary goes to stderr then
    print(summary.format(), file=sys.stderr if cfg.output.json == "-" else sys.stdout, flush=True)
    return 130 if stop.signal == signal.SIGINT else 0


def open_or_wait(cfg: Config, model_size: int, hooks: Hooks):
    """The configured source; under systemd, a camera that cannot be opened yet is waited for
    (a live.WaitingCamera) instead of an exit that would have the service restarted in a loop.
    At a terminal it stays one sentence and exit 1."""
    try:
        return open_source(cfg.source, model_size)
    except SourceError as exc:
        from edgecam.live import WaitingCamera, is_camera
        if not getattr(hooks, "supervised", False) or not is_camera(cfg.source.uri):
            raise
        log.warning("%s; waiting for the camera (retrying with backoff)", exc)
        return WaitingCamera(cfg.source, lambda: open_source(cfg.source, model_size), str(exc))


def switchable_models(cfg: Config, task: str) -> list[str]:
    """The provisioned catalogue models of one task: what the model switch cycles through."""
    directory = catalog.model_dir(cfg.model.dir)
    return sorted(n for n, s in catalog.catalogue().items()
                  if s.task == task and s.alias_of is None and catalog.is_provisioned(s, directory))


def next_model(cfg: Config, current: Model, name: str | None = None) -> Model | None:
    """The model called ``name``, or the next provisioned one of the same task (the `m` key)."""
    names = switchable_models(cfg, current.task)
    if name is None:
        if len(names) < 2:
            return None
        i = names.index(current.name) if current.name in names else -1
        name = names[(i + 1) % len(names)]
    elif name not in names:
        log.warning("cannot switch to %s: not a provisioned %s model (%s)", name, current.task,
                    ", ".join(names) or "none")
        return None
    if name == current.name:
        return None
    from dataclasses import replace
    try:
        new = load_model(replace(cfg, model=replace(cfg.model, name=name),
                                 preprocess=replace(cfg.preprocess, rho=None)))
    except EdgecamError as exc:
        log.warning("cannot switch to %s: %s", name, exc)
        return None
    log.info("switched model to %s", name)
    return new
