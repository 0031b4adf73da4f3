"""Outputs survive any failure (issue 11): SIGKILL mid-run and a full disk (a real tmpfs)
in file and live mode leave a video that plays to within a second of the cut and JSON
lines that all parse; a failed writer stops a file run in one sentence (exit 1) and is
retried alone in live mode; restarts never destroy a recording."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import NOTES, ffprobe, free_port, run_edgecam

SLOW_START = 90       # seconds a model may take to load on a loaded 2-core machine


def edgecam(*args, **kw) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    return subprocess.Popen([sys.executable, "-m", "edgecam", "--display", "none", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def lines(path: Path) -> list:
    """Every JSON line of ``path``, parsed (a line that does not parse fails the test)."""
    text = path.read_text() if path.exists() else ""
    assert not text or text.endswith("\n"), f"{path} ends in a torn line: {text[-80:]!r}"
    return [json.loads(line) for line in text.splitlines()]


def wait_for(what: str, check, timeout: float = SLOW_START, proc: subprocess.Popen | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"edgecam ended ({proc.returncode}) while waiting for {what}: "
                                 f"{proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def children(pid: int) -> list:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MB tmpfs (root only): ENOSPC for real. Skips where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): run the suite as root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path, leave_kb: int) -> Path:
    """Fill ``disk`` but ``leave_kb`` KB."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    filler = disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_kb * 1024))
    return filler


def test_sigkill_mid_file_leaves_a_video_that_plays_to_the_cut(models_dir, media, tmp_path):
    """SIGKILL edgecam and its encoder at once (a power cut): every JSON line parses and the
    video decodes to within a second (10 frames at 10 FPS) of the last line written."""
    video, jsonl = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    p = edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", media / "one-by-one-person-detection.mp4",
                "--output", video, "--json", jsonl)
    wait_for("60 JSON lines", lambda: jsonl.exists() and jsonl.read_text().count("\n") >= 60, proc=p)
    for pid in children(p.pid) + [p.pid]:
        os.kill(pid, signal.SIGKILL)
    p.communicate(timeout=30)
    n = len(lines(jsonl))
    frames = ffprobe(video)["frames"]
    print(f"SIGKILL: {n} JSON lines, video plays {frames} frames")
    assert 60 <= n < 1394 and n - 10 <= frames <= n


def test_full_disk_in_file_mode_stops_in_one_sentence(models_dir, media, small_disk):
    """ENOSPC mid-run: exit 1 promptly with one sentence naming the file and the cause; the
    video plays, every JSON line parses (no half line)."""
    fill(small_disk, 300)
    video, jsonl = small_disk / "o.mp4", small_disk / "o.jsonl"
    t0 = time.monotonic()
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", media / "bottle-detection.mp4",
                    "--output", video, "--json", jsonl, "--display", "none", timeout=SLOW_START + 60)
    took = time.monotonic() - t0
    err = [l for l in r.stderr.splitlines() if not l.startswith(NOTES)]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(err) == 1 and err[0].startswith("edgecam: error: writing ") and "No space left on device" in err[0], err
    assert str(small_disk) in err[0]
    n = len(lines(jsonl))
    frames = ffprobe(video)["frames"] if video.stat().st_size else 0
    print(f"disk full after {took:.1f} s: {err[0]!r}; {n} JSON lines, video plays {frames} frames")
    assert 0 < n < 1189 and frames > 0 and frames >= n - 30


def test_file_mode_refuses_to_overwrite_without_overwrite(models_dir, media, tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("precious\n")
    args = ("--model", "v1_ssd", "--model-dir", models_dir, "--source", media / "parrot.jpg", "--display", "none")
    r = run_edgecam(*args, "--json", out)
    assert r.returncode == 1 and "already exists: pass --overwrite (or -y)" in r.stderr
    assert out.read_text() == "precious\n"
    assert run_edgecam(*args, "--json", out, "-y").returncode == 0
    assert lines(out)[0]["detections"] is not None


def live_args(models_dir, media, out: Path, port: int, *extra):
    return ("--model", "v1_ssd", "--model-dir", models_dir, "--source", media / "bottle-detection.mp4",
            "--realtime", "--output", out / "rec.mp4", "--json", out / "rec.jsonl", "--web", f"127.0.0.1:{port}",
            *extra)



def status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        return json.loads(r.read())


def test_restarts_keep_every_run_and_a_torn_line_is_repaired(models_dir, media, tmp_path):
    """Three live runs into the same --output/--json, the second one SIGKILLed with its
    encoder: three video files that play, one JSON file with every run's lines; a torn
    last line (a power cut) is cut back on restart."""
    counts = []
    for run in range(3):
        port = free_port()
        p = edgecam(*live_args(models_dir, media, tmp_path, port))
        start = (tmp_path / "rec.jsonl").read_text().count("\n") if run else 0
        wait_for("20 new results", lambda start=start: (tmp_path / "rec.jsonl").exists() and
                 (tmp_path / "rec.jsonl").read_text().count("\n") >= start + 20, proc=p)
        if run == 1:  # a crash or a power cut: edgecam and its encoder killed at once
            for pid in children(p.pid) + [p.pid]:
                os.kill(pid, signal.SIGKILL)
            p.communicate(timeout=30)
        else:
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=30)
            assert p.returncode == 0 and "Traceback" not in err, err
        counts.append(len(lines(tmp_path / "rec.jsonl")) - start)
        if run == 1:
            with open(tmp_path / "rec.jsonl", "a") as f:
                f.write('{"frame":927,"t":31.0658,"mod')   # what a power cut leaves
    videos = sorted(tmp_path.glob("rec-*.mp4"))
    assert len(videos) == 3, videos
    frames = [ffprobe(v)["frames"] for v in videos]
    print(f"three runs (the second SIGKILLed): JSON lines {counts}, video frames {frames}")
    assert min(frames) >= 10
    assert len(lines(tmp_path / "rec.jsonl")) == sum(counts) and min(counts) >= 20
    assert "removed its 29 bytes" in err


