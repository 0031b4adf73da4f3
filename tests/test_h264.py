"""Recordings and clips as H.264 that browsers play, stamped with the frames' capture times:
a live recording lasts what the wall clock did when the camera's real rate drifts from the
rate it was opened at; a clip made by the live pipeline from the loopback camera plays in
headless Chromium with its sidecar's duration; SIGKILL mid-clip leaves the sidecar; an ffmpeg
without a working H.264 encoder gives MPEG-4 Part 2 and one note; the sidecar's times are
right for a clip starting at t = 0 and across a pause; the clips folder keeps its caps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import ffprobe, free_port, run_edgecam, write_clip  # noqa: E402
from loopback import LoopbackCamera, read_stamp  # noqa: E402
from test_clips import completed  # noqa: E402
from test_web_loopback import start  # noqa: E402

from edgecam.sinks.base import FrameInfo  # noqa: E402
from edgecam.sinks.clips import ClipSink  # noqa: E402
from edgecam.sources.base import Frame  # noqa: E402

BOTTLE = "bottle-detection.mp4"
PERSON = "one-by-one-person-detection.mp4"


def pts(path: Path) -> list:
    """The presentation times of a video's frames (seconds), as a player reads them."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, timeout=60)
    return sorted(float(line) for line in out.stdout.split() if line.strip())


def duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                          str(path)], capture_output=True, text=True, timeout=60)
    return float(out.stdout.strip())


def stamps(path: Path) -> list:
    """The loopback camera's frame index stamped in each frame of a recording."""
    cap, found = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = cap.read()
        if not ok:
            return found
        found.append(read_stamp(image))


def test_live_recording_lasts_the_wall_clock_when_the_camera_drifts(models_dir, media, tmp_path):
    """The loopback camera is opened at 20 fps (edgecam measures that rate: an MJPEG stream
    declares none), then delivers 16: stamped at the opening rate the recording would play 20%
    short; stamped with capture times it lasts what the wall clock did, within 1%."""
    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe (Debian package ffmpeg) is not installed")
    with LoopbackCamera(media / BOTTLE, fps=20, stamp=True) as cam:
        p, log = start(["--model", "v1_0.25_128", "--model-dir", models_dir, "--source", cam.url,
                        "--no-overlay", "--output", tmp_path / "rec.mp4"], tmp_path)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not list(tmp_path.glob("rec-*.mp4")):
                time.sleep(0.1)
            cam.fps = 16.0                      # the camera's real rate drifts from the rate it opened at
            time.sleep(8)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
        assert p.returncode == 0, log.read_text()[-2000:]
        (rec,) = tmp_path.glob("rec-*.mp4")
        assert ffprobe(rec)["codec"] == "h264"
        seen = stamps(rec)
        times = pts(rec)
        assert len(seen) == len(times) > 100 and None not in (seen[5], seen[-1]), seen[:5]
        # from the 6th frame: the first were read from the stream's backlog (what the camera sent
        # while the model loaded), stamped as they were read, a few tenths of a second late
        wall = cam.sent_time(seen[-1]) - cam.sent_time(seen[5])
        played = times[-1] - times[5]
    assert played == pytest.approx(wall, rel=0.01), (played, wall, len(times))
    assert len(times) / 20 < 0.95 * played     # (stamped at the opening rate it would have played this short)


def run_clips(models_dir, media, tmp_path, settings: str, until, sig=signal.SIGTERM, limit_s: float = 90):
    """Live clips of the person footage played as a camera by the loopback camera."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(settings)
    clips = tmp_path / "clips"
    clips.mkdir()
    with LoopbackCamera(media / PERSON) as cam:
        p, log = start(["--config", cfg, "--model", "v1_ssd", "--model-dir", models_dir, "--source", cam.url,
                        "--clips", clips], tmp_path)
        try:
            deadline = time.monotonic() + limit_s
            while time.monotonic() < deadline and not until(clips) and p.poll() is None:
                time.sleep(0.2)
        finally:
            p.send_signal(sig)
            p.wait(timeout=60)
    return clips, p.returncode, log.read_text()


def test_live_clip_is_h264_and_plays_in_chromium(models_dir, media, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium (Debian package chromium) is not installed")
    clips, code, err = run_clips(models_dir, media, tmp_path, "clips:\n  pre_s: 1.0\n  post_s: 1.5\n"
                                 "  events: [new]\n", until=completed)
    assert code == 0 and "Traceback" not in err, err[-2000:]
    side = next(s for s in (json.loads(p.read_text()) for p in clips.glob("*.json")) if s["complete"])
    video = clips / side["clip"]
    probe = ffprobe(video)
    assert probe["codec"] == side["codec"] == "h264" and side["encoder"] == "libx264", (probe, side)
    assert probe["frames"] == side["frames"] and side["seconds"] == pytest.approx(duration(video), abs=0.05)
    # from the first frame to the last, and the last frame's own interval (the frames' times)
    assert 0 <= side["seconds"] - (side["end_t"] - side["start_t"]) < 0.25, side
    assert 0.5 < side["seconds"] < 6.0 and side["start"] == pytest.approx(time.time(), abs=60)
    page = clips / "play.html"
    page.write_text(f"""<html><body><pre id=out>waiting</pre><video id=v muted preload=auto src="{video.name}"></video>
