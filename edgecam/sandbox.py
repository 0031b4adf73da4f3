"""Saying why a write was refused when the cause is systemd's sandbox, not the permissions.

Under the unit's ``ProtectSystem=strict`` every path but ``/var/lib/edgecam`` (and
``ReadWritePaths=``) is mounted read-only for the service: a write there fails with EROFS
("Read-only file system"), which reads like a broken disk. :func:`write_refusal` names the
sandbox and the fix instead.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Optional


def read_only(folder: Path) -> bool:
    """Whether ``folder`` (or its nearest existing parent) is on a file system mounted read-only."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def write_refusal(folder: Path, exc: Optional[OSError] = None) -> str:
    """Why writing into ``folder`` failed, in words: the sandbox and ReadWritePaths= for EROFS."""
    if (exc is not None and exc.errno == errno.EROFS) or (exc is None and read_only(folder)):
        where = Path(folder).absolute()
        return (f"{where} is read-only here (under systemd, the service's sandbox, ProtectSystem=strict, "
                f"lets it write only to its state folder): put the output under /var/lib/edgecam, or "
                f"allow the folder with a drop-in: `systemctl edit edgecam`, then [Service] "
                f"ReadWritePaths={where}")
    if exc is not None:
        return exc.strerror or str(exc)
    return "permission denied"
