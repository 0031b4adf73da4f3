"""Annotated photos out, on the mirror's models and real photos: a photo with --output
out.jpg|.png is written annotated at its own size, a folder with --output DIR/ gives one per
input under its name, nothing is overwritten without --overwrite (and never an input), and the
terminal shows each photo's top-k classes or detections with their scores."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import run_edgecam  # noqa: E402


def edgecam(models_dir, runtime, *args):
    return run_edgecam("--model-dir", models_dir, "--runtime", runtime, "--display", "none", *args)


@pytest.fixture
def photos(media, tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("grace_hopper.bmp", "kite_and_cold.jpg", "parrot.jpg"):
        shutil.copy(media / name, folder / name)
    return folder


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_a_photo_out_at_its_size_with_its_top_k_printed(models_dir, media, runtime, tmp_path, ext):
    out = tmp_path / f"annotated{ext}"
    r = edgecam(models_dir, runtime, "--model", "v2", "--source", media / "grace_hopper.bmp", "--output", out)
    assert r.returncode == 0, r.stderr
    # the top-k (3), each with its score, first the right answer
    lines = r.stdout.splitlines()
    assert lines[0] == "grace_hopper.bmp:"
    scored = [re.fullmatch(r"\s+(\d+\.\d)%\s+(.+)", line) for line in lines[1:4]]
    assert all(scored), lines
    assert scored[0].group(2) == "military uniform" and float(scored[0].group(1)) > 50
    assert float(scored[0].group(1)) >= float(scored[1].group(1)) >= float(scored[2].group(1))
    original, annotated = cv2.imread(str(media / "grace_hopper.bmp")), cv2.imread(str(out))
    assert annotated.shape == original.shape == (600, 512, 3)
    diff = np.abs(annotated.astype(int) - original).max(axis=2) > 40
    assert diff[:60, :200].mean() > 0.05, "no heads-up display drawn at the top left"
    assert diff[:, 256:].mean() < 0.05, "the photo itself should be untouched where nothing is drawn"


def test_a_folder_out_one_photo_per_input_with_detections_printed(models_dir, photos, runtime, tmp_path):
    out = tmp_path / "annotated"
    r = edgecam(models_dir, runtime, "--model", "v1_ssd", "--source", photos, "--output", f"{out}/")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in photos.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        assert cv2.imread(str(out / name)).shape == cv2.imread(str(photos / name)).shape, name
    report = _report(r.stdout)
    assert set(report) == set(names)
    gh = report["grace_hopper.bmp"]
    assert gh[0].startswith("person ") and any(line.startswith("tie ") for line in gh), gh
    person = re.fullmatch(r"person (\d+)% at \((\d+), (\d+)\)-\((\d+), (\d+)\)", gh[0])
    assert person and 60 <= int(person.group(1)) <= 80
    kites = report["kite_and_cold.jpg"]
    assert sum(x.startswith("kite ") for x in kites) >= 2 and sum(x.startswith("person ") for x in kites) >= 2
    # a second run refuses to overwrite, in one sentence, and leaves the photos as they were
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = edgecam(models_dir, runtime, "--model", "v1_ssd", "--source", photos, "--output", f"{out}/")
    assert again.returncode == 1 and "already exists" in again.stderr and "--overwrite" in again.stderr
    assert "Traceback" not in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    forced = edgecam(models_dir, runtime, "--model", "v1_ssd", "--source", photos, "--output", f"{out}/", "-y")
    assert forced.returncode == 0, forced.stderr


def _report(stdout: str) -> dict:
    """{photo name: [its lines]} from a photo run's report (the summary's lines left out)."""
    report: dict = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("edgecam:"):
            break
        if not line.startswith(" "):
            current = report.setdefault(line.rstrip(":"), [])
        else:
            current.append(line.strip())
    return report


@pytest.mark.parametrize("case", ["over-its-input", "folder-into-itself", "many-into-one-file"])
def test_photo_outputs_refused_in_one_sentence(models_dir, photos, runtime, case):
    source, output = {"over-its-input": (photos / "parrot.jpg", photos / "parrot.jpg"),
                      "folder-into-itself": (photos, f"{photos}/"),
                      "many-into-one-file": (photos, photos.parent / "one.png")}[case]
    before = {p.name: p.stat().st_mtime_ns for p in photos.iterdir()}
    r = edgecam(models_dir, runtime, "--model", "v1_0.25_128", "--source", source, "--output", output, "-y")
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in photos.iterdir()} == before


def test_report_goes_to_stderr_when_json_takes_stdout(models_dir, media, runtime):
    r = edgecam(models_dir, runtime, "--model", "v2", "--source", media / "parrot.jpg", "--json", "-")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["classes"][0]["label"] == "macaw"
    assert "parrot.jpg:" in r.stderr and "macaw" in r.stderr