def test_full_disk_in_live_mode_keeps_serving_and_resumes(models_dir, media, small_disk):
    """ENOSPC in live mode: logged once at error level, the browser view keeps serving, the
    outputs come back once space returns; SIGTERM then exits 0 with everything closed."""
    filler = fill(small_disk, 400)
    port = free_port()
    p = edgecam(*live_args(models_dir, media, small_disk, port), "--log-level", "info")
    try:
        wait_for("the browser view", lambda: _status_or_none(port), proc=p)
        wait_for("the disk to fill", lambda: (lines(small_disk / "rec.jsonl") and
                 os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize < 64 * 1024), timeout=60, proc=p)
        time.sleep(RETRY := 6)
        before = status(port)["frames"]
        time.sleep(1.5)
        assert status(port)["frames"] > before, "the browser view stopped"
        n_full = len(lines(small_disk / "rec.jsonl"))
        filler.unlink()                                   # space returns
        wait_for("JSON lines again", lambda: len(lines(small_disk / "rec.jsonl")) > n_full + 10,
                 timeout=3 * RETRY, proc=p)
        wait_for("a new video segment", lambda: len(list(small_disk.glob("rec-*.mp4"))) >= 2, timeout=3 * RETRY, proc=p)
        time.sleep(3)                                     # 30 frames into it: it works again
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0 and "Traceback" not in err, err
    errors = [l for l in err.splitlines() if l.startswith("ERROR")]
    assert 1 <= len(errors) <= 2 and all("No space left on device" in l for l in errors), errors
    assert len({l.split(" failed")[0].split(" to ")[0] for l in errors}) == len(errors), "an output logged twice"
    assert err.count("writing again") == len(errors), err
    for v in sorted(small_disk.glob("rec-*.mp4")):
        assert ffprobe(v)["frames"] > 0
    print("live disk full:", errors)


def _status_or_none(port: int):
    try:
        return status(port)
    except OSError:
        return None


def test_without_ffmpeg_opencv_records_and_says_what_is_lost(models_dir, media, tmp_path):
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", media / "parrot.jpg",
                    "--output", tmp_path / "o.mp4", "--display", "none", env={"PATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "ffmpeg is not installed" in r.stderr and "apt install ffmpeg" in r.stderr
    assert ffprobe(tmp_path / "o.mp4")["frames"] == 1


def test_live_segments_are_capped_oldest_first(tmp_path):
    """Before a new segment, the oldest ones go while the total is over keep_mb or they are
    older than keep_hours; files that are not this recording's segments are never touched."""
    import numpy as np
    from edgecam.sinks import SegmentedVideo
    old = []
    for i, day in enumerate(["20250101", "20250102", "20250103", "20250104"]):
        p = tmp_path / f"cam-{day}-120000.mp4"
        p.write_bytes(b"\0" * 400_000)
        os.utime(p, (time.time() - (4 - i) * 3600, time.time() - (4 - i) * 3600))
        old.append(p)
    other = tmp_path / "cam-notes.mp4"
    other.write_bytes(b"\0" * 10)
    rec = SegmentedVideo(str(tmp_path / "cam.mp4"), 10.0, (64, 48), segment_s=0, keep_mb=1.0)
    rec.write(np.zeros((48, 64, 3), np.uint8))
    rec.close()
    assert [p.exists() for p in old] == [False, False, True, True]   # 1.6 MB -> 0.8 MB
    assert other.exists() and len(rec.files()) == 3
    rec = SegmentedVideo(str(tmp_path / "cam.mp4"), 10.0, (64, 48), keep_hours=1.5)
    rec.close()
    assert [p.exists() for p in old] == [False, False, False, True]
    assert other.exists()


def test_live_json_rotates_by_size_and_keeps_whole_lines(tmp_path):
    from edgecam.sinks import JsonLinesSink
    path = tmp_path / "r.jsonl"
    sink = JsonLinesSink(str(path), append=True, max_mb=0.001, keep=2)   # 1000 bytes
    for i in range(100):
        sink.write({"frame": i, "pad": "x" * 40})
    sink.close()
    files = [path, Path(f"{path}.1"), Path(f"{path}.2")]
    assert all(f.exists() and f.stat().st_size <= 1000 for f in files) and not Path(f"{path}.3").exists()
    frames = [r["frame"] for f in reversed(files) for r in lines(f)]
    assert frames == list(range(frames[0], 100))