<script>const v = document.getElementById('v'), o = document.getElementById('out');
function show(tag) {{ o.textContent = tag + ' ' + v.readyState + ' ' + v.duration + ' ' + (v.error && v.error.code); }}
v.addEventListener('canplaythrough', () => show('ok')); v.addEventListener('error', () => show('error'));
</script></body></html>""")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=clips, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                            "--virtual-time-budget=5000", "--dump-dom", f"http://127.0.0.1:{port}/play.html"],
                           capture_output=True, text=True, timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=10)
    shown = r.stdout.split('<pre id="out">')[-1].split("</pre>")[0].split()
    assert shown[:2] == ["ok", "4"], r.stdout[-1500:]
    assert float(shown[2]) == pytest.approx(side["seconds"], abs=0.1), (shown, side)


def test_sigkill_mid_clip_leaves_its_sidecar_and_a_playable_clip(models_dir, media, tmp_path):
    clips, _, err = run_clips(models_dir, media, tmp_path, "clips:\n  pre_s: 1.0\n  post_s: 60\n  events: [new]\n",
                              until=lambda d: any(p.stat().st_size > 50_000 for p in d.glob("*.mp4")),
                              sig=signal.SIGKILL)
    (video,) = clips.glob("*.mp4")
    side = json.loads(video.with_suffix(".json").read_text())
    assert side["complete"] is False and side["clip"] == video.name and side["events"][0]["event"] == "new"
    assert side["start"] == pytest.approx(time.time(), abs=60) and side["frames"] >= 1
    probe = ffprobe(video)
    assert probe["codec"] == "h264" and probe["frames"] >= side["frames"]


def test_no_h264_encoder_gives_mpeg4_and_one_note(media, models_dir, tmp_path):
    """An ffmpeg built without libx264 (and no hardware encoder): the real ffmpeg behind a
    wrapper that refuses H.264 encoders as such a build does."""
    real = shutil.which("ffmpeg")
    if not real:
        pytest.skip("ffmpeg is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ffmpeg"
    wrapper.write_text(f"""#!/bin/sh
for a in "$@"; do case "$a" in libx264|h264_*) echo "Unknown encoder '$a'" >&2; exit 1 ;; esac; done
exec {real} "$@"
""")
    wrapper.chmod(0o755)
    clip = write_clip(media / BOTTLE, tmp_path / "in.mp4", 20)
    out = tmp_path / "out.mp4"
    r = run_edgecam("--model", "v1_0.25_128", "--model-dir", models_dir, "--source", clip, "--output", out,
                    "--display", "none", env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr[-2000:]
    notes = [line for line in r.stderr.splitlines() if "H.264" in line]
    assert len(notes) == 1 and "MPEG-4 Part 2" in notes[0] and "Unknown encoder" in notes[0], r.stderr
    probe = ffprobe(out)
    assert probe["codec"] == "mpeg4" and probe["frames"] == 20


def frame(t: float, seed: int) -> Frame:
    image = np.full((240, 320, 3), seed % 255, np.uint8)
    cv2.putText(image, str(seed), (20, 150), cv2.FONT_HERSHEY_SIMPLEX, 3, (0, 0, 255), 5)
    return Frame(seed, t, 1000.0 + t, image)


def test_sidecar_of_a_clip_from_t0_and_across_a_pause(tmp_path):
    """The first clip starts at t = 0.0 (once taken as missing: "seconds": 0.0); a pause of
    3 s in the middle (no frames) is held on the picture, so the sidecar and the video agree."""
    cfg = SimpleNamespace(pre_s=1.0, post_s=4.5, annotated=True, events=["new"], labels=[], buffer_mb=16,
                          keep_mb=0, keep_days=0)
    sink = ClipSink(str(tmp_path), cfg, 10.0, (320, 240))
    sink.result(SimpleNamespace(events=[{"event": "new", "id": 1, "label": "person", "t": 0.0}]))
    times = [i / 10 for i in range(10)] + [4.0 + i / 10 for i in range(6)]   # paused from 0.9 to 4.0
    for i, t in enumerate(times):
        f = frame(t, i)
        sink.frame(f.image, FrameInfo(frame=f))
    sink.close()
    (side_path,) = tmp_path.glob("*.json")
    side = json.loads(side_path.read_text())
    video = tmp_path / side["clip"]
    assert side["start_t"] == 0.0 and side["end_t"] == 4.5 and side["frames"] == 16 and side["complete"]
    assert side["seconds"] == pytest.approx(duration(video), abs=0.02)
    assert side["seconds"] == pytest.approx(4.5 + 0.1, abs=0.002)          # (the last frame: 1 / fps)
    assert pts(video)[10] == pytest.approx(4.0, abs=0.002)


def test_clips_folder_keeps_its_caps(tmp_path):
    """Oldest first, with their sidecars, beyond clips.keep_mb (and clips.keep_days), before
    each new clip and at start; a clip newer than the cap and other files stay."""
    old = time.time() - 40 * 86400
    for i, day in enumerate(("20240101", "20240102", "20240103", "20240104")):
        video = tmp_path / f"clip-{day}-120000-new-{i}.mp4"
        video.write_bytes(b"\0" * 400_000)
        video.with_suffix(".json").write_text("{}")
        os.utime(video, (old + i * 86400, old + i * 86400) if i == 0 else None)
    (tmp_path / "notes.txt").write_text("mine")
    cfg = SimpleNamespace(pre_s=1.0, post_s=1.0, annotated=True, events=["new"], labels=[], buffer_mb=16,
                          keep_mb=1.0, keep_days=30)
    sink = ClipSink(str(tmp_path), cfg, 10.0, (320, 240))
    names = sorted(p.name for p in tmp_path.iterdir())
    # the first too old, the second too many (1.2 MB over 1 MB): both went with their sidecars
    assert names == ["clip-20240103-120000-new-2.json", "clip-20240103-120000-new-2.mp4",
                     "clip-20240104-120000-new-3.json", "clip-20240104-120000-new-3.mp4", "notes.txt"], names
    sink.close()
