"""Offline file mode end to end, as a user runs it: `python -m edgecam ...` in a subprocess."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from helpers import ffprobe, run_edgecam


@pytest.fixture(scope="module")
def bottle_run(models_dir, media, tmp_path_factory):
    out = tmp_path_factory.mktemp("bottle")
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", media / "bottle-detection.mp4",
                    "--output", out / "out.mp4", "--json", out / "out.jsonl", "--display", "none")
    return r, out


def test_every_frame_in_order_with_bottles(bottle_run):
    r, out = bottle_run
    assert r.returncode == 0, r.stderr
    lines = (out / "out.jsonl").read_text().splitlines()
    assert len(lines) == 1189
    records = [json.loads(line) for line in lines]
    assert [rec["frame"] for rec in records] == list(range(1189))
    assert records[1]["t"] == pytest.approx(1 / 29.83, abs=1e-3)
    assert all(rec["model"] == "v1_ssd" and rec["inference_ms"] > 0 for rec in records)
    with_bottle = sum(any(d["label"] == "bottle" for d in rec["detections"]) for rec in records)
    assert with_bottle > 1189 * 0.6  # MEDIA.md: bottles in most frames
    d = next(d for rec in records for d in rec["detections"])
    # tracking is on by default for video: every detection has its object's id
    assert set(d) == {"label", "score", "box", "id"} and 0.5 <= d["score"] <= 1 and d["id"] >= 1
    x1, y1, x2, y2 = d["box"]
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360


def test_annotated_video_matches_the_input(bottle_run, media):
    _, out = bottle_run
    src, dst = ffprobe(media / "bottle-detection.mp4"), ffprobe(out / "out.mp4")
    assert ((dst["frames"], dst["width"], dst["height"]) == (1189, 640, 360)
            == (src["frames"], src["width"], src["height"]))
    assert dst["fps"] == pytest.approx(src["fps"], abs=0.01)


def test_summary_gives_frames_fps_inference_and_counts(bottle_run):
    r, _ = bottle_run
    assert "1189 frames" in r.stdout and "FPS" in r.stdout and "inference" in r.stdout
    assert "bottle:" in r.stdout
    assert "Traceback" not in r.stderr


def test_the_video_shows_boxes(bottle_run, media):
    """The annotated frames differ from the input where the boxes are drawn."""
    import cv2
    import numpy as np
    _, out = bottle_run
    first = json.loads((out / "out.jsonl").read_text().splitlines()[0])
    a, b = cv2.VideoCapture(str(media / "bottle-detection.mp4")), cv2.VideoCapture(str(out / "out.mp4"))
    (_, src), (_, dst) = a.read(), b.read()
    x1, y1, x2, y2 = (int(v) for v in first["detections"][0]["box"])
    edge = np.abs(dst[y1 + 5:y2 - 5, x1 - 1:x1 + 2].astype(int) - src[y1 + 5:y2 - 5, x1 - 1:x1 + 2].astype(int))
    assert edge.mean() > 40  # a box edge drawn over the frame


def test_a_photo_and_a_folder_of_photos(models_dir, media, tmp_path):
    r = run_edgecam("--model", "v2", "--model-dir", models_dir, "--source", media / "parrot.jpg",
                    "--json", tmp_path / "one.jsonl", "--output", tmp_path / "one.mp4", "--display", "none")
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "one.jsonl").read_text())
    assert rec["classes"][0]["label"] == "macaw" and len(rec["classes"]) == 3
    assert ffprobe(tmp_path / "one.mp4")["frames"] == 1
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("grace_hopper.bmp", "parrot.jpg", "cat.bmp"):
        shutil.copy(media / name, folder / name)
    (folder / "notes.txt").write_text("not a photo")
    r = run_edgecam("--model", "v3", "--model-dir", models_dir, "--source", folder, "--json", "-", "--display", "none")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    assert [x["classes"][0]["label"] for x in recs] == ["Egyptian cat", "military uniform", "macaw"]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_stopping_mid_file_leaves_playable_video_and_whole_lines(models_dir, media, tmp_path, sig, code):
    video, jsonl = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--model-dir", str(models_dir),
                          "--source", str(media / "one-by-one-person-detection.mp4"), "--output", str(video),
                          "--json", str(jsonl), "--display", "none"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 20):
        time.sleep(0.1)
    p.send_signal(sig)
    t0 = time.monotonic()
    out, err = p.communicate(timeout=30)
    assert time.monotonic() - t0 < 2.0
    assert p.returncode == code, err
    assert "Traceback" not in err and "interrupted" in out
    text = jsonl.read_text()
    assert text.endswith("\n")
    n = len([json.loads(line) for line in text.splitlines()])
    assert 20 <= n < 1394
    assert ffprobe(video)["frames"] == n
