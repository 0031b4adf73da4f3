"""The motion gate (--motion-gate) on synthetic clips made with ffmpeg's lavfi: a static
scene is inferred once per motion.max_skip_s, a moving box on every frame it is in the
picture, and the JSON lines mark the frames the model did not see."""

import json
import shutil
import subprocess

import pytest

from helpers import run_edgecam

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg (Debian package ffmpeg) is not installed")


def lavfi(path, graph):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(path)], check=True, timeout=120)
    return path


def gated(models_dir, clip, tmp_path, *more):
    jsonl = tmp_path / (clip.stem + ".jsonl")
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", clip, "--display", "none",
                    "--json", jsonl, "--motion-gate", *more)
    assert r.returncode == 0, r.stderr
    return r, [json.loads(line) for line in jsonl.read_text().splitlines()]


def test_static_scene_is_inferred_once_per_max_skip(models_dir, tmp_path):
    clip = lavfi(tmp_path / "static.mp4", "color=c=gray:s=320x240:r=10:d=20")
    r, records = gated(models_dir, clip, tmp_path)
    inferred = [rec["frame"] for rec in records if rec.get("inferred", True)]
    assert len(records) == 200 and inferred == [0, 100]        # t = 0 and t = 10 s (motion.max_skip_s)
    assert all(rec["inferred"] is False and rec["inference_ms"] == 0 for rec in records if rec["frame"] not in inferred)
    assert "motion gate: 2 frames inferred, 198 not" in r.stdout


def test_moving_box_is_inferred_while_it_moves(models_dir, tmp_path):
    # a white box crossing a black frame at 100 px/s from x = 10: in the picture until t = 3.1 s
    clip = lavfi(tmp_path / "moving.mp4", "color=c=black:s=320x240:r=10:d=10[bg];color=c=white:s=40x40:r=10[b];"
                                          "[bg][b]overlay=x='10+t*100':y=100:shortest=1")
    r, records = gated(models_dir, clip, tmp_path)
    inferred = [rec["frame"] for rec in records if rec.get("inferred", True)]
    assert inferred == list(range(32))


def test_gated_footage_keeps_ids(models_dir, media, tmp_path):
    """Gating real footage: the frames it skips carry the tracked objects where they coast."""
    r, records = gated(models_dir, media / "one-by-one-person-detection.mp4", tmp_path)
    skipped = [rec for rec in records if rec.get("inferred") is False]
    assert 0 < len(skipped) < len(records)
    coasting = [d for rec in skipped for d in rec["detections"]]
    assert coasting and all("id" in d for d in coasting)
