"""SIGHUP: re-read config.yaml and apply what can change without a restart (live mode).

``systemctl reload edgecam`` (ExecReload=kill -HUP $MAINPID) sets the StopFlag's reload
event; the live output loop then calls a :class:`Reloader`. Only keys whose value *in the
file* changed since the last load are applied, so flags given on the command line keep
winning over keys nobody touched.

  applied at once      postprocess.threshold, postprocess.top_k, overlay.*, log_level,
                       output.snapshot_dir
  model reloaded       model.name/labels/dir/runtime/threads, preprocess.rho/resize
                       (the old model keeps running if the new one fails to load)
  need a restart       source.*, output.video/json/display/web: logged, not applied
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from edgecam.config import Config, load_config, to_dict
from edgecam.errors import EdgecamError

log = logging.getLogger("edgecam.reload")

HOT = {"postprocess.threshold", "postprocess.top_k", "overlay.enabled", "overlay.show_cost",
       "log_level", "output.snapshot_dir"}
MODEL_PREFIXES = ("model.", "preprocess.")
NO_EFFECT = {"model.mirror"}       # only used when provisioning


def _flatten(d: dict, prefix: str = "") -> Dict[str, object]:
    out: Dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_keys(old: Config, new: Config) -> Dict[str, Tuple[object, object]]:
    """``{"postprocess.threshold": (0.5, 0.6), ...}`` for every key whose value differs."""
    a, b = _flatten(to_dict(old)), _flatten(to_dict(new))
    return {k: (a.get(k), b[k]) for k in b if a.get(k) != b[k]}


def _set(cfg: Config, key: str, value) -> None:
    obj = cfg
    *path, name = key.split(".")
    for part in path:
        obj = getattr(obj, part)
    setattr(obj, name, value)


class Reloader:
    """``on_reload(state)`` for :func:`edgecam.pipeline.run_live`."""

    def __init__(self, cfg: Config, hooks=None, outputs=None, load_model=None):
        self.cfg = cfg
        self.hooks = hooks
        self.outputs = outputs
        if load_model is None:
            from edgecam.model import load_model
        self._load_model = load_model
        self.path: Optional[Path] = Path(cfg.path) if cfg.path else None
        self.base: Optional[Config] = None          # the file as last loaded
        if self.path is not None:
            try:
                self.base = load_config(self.path)
            except EdgecamError as exc:  # it loaded a moment ago; if it broke since, say so at reload
                log.debug("config %s unreadable at start: %s", self.path, exc)

    def _notify(self, what: str, *args) -> None:
        fn = getattr(self.hooks, what, None)
        if fn is not None:
            fn(*args)

    def __call__(self, state) -> List[str]:
        """Reload; returns the keys applied (for tests and logs)."""
        if self.path is None:
            log.warning("SIGHUP: not reloading: edgecam was started without a config file")
            return []
        self._notify("reloading")
        try:
            new_file = load_config(self.path)
        except EdgecamError as exc:
            log.error("SIGHUP: %s; keeping the running config", exc)
            self._notify("reloaded", f"{state.model.name}: reload failed, running the old config")
            return []
        old_file = self.base if self.base is not None else self.cfg
        changes = {k: v for k, v in changed_keys(old_file, new_file).items()}
        self.base = new_file
        if not changes:
            log.info("SIGHUP: %s unchanged", self.path)
            self._notify("reloaded", "")
            return []

        restart = sorted(k for k in changes if k not in HOT and not k.startswith(MODEL_PREFIXES)
                         and k not in NO_EFFECT)
        model_keys = sorted(k for k in changes if k.startswith(MODEL_PREFIXES) and k not in NO_EFFECT)
        hot = sorted(k for k in changes if k in HOT)
        applied: List[str] = []

        if model_keys:
            trial = copy.deepcopy(self.cfg)
            for k in model_keys + hot:
                _set(trial, k, changes[k][1])
            try:
                model = self._load_model(trial)
            except EdgecamError as exc:
                log.error("SIGHUP: cannot load the new model (%s); keeping %s", exc, state.model.name)
                model = None
            if model is not None:
                for k in model_keys:
                    _set(self.cfg, k, changes[k][1])
                state.model = model                      # the inference thread picks it up next frame
                if hasattr(self.hooks, "model"):
                    self.hooks.model = model.name
                applied += model_keys

        for k in hot:
            value = changes[k][1]
            _set(self.cfg, k, value)
            if k == "postprocess.threshold":
                state.model.threshold = value
            elif k == "postprocess.top_k":
                state.model.top_k = value
            elif k == "overlay.enabled":
                state.overlay = value
            elif k == "log_level":
                logging.getLogger().setLevel(getattr(logging, str(value).upper()))
            elif k == "output.snapshot_dir" and self.outputs is not None:
                self.outputs.snapshot_dir = Path(value)
            applied.append(k)

        if applied:
            log.info("SIGHUP: applied %s", ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in applied))
        if restart:
            log.warning("SIGHUP: %s changed in %s but needs a restart (systemctl restart edgecam); "
                        "still running with the old value", ", ".join(restart), self.path)
        self._notify("reloaded", f"{state.model.name}: config reloaded"
                     + (f" ({len(restart)} change(s) need a restart)" if restart else ""))
        return applied
