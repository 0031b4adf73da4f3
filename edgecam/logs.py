"""Logging set-up for the commands (one line per event, on stderr)."""

from __future__ import annotations

import logging
import sys

from edgecam.bounds import escape

FORMAT = "%(levelname)s %(name)s: %(message)s"


class EscapingFormatter(logging.Formatter):
    """Control characters in a message are escaped: a value (a model name with a newline)
    cannot forge a log line."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record))


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr, format=FORMAT, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(EscapingFormatter(FORMAT))
