"""`edgecam doctor` on what this machine has: all well for a config it can run (a photo, no window,
a provisioned model), each problem with its fix for one it cannot, a corrupt model by its hash, and
a numpy 2 that shadows apt's numpy 1.x in a venv that sees the system (as on a broken Pi install)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from helpers import run_edgecam  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APT_SITE = Path("/usr/lib/python3/dist-packages")
CHECKS = ["python", "tflite", "numpy", "opencv", "picamera2", "camera", "display", "model", "folders", "service"]


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(sections))
    return path


def lines_by_check(out: str) -> dict:
    rows = {}
    for line in out.splitlines()[1:-1]:
        status, name, detail = line.split(None, 2)
        rows[name] = (status, detail)
    return rows


def doctor(config: Path, *args, env=None, python=None):
    if python is None:
        return run_edgecam("doctor", "--config", config, *args, timeout=120, env=env)
    return subprocess.run([str(python), "-m", "edgecam", "doctor", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_all_well_for_a_config_this_machine_can_run(models_dir, media, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", model={"name": "v1_ssd", "dir": str(models_dir)},
                       source={"uri": str(media / "grace_hopper.bmp")},
                       output={"display": "none", "snapshot_dir": str(tmp_path), "json": str(tmp_path / "o.jsonl")})
    r = doctor(cfg, "--unit", str(tmp_path / "none.service"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    rows = lines_by_check(r.stdout)
    assert list(rows) == CHECKS and r.stdout.splitlines()[-1] == "all well", r.stdout
    assert all(status in ("ok", "note") for status, _ in rows.values()), r.stdout
    import cv2
    import numpy
    assert rows["python"][0] == "ok" and sys.prefix in rows["python"][1]
    assert rows["tflite"][0] == "ok"
    assert "ai-edge-litert" in rows["tflite"][1] or "tflite-runtime" in rows["tflite"][1]
    assert rows["numpy"] == ("ok", f"numpy {numpy.__version__} from {Path(numpy.__file__).resolve().parent.parent}")
    assert rows["opencv"][1].startswith(f"OpenCV {cv2.__version__}: GUI ") and "FFmpeg YES" in rows["opencv"][1]
    assert "GStreamer" in rows["opencv"][1]
    assert rows["camera"][0] == "note" and "not a camera" in rows["camera"][1]
    assert rows["display"][0] == "note"
    assert rows["model"][0] == "ok"
    assert rows["model"][1].startswith(f"v1_ssd provisioned in {models_dir}, SHA-256 e4b118e5e453… "
                                       "matches the catalogue; ")
    assert "file runs" in rows["model"][1]           # the published file or its int8 rewrite
    assert rows["folders"][0] == "ok" and str(tmp_path) in rows["folders"][1]
    assert rows["service"][0] == "note" and "none.service" in rows["service"][1]


def test_each_problem_with_its_fix(mirror, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    cfg = write_config(tmp_path / "c.yaml", model={"name": "v3", "dir": str(blocker / "models")},
                       source={"uri": "/dev/video77"}, output={"display": "window", "snapshot_dir": str(tmp_path)})
    r = doctor(cfg, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    rows = lines_by_check(r.stdout)
    expect = {"camera": "/dev/video77 has no camera to open", "display": "no $DISPLAY or $WAYLAND_DISPLAY",
              "model": f"v3 is not provisioned in {blocker / 'models'}", "folders": f"model.dir {blocker / 'models'}"}
    for name, text in expect.items():
        status, detail = rows[name]
        assert status == "problem" and text in detail and "->  fix: " in detail, (name, detail)
    assert "fix: edgecam models fetch v3" in rows["model"][1]
    assert r.stdout.splitlines()[-1] == "4 problem(s): camera, display, model, folders"


def test_a_corrupt_model_is_named_by_its_hash(mirror, tmp_path):
    from edgecam.provision import catalog, fetch
    fetch.provision(catalog.get("v1_ssd"), tmp_path, mirror=mirror, progress=False)
    model = tmp_path / catalog.get("v1_ssd").file
    data = bytearray(model.read_bytes())
    data[-100] ^= 0xFF
    model.write_bytes(bytes(data))
    cfg = write_config(tmp_path / "c.yaml", model={"name": "v1_ssd", "dir": str(tmp_path)},
                       source={"uri": str(tmp_path)}, output={"display": "none", "snapshot_dir": str(tmp_path)})
    r = doctor(cfg)
    status, detail = lines_by_check(r.stdout)["model"]
    assert r.returncode == 1 and status == "problem", r.stdout
    assert "not the catalogue's e4b118e5e453… (corrupt or replaced)" in detail
    assert detail.endswith("fix: edgecam models fetch v1_ssd --force")


def test_numpy_2_shadowing_apts_numpy_1_is_a_problem(models_dir, tmp_path):
    """A venv made by Debian's /usr/bin/python3 with --system-site-packages (it sees apt's numpy
    1.24 and pywt) into which the test venv's numpy 2 is put ahead of apt's, as pip does on a Pi."""
    import numpy
    if not (APT_SITE / "numpy").is_dir() or not (APT_SITE / "pywt").is_dir() or not numpy.__version__.startswith("2."):
        pytest.skip("needs apt's python3-numpy 1.x and python3-pywt (scripts/test installs them) and numpy 2 here")
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin/python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "numpy2.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")   # numpy 2, cv2, yaml, LiteRT
    fake = tmp_path / "fake" / "picamera2"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import pywt\n")        # simplejpeg's stand-in: built for numpy 1.x
    cfg = write_config(tmp_path / "c.yaml", model={"name": "v1_ssd", "dir": str(models_dir)},
                       source={"uri": "picamera2"}, output={"display": "none", "snapshot_dir": str(tmp_path)})
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{fake.parent}")
    r = doctor(cfg, env=env, python=venv / "bin/python")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    rows = lines_by_check(r.stdout)
    assert rows["python"][0] == "ok" and "a venv that sees the system's packages" in rows["python"][1]
    status, detail = rows["numpy"]
    assert status == "problem" and f"numpy {numpy.__version__} in this venv" in detail
    assert "shadows the system's numpy 1." in detail and "fix: rerun ./scripts/run" in detail
    status, detail = rows["picamera2"]
    assert status == "problem" and "numpy.dtype size changed" in detail and "fix: rerun ./scripts/run" in detail
    shutil.rmtree(venv)
