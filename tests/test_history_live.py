"""The history in a live run, for real: edgecam reads the loopback camera (people walking
through a door line), stops, starts again, and today's totals go on from the first run's in
/status and Prometheus; the review API serves the events with their snapshots, the counts per
hour and day (JSON and CSV), a clip with Range (206); and headless Chromium shows the review
page with its thumbnails and plays an event's clip to readyState 4 with the clip's duration."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser import Browser  # noqa: E402
from loopback import LoopbackCamera  # noqa: E402
from test_web import call, wait_for  # noqa: E402

from helpers import ffprobe, free_port, stop_edgecam  # noqa: E402
from test_survive import fill, small_disk  # noqa: E402,F401 (the fixture)

CLIP = "one-by-one-person-detection.mp4"
CONFIG = "clips:\n  pre_s: 1.0\n  post_s: 1.0\n  events: [cross]\n"


def start(models_dir, cam, tmp: Path, port: int):
    log = tmp / f"stderr-{time.monotonic_ns()}.txt"
    env = dict(os.environ, EDGECAM_STATE_DIR=str(tmp / "state"))
    env.pop("DISPLAY", None)
    with open(log, "w") as err:
        p = subprocess.Popen([sys.executable, "-m", "edgecam", "--config", str(tmp / "c.yaml"), "--model", "v1_ssd",
                              "--model-dir", str(models_dir), "--source", cam.url, "--display", "none",
                              "--web", f"127.0.0.1:{port}", "--line", "0.45,0,0.45,1,door",
                              "--clips", str(tmp / "clips")], stdout=subprocess.DEVNULL, stderr=err, env=env)
    return p, log


stop = stop_edgecam


def get(base: str, path: str, headers=None):
    code, hdrs, body = call(base + path, headers=headers)
    assert code in (200, 206), (path, code, body[:300])
    return hdrs, body


def tracking(base: str) -> dict:
    return json.loads(call(base + "/status")[2]).get("tracking") or {}


def crossed(base: str, kind: str = "counts") -> int:
    return tracking(base).get(kind, {}).get("door", {}).get("in", 0)


@pytest.fixture(scope="module")
def two_runs(models_dir, media, tmp_path_factory):
    """Two runs on the same state folder; the second one still running when the tests look."""
    tmp = tmp_path_factory.mktemp("history")
    (tmp / "clips").mkdir()
    (tmp / "c.yaml").write_text(CONFIG)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with LoopbackCamera(media / CLIP) as cam:
        p, log = start(models_dir, cam, tmp, port)
        try:
            wait_for("a crossing and its clip", lambda: crossed(base) >= 2 and list((tmp / "clips").glob("*.json")),
                     90)
            first = crossed(base)
        finally:
            first_log = stop(p, log)
    with LoopbackCamera(media / CLIP) as cam:        # the footage from its start again
        p, log = start(models_dir, cam, tmp, port)
        try:
            resumed = wait_for("the second run", lambda: tracking(base).get("today"), 90)
            wait_for("a crossing in the second run", lambda: crossed(base) >= 1, 60)
            yield {"base": base, "tmp": tmp, "first": first, "resumed": resumed, "first_log": first_log}
        finally:
            second_log = stop(p, log)
    assert "today's totals resumed" in second_log and "ERROR" not in second_log, second_log[-2000:]


def test_todays_totals_go_on_after_a_restart(two_runs):
    base, first = two_runs["base"], two_runs["first"]
    assert two_runs["resumed"]["door"]["in"] >= first                 # resumed at the start
    t = wait_for("the totals", lambda: (lambda t: t if t["today"]["door"]["in"] == first + t["counts"]["door"]["in"]
                                        else None)(tracking(base)), 10)
    assert t["today"]["door"]["by_label"]["person"]["in"] == first + t["counts"]["door"]["in"]
    metrics = call(base + "/metrics")[2].decode()
    today = re.search(r'edgecam_line_crossings_today\{direction="in",line="door"\} (\S+)', metrics)
    assert today and float(today.group(1)) >= first + 1, metrics[-1500:]
    print(f"first run: door in {first}; second run: {t['counts']['door']['in']} more, today {t['today']['door']['in']}")


def test_the_review_api_serves_events_snapshots_counts_and_clips(two_runs):
    base = two_runs["base"]
    events = json.loads(get(base, "/api/events?limit=100")[1])["events"]
    assert [e["ts"] for e in events] == sorted((e["ts"] for e in events), reverse=True)    # newest first
    crossings = [e for e in events if e["event"] == "cross" and e["place"] == "door"]
    assert len(crossings) >= two_runs["first"] + 1 and all(e["snapshot"] for e in crossings), events
    jpeg = cv2.imdecode(np.frombuffer(get(base, f"/api/events/{crossings[0]['id']}.jpg")[1], np.uint8),
                        cv2.IMREAD_COLOR)
    assert jpeg is not None and jpeg.shape[1] == 320
    only = json.loads(get(base, "/api/events?label=person&place=door&limit=2")[1])["events"]
    assert len(only) == 2 and {e["place"] for e in only} == {"door"}
    hours = json.loads(get(base, "/api/counts?by=hour")[1])["counts"]
    day = json.loads(get(base, "/api/counts?by=day&since=" + str(time.time() - 86400))[1])["counts"]
    today = tracking(base)["today"]["door"]["in"]
    assert sum(r["n"] for r in hours if r["what"] == "in") == sum(r["n"] for r in day if r["what"] == "in") <= today
    csv = get(base, "/api/events?format=csv&label=person")[1].decode().splitlines()
    assert csv[0].startswith("id,time,ts,event,label,place") and len(csv) > 1
    assert call(base + "/api/counts?by=fortnight")[0] == 400
    clip = next(e for e in crossings if e["clip"])
    size = len(get(base, f"/api/clips/{clip['clip']}")[1])
    hdrs, part = get(base, f"/api/clips/{clip['clip']}", {"Range": "bytes=100-"})
    assert hdrs["Content-Range"] == f"bytes 100-{size - 1}/{size}" and len(part) == size - 100
    code, hdrs, part = call(base + f"/api/clips/{clip['clip']}", headers={"Range": "bytes=0-99"})
    assert code == 206 and len(part) == 100 and hdrs["Accept-Ranges"] == "bytes"
    hdrs, svg = get(base, "/api/chart.svg?by=hour")
    assert hdrs["Content-Type"] == "image/svg+xml" and b"door in (person): " in svg and b"<polyline" in svg
    assert b"door in (person)" in get(base, "/api/chart.svg?by=day")[1]
    known = json.loads(get(base, "/api/labels")[1])
    assert "person" in known["labels"] and known["places"] == ["door"]
    assert b'id="events"' in get(base, "/review")[1] and b'href="/review"' in get(base, "/")[1]


def test_chromium_lists_the_events_with_thumbnails_and_plays_a_clip(two_runs, tmp_path):
    base = two_runs["base"]
    events = json.loads(get(base, "/api/events?limit=100")[1])["events"]
    event = next(e for e in events if e["clip"])
    h264 = _playable(sorted((two_runs["tmp"] / "clips").glob("*.mp4")))
    served = tmp_path / "served.mp4"
    served.write_bytes(get(base, f"/api/clips/{event['clip']}")[1])
    seconds = _duration(served)
    with Browser(tmp_path / "profile") as b:
        tab = b.open(f"{base}/review#event={event['id']}")
        shown = b.wait(tab, "[...document.querySelectorAll('#events img')].filter(i => i.complete && "
                            "i.naturalWidth === 320).length")               # thumbnails, loaded
        assert shown >= 3
        assert b.wait(tab, "document.getElementById('chart_hour').naturalWidth") > 0
        assert "door" in b.js(tab, "[...document.querySelectorAll('#place option')].map(o => o.value).join()")
        state = b.wait(tab, "(v => v.readyState === 4 && [v.readyState, v.duration, v.currentSrc])"
                            "(document.getElementById('video'))", 30)
    print(f"review page: {shown} thumbnails; clip {event['clip']} ({h264}) readyState {state[0]}, "
          f"duration {state[1]:.3f} s, ffprobe {seconds:.3f} s")
    assert state[2].endswith(f"/api/clips/{event['clip']}") and abs(state[1] - seconds) < 0.1, (state, seconds)


def _playable(clips) -> str:
    """The clips as Chromium plays them: H.264 as recorded once the H.264 clips are in (issue 22
    item 4); until then each MPEG-4 Part 2 clip, which Chromium refuses, is re-encoded in place."""
    codec = ffprobe(clips[0])["codec"]
    if codec == "h264":
        return "recorded as H.264"
    for clip in clips:
        tmp = clip.with_name("h264-" + clip.name)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                        "-movflags", "+faststart", str(tmp)], check=True, timeout=120)
        os.replace(tmp, clip)
    return f"recorded as {codec}, re-encoded to H.264 for Chromium"


def _duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=60)
    return float(json.loads(out.stdout)["format"]["duration"])


def test_a_full_disk_under_the_history_is_one_error_line_and_the_run_goes_on(models_dir, media, small_disk,  # noqa: F811
                                                                             tmp_path):
    """The state folder on a real tmpfs left with 16 KB: the history cannot even be made; one
    error line, the view and the events file keep going; space returns: it is written again."""
    filler = fill(small_disk, leave_kb=16)
    port, events = free_port(), tmp_path / "events.jsonl"
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, EDGECAM_STATE_DIR=str(small_disk / "state"))
    env.pop("DISPLAY", None)
    log = tmp_path / "stderr.txt"
    with LoopbackCamera(media / CLIP) as cam, open(log, "w") as err:
        p = subprocess.Popen([sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--model-dir", str(models_dir),
                              "--source", cam.url, "--display", "none", "--web", f"127.0.0.1:{port}",
                              "--line", "0.45,0,0.45,1,door", "--events", str(events)],
                             stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            wait_for("events while the disk is full", lambda: events.exists() and len(events.read_text().splitlines())
                     >= 2, 90)
            s = json.loads(call(base + "/status")[2])
            assert s["history"]["failing"] and s["history"]["written"] == 0, s["history"]
            frames = s["frames"]
            time.sleep(1.5)
            assert json.loads(call(base + "/status")[2])["frames"] > frames          # the run goes on
            filler.unlink()                                                         # space returns
            s = wait_for("the history written again", lambda: (lambda h: h if h["written"] and not h["failing"]
                                                                else None)(json.loads(call(base + "/status")[2])
                                                                           ["history"]), 45)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
    text = log.read_text()
    assert p.returncode == 0 and "Traceback" not in text, text[-2000:]
    errors = [line for line in text.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "history" in errors[0] and "trying again" in errors[0], errors
    assert "history: writing again" in text
    with sqlite3.connect(small_disk / "state" / "history.db") as conn:
        stored = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert stored >= 1
    print(f"full disk under the history: {errors[0]!r}; {s}; {stored} events stored once space returned")
