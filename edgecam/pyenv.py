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

    def __init__(self, message: str, missing: bool):
        super().__init__(message)
        self.missing = missing


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


def _system_dirs() -> List[str]:
    """sys.path folders outside this venv: the system's site/dist-packages it can see."""
    prefix = os.path.realpath(sys.prefix)
    return [p for p in sys.path if p and os.path.isdir(p)
            and not os.path.realpath(p).startswith(prefix + os.sep)]


def system_numpy() -> Optional[Tuple[str, str]]:
    """(version, folder) of a numpy installed outside this venv that the venv can see, if any."""
    if not in_venv():
        return None
    for folder in _system_dirs():
        if os.path.isfile(os.path.join(folder, "numpy", "__init__.py")):
            for dist in importlib.metadata.distributions(path=[folder], name="numpy"):
                return dist.version, folder
            return "unknown version", folder
    return None


class NumpyState(NamedTuple):
    version: str
    path: str
    shadowed: Optional[Tuple[str, str]]     # (version, folder) of a different system numpy it hides


def numpy_state() -> NumpyState:
    import numpy
    here = os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__)))
    system = system_numpy()
    hides = system if system and os.path.realpath(system[1]) != here and system[0] != numpy.__version__ else None
    return NumpyState(numpy.__version__, here, hides)


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


def picamera2_failure(exc: BaseException, noise: str = "") -> Picamera2Unavailable:
    """The one sentence for a failed `from picamera2 import Picamera2`."""
    text = f"{exc} {noise}"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    if isinstance(exc, ImportError) and exc.name == "picamera2":
        return Picamera2Unavailable("cannot use the Pi camera: picamera2 is not importable; " + _missing_hint(),
                                    missing=True)
    if any(m in text for m in ABI_MARKERS):
        return Picamera2Unavailable(f"cannot use the Pi camera: picamera2 fails to import ({first}): "
                                    f"{_abi_cause()}: {REPAIR}", missing=False)
    if isinstance(exc, ImportError) and exc.name:
        package = "python3-libcamera" if exc.name.startswith("libcamera") else f"the one that provides {exc.name}"
        return Picamera2Unavailable(f"cannot use the Pi camera: picamera2 is installed but cannot import "
                                    f"{exc.name}: install {package} with apt (sudo apt install python3-picamera2 "
                                    "brings all it needs), then run `edgecam doctor`", missing=False)
    return Picamera2Unavailable(f"cannot use the Pi camera: picamera2 fails to import ({type(exc).__name__}: "
                                f"{first}): reinstall it with `sudo apt install --reinstall python3-picamera2`, "
                                "then run `edgecam doctor`", missing=False)


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
