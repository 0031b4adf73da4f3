"""SIGHUP: re-read config.yaml and apply what can change without a restart (live mode).

``systemctl reload edgecam`` runs ``edgecam reload $MAINPID`` (ExecReload=, see answer.py):
it sends SIGHUP and returns only when edgecam has answered. SIGHUP sets the StopFlag's reload
event; the live output loop then calls a :class:`Reloader`.

The file is compared with the *running* config: a key is applied when the file's value
differs from the value in force. A change that cannot be applied (it needs a restart, or the
new model fails to load) is reported at every reload while it is still in the file; a file
put back to what runs changes nothing. Keys given on the command line (ExecStart's
``--display none``, EDGECAM_ARGS) keep their command-line value. Nothing a reload reads can
stop the service: any failure keeps the running config, with one error line.

This module only re-reads the file and diffs it; what a change does is each key's ``reload``
class in the config schema (edgecam/config.py), carried out by the run's live settings
(edgecam/pipeline/tuning.py), which tell every output, as for a change from the browser or MQTT:

  hot        applied at once: postprocess.threshold, postprocess.top_k, postprocess.classes,
             rules.lines and rules.zones (counts kept by name), overlay.*, log_level,
             output.snapshot_dir
  model      the model is loaded again (Tuning.load, the runner's model loader): model.name/
             labels/dir/runtime/threads, preprocess.rho/resize (the old model keeps running if
             the new one fails)
  restart    source.*, output.video/json/display/web: logged as needing a restart, not applied
  unused     model.mirror (provisioning only), model.workers (file mode only)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgecam.config import HOT, MODEL, RESTART, SETTINGS, UNUSED, Config, load_config, set_value, values
from edgecam.errors import EdgecamError
from edgecam.pipeline.hooks import Hooks
from edgecam.service.answer import answer

log = logging.getLogger("edgecam.reload")


def changed_keys(old: Config, new: Config) -> Dict[str, Tuple[Any, Any]]:
    """``{"postprocess.threshold": (0.5, 0.6), ...}`` for every key whose value differs."""
    a, b = values(old), values(new)
    return {k: (a[k], b[k]) for k in b if a[k] != b[k]}


def by_class(changes: Dict[str, Tuple[Any, Any]]) -> Dict[str, List[str]]:
    """The changed keys sorted by what a reload does with them: {hot: [...], model: [...], ...}."""
    out: Dict[str, List[str]] = {HOT: [], MODEL: [], RESTART: [], UNUSED: []}
    for key in sorted(changes):
        out[SETTINGS[key].reload].append(key)
    return out


class Reloader:
    """``on_reload(state)`` for :func:`edgecam.pipeline.run_live`."""

    def __init__(self, cfg: Config, hooks: Optional[Hooks] = None):
        self.cfg = cfg                                # the config at the start (the running one: state.tuning.cfg)
        self.hooks = hooks or Hooks()
        self.path: Optional[Path] = Path(cfg.path) if cfg.path else None
        self.pinned: Dict[str, Any] = {}              # keys the command line set: they stay
        if self.path is not None:
            try:
                self.pinned = {k: v for k, (_, v) in changed_keys(load_config(self.path), cfg).items()}
            except Exception as exc:  # it loaded a moment ago; if it broke since, say so at reload
                log.debug("config %s unreadable at start: %s", self.path, exc)

    def __call__(self, state) -> List[str]:
        """Reload; returns the keys applied (for tests and logs). Never raises."""
        started = time.monotonic()
        if self.path is None:
            log.warning("SIGHUP: not reloading: edgecam was started without a config file")
            answer(False, "not reloaded: edgecam was started without a config file", started)
            return []
        self.hooks.reloading()
        try:
            ok, text, applied = self._reload(state)
        except Exception as exc:  # RecursionError, MemoryError, a decoding error, a model's own
            why = str(exc) if isinstance(exc, EdgecamError) else f"{type(exc).__name__}: {exc}"
            why = " ".join(why.split())[:300] or type(exc).__name__
            log.error("SIGHUP: cannot reload %s (%s); keeping the running config", self.path, why)
            ok, text, applied = False, f"{state.model.name}: reload failed, running the old config", []
        self.hooks.reloaded(text)
        answer(ok, text, started)
        return applied

    def _reload(self, state) -> Tuple[bool, str, List[str]]:
        new = load_config(self.path)
        for key, value in self.pinned.items():
            set_value(new, key, value)
        changes = changed_keys(state.tuning.cfg, new)       # the running config
        keys = by_class(changes)
        if not (keys[HOT] or keys[MODEL] or keys[RESTART]):
            log.info("SIGHUP: %s: nothing differs from the running config", self.path)
            return True, f"{state.model.name}: config unchanged", []
        applied, refused = self._hand_over(state, keys, changes)
        if applied:
            log.info("SIGHUP: applied %s", ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in applied))
        if keys[RESTART]:
            log.warning("SIGHUP: %s changed in %s but needs a restart (systemctl restart edgecam); "
                        "still running with the old value", ", ".join(keys[RESTART]), self.path)
        text = f"{state.model.name}: config reloaded"
        if refused:
            text += f", not applied: {', '.join(refused)}"
        return not refused, text, applied

    def _hand_over(self, state, keys: Dict[str, List[str]], changes) -> Tuple[List[str], List[str]]:
        """The changes, to the run's live settings: the hot keys one by one, then the model keys
        at once (the model they name loaded with the new hot keys; the old one keeps running if
        it fails). (applied, refused)."""
        tuning, applied, refused = state.tuning, [], list(keys[RESTART])
        for k in keys[HOT]:
            try:
                tuning.apply(k, changes[k][1])
                applied.append(k)
            except EdgecamError as exc:   # e.g. a zone the tracking stage refuses
                log.error("SIGHUP: %s not applied: %s", k, exc)
                refused.append(k)
        if keys[MODEL]:
            try:
                tuning.load({k: changes[k][1] for k in keys[MODEL]})
                applied += keys[MODEL]
            except EdgecamError as exc:
                log.error("SIGHUP: cannot load the new model (%s); keeping %s", exc, state.model.name)
                refused += keys[MODEL]
        return applied, refused
