"""The words of the config schema: :func:`setting` declares a config field with its schema in
the field's metadata (see edgecam/config.py, which reads it), and what a SIGHUP reload does
with a changed key. A module of its own so that every stage's settings can use it."""

from __future__ import annotations

import copy
from dataclasses import field
import typing
from typing import Any, Callable, Optional, Sequence, Tuple

from edgecam.bounds import show
from edgecam.errors import ConfigError

# what a SIGHUP reload does with a changed key
HOT = "hot"            # applied at once
MODEL = "model"        # the model is reloaded in place (the old one keeps running if it fails)
RESTART = "restart"    # needs a restart: logged, not applied
UNUSED = "unused"      # used only when provisioning: nothing to apply


def setting(default: Any, *, flag: Optional[str] = None, help: str = "", metavar: Optional[str] = None,
            choices: Optional[Sequence[str]] = None, range: Optional[Tuple[float, float]] = None,
            reload: str = RESTART, flag_value: Any = None, short: Optional[str] = None,
            path: bool = False, parse: Optional[Callable[[Any], Any]] = None, live: bool = False,
            step: Optional[float] = None, alias: Optional[str] = None) -> Any:
    """A config field and its schema: ``flag`` is its command-line override (``short``, a
    one-letter alias; ``flag_value``: the value a bare flag sets, for switches; a list's flag
    is repeatable), ``choices`` and ``range`` bound its value (each item's, for a list or a
    mapping), ``reload`` says what a SIGHUP does with a change, ``path`` that it names a file
    or folder (checked against the file system's limits), ``parse`` checks a list's items
    (ValueError: one sentence). ``live``: a live control (edgecam/pipeline/tuning.py): the
    browser, MQTT's set topics and Home Assistant may change it while running, ``step`` is
    its slider's step and ``alias`` its short name (the set topic, the status key)."""
    meta = {"flag": flag, "help": help, "metavar": metavar, "choices": tuple(choices) if choices else None,
            "range": range, "reload": reload, "flag_value": flag_value, "short": short, "path": path,
            "parse": parse, "live": live, "step": step, "alias": alias}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


# the words a person types for a switch (`--mqtt-discovery off`, an MQTT payload "on")
SWITCH_WORDS = {"on": True, "true": True, "yes": True, "1": True,
                "off": False, "false": False, "no": False, "0": False}


def switch_word(text: str) -> Optional[bool]:
    """True or False for one of :data:`SWITCH_WORDS` (any case, spaces around); None otherwise."""
    return SWITCH_WORDS.get(str(text).strip().lower())


def unwrap(tp: Any) -> Any:
    """``int`` for ``Optional[int]``; ``List[str]`` stays itself."""
    if typing.get_origin(tp) is typing.Union:
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def coerce_many(key: str, tp: Any, value: Any, parse: Optional[Callable[[Any], Any]],
                coerce: Callable[[str, Any, Any], Any]) -> Any:
    """A list (each item checked by ``parse``, or by ``coerce`` as a string) or a mapping of
    label to number (each checked by ``coerce`` as a number)."""
    if typing.get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping of label to number, not {show(value)}")
        return {str(label): coerce(key, float, v) for label, v in value.items()}
    if not isinstance(value, list):
        raise ConfigError(f"config key '{key}' must be a list, not {show(value)}")
    try:
        return [parse(v) if parse else coerce(key, str, v) for v in value]
    except ValueError as exc:
        raise ConfigError(f"config key '{key}': {exc}") from None
