"""SIGHUP: re-read config.yaml and apply what can change without a restart (live mode).

``systemctl reload edgecam`` runs ``edgecam reload $MAINPID`` (ExecReload=, see
:func:`request_reload`): it sends SIGHUP and returns only when edgecam has answered, so
``systemctl reload edgecam && ...`` goes on with the new config in force (or fails, with the
reason, when it was refused). SIGHUP sets the StopFlag's reload event; the live output loop
then calls a :class:`Reloader`.

The file is compared with the *running* config: a key is applied when the file's value
differs from the value in force. A change that cannot be applied (it needs a restart, or the
new model fails to load) is reported at every reload while it is still in the file; a file
put back to what runs changes nothing. Keys given on the command line (ExecStart's
``--display none``, EDGECAM_ARGS) keep their command-line value. Nothing a reload reads can
stop the service: any failure keeps the running config, with one error line.

  applied at once      postprocess.threshold, postprocess.top_k, overlay.*, log_level,
                       output.snapshot_dir
  model reloaded       model.name/labels/dir/runtime/threads, preprocess.rho/resize
                       (the old model keeps running if the new one fails to load)
  need a restart       source.*, output.video/json/display/web: logged, not applied
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import time
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
        self.cfg = cfg                                # the running config: what is in force
        self.hooks = hooks
        self.outputs = outputs
        if load_model is None:
            from edgecam.model import load_model
        self._load_model = load_model
        self.path: Optional[Path] = Path(cfg.path) if cfg.path else None
        self.pinned: Dict[str, object] = {}           # keys the command line set: they stay
        if self.path is not None:
            try:
                self.pinned = {k: v for k, (_, v) in changed_keys(load_config(self.path), cfg).items()}
            except Exception as exc:  # it loaded a moment ago; if it broke since, say so at reload
                log.debug("config %s unreadable at start: %s", self.path, exc)

    def _notify(self, what: str, *args) -> None:
        fn = getattr(self.hooks, what, None)
        if fn is not None:
            fn(*args)

    def __call__(self, state) -> List[str]:
        """Reload; returns the keys applied (for tests and logs). Never raises."""
        started = time.monotonic()
        if self.path is None:
            log.warning("SIGHUP: not reloading: edgecam was started without a config file")
            answer(False, "not reloaded: edgecam was started without a config file", started)
            return []
        self._notify("reloading")
        try:
            ok, text, applied = self._reload(state)
        except Exception as exc:  # RecursionError, MemoryError, a decoding error, a model's own
            why = str(exc) if isinstance(exc, EdgecamError) else f"{type(exc).__name__}: {exc}"
            why = " ".join(why.split())[:300] or type(exc).__name__
            log.error("SIGHUP: cannot reload %s (%s); keeping the running config", self.path, why)
            ok, text, applied = False, f"{state.model.name}: reload failed, running the old config", []
        self._notify("reloaded", text)
        answer(ok, text, started)
        return applied

    def _reload(self, state) -> Tuple[bool, str, List[str]]:
        new = load_config(self.path)
        for key, value in self.pinned.items():
            _set(new, key, value)
        changes = {k: v for k, v in changed_keys(self.cfg, new).items() if k not in NO_EFFECT}
        if not changes:
            log.info("SIGHUP: %s: nothing differs from the running config", self.path)
            return True, f"{state.model.name}: config unchanged", []
        restart = sorted(k for k in changes if k not in HOT and not k.startswith(MODEL_PREFIXES))
        model_keys = sorted(k for k in changes if k.startswith(MODEL_PREFIXES))
        hot = sorted(k for k in changes if k in HOT)
        applied: List[str] = []
        refused = list(restart)
        if model_keys:
            if self._switch_model(state, model_keys, hot, changes):
                applied += model_keys
            else:
                refused += model_keys
        for k in hot:
            self._apply_hot(state, k, changes[k][1])
            applied.append(k)
        if applied:
            log.info("SIGHUP: applied %s", ", ".join(f"{k} {changes[k][0]!r} -> {changes[k][1]!r}" for k in applied))
        if restart:
            log.warning("SIGHUP: %s changed in %s but needs a restart (systemctl restart edgecam); "
                        "still running with the old value", ", ".join(restart), self.path)
        text = f"{state.model.name}: config reloaded"
        if refused:
            text += f", not applied: {', '.join(refused)}"
        return not refused, text, applied

    def _switch_model(self, state, model_keys: List[str], hot: List[str], changes) -> bool:
        trial = copy.deepcopy(self.cfg)
        for k in model_keys + hot:
            _set(trial, k, changes[k][1])
        try:
            model = self._load_model(trial)
        except EdgecamError as exc:
            log.error("SIGHUP: cannot load the new model (%s); keeping %s", exc, state.model.name)
            return False
        for k in model_keys:
            _set(self.cfg, k, changes[k][1])
        state.model = model                      # the inference thread picks it up next frame
        if hasattr(self.hooks, "model"):
            self.hooks.model = model.name
        return True

    def _apply_hot(self, state, key: str, value) -> None:
        _set(self.cfg, key, value)
        if key == "postprocess.threshold":
            state.model.threshold = value
        elif key == "postprocess.top_k":
            state.model.top_k = value
        elif key == "overlay.enabled":
            state.overlay = value
        elif key == "log_level":
            logging.getLogger().setLevel(getattr(logging, str(value).upper()))
        elif key == "output.snapshot_dir" and self.outputs is not None:
            self.outputs.snapshot_dir = Path(value)


# -- the answer `systemctl reload` waits for ----------------------------------------------------
ANSWER = "reload"        # a file in systemd's RuntimeDirectory= (/run/edgecam)


def answer_path(environ=None) -> Optional[Path]:
    """Where edgecam writes its reload answers: ``$RUNTIME_DIRECTORY/reload`` (systemd sets
    RUNTIME_DIRECTORY for RuntimeDirectory=edgecam); None elsewhere."""
    value = (os.environ if environ is None else environ).get("RUNTIME_DIRECTORY", "")
    return Path(value.split(":")[0]) / ANSWER if value else None


def answer(ok: bool, text: str, started: float) -> None:
    """Record the outcome of the reload that began at ``started`` (monotonic): one line,
    ``PID STARTED ok|refused TEXT``, replaced atomically."""
    path = answer_path()
    if path is None:
        return
    line = f"{os.getpid()} {started:.6f} {'ok' if ok else 'refused'} {' '.join(text.split())}\n"
    try:
        tmp = path.with_name(f".{ANSWER}.{os.getpid()}")
        tmp.write_text(line, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write the reload answer to %s: %s", path, exc)


def _read_answer(path: Path) -> Optional[Tuple[int, float, bool, str]]:
    try:
        pid, started, verdict, text = path.read_text(encoding="utf-8").rstrip("\n").split(" ", 3)
        return int(pid), float(started), verdict == "ok", text
    except (OSError, ValueError):
        return None


def request_reload(pid: int, timeout: float = 110.0) -> int:
    """`edgecam reload PID` (the unit's ExecReload=): SIGHUP edgecam, wait for its answer,
    print it; 0 when applied, 1 when refused (systemctl reload then fails and says so)."""
    path = answer_path()
    sent = time.monotonic()
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise EdgecamError(f"no process {pid} to reload (is edgecam running?)") from None
    if path is None:
        print(f"edgecam reload: sent SIGHUP to {pid} (no RUNTIME_DIRECTORY: not waiting for its answer)")
        return 0
    while time.monotonic() - sent < timeout:
        got = _read_answer(path)
        if got is not None and got[0] == pid and got[1] >= sent:
            print(f"edgecam reload: {got[3]}" if got[2] else f"edgecam reload: refused: {got[3]}", flush=True)
            return 0 if got[2] else 1
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise EdgecamError(f"edgecam (pid {pid}) exited during the reload") from None
        time.sleep(0.05)
    raise EdgecamError(f"edgecam (pid {pid}) did not answer the reload within {timeout:.0f} s")
