"""The α/ρ trade-off chart: `edgecam bench --models A,B,C --plot FILE` on real models and
footage draws a real PNG (and SVG) with every swept model on it; the sweep is saved, and the
browser view serves the same chart at /tradeoff.svg. No speed is asserted."""

import json
import shutil
import subprocess
import sys
import urllib.request

import cv2
import pytest

from edgecam import cli, tradeoff
from edgecam.config import load_config
from edgecam.provision import catalog
from edgecam.sinks.web import WebView
from helpers import run_edgecam

MODELS = ["v1_0.25_128", "v1_0.75_192", "v3"]
VIDEO = "bottle-detection.mp4"


def _view() -> WebView:
    """The browser view on loopback (no token needed there)."""
    return WebView(load_config(None, {"output": {"web": "127.0.0.1:0"}}).output)


@pytest.fixture(scope="module")
def swept(mirror, tmp_path_factory):
    video = mirror.parent / "media" / VIDEO
    if not video.is_file():
        pytest.skip(f"no test footage at {video}")
    tmp = tmp_path_factory.mktemp("tradeoff")
    state, png, report = tmp / "state", tmp / "chart.png", tmp / "bench.json"
    r = run_edgecam("bench", "--model", "v1_0.25_128", "--model-dir", mirror, "--source", video,
                    "--frames", "10", "--repeat", "1", "--live-seconds", "0", "--no-thread-scan",
                    "--quiet-wait", "0", "--models", ",".join(MODELS), "--plot", png, "--json", report,
                    env={"EDGECAM_STATE_DIR": str(state)}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return {"stdout": r.stdout, "png": png, "state": state, "report": json.loads(report.read_text()), "tmp": tmp}


def test_png_has_every_model(swept):
    assert f"trade-off chart: {swept['png']}" in swept["stdout"]
    image = cv2.imread(str(swept["png"]))
    assert image is not None and image.shape[:2] == (640, 1300)
    assert (image < 128).any() and (image > 200).mean() > 0.5          # drawn, on white
    rows = {r["model"]: r for r in swept["report"]["sweep"]}
    assert list(rows) == MODELS
    for name in MODELS:
        assert rows[name]["top1"] == catalog.get(name).top1 and rows[name]["invoke_ms_p50"] > 0
    assert "top-1" in swept["stdout"]                                  # the sweep table's column


def test_svg_names_every_model(swept):
    svg = tradeoff.write_plot(swept["report"], swept["tmp"] / "chart.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for name in MODELS:
        assert name in svg                        # text, not paths (svg.fonttype none)
    assert "α 0.25, ρ 0.571" in svg and "α 0.75, ρ 0.857" in svg
    assert "MobileNet V1 paper" in svg and "MobileNetV3 paper (arXiv 1905.02244), Table 3" in svg


def test_sweep_saved_and_served_by_the_browser_view(swept, monkeypatch):
    saved = json.loads((swept["state"] / tradeoff.SWEEP_FILE).read_text())
    assert [r["model"] for r in saved["rows"]] == MODELS
    assert all(r["top1_source"] for r in saved["rows"])
    monkeypatch.setenv("EDGECAM_STATE_DIR", str(swept["state"]))
    view = _view()
    try:
        with urllib.request.urlopen(view.url + "tradeoff.svg", timeout=60) as resp:
            assert resp.headers["Content-Type"] == "image/svg+xml"
            svg = resp.read().decode()
        with urllib.request.urlopen(view.url, timeout=10) as resp:
            page = resp.read().decode()
    finally:
        view.close()
    assert all(name in svg for name in MODELS)
    assert 'id="tradeoff"' in page and '"/tradeoff.svg"' in page   # its src is set by the page's script (a ticket)


def test_chromium_draws_the_served_chart(swept, tmp_path, monkeypatch):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium (Debian package chromium) is not installed")
    monkeypatch.setenv("EDGECAM_STATE_DIR", str(swept["state"]))
    view, shot = _view(), tmp_path / "chart.png"
    try:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                            "--window-size=1300,640", "--virtual-time-budget=3000", view.url + "tradeoff.svg"],
                           capture_output=True, text=True, timeout=90)
    finally:
        view.close()
    assert shot.is_file(), r.stderr[-2000:]
    page = cv2.imread(str(shot))
    assert (page > 200).all(axis=2).mean() > 0.5                      # the chart's white ground
    coloured = (page.max(axis=2).astype(int) - page.min(axis=2)) > 80   # its coloured points, lines, labels
    assert coloured.sum() > 500


def test_only_provisioned_models_are_shown(swept, tmp_path, monkeypatch):
    data = json.loads((swept["state"] / tradeoff.SWEEP_FILE).read_text())
    data["model_dir"] = str(tmp_path / "no-models")
    (tmp_path / tradeoff.SWEEP_FILE).write_text(json.dumps(data))
    monkeypatch.setenv("EDGECAM_STATE_DIR", str(tmp_path))
    assert b"no provisioned model left" in tradeoff.tradeoff_svg()
    monkeypatch.setenv("EDGECAM_STATE_DIR", str(tmp_path / "nothing"))
    assert b"no sweep yet" in tradeoff.tradeoff_svg()


def test_bad_plot_options_are_one_sentence(mirror, tmp_path, capsys, monkeypatch):
    base = ["bench", "--model", "v1_0.25_128", "--model-dir", str(mirror), "--source", "x.mp4", "--live-seconds", "0"]
    cases = [(["--models", "v3", "--plot", str(tmp_path / "c.txt")], "written as .png or .svg"),
             (["--plot", str(tmp_path / "c.png")], "name them with --models"),
             (["--models", "v3", "--plot", str(tmp_path / "none" / "c.png")], "does not exist")]
    for extra, words in cases:
        assert cli.main(base + extra) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err
    monkeypatch.setitem(sys.modules, "matplotlib", None)               # as where it is not installed
    assert cli.main(base + ["--models", "v3", "--plot", str(tmp_path / "c.png")]) == 2
    assert "pip install 'edgecam[plot]'" in capsys.readouterr().err


def test_catalogue_has_published_top1_with_its_source():
    for name, spec in catalog.catalogue().items():
        if spec.task == "classify":
            assert 40 < spec.top1 < 80, name
            assert "Table" in spec.top1_source or "TF-slim" in spec.top1_source, name
        else:
            assert spec.top1 is None, name
    assert catalog.get("v1_0.75_224").top1 == 68.4 and "Table 6" in catalog.get("v1_0.75_224").top1_source
    assert catalog.get("v1_1.0_128").top1 == 64.4 and "Table 7" in catalog.get("v1_1.0_128").top1_source
    assert catalog.get("v3").top1 == 67.4 and catalog.get("v2").top1 == 72.0
