"""A picamera2 that is installed but does not import ends `--source picamera2` and `--source auto`
in one sentence naming the cause and the fix, exit 1, no traceback. Each case is a picamera2
package on PYTHONPATH that fails the way the real one does on a broken Pi install; the first
one is real: it imports apt's pywt (a Cython extension built against the system's numpy 1.x, as
picamera2's simplejpeg is) under the test venv's numpy 2."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import NOTES, run_edgecam  # noqa: E402

APT_SITE = "/usr/lib/python3/dist-packages"
NUMPY2_BANNER = ("\nA module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.4.6 as it may crash. "
                 "To support both 1.x and 2.x\nversions of NumPy, modules must be compiled with NumPy 2.0.\n"
                 "Traceback (most recent call last):  File \"/usr/lib/python3/dist-packages/picamera2/__init__.py\"\n")
REPAIR = "rerun ./scripts/run (or scripts/install-service.sh), which keeps the system's numpy"

# name: (body of picamera2/__init__.py, what the sentence must say)
CASES = {
    "numpy ABI, real": (f"import sys\nsys.path.append({APT_SITE!r})\nimport pywt\n",
                        ["numpy.dtype size changed", "shadows the system's numpy 1.", REPAIR]),
    "numpy ABI ValueError": ("raise ValueError('numpy.dtype size changed, may indicate binary incompatibility. "
                             "Expected 96 from C header, got 88 from PyObject')\n",
                             ["picamera2 fails to import (numpy.dtype size changed", REPAIR]),
    "_ARRAY_API": (f"import sys\nsys.stderr.write({NUMPY2_BANNER!r})\nraise AttributeError('_ARRAY_API not found')\n",
                   ["(_ARRAY_API not found)", REPAIR]),
    "NumPy 1.x ImportError": (f"import sys\nsys.stderr.write({NUMPY2_BANNER!r})\n"
                              f"raise ImportError({NUMPY2_BANNER!r})\n",
                              ["A module that was compiled using NumPy 1.x cannot be run in", REPAIR]),
    "libcamera missing": ("import libcamera\n",
                          ["picamera2 is installed but cannot import libcamera", "python3-libcamera"]),
    "anything else": ("raise RuntimeError('Camera frontend has timed out!')\n",
                      ["(RuntimeError: Camera frontend has timed out!)", "apt install --reinstall python3-picamera2"]),
}


def _fake(tmp_path: Path, name: str, body: str) -> Path:
    root = tmp_path / name.replace(" ", "_").replace(",", "")
    (root / "picamera2").mkdir(parents=True)
    (root / "picamera2" / "__init__.py").write_text(body)
    return root


def test_a_broken_picamera2_is_one_sentence_for_picamera2_and_auto(mirror, tmp_path):
    real_abi = numpy.__version__.startswith("2.") and Path(APT_SITE, "pywt").is_dir() \
        and Path(APT_SITE, "numpy").is_dir()
    cases = {k: v for k, v in CASES.items() if real_abi or k != "numpy ABI, real"}
    runs = [(name, source) for name in cases for source in ("picamera2", "auto")]
    model = ["--model", "v1_ssd", "--model-dir", str(mirror), "--display", "none"]

    def run(job):
        name, source = job
        path = _fake(tmp_path / source, name, cases[name][0])
        return run_edgecam(*model, "--source", source, timeout=120, env={"PYTHONPATH": str(path)})

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, runs))
    for (name, source), r in zip(runs, results):
        err = [line for line in r.stderr.splitlines()   # the runtime's and the model's notes are not errors
               if not line.startswith(NOTES)]
        assert "Traceback" not in r.stderr, (name, source, r.stderr)
        assert r.returncode == 1 and len(err) == 1, (name, source, r.returncode, r.stderr)
        assert err[0].startswith("edgecam: error: cannot use the Pi camera: picamera2 "), (name, source, err[0])
        for text in cases[name][1]:
            assert text in err[0], (name, source, text, err[0])
    if not real_abi:
        pytest.skip("the real numpy-ABI case needs numpy 2 here and apt's python3-numpy and python3-pywt "
                    "(scripts/test installs them); the other cases passed")
