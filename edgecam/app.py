"""The app: open the model, the source and the sinks once, run the mode the source calls for,
close everything once, print the summary."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Optional

from edgecam.config import Config
from edgecam.model import ModelSwitcher, load_model
from edgecam.pipeline import Hooks, StopFlag, run_file, run_live
from edgecam.service.reload import Reloader
from edgecam.service.systemd import journal_log_levels, notifier_from_env
from edgecam.sinks import open_sinks
from edgecam.sources import open_source
from edgecam.track.stage import tracking_on

log = logging.getLogger("edgecam")


def warn_untracked(cfg: Config, task: str, still: bool) -> None:
    """Events, lines, zones and clips need tracking: say so once when it is off."""
    wanted = [name for name, on in (("--events", cfg.output.events), ("lines", cfg.rules.lines),
                                    ("zones", cfg.rules.zones), ("clips", cfg.output.clips)) if on]
    if wanted and not tracking_on(cfg, task, still):
        why = "the model is a classifier" if task != "detect" else "tracking is off (track.enabled)"
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
        model = load_model(cfg)
        source = open_source(cfg.source, model.size)
    except BaseException:
        stop.restore()
        raise
    hooks.model_loaded(model.name)
    warn_untracked(cfg, model.task, source.still)
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
    stdout_taken = "-" in (cfg.output.json, cfg.output.events)
    print(summary.format(), file=sys.stderr if stdout_taken else sys.stdout, flush=True)
    return 130 if stop.signal == signal.SIGINT else 0
