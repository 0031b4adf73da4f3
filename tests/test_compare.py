"""--compare on the mirror's models and real footage: the same frames through each model, drawn
side by side into one frame for every sink (a video N panels wide that plays, annotated photos,
the browser view of a looped file), JSON lines with each model's result, and a mix of tasks
refused in one sentence."""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from helpers import ffprobe, run_edgecam, write_clip  # noqa: E402

from edgecam import app  # noqa: E402
from edgecam.config import load_config  # noqa: E402
from edgecam.model.compare import panel_size  # noqa: E402
from edgecam.pipeline import Hooks, StopFlag  # noqa: E402

SSD_FILE = "ssd_mobilenet_v1_1.0_300_coco_quant.tflite"


def clip(media, tmp_path, name: str, frames: int) -> Path:
    """The first ``frames`` frames of a real video, as a file of their own."""
    return write_clip(media / name, tmp_path / f"{Path(name).stem}-{frames}.mp4", frames)


def json_lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_three_classifiers_side_by_side_in_a_video_that_plays(models_dir, media, runtime, tmp_path):
    source = clip(media, tmp_path, "one-by-one-person-detection.mp4", 30)     # 768x432: panels scaled to fit
    video, jsonl = tmp_path / "compare.mp4", tmp_path / "compare.jsonl"
    names = ["v1_0.25_128", "v2", "v3"]
    r = run_edgecam("--compare", ",".join(names), "--model-dir", models_dir, "--runtime", runtime, "--source", source,
                    "--output", video, "--json", jsonl, "--display", "none")
    assert r.returncode == 0, r.stderr
    pw, ph = panel_size((768, 432), 3)
    assert (pw, ph) == (640, 360)
    probe = ffprobe(video)
    assert (probe["width"], probe["height"], probe["frames"]) == (3 * pw, ph, 30)
    lines = json_lines(jsonl)
    assert [x["frame"] for x in lines] == list(range(30))
    for line in lines:
        assert [m["model"] for m in line["models"]] == names
        assert all(len(m["classes"]) == 3 and m["inference_ms"] > 0 and m["frame"] == line["frame"]
                   for m in line["models"])
    assert "mean inference per model: v1_0.25_128 " in r.stdout and ", v2 " in r.stdout and ", v3 " in r.stdout
    # each panel shows its own model's result: the panels differ where the top-k is drawn
    cap = cv2.VideoCapture(str(video))
    frame = cap.read()[1]
    cap.release()
    panels = [frame[:, i * pw:(i + 1) * pw].astype(int) for i in range(3)]
    assert np.abs(panels[0][ph // 3:ph // 2] - panels[1][ph // 3:ph // 2]).mean() < 6    # the same picture
    assert np.abs(panels[0][:40, :300] - panels[1][:40, :300]).mean() > 3                  # different heads-up text


def test_two_detectors_side_by_side(models_dir, media, runtime, tmp_path):
    """The same SSD twice (the catalogue's and its file): the same boxes in both panels."""
    source = clip(media, tmp_path, "bottle-detection.mp4", 20)
    video, jsonl = tmp_path / "ssd.mp4", tmp_path / "ssd.jsonl"
    r = run_edgecam("--compare", f"v1_ssd,{models_dir / SSD_FILE}", "--labels", models_dir / "coco_ssd_labelmap.txt",
                    "--model-dir", models_dir, "--runtime", runtime, "--source", source, "--output", video,
                    "--json", jsonl, "--display", "none")
    assert r.returncode == 0, r.stderr
    probe = ffprobe(video)
    assert (probe["width"], probe["height"], probe["frames"]) == (2 * 640, 360, 20)
    lines = json_lines(jsonl)
    bottles = 0
    for line in lines:
        a, b = line["models"]
        assert a["model"] == "v1_ssd" and b["model"] == Path(SSD_FILE).stem
        assert a["detections"] == b["detections"]
        bottles += any(d["label"] == "bottle" for d in a["detections"])
    assert bottles >= 0.6 * len(lines)
    # the boxes are drawn where the JSON says, in each panel: the box colour at a bottle's left edge
    cap = cv2.VideoCapture(str(video))
    frame = cap.read()[1]
    cap.release()
    x1, y1, x2, y2 = max(lines[0]["models"][0]["detections"], key=lambda d: d["score"])["box"]
    for offset in (0, 640):
        edge = frame[int(y1 + 20):int(y2 - 20), offset + int(round(x1)) - 1:offset + int(round(x1)) + 2]
        assert (np.abs(edge.astype(int) - (29, 178, 255)).max(axis=2) < 60).mean() > 0.5, offset


def test_a_photo_compared_is_written_panel_by_panel(models_dir, media, runtime, tmp_path):
    out = tmp_path / "kites.jpg"
    r = run_edgecam("--compare", "v1_0.25_128,v2", "--model-dir", models_dir, "--runtime", runtime,
                    "--source", media / "grace_hopper.bmp", "--output", out, "--display", "none")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(out)).shape == (600, 2 * 512, 3)
    assert "  v2 (" in r.stdout and "military uniform" in r.stdout.split("  v2 (")[1]


def test_a_mix_of_tasks_is_refused_in_one_sentence(models_dir, media):
    r = run_edgecam("--compare", "v2,v1_ssd", "--model-dir", models_dir, "--source", media / "parrot.jpg",
                    "--display", "none")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["edgecam: error: --compare needs models of one task, classifiers or "
                                             "detectors (v2 classifies, v1_ssd detects)"]
    one = run_edgecam("--compare", "v2", "--model-dir", models_dir, "--source", media / "parrot.jpg")
    assert one.returncode == 2 and "2 to 4" in one.stderr and "Traceback" not in one.stderr


def test_browser_view_of_a_looped_file_compared(models_dir, media, tmp_path):
    """Live: a file looped as a camera, two models; the browser's picture is both panels."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = clip(media, tmp_path, "bottle-detection.mp4", 15)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as empty:
        cfg = load_config(empty.name, {"model": {"compare": "v1_0.25_128,v2", "dir": str(models_dir)},
                                       "source": {"uri": str(source), "loop": True},
                                       "output": {"display": "none", "web": f"127.0.0.1:{port}"}})
    stop, box = StopFlag(), {}
    thread = threading.Thread(target=lambda: box.update(rc=app.run(cfg, hooks=Hooks(), stop=stop)), daemon=True)
    thread.start()
    try:
        image, status = None, {}
        end = time.monotonic() + 30
        while time.monotonic() < end and not (image is not None and (status.get("latest") or {}).get("models")):
            time.sleep(0.3)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot.jpg", timeout=5) as resp:
                    image = cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR)
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as resp:
                    status = json.loads(resp.read())
            except OSError:
                continue
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive() and box.get("rc") == 0
    assert image is not None and image.shape == (360, 2 * 640, 3)
    assert [m["model"] for m in status["latest"]["models"]] == ["v1_0.25_128", "v2"]
