"""The Raspberry Pi install, off a Pi: Debian's own /usr/bin/python3 with apt's numpy 1.x and
pywt (a Cython extension built against numpy 1.x, standing in for picamera2's simplejpeg) is
Raspberry Pi OS Bookworm's Python side. `./scripts/run` on the Pi path and
`install-service.sh --system-site-packages --python /usr/bin/python3` must leave apt's numpy the
one imported, pywt importable, and edgecam finding what MEDIA.md says on a photo. Each install is
real (pip from the package index; pip's own cache makes a second run quick)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PY = "/usr/bin/python3"
IMPORTS = ("import json, numpy, pywt, cv2, edgecam; "
           "print(json.dumps([numpy.__version__, numpy.__file__, cv2.__version__, edgecam.__file__]))")


def _apt_numpy() -> str:
    if not os.access(SYSTEM_PY, os.X_OK):
        pytest.skip(f"no {SYSTEM_PY}")
    r = subprocess.run([SYSTEM_PY, "-I", "-c", "import venv, ensurepip, numpy, pywt; print(numpy.__version__)"],
                       capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.startswith("1."):
        pytest.skip("needs Debian's python3-venv, python3-numpy 1.x and python3-pywt (scripts/test installs them)")
    return r.stdout.strip()


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "DISPLAY", "EDGECAM_CONFIG", "NOTIFY_SOCKET")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(sys.prefix))          # not the test venv's bin
    env.update(extra)
    return env


def _imports(python: Path) -> list:
    r = subprocess.run([str(python), "-c", IMPORTS], capture_output=True, text=True, timeout=120, cwd="/")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _person_and_tie(jsonl: Path) -> None:
    (record,) = [json.loads(line) for line in jsonl.read_text().splitlines()]
    labels = {d["label"]: d["score"] for d in record["detections"]}
    assert set(labels) >= {"person", "tie"} and 0.6 < labels["person"] < 0.8, labels


def _run(args, env, timeout=900):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def pi_run(mirror, media, tmp_path_factory):
    """`./scripts/run` on the Pi path with Debian's Python, on the Grace Hopper photo."""
    apt = _apt_numpy()
    tmp = tmp_path_factory.mktemp("pi-run")
    env = _env(EDGECAM_SYSTEM_SITE_PACKAGES="1", PYTHON=SYSTEM_PY, EDGECAM_VENV=str(tmp / "venv"),
               EDGECAM_MODEL_MIRROR=str(mirror), EDGECAM_MODEL_DIR=str(tmp / "models"))
    args = ["./scripts/run", "--model", "v1_ssd", "--source", str(media / "grace_hopper.bmp"),
            "--display", "none", "--json", str(tmp / "out.jsonl")]
    r = _run(args, env)
    assert r.returncode == 0, r.stdout + r.stderr
    return {"apt": apt, "tmp": tmp, "venv": tmp / "venv", "env": env, "args": args, "result": r}


def test_scripts_run_pi_path_keeps_apts_numpy(pi_run):
    venv, apt, r = pi_run["venv"], pi_run["apt"], pi_run["result"]
    assert f"keeping the system's numpy {apt}" in r.stderr
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    version, numpy_file, cv2_version, edgecam_file = _imports(venv / "bin/python")
    assert version == apt and numpy_file.startswith("/usr/lib/python3/dist-packages/"), numpy_file
    assert cv2_version.startswith("4."), cv2_version           # the last OpenCV that accepts numpy 1.x
    assert edgecam_file.startswith(str(ROOT)), edgecam_file   # ./scripts/run installs the checkout editable
    assert "numpy<2" in (venv / "edgecam-constraints.txt").read_text().splitlines()
    assert not list(venv.glob("lib/python3*/site-packages/numpy")), "the venv must not hold a numpy of its own"
    _person_and_tie(pi_run["tmp"] / "out.jsonl")


