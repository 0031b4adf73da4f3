"""Bounds on what users hand edgecam: values shown in messages (short, control characters
escaped), path names (the file system's limits), and files read whole (regular, bounded)."""

from __future__ import annotations

import errno
import os
import re
import reprlib
import stat
from pathlib import Path
from typing import Optional, Type

from edgecam.sandbox import write_refusal

SHOWN_CHARS = 80          # at most this much of a bad value goes into a message
NAME_MAX = 255            # bytes in one path component (ext4, tmpfs, vfat, btrfs ...)
PATH_MAX = 4095           # bytes in a whole path

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = SHOWN_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6
_repr.maxlevel = 3
_repr.maxlong = 40


def escape(text: str) -> str:
    """``text`` with control characters as escapes: a value cannot forge a log line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def show(value, limit: int = SHOWN_CHARS) -> str:
    """A repr of ``value`` for a message: at most ``limit`` characters, control characters
    escaped, computed in bounded time whatever its size or nesting."""
    text = escape(_repr.repr(value))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def name_problem(text: str) -> Optional[str]:
    """Why ``text`` cannot name a file here (too long, a NUL byte), or None."""
    if "\x00" in text:
        return "it contains a NUL character"
    raw = os.fsencode(text) if isinstance(text, str) else bytes(text)
    if len(raw) > PATH_MAX:
        return f"the path is longer than the file system allows ({PATH_MAX} bytes)"
    if any(len(part) > NAME_MAX for part in raw.split(b"/")):
        return f"a name in it is longer than the file system allows ({NAME_MAX} bytes)"
    return None


def os_reason(exc: OSError) -> str:
    """A short cause for an OSError, in words a user knows."""
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is longer than the file system allows"
    if exc.errno == errno.ENOENT:
        return "it does not exist"
    if exc.errno == errno.EISDIR:
        return "it is a folder"
    if exc.errno == errno.EROFS:   # under systemd, the sandbox: say so, and how to allow the folder
        return write_refusal(Path(exc.filename).parent if exc.filename else Path("."), exc)
    return exc.strerror or str(exc)


def not_regular(path: Path) -> Optional[str]:
    """Why an existing ``path`` is not a regular file (a folder, a device, a FIFO), or None
    when it is one or does not exist."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return os_reason(exc)
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "it is a folder"
    device = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if device else "a special file"
    return f"it is {kind}, not a regular file"


def read_bounded(path: Path, what: str, limit: int, error: Type[Exception]) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; ``error`` (one
    sentence naming ``what`` and the file) otherwise. A FIFO is refused before it is opened."""
    shown = path_text(path)
    problem = name_problem(str(path)) or not_regular(path)
    if problem:
        raise error(f"{what} {shown} cannot be read: {problem}")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"{what} {shown} cannot be read: {os_reason(exc)}") from None
    if len(data) > limit:
        raise error(f"{what} {shown} is larger than {limit // 1024} KB: is it the right file?")
    return data


def path_text(path) -> str:
    """A file name for a message: control characters escaped, the middle of a very long
    one elided (a name is at most PATH_MAX bytes anyway)."""
    text = escape(str(path))
    return text if len(text) <= 240 else text[:120] + "…" + text[-119:]
