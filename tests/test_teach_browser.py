"""Teaching from the browser, for real (edgecam/sinks/web/teach.py): a live run from the loopback
camera with --teach SET (a not-tv set built at test time from the shared clip) and the history;
an event's clean crop is marked "this is person" and "not a person" through the API with the
token, the set folder has it and /status's teach block has the new label within seconds (no
restart); it is removed again and the label goes; a live detection is taught and removed; bad
examples are 400 with one sentence and change nothing; a POST without the token or from
another site is refused; headless Chromium's review page shows the teach buttons and the set's
examples."""

from __future__ import annotations

import json
import os
import re
import signal
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
from test_teach import WALK, WINDOW, config, teach  # noqa: E402,F401 (the fixture)
from test_web import call, wait_for  # noqa: E402

from helpers import free_port  # noqa: E402

from edgecam.teach import taught  # noqa: E402


@pytest.fixture(scope="module")
def run(models_dir, media, config, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("teachweb")
    folder = tmp / "set"
    r = teach(config, folder, "--add", "not-tv", "--from", media / WALK, "--frames", "600,850,1100", "--box", WINDOW)
    assert r.returncode == 0, r.stderr[-2000:]
    port, log = free_port(), tmp / "stderr.txt"
    env = dict(os.environ, EDGECAM_STATE_DIR=str(tmp / "state"))
    env.pop("DISPLAY", None)
    with LoopbackCamera(media / WALK) as cam, open(log, "w") as err:
        p = subprocess.Popen([sys.executable, "-m", "edgecam", "--config", str(config), "--model", "v1_ssd",
                              "--model-dir", str(models_dir), "--source", cam.url, "--display", "none",
                              "--web", f"0.0.0.0:{port}", "--teach", str(folder)],
                             stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp)
        try:
            line = wait_for("the URL with the token", lambda: re.search(r"browser view: (http://\S+)",
                                                                        log.read_text()), 90)
            token = re.search(r"\?token=([\w.~-]+)", line.group(1)).group(1)
            base = f"http://127.0.0.1:{port}"
            yield {"base": base, "token": token, "auth": {"Authorization": f"Bearer {token}"}, "set": folder,
                   "log": log}
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
    text = log.read_text()
    assert p.returncode == 0 and "Traceback" not in text, text[-2000:]


def get_json(run, path: str):
    code, _, body = call(run["base"] + path, headers=run["auth"])
    assert code == 200, (path, code, body[:300])
    return json.loads(body)


def post(run, path: str, body, headers=None):
    code, _, answer = call(run["base"] + path, body, headers=dict(run["auth"], **(headers or {})))
    return code, answer


def labels(run) -> list:
    return get_json(run, "/status").get("teach", {}).get("labels", [])


def a_person_event(run) -> dict:
    events = get_json(run, "/api/events?label=person")["events"]
    return next((e for e in events if e["crop"]), None)


def test_an_events_crop_is_taught_used_within_seconds_and_removed(run):
    event = wait_for("a person event with its crop", lambda: a_person_event(run), 120)
    assert labels(run) == ["not-tv"]
    t0 = time.monotonic()
    code, answer = post(run, "/api/teach", {"event": event["id"], "label": "person"})
    assert code == 200, answer
    example = json.loads(answer)["value"]
    assert example == f"person/event-{event['id']}.jpg" and (run["set"] / example).is_file()
    wait_for("the new label in /status", lambda: "person" in labels(run), 15)
    used_s = time.monotonic() - t0
    print(f"taught from the browser: in /status after {used_s:.1f} s")
    assert used_s < 10
    listed = get_json(run, "/api/teach")
    assert {"example": example, "label": "person"} in listed["examples"]
    code, _, jpeg = call(run["base"] + "/api/teach/" + example, headers=run["auth"])
    crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert code == 200 and crop is not None and max(crop.shape[:2]) <= 160
    # "not a person": the label is not-<its detected label>
    code, answer = post(run, "/api/teach", {"event": event["id"], "not": True})
    assert code == 200 and json.loads(answer)["value"].startswith("not-person/"), answer
    wait_for("not-person in /status", lambda: "not-person" in labels(run), 15)
    for file in (example, json.loads(answer)["value"]):
        code, answer = post(run, "/api/teach/remove", {"example": file})
        assert code == 200 and not (run["set"] / file).exists(), answer
    wait_for("the labels gone from /status", lambda: labels(run) == ["not-tv"], 15)
    assert sorted(p.name for p in run["set"].iterdir() if not p.name.startswith(".")) == ["not-tv"]


def test_a_live_detection_is_taught(run):
    live = wait_for("a live detection", lambda: get_json(run, "/api/teach")["live"], 60)
    code, answer = post(run, "/api/teach", {"live": live[0]["index"], "box": live[0]["box"], "label": "thing"})
    assert code == 200, answer
    file = json.loads(answer)["value"]
    image = cv2.imread(str(run["set"] / file))
    assert file.startswith("thing/live-") and image is not None and min(image.shape[:2]) >= 2
    wait_for("thing in /status", lambda: "thing" in labels(run), 15)
    assert post(run, "/api/teach/remove", {"example": file})[0] == 200
    wait_for("thing gone", lambda: "thing" not in labels(run), 15)


def test_bad_examples_and_requests_change_nothing(run):
    event = wait_for("a person event with its crop", lambda: a_person_event(run), 120)
    before = taught.stamp(run["set"])
    bad = [({"event": event["id"], "label": "../up"}, "is not a label"),
           ({"event": 987654321, "label": "car"}, "has no crop"),
           ({"event": event["id"]}, "say what it is"),
           ({"event": "x", "label": "car"}, "an event's id"),
           ({"live": 9999, "label": "car"}, "latest result"),
           ({"live": 0, "box": [0, 0, 1, 1], "label": "car"}, "latest result"),
           ({"event": event["id"], "live": 0, "label": "car"}, "send")]
    for body, why in bad:
        code, answer = post(run, "/api/teach", body)
        message = json.loads(answer)["message"]
        assert code == 400 and why in message and "\n" not in message and len(message) < 200, (body, message)
    for body in ({"example": "not-tv/../../escape.png"}, {"example": "nope/none.jpg"}, {}):
        assert post(run, "/api/teach/remove", body)[0] == 400, body
    assert call(run["base"] + "/api/teach/..%2Fx/y.jpg", headers=run["auth"])[0] in (400, 404)
    good = {"event": event["id"], "label": "person"}
    assert call(run["base"] + "/api/teach", good)[0] == 401                             # no token
    assert post(run, "/api/teach", good, {"Origin": "http://evil.example"})[0] == 403   # another site
    assert post(run, "/api/teach", good, {"Sec-Fetch-Site": "cross-site"})[0] == 403
    code, _, _ = call(run["base"] + "/api/teach", b"event=1&label=person",
                      headers=dict(run["auth"], **{"Content-Type": "application/x-www-form-urlencoded"}))
    assert code in (400, 415), code                                                    # not JSON
    assert call(run["base"] + "/api/teach")[0] == 401                                  # reading needs it too
    time.sleep(2.5)
    assert taught.stamp(run["set"]) == before and labels(run) == ["not-tv"]


def test_chromium_review_page_teaches_and_lists_examples(run, tmp_path):
    wait_for("a person event with its crop", lambda: a_person_event(run), 120)
    with Browser(tmp_path / "profile") as b:
        tab = b.open(f"{run['base']}/review?token={run['token']}")
        b.wait(tab, "document.querySelectorAll('#events button.teach').length", 30)
        b.js(tab, "window.prompt = () => 'person'; document.querySelector('#events button.teach').click(); 1")
        shown = b.wait(tab, "[...document.querySelectorAll('#examples img')].filter(i => i.complete && "
                            "i.naturalWidth > 0 && i.alt.startsWith('person/')).length", 20)
        assert shown == 1 and list((run["set"] / "person").glob("event-*.jpg"))
        wait_for("person in /status", lambda: "person" in labels(run), 15)
        b.js(tab, "document.querySelector('#examples button[data-example^=\"person/\"]').click(); 1")
        wait_for("the example removed", lambda: not (run["set"] / "person").exists(), 20)
        live = b.open(f"{run['base']}/")
        b.wait(live, "!!document.getElementById('teach_now')", 20)
        b.js(live, "document.getElementById('teach_now').click(); 1")
        assert b.wait(live, "document.querySelectorAll('#teach_live button.teach-not').length + "
                            "(document.getElementById('teach_live').textContent.includes('no detection') ? 1 : 0)", 20)
    wait_for("person gone", lambda: "person" not in labels(run), 15)
