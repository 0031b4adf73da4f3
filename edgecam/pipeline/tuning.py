"""The live settings: one object holds the value in force of every live control (the config
keys declared ``live=True`` in the schema, edgecam/config.py's CONTROLS, and the pause),
checks a change exactly as config.yaml's values are checked, carries it out, and tells every
output, whatever route the change came by:

    browser POST /set, /model ──┐
    MQTT <prefix>/set/<key> ────┤ intents, on the output loop
    the keys (space, o, m) ─────┼──▶ Tuning.apply(key, value) ──▶ the value in force
    SIGHUP (service/reload.py) ─┘      │ handlers carry it out: the model switch, the
                                       │ tracking stage's lines and zones, the log level;
                                       │ load(): a reload's model keys (the runner's loader)
                                       └▶ observers are told (key, value): every sink
                                          (MQTT's status, counts topics and Home Assistant's
                                          entities; the browser and Prometheus read /status)

Nothing is written onto the model or the tracking stage: each inference is given ``keep()``
(threshold, top_k, classes, the tracker's floor), each tracking step its threshold, as
Frigate passes ``detect(tensor, threshold)``. Adding a live control is one schema field
(``live=True``, an ``alias``, a ``step``) and the line that uses it.

Called from the output loop only (one writer); ``keep()`` and ``get()`` may be read from any
thread: a change replaces whole values, never edits one in place."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

from edgecam.bounds import show
from edgecam.config import (CONTROL_NAMES, CONTROLS, PAUSED, SETTINGS, Config, Setting, check_value, get_value,
                            set_value)
from edgecam.errors import ConfigError, EdgecamError
from edgecam.model.interface import Keep
from edgecam.schema import HOT, switch_word

log = logging.getLogger("edgecam.tuning")

Handler = Callable[[Any], Any]        # carries a change out (EdgecamError: refused); may return the value in force
Observer = Callable[[str, Any], None]  # told each change: (config key, value in force)


class Tuning:
    def __init__(self, cfg: Config, floor: Optional[float] = None):
        self.cfg = cfg                 # the running config (a reload diffs config.yaml against it)
        self.floor = floor             # tracking: detections kept down to this score
        self.paused = False
        self.handlers: Dict[str, Handler] = {"log_level": _log_level}
        self.observers: List[Observer] = []
        self.loader: Optional[Callable[[Config], None]] = None   # runs the model a config names (EdgecamError: cannot)
        self._keep = self._make_keep()

    # -- wiring (the runner, at the start) -------------------------------------------------------
    def on(self, key: str, handler: Handler) -> None:
        """``handler(value)`` carries out a change of ``key``."""
        self.handlers[key] = handler

    def watch(self, observer: Observer) -> None:
        self.observers.append(observer)

    # -- reading (any thread) ---------------------------------------------------------------------
    def keep(self) -> Keep:
        """What the next inference keeps (passed with the call)."""
        return self._keep

    @property
    def threshold(self) -> float:
        return self._keep.threshold

    def get(self, key: str) -> Any:
        return self.paused if key == PAUSED else get_value(self.cfg, key)

    def view(self) -> Dict[str, Any]:
        """Every live control's value in force by its short name (/status, MQTT's status)."""
        return {c.alias or c.key: self.get(c.key) for c in CONTROLS}

    # -- changing (the output loop) ---------------------------------------------------------------
    def set(self, name: str, value: Any) -> Tuple[bool, str, Any]:
        """A change asked for remotely (browser, MQTT, a key): ``(done, one sentence, the value
        in force)``; only live controls, by key or short name. Never raises."""
        key = None
        try:
            key = control(name).key
            old = self.get(key)
            value = self.apply(key, value)
        except EdgecamError as exc:
            log.warning("not changed: %s", exc)
            return False, str(exc), self.get(key) if key else None
        if value != old:
            log.info("set %s %r -> %r", key, old, value)
        return True, f"{key} set to {_said(value)}", value

    def apply(self, key: str, value: Any) -> Any:
        """Change ``key`` (a live control, or any hot key: a reload) now; the value in force
        comes back. ConfigError (one sentence) when refused: then nothing changed."""
        if key != PAUSED and SETTINGS[key].reload != HOT and not SETTINGS[key].live:
            raise ConfigError(f"{show(key)} cannot be changed while running")
        value = checked(key, value)
        if value == self.get(key):
            return value
        handler = self.handlers.get(key)
        if handler is not None:
            done = handler(value)
            value = value if done is None else done
        self.record(key, value)
        return value

    def load(self, changes: Dict[str, Any]) -> None:
        """Keys that need the model loaded again (a reload's model.*, preprocess.*): the model
        the running config with ``changes`` names, loaded and run, then the keys in force and
        told. EdgecamError (one sentence) when it cannot load: nothing changed."""
        if self.loader is None:
            raise ConfigError("this run cannot load another model")
        trial = copy.deepcopy(self.cfg)
        for key, value in changes.items():
            set_value(trial, key, value)
        self.loader(trial)
        for key, value in changes.items():
            self.record(key, value)

    def record(self, key: str, value: Any) -> None:
        """``key`` is ``value`` now (already carried out: a reload's new model): stored, told."""
        if key == PAUSED:
            self.paused = value
        else:
            set_value(self.cfg, key, value)
        self._keep = self._make_keep()
        for observer in self.observers:
            try:
                observer(key, value)
            except Exception as exc:   # an output's fault must not make a change look refused
                log.warning("%s: not told of %s: %s", getattr(observer, "__qualname__", observer), key, exc)

    def _make_keep(self) -> Keep:
        p = self.cfg.postprocess
        return Keep(p.threshold, p.top_k, frozenset(p.classes), self.floor)


def control(name: str) -> Setting:
    """The live control called ``name`` (its config key or short name), or ConfigError."""
    c = CONTROL_NAMES.get(name)
    if c is None:
        raise ConfigError(f"{show(name)} cannot be changed while running (these can: "
                          f"{', '.join(c.alias or c.key for c in CONTROLS)})")
    return c


def checked(key: str, value: Any) -> Any:
    """``value`` (JSON's, or a word or number as text: MQTT payloads are text) checked and
    coerced for ``key`` as config.yaml's would be."""
    if key == PAUSED:
        word = value if isinstance(value, bool) else switch_word(_text(value))
        if word is None:
            raise ConfigError(f"{PAUSED} must be true or false, not {show(value)}")
        return word
    return check_value(key, _typed(key, _text(value)))


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value


def _typed(key: str, value: Any) -> Any:
    """A number or true/false sent as text (an MQTT payload "0.6") read as JSON would read it;
    a list as JSON, or as text: "person, car"; lines "0.5,0,0.5,1,door; ..." """
    s = SETTINGS[key]
    if isinstance(value, str) and (s.is_list or s.base_type in (int, float, bool)):
        text = value.strip()
        if text.startswith("[") or not s.is_list:
            try:
                return json.loads(text if s.is_list else text.lower())
            except ValueError:
                return value
        return [v.strip() for v in text.split(";" if key == "rules.lines" else ",") if v.strip()]
    return value


def _said(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _log_level(value: str) -> None:
    logging.getLogger().setLevel(getattr(logging, str(value).upper()))