def test_doctor_in_the_pi_venv(pi_run, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{name: v1_ssd, dir: {pi_run['tmp'] / 'models'}}}\n"
                   f"source: {{uri: {tmp_path}}}\noutput: {{display: none, snapshot_dir: {tmp_path}}}\n")
    r = subprocess.run([str(pi_run["venv"] / "bin/edgecam"), "doctor", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=120, env=pi_run["env"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert (f"ok       numpy      numpy {pi_run['apt']} (the system's, seen through the venv) "
            "from /usr/lib/python3/dist-packages") in r.stdout
    assert "in a venv that sees the system's packages" in r.stdout


def test_rerunning_scripts_run_repairs_a_numpy_2_that_shadows_apts(pi_run):
    """What the picamera2 error tells a user to do: a numpy 2 put into the venv behind the
    constraints' back (PIP_CONFIG_FILE=/dev/null skips the venv's pip.conf) is removed by the next run."""
    venv = pi_run["venv"]
    pip = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", "numpy>=2"],
                         capture_output=True, text=True, timeout=600, env=_env(PIP_CONFIG_FILE=os.devnull))
    if pip.returncode != 0:
        pytest.skip(f"cannot download numpy 2 here: {pip.stderr.strip()[-200:]}")
    broken = subprocess.run([str(venv / "bin/python"), "-c", "import numpy; print(numpy.__version__); import pywt"],
                            capture_output=True, text=True, timeout=120, cwd="/")
    assert broken.stdout.startswith("2.") and "numpy.dtype size changed" in broken.stderr, broken.stdout + broken.stderr
    r = _run(pi_run["args"] + ["--overwrite"], pi_run["env"])   # the first run left out.jsonl
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a numpy 2 in" in r.stderr and "shadows the system's numpy 1.x: repairing" in r.stderr
    assert _imports(venv / "bin/python")[0] == pi_run["apt"]


def test_pi_detection_follows_the_board_and_the_override(tmp_path):
    """scripts/lib/venv.sh: a Raspberry Pi or Jetson model string takes the Pi path;
    EDGECAM_SYSTEM_SITE_PACKAGES=1 forces it, =0 forbids it. The model string is faked in a
    private mount namespace (/sys/firmware/devicetree/base/model, which /proc/device-tree links to)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("faking the device tree needs root and unshare")
    probe = (f". {ROOT}/scripts/lib/venv.sh; for v in '' 1 0; do "
             "if EDGECAM_SYSTEM_SITE_PACKAGES=$v edgecam_want_system_site; then echo -n y; else echo -n n; fi; done")
    results = {}
    for model in ("Raspberry Pi 4 Model B Rev 1.5", "NVIDIA Jetson Orin Nano Developer Kit", "QEMU Virtual Machine",
                  None):
        fake = ("mount -t tmpfs tmpfs /sys/firmware && mkdir -p /sys/firmware/devicetree/base && "
                f"printf '{model}\\0' >/sys/firmware/devicetree/base/model && " if model else "")
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", fake + probe],
                           capture_output=True, text=True, timeout=30, env=_env())
        if r.returncode != 0 and "mount" in r.stderr:
            pytest.skip(f"cannot mount in a private namespace here: {r.stderr.strip()}")
        results[model] = r.stdout
    if os.path.exists("/proc/device-tree/model") or os.path.exists("/etc/nv_tegra_release"):
        results.pop(None)                               # this machine is itself a board
    assert results == {"Raspberry Pi 4 Model B Rev 1.5": "yyn", "NVIDIA Jetson Orin Nano Developer Kit": "yyn",
                       "QEMU Virtual Machine": "nyn", **({None: "nyn"} if None in results else {})}


def test_install_service_with_debians_python_after_a_failed_first_run(mirror, media, tmp_path):
    """The default model (v2_ssd) is not in the mirror: the first run says what the mirror can
    give and leaves nothing; the second, with --model, installs and keeps apt's numpy."""
    apt = _apt_numpy()
    prefix = tmp_path / "prefix"
    base = ["bash", "scripts/install-service.sh", "--prefix", str(prefix), "--no-systemctl", "--mirror", str(mirror),
            "--system-site-packages", "--python", SYSTEM_PY]
    env = _env(EDGECAM_MODEL_MIRROR=str(mirror))
    first = _run(base, env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert f"the model mirror {mirror} can provision: v1_0.25_128, v1_0.75_192, v1_0.75_224, v1_ssd, v2, v2_tf2, v3" \
        in first.stderr
    assert first.stderr.rstrip().splitlines()[-1] == (
        f"install-service: error: model v2_ssd cannot be provisioned from {mirror}: run again with --model NAME, "
        "NAME one of those listed above (no config, model or unit was written)")
    assert "Traceback" not in first.stderr and list(prefix.iterdir()) == [], "a failed install leaves nothing"

    second = _run(base + ["--model", "v1_ssd"], env)
    assert second.returncode == 0, second.stdout + second.stderr
    venv = prefix / "opt/edgecam/venv"
    version, numpy_file, _, edgecam_file = _imports(venv / "bin/python")
    assert version == apt and numpy_file.startswith("/usr/lib/python3/dist-packages/")
    assert edgecam_file.startswith(str(venv)), edgecam_file
    config, unit = prefix / "etc/edgecam/config.yaml", prefix / "etc/systemd/system/edgecam.service"
    from edgecam.config import load_config
    assert load_config(config).source.uri == "auto" and unit.is_file()   # no camera here: installed all the same
    out = tmp_path / "out.jsonl"
    r = subprocess.run([str(venv / "bin/edgecam"), "--config", str(config), "--source", str(media / "grace_hopper.bmp"),
                        "--display", "none", "--json", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    _person_and_tie(out)
    d = subprocess.run([str(venv / "bin/edgecam"), "doctor", "--config", str(config), "--unit", str(unit)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert f"ok       service    unit installed at {unit}; systemd is not running here" in d.stdout, d.stdout
    assert "ok       model      v1_ssd provisioned in" in d.stdout, d.stdout


def test_pyproject_bounds_every_runtime_dependency():
    """Each dependency has a lower bound and an upper bound at its next major release, and what
    the test venv runs lies within them."""
    import re
    from importlib.metadata import PackageNotFoundError, version
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+

    from packaging.markers import Marker
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = set()
    for dep in deps:
        m = re.match(r"([A-Za-z0-9_.-]+)>=([0-9.]+),<([0-9]+)(;.*)?$", dep)
        assert m, f"{dep!r} lacks a lower or an upper bound"
        name, low, high = m.group(1), m.group(2), int(m.group(3))
        names.add(name)
        if m.group(4) and not Marker(m.group(4).lstrip("; ")).evaluate():
            continue                      # a bound for another machine or Python (tflite-runtime's numpy<2)
        try:
            have = version(name)
        except PackageNotFoundError:
            continue                      # the other runtime
        parts = [int(p) for p in re.findall(r"\d+", have)[:3]]
        assert [int(p) for p in low.split(".")] <= parts and parts[0] < high, (name, have, dep)
    assert names == {"numpy", "pyyaml", "opencv-python", "ai-edge-litert", "tflite-runtime", "tqdm", "flatbuffers"}
