"""edgecam's state folder: what it generates and keeps between runs (the browser view's token,
the last `edgecam bench --models` sweep)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """$EDGECAM_STATE_DIR, systemd's $STATE_DIRECTORY (/var/lib/edgecam for the service), else
    $XDG_STATE_HOME/edgecam (~/.local/state/edgecam)."""
    for var in ("EDGECAM_STATE_DIR", "STATE_DIRECTORY"):
        value = os.environ.get(var, "").split(":")[0]
        if value:
            return Path(value)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edgecam"
