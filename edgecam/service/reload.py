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

What a change does is each key's ``reload`` class in the config schema (edgecam/config.py):

  hot        applied at once: postprocess.threshold, postprocess.top_k, postprocess.classes,
             rules.lines (counts kept per line name), overlay.*, log_level,
             output.snapshot_dir
  model      the model is reloaded through the model switch: model.name/labels/dir/runtime/
             threads, preprocess.rho/resize (the old model keeps running if the new one fails)
  restart    source.*, output.video/json/display/web: logged as needing a restart, not applied
  unused     model.mirror (provisioning only), model.workers (file mode only)
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgecam.config import (HOT, MODEL, RESTART, SETTINGS, UNUSED, Config, check_value, get_value, load_config,
                            set_value, values)
from edgecam.errors import ConfigError, EdgecamError
from edgecam.model.switch import ModelSwitcher
from edgecam.pipeline.hooks import Hooks
from edgecam.schema import switch_word
from edgecam.bounds import show
from edgecam.service.answer import answer

log = logging.getLogger("edgecam.reload")

# what a remote control (the browser's controls, MQTT's <prefix>/set/<key>) may change while
# running: the hot settings that name no file, the model (a provisioned one of the same task,
# through the model switch) and the pause. Checked exactly as config.yaml's values are.
PAUSED = "paused"
LIVE_KEYS = ("postprocess.threshold", "postprocess.top_k", "postprocess.classes", "overlay.enabled",
             "overlay.show_cost", "rules.lines", "model.name", PAUSED)


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

    def __init__(self, cfg: Config, hooks: Optional[Hooks] = None, switcher: Optional[ModelSwitcher] = None):
        self.cfg = cfg                                # the running config: what is in force
        self.hooks = hooks or Hooks()
        self.switcher = switcher or ModelSwitcher(cfg)
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
        changes = changed_keys(self.cfg, new)
        keys = by_class(changes)
        if not (keys[HOT] or keys[MODEL] or keys[RESTART]):
            log.info("SIGHUP: %s: nothing differs from the running config", self.path)
            return True, f"{state.model.name}: config unchanged", []
        applied: List[str] = []
        refused = list(keys[RESTART])
        if keys[MODEL]:
            if self._switch_model(state, keys[MODEL], keys[HOT], changes):
                applied += keys[MODEL]
            else:
                refused += keys[MODEL]
        for k in keys[HOT]:
            self._apply_hot(state, k, changes[k][1])
            applied.append(k)
        if applied:
            log.info("SIGHUP: applied %s", ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in applied))
        if keys[RESTART]:
            log.warning("SIGHUP: %s changed in %s but needs a restart (systemctl restart edgecam); "
                        "still running with the old value", ", ".join(keys[RESTART]), self.path)
        text = f"{state.model.name}: config reloaded"
        if refused:
            text += f", not applied: {', '.join(refused)}"
        return not refused, text, applied

    def _switch_model(self, state, model_keys: List[str], hot: List[str], changes) -> bool:
        """Load the model the new keys name (with the new hot keys too); on success run it."""
        trial = copy.deepcopy(self.cfg)
        for k in model_keys + hot:
            set_value(trial, k, changes[k][1])
        try:
            model = self.switcher.load(trial)
        except EdgecamError as exc:
            log.error("SIGHUP: cannot load the new model (%s); keeping %s", exc, state.model.name)
            return False
        for k in model_keys:
            set_value(self.cfg, k, changes[k][1])
        state.use(model)                         # the inference thread picks it up next frame
        return True

    def set(self, state, key: str, value: Any) -> Tuple[bool, str]:
        """Change one of :data:`LIVE_KEYS` now; ``(done, one sentence)``. Never raises."""
        try:
            if key not in LIVE_KEYS:
                raise ConfigError(f"{show(key)} cannot be changed while running (these can: {', '.join(LIVE_KEYS)})")
            if key == PAUSED:
                state.paused = _boolean(value)
                return True, f"{PAUSED} set to {str(state.paused).lower()}"
            value = check_value(key, _typed(key, value))
            if key == "model.name":
                return self._set_model(state, value)
            old = get_value(self.cfg, key)
            self._apply_hot(state, key, value)
        except EdgecamError as exc:
            log.warning("not changed: %s", exc)
            return False, str(exc)
        log.info("set %s %r -> %r", key, old, value)
        return True, f"{key} set to {value!r}"

    def _set_model(self, state, name: str) -> Tuple[bool, str]:
        if name == state.model.name:
            return True, f"model.name is already {name}"
        new = self.switcher.switch(state.model, name)
        if new is None:
            return False, f"cannot switch to {name}: not a provisioned {state.model.task} model that loads"
        set_value(self.cfg, "model.name", name)
        state.use(new)
        return True, f"model.name set to {name!r}"

    def _apply_hot(self, state, key: str, value) -> None:
        set_value(self.cfg, key, value)          # output.snapshot_dir, overlay.show_cost: read from cfg
        if key == "postprocess.threshold":
            state.model.threshold = value
        elif key == "postprocess.top_k":
            state.model.top_k = value
        elif key == "postprocess.classes":
            state.model.classes = frozenset(value)
        elif key == "rules.lines" and getattr(state, "tracking", None) is not None:
            state.tracking.set_lines(value)       # tracking off: nothing counts (said at the start)
        elif key == "overlay.enabled":
            state.overlay = value
        elif key == "log_level":
            logging.getLogger().setLevel(getattr(logging, str(value).upper()))


def _boolean(value: Any) -> bool:
    """true/false as JSON gives them, or the words a person types (MQTT payloads are text)."""
    word = value if isinstance(value, bool) else switch_word(value)
    if word is not None:
        return word
    raise ConfigError(f"{PAUSED} must be true or false, not {show(value)}")


def _typed(key: str, value: Any) -> Any:
    """A number or true/false sent as text (an MQTT payload "0.6") read as JSON would read it."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and SETTINGS[key].is_list:   # "person, car"; lines: "0.5,0,0.5,1,door; ..."
        if value.strip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return [v.strip() for v in value.split(";" if key == "rules.lines" else ",") if v.strip()]
    if isinstance(value, str) and SETTINGS[key].base_type in (int, float, bool):
        try:
            return json.loads(value.strip().lower())
        except ValueError:
            return value
    return value
