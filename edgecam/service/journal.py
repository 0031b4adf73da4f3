"""Logs for journald: each line prefixed with its syslog priority when stderr is the journal
stream systemd connected, so that `journalctl -p warning` shows causes: log lines, the final
`edgecam: error: ...`, uncaught tracebacks and faulthandler's stack dump (a watchdog SIGABRT)."""

from __future__ import annotations

import faulthandler
import logging
import os
import subprocess
import sys
import threading
import traceback

log = logging.getLogger("edgecam.systemd")

# -- logs for journald ---------------------------------------------------------------------
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _JournalPrefix(logging.Formatter):
    """Prefixes '<N>' (syslog priority) so journald files each line at its level."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        text = self.inner.format(record).replace("\n", " | ")  # one line per event
        return f"<{prio}>{text}"


def stderr_is_journal(environ=None) -> bool:
    """True when stderr is the journal stream systemd connected (``JOURNAL_STREAM=dev:inode``)."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def priority_prefix(priority: int) -> str:
    """``"<3>"`` for err when stderr is the journal, else ``""``: for lines printed, not logged."""
    return f"<{priority}>" if stderr_is_journal() else ""


def journal_log_levels() -> bool:
    """Under journald, make ``journalctl -p warning`` work: prefix each log line with its
    priority, Python's warnings and uncaught tracebacks too, and relay faulthandler's stack
    dump (a watchdog SIGABRT) through a prefixing pipe. Returns whether it did."""
    if not stderr_is_journal():
        return False
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stderr \
                and not isinstance(handler.formatter, _JournalPrefix):
            handler.setFormatter(_JournalPrefix(handler.formatter or logging.Formatter()))
    logging.captureWarnings(True)                  # warnings.warn(): logged at warning
    sys.excepthook = _crit_traceback
    threading.excepthook = lambda a: _crit_traceback(a.exc_type, a.exc_value, a.exc_traceback)
    _relay_fatal_dumps()
    return True


def _crit_traceback(exc_type, exc, tb) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write("".join(f"<2>{line}\n" for line in text.splitlines()))
    sys.stderr.flush()


# faulthandler writes from its signal handler straight to a file descriptor, and the process
# dies right after: no thread of ours could add prefixes in time. A small child process can:
# it reads the dump from a pipe and writes each line to the journal stream with <2> (crit),
# and ends on its own when the pipe closes (when edgecam exits, however it exits).
_RELAY = ("import sys\nout = sys.stdout.buffer\n"
          "for line in sys.stdin.buffer:\n    out.write(b'<2>' + line)\n    out.flush()\n")
_relay = None


def _relay_fatal_dumps() -> None:
    global _relay
    if _relay is not None:
        return
    read_end, write_end = os.pipe()
    try:
        _relay = subprocess.Popen([sys.executable, "-I", "-S", "-c", _RELAY], stdin=read_end,
                                  stdout=sys.stderr.fileno(), stderr=subprocess.DEVNULL,
                                  start_new_session=True)   # a Ctrl-C or SIGTERM is not for it
    except OSError as exc:
        os.close(write_end)
        log.warning("faulthandler's stack dumps will reach the journal at info: %s", exc)
        return
    finally:
        os.close(read_end)
    faulthandler.enable(file=write_end, all_threads=True)   # write_end stays open until exit
