"""SIGHUP: re-read config.yaml and apply what can change without a restart (live mode).

``systemctl reload edgecam`` (ExecReload=kill -HUP $MAINPID) sets the StopFlag's reload
event; the live output loop then calls a :class:`Reloader`. Only keys whose value *in the
file* changed since the last load are applied, so flags given on the command line keep
winning over keys nobody touched. What a change does is each key's ``reload`` class in the
config schema (edgecam/config.py):

  hot        applied at once: postprocess.threshold, postprocess.top_k, overlay.*, log_level,
             output.snapshot_dir
  model      the model is reloaded through the model switch: model.name/labels/dir/runtime/
             threads, preprocess.rho/resize (the old model keeps running if the new one fails)
  restart    source.*, output.video/json/display/web: logged as needing a restart, not applied
  unused     model.mirror (provisioning only), model.workers (file mode only)
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgecam.config import HOT, MODEL, RESTART, SETTINGS, Config, load_config, set_value, values
from edgecam.errors import EdgecamError
from edgecam.model import ModelSwitcher
from edgecam.pipeline.hooks import Hooks

log = logging.getLogger("edgecam.reload")


def changed_keys(old: Config, new: Config) -> Dict[str, Tuple[Any, Any]]:
    """``{"postprocess.threshold": (0.5, 0.6), ...}`` for every key whose value differs."""
    a, b = values(old), values(new)
    return {k: (a[k], b[k]) for k in b if a[k] != b[k]}


def by_class(changes: Dict[str, Tuple[Any, Any]]) -> Dict[str, List[str]]:
    """The changed keys sorted by what a reload does with them: {hot: [...], model: [...], ...}."""
    out: Dict[str, List[str]] = {HOT: [], MODEL: [], RESTART: []}
    for key in sorted(changes):
        out.setdefault(SETTINGS[key].reload, []).append(key)
    return out


class Reloader:
    """``on_reload(state)`` for :func:`edgecam.pipeline.run_live`."""

    def __init__(self, cfg: Config, hooks: Optional[Hooks] = None, switcher: Optional[ModelSwitcher] = None):
        self.cfg = cfg
        self.hooks = hooks or Hooks()
        self.switcher = switcher or ModelSwitcher(cfg)
        self.path: Optional[Path] = Path(cfg.path) if cfg.path else None
        self.base: Optional[Config] = None          # the file as last loaded
        if self.path is not None:
            try:
                self.base = load_config(self.path)
            except EdgecamError as exc:  # it loaded a moment ago; if it broke since, say so at reload
                log.debug("config %s unreadable at start: %s", self.path, exc)

    def __call__(self, state) -> List[str]:
        """Reload; returns the keys applied (for tests and logs)."""
        if self.path is None:
            log.warning("SIGHUP: not reloading: edgecam was started without a config file")
            return []
        self.hooks.reloading()
        try:
            new_file = load_config(self.path)
        except EdgecamError as exc:
            log.error("SIGHUP: %s; keeping the running config", exc)
            self.hooks.reloaded(f"{state.model.name}: reload failed, running the old config")
            return []
        changes = changed_keys(self.base if self.base is not None else self.cfg, new_file)
        self.base = new_file
        if not changes:
            log.info("SIGHUP: %s unchanged", self.path)
            self.hooks.reloaded("")
            return []
        keys = by_class(changes)
        applied = self._model(state, keys[MODEL], keys[HOT], changes) + self._hot(state, keys[HOT], changes)
        if applied:
            log.info("SIGHUP: applied %s", ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in applied))
        if keys[RESTART]:
            log.warning("SIGHUP: %s changed in %s but needs a restart (systemctl restart edgecam); "
                        "still running with the old value", ", ".join(keys[RESTART]), self.path)
        self.hooks.reloaded(f"{state.model.name}: config reloaded"
                            + (f" ({len(keys[RESTART])} change(s) need a restart)" if keys[RESTART] else ""))
        return applied

    def _model(self, state, model_keys: List[str], hot: List[str], changes) -> List[str]:
        """Load the model the new keys name (with the new hot keys too); on success run it."""
        if not model_keys:
            return []
        trial = copy.deepcopy(self.cfg)
        for k in model_keys + hot:
            set_value(trial, k, changes[k][1])
        try:
            model = self.switcher.load(trial)
        except EdgecamError as exc:
            log.error("SIGHUP: cannot load the new model (%s); keeping %s", exc, state.model.name)
            return []
        for k in model_keys:
            set_value(self.cfg, k, changes[k][1])
        state.use(model)                         # the inference thread picks it up next frame
        return model_keys

    def _hot(self, state, hot: List[str], changes) -> List[str]:
        for k in hot:
            value = changes[k][1]
            set_value(self.cfg, k, value)        # output.snapshot_dir, overlay.show_cost: read from cfg
            if k == "postprocess.threshold":
                state.model.threshold = value
            elif k == "postprocess.top_k":
                state.model.top_k = value
            elif k == "overlay.enabled":
                state.overlay = value
            elif k == "log_level":
                logging.getLogger().setLevel(getattr(logging, str(value).upper()))
        return list(hot)
