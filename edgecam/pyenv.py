"""What this Python environment is, and why picamera2 does not import in it.

picamera2 (and the simplejpeg and libcamera it imports) come from apt, built against the system's
numpy. A venv sees them only with --system-site-packages, and a numpy 2 that pip puts into that
venv shadows the system's numpy 1.x and breaks them. Every way that import can fail ends here in
one sentence that names the cause and the fix (`--source picamera2`, `--source auto`, `edgecam doctor`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import sys
from typing import List, NamedTuple, Optional, Tuple

from edgecam.errors import SourceError

REPAIR = ("rerun ./scripts/run (or scripts/install-service.sh), which keeps the system's numpy, "
          "or `pip install 'numpy<2'` in this venv")
ABI_MARKERS = ("numpy.dtype size changed", "_ARRAY_API", "compiled using NumPy 1.x", "NumPy 1.x cannot be run",
               "numpy.core.multiarray failed to import", "numpy.core._multiarray_umath",
               "module compiled against API version", "binary incompatibility")


class Picamera2Unavailable(SourceError):
    """picamera2 cannot be imported; `missing` when it is simply not installed (or not visible)."""

    def __init__(self, cause: str, fix: str, missing: bool = False):
        sep = "; " if missing else ": "
        super().__init__(f"cannot use the Pi camera: {cause}{sep}{fix}")
        self.cause, self.fix, self.missing = cause, fix, missing


def in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def venv_sees_system() -> Optional[bool]:
    """True/False for a venv made with/without --system-site-packages; None outside a venv."""
    if not in_venv():
        return None
    cfg = os.path.join(sys.prefix, "pyvenv.cfg")
    with contextlib.suppress(OSError):
        for line in open(cfg, encoding="utf-8"):
            key, _, value = line.partition("=")
            if key.strip() == "include-system-site-packages":
                return value.strip().lower() == "true"
    return False


def _numpy_installs() -> List[Tuple[str, str]]:
    """(version, folder) of every numpy on sys.path, in import order."""
    found = []
    for folder in dict.fromkeys(p for p in sys.path if p and os.path.isdir(p)):
        if os.path.isfile(os.path.join(folder, "numpy", "__init__.py")):
            dists = list(importlib.metadata.distributions(path=[folder], name="numpy"))
            found.append((dists[0].version if dists else "of unknown version", folder))
    return found


def _under(path: str, prefix: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(prefix) + os.sep)


class NumpyState(NamedTuple):
    version: str
    path: str                               # the folder the imported numpy comes from
    system: bool                            # a venv importing the system's numpy (seen through the venv)
    shadowed: Optional[Tuple[str, str]]     # (version, folder) of a different numpy it hides


def numpy_state() -> NumpyState:
    import numpy
    here = os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__)))
    hides = next(((v, d) for v, d in _numpy_installs()
                  if os.path.realpath(d) != here and v != numpy.__version__), None)
    return NumpyState(numpy.__version__, here, in_venv() and not _under(here, sys.prefix), hides)


def import_picamera2():
    """The Picamera2 class, or Picamera2Unavailable saying why in one sentence and how to fix it.
    What the failing import writes to stderr (numpy 2 prints its own traceback) is kept out of sight."""
    noise = io.StringIO()
    try:
        with contextlib.redirect_stderr(noise):
            from picamera2 import Picamera2
    except Exception as exc:          # ImportError, numpy's ValueError/AttributeError, anything
        raise picamera2_failure(exc, noise.getvalue()) from None
    if noise.getvalue():
        sys.stderr.write(noise.getvalue())
    return Picamera2


def libcamera_transform(hflip: bool, vflip: bool):
    """libcamera's Transform (what picamera2's configurations take as ``transform=``) with these
    flips; SourceError in one sentence when libcamera's Python module does not import."""
    try:
        from libcamera import Transform
    except Exception as exc:
        raise SourceError(f"cannot flip the Pi camera: libcamera's Python module does not import "
                          f"({type(exc).__name__}: {exc}); install python3-libcamera with apt") from None
    return Transform(hflip=int(hflip), vflip=int(vflip))


def picamera2_failure(exc: BaseException, noise: str = "") -> Picamera2Unavailable:
    """The one sentence for a failed `from picamera2 import Picamera2`."""
    text = f"{exc} {noise}"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    if isinstance(exc, ImportError) and exc.name == "picamera2":
        return Picamera2Unavailable("picamera2 is not importable", _missing_hint(), missing=True)
    if any(m in text for m in ABI_MARKERS):
        return Picamera2Unavailable(f"picamera2 fails to import ({first}): {_abi_cause()}", REPAIR)
    if isinstance(exc, ImportError) and exc.name:
        package = "python3-libcamera" if exc.name.startswith("libcamera") else f"the one that provides {exc.name}"
        return Picamera2Unavailable(f"picamera2 is installed but cannot import {exc.name}",
                                    f"install {package} with apt (sudo apt install python3-picamera2 "
                                    "brings all it needs), then run `edgecam doctor`")
    return Picamera2Unavailable(f"picamera2 fails to import ({type(exc).__name__}: {first})",
                                "reinstall it with `sudo apt install --reinstall python3-picamera2`, "
                                "then run `edgecam doctor`")


def _missing_hint() -> str:
    if in_venv() and not venv_sees_system():
        return ("this virtual environment cannot see it: recreate it with "
                "`python3 -m venv --system-site-packages .venv` (picamera2 and libcamera come from apt), "
                "or let ./scripts/run make it on the Pi")
    return "install it with `sudo apt install python3-picamera2`"


def _abi_cause() -> str:
    try:
        state = numpy_state()
    except Exception:               # numpy itself broken: say so plainly
        return "numpy in this environment does not match the one picamera2's extensions were built for"
    if state.shadowed:
        return (f"numpy {state.version} in this venv ({state.path}) shadows the system's numpy "
                f"{state.shadowed[0]} that picamera2 was built for")
    return f"numpy {state.version} here does not match the numpy picamera2's extensions were built for"
