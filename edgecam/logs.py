"""Logging set-up for the commands (one line per event, on stderr)."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s", force=True)
