"""The answer `systemctl reload edgecam` waits for: the unit's ExecReload= runs
``edgecam reload $MAINPID`` (:func:`request_reload`), which sends SIGHUP and returns only when
edgecam has answered, so ``systemctl reload edgecam && ...`` goes on with the new config in
force (or fails, with the reason, when it was refused). The running edgecam writes the answer
(:func:`answer`) after each reload."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Optional, Tuple

from edgecam.errors import EdgecamError

log = logging.getLogger("edgecam.reload")

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
