"""The browser view off loopback, for real: edgecam bound to 0.0.0.0 (reached through
127.0.0.1 only) reads a loopback camera; its token was generated into the state folder and
logged once. Changes and viewing need the token, controls apply live and show in /status,
/metrics parses with prometheus_client's own parser, a foreign Host is refused, malformed
requests get a 4xx without a traceback, and idle, half-sent and excess connections are bounded."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from loopback import LoopbackCamera  # noqa: E402

from edgecam.sinks.web.server import READ_S  # noqa: E402
from helpers import PageServer, free_port  # noqa: E402



def wait_for(what: str, check, timeout: float = 20.0, every: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def call(url: str, body=None, headers: dict | None = None, method: str | None = None):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def raw(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """What the server answers to ``request`` sent as is."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
    return data


@pytest.fixture(scope="module")
def net(models_dir, media, tmp_path_factory):
    """edgecam with --web 0.0.0.0:PORT (so off loopback) and a generated token."""
    tmp = tmp_path_factory.mktemp("web")
    port, log = free_port(), tmp / "stderr.txt"
    env = dict(os.environ, EDGECAM_STATE_DIR=str(tmp / "state"))
    env.pop("DISPLAY", None)
    with LoopbackCamera(media / "bottle-detection.mp4") as cam, open(log, "w") as err:
        p = subprocess.Popen([sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--model-dir", str(models_dir),
                              "--source", cam.url, "--display", "none", "--web", f"0.0.0.0:{port}"],
                             stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp)
        try:
            line = wait_for("the URL with the token",
                            lambda: re.search(r"browser view: (http://\S+)", log.read_text()), 60)
            token = re.search(r"\?token=([\w.~-]+)", line.group(1)).group(1)
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {token}"}
            wait_for("results", lambda: json.loads(call(base + "/status", headers=auth)[2]).get("results", 0) > 5, 40)
            yield {"base": base, "port": port, "token": token, "auth": auth, "log": log, "dir": tmp,
                   "state": tmp / "state"}
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
    assert p.returncode == 0, log.read_text()[-2000:]
    assert "Traceback" not in log.read_text()


def status(net) -> dict:
    return json.loads(call(net["base"] + "/status", headers=net["auth"])[2])


def test_token_generated_once_into_the_state_folder_and_never_served(net):
    token = net["token"]
    assert (net["state"] / "web-token").read_text().strip() == token
    assert oct((net["state"] / "web-token").stat().st_mode & 0o777) == "0o600"
    assert net["log"].read_text().count(token) == 1
    for path in ("/", "/status", "/metrics"):
        code, _, body = call(net["base"] + path, headers=net["auth"])
        assert code == 200 and token.encode() not in body, path


def test_viewing_off_loopback_needs_the_token(net):
    base, token = net["base"], net["token"]
    for path in ("/status", "/snapshot.jpg", "/stream.mjpg", "/metrics", "/tradeoff.svg", "/ticket?path=/status"):
        assert call(base + path)[0] == 401, path
    assert call(base + "/status", headers={"Authorization": "Bearer wrong-token-123"})[0] == 401
    # the page is a shell anyone gets (no data, no token); ?token= there must be the token, and sets no cookie
    code, headers, body = call(base + "/")
    assert code == 200 and b"<title>edgecam</title>" in body and "Set-Cookie" not in headers
    assert call(base + "/?token=wrong-token-123")[0] == 401
    code, headers, body = call(base + f"/?token={token}")
    assert code == 200 and "Set-Cookie" not in headers and token.encode() not in body
    # neither a cookie nor ?token= grants anything but that page (a cookie goes to every port of the host)
    for path in ("/status", "/stream.mjpg", "/metrics", "/ticket?path=/status"):
        assert call(base + path, headers={"Cookie": f"edgecam_token={token}"})[0] == 401, path
        assert call(base + path + ("&" if "?" in path else "?") + f"token={token}")[0] == 401, path
    assert call(base + f"/set?token={token}", {"key": "postprocess.threshold", "value": 0.6})[0] == 401
    assert call(base + "/set", {"key": "postprocess.threshold", "value": 0.6},
                {"Cookie": f"edgecam_token={token}"})[0] == 401
    assert status(net)["threshold"] == 0.5
    assert call(base + "/status", headers={"X-Edgecam-Token": token})[0] == 200
    basic = base64.b64encode(f"edgecam:{token}".encode()).decode()          # Home Assistant's MJPEG camera
    assert call(base + "/snapshot.jpg", headers={"Authorization": f"Basic {basic}"})[0] == 200
    wrong = base64.b64encode(f"{token}:nope".encode()).decode()
    assert call(base + "/snapshot.jpg", headers={"Authorization": f"Basic {wrong}"})[0] == 401
    # the cookie older versions set is cleared when the page is opened
    code, headers, _ = call(base + "/", headers={"Cookie": f"edgecam_token={token}"})
    assert code == 200 and headers["Set-Cookie"].startswith("edgecam_token=;") and "Max-Age=0" in headers["Set-Cookie"]


def test_tickets_grant_their_path_for_a_while_and_nothing_else(net):
    from edgecam.sinks.web.security import TICKET_S, Guard
    base, auth = net["base"], net["auth"]

    def ticket(path):
        code, _, body = call(base + f"/ticket?path={path}", headers=auth)
        assert code == 200, body
        answer = json.loads(body)
        assert answer["expires_s"] == TICKET_S and net["token"] not in answer["ticket"]
        return answer["ticket"]
    snap = ticket("/snapshot.jpg")
    code, headers, body = call(base + f"/snapshot.jpg?ticket={snap}")
    assert code == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    for path in ("/status", "/metrics", "/stream.mjpg", "/snapshot.jpg/x"):       # bound to its path
        assert call(base + f"{path}?ticket={snap}")[0] == 401, path
    assert call(base + f"/ticket?path=/status&ticket={snap}")[0] == 401             # a ticket gets no ticket
    assert call(base + f"/set?ticket={snap}", {"key": "paused", "value": True})[0] == 401   # nor changes anything
    folder = ticket("/snapshot")                       # not a folder (no trailing /): nothing under it
    assert call(base + f"/snapshot.jpg?ticket={folder}")[0] == 401
    assert call(base + f"/status?ticket={ticket('/')}")[0] == 401
    guard = Guard("0.0.0.0", net["token"], True, True)
    old = guard.ticket("/snapshot.jpg", now=time.time() - TICKET_S - 2)          # expired
    assert call(base + f"/snapshot.jpg?ticket={old}")[0] == 401
    future = guard.ticket("/snapshot.jpg", now=time.time() + 3600)               # too far ahead: forged
    assert call(base + f"/snapshot.jpg?ticket={future}")[0] == 401
    assert call(base + f"/snapshot.jpg?ticket={guard.ticket('/snapshot.jpg')}")[0] == 200
    other = Guard("0.0.0.0", "another-token-of-mine", True, True).ticket("/snapshot.jpg")
    assert call(base + f"/snapshot.jpg?ticket={other}")[0] == 401
    assert call(base + "/ticket?path=/../status", headers=auth)[0] == 400
    with socket.create_connection(("127.0.0.1", net["port"]), timeout=10) as s:
        s.sendall(f"GET /stream.mjpg?ticket={ticket('/stream.mjpg')} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        answer = b""
        while b"--edgecamframe" not in answer and len(answer) < 1 << 20:
            answer += s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"--edgecamframe" in answer


def _no_redirect(url: str):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_changes_off_loopback_need_the_token_even_from_127_0_0_1(net):
    base, auth = net["base"], net["auth"]
    change = {"key": "postprocess.threshold", "value": 0.65}
    assert call(base + "/set", change)[0] == 401
    assert call(base + "/model", {})[0] == 401
    assert status(net)["threshold"] == 0.5
    code, _, body = call(base + "/set", change, auth)
    assert code == 200 and json.loads(body)["done"] is True and json.loads(body)["value"] == 0.65
    assert status(net)["threshold"] == 0.65


def test_controls_apply_live_and_show_in_status(net):
    base, auth = net["base"], net["auth"]
    assert call(base + "/set", {"key": "postprocess.classes", "value": ["person"]}, auth)[0] == 200
    assert status(net)["classes"] == ["person"]
    n = status(net)["results"]
    s = wait_for("results without bottles", lambda: (st := status(net))["results"] > n + 5 and st)
    assert all(d["label"] == "person" for d in s["latest"]["detections"]), s["latest"]
    assert call(base + "/set", {"key": "postprocess.classes", "value": []}, auth)[0] == 200
    wait_for("bottles again", lambda: any(d["label"] == "bottle" for d in status(net)["latest"]["detections"]))
    for key, value in (("overlay.enabled", False), ("paused", True)):
        assert call(base + "/set", {"key": key, "value": value}, auth)[0] == 200
    s = status(net)
    assert s["overlay"] is False and s["paused"] is True
    for key in ("overlay.enabled", "paused"):
        call(base + "/set", {"key": key, "value": key == "overlay.enabled"}, auth)
    code, _, body = call(base + "/snapshot", {}, auth)
    assert code == 200 and json.loads(body)["value"].endswith(".png")       # where it was saved
    wait_for("the snapshot PNG", lambda: list(net["dir"].glob("*.png")), 10)
    code, _, body = call(base + "/set", {"key": "postprocess.threshold", "value": 7}, auth)
    assert code == 400 and b"between 0.0 and 1.0" in body
    code, _, body = call(base + "/set", {"key": "source.uri", "value": "/etc/passwd"}, auth)
    assert code == 400 and b"cannot be changed while running" in body


def test_model_route_answers_what_it_did(net):
    """POST /model answers as /set does: 400 with the reason for a model it will not run."""
    base, auth = net["base"], net["auth"]
    for name, why in (("nosuch", b"not a provisioned detect model"), ("v2", b"not a provisioned detect model")):
        code, _, body = call(base + "/model", {"model": name}, auth)
        assert code == 400 and why in body and json.loads(body)["value"] == "v1_ssd", (name, body)
    code, _, body = call(base + "/model", {"model": "v1_ssd"}, auth)     # what runs already
    assert code == 200 and json.loads(body)["value"] == "v1_ssd"
    assert status(net)["model"] == "v1_ssd"


def test_status_separates_objects_in_view_from_objects_seen(net):
    t = wait_for("bottles in view", lambda: (s := status(net)["tracking"])["in_view"].get("bottle") and s)
    assert "objects" not in t
    assert t["in_view"]["bottle"] <= t["seen"]["bottle"] and t["in_view"]["bottle"] == t["tracks"]


def test_counting_lines_are_edited_live(net):
    base, auth = net["base"], net["auth"]
    assert call(base + "/set", {"key": "rules.lines", "value": ["0.45,0,0.45,1,door"]}, auth)[0] == 200
    t = status(net)["tracking"]
    assert t["lines"] == ["0.45,0,0.45,1,door"] and t["counts"]["door"] == {"in": 0, "out": 0, "by_label": {}}
    moved = ["0.5,0.1,0.5,0.9,door", "0,0.5,1,0.5,shelf"]
    assert call(base + "/set", {"key": "rules.lines", "value": moved}, auth)[0] == 200
    t = status(net)["tracking"]
    assert t["lines"] == moved and set(t["counts"]) == {"door", "shelf"}
    code, _, body = call(base + "/set", {"key": "rules.lines", "value": ["0.5,0.5,0.5,0.5"]}, auth)
    assert code == 400 and b"two different points" in body and json.loads(body)["value"] == moved
    assert status(net)["tracking"]["lines"] == moved
    # Prometheus has the lines as they are now: the new one, not the removed one
    crossings = lambda: {s.labels["line"] for f in metrics(net) if f.name == "edgecam_line_crossings"  # noqa: E731
                         for s in f.samples}
    assert crossings() == {"door", "shelf"}
    zone = {"name": "mat", "points": [[0, 0.5], [1, 0.5], [1, 1]]}
    code, _, body = call(base + "/set", {"key": "zones", "value": [zone]}, auth)
    assert code == 200 and json.loads(body)["value"] == [zone], body
    assert status(net)["tracking"]["counts"]["mat"] == {"entered": 0, "inside": 0, "by_label": {}}
    assert call(base + "/set", {"key": "lines", "value": ["0,0.5,1,0.5,shelf"]}, auth)[0] == 200
    assert crossings() == {"shelf"}
    assert {s.labels["zone"] for f in metrics(net) if f.name == "edgecam_zone_entries" for s in f.samples} == {"mat"}


def metrics(net) -> list:
    from prometheus_client.parser import text_string_to_metric_families
    return list(text_string_to_metric_families(call(net["base"] + "/metrics", headers=net["auth"])[2].decode()))


def test_metrics_parse_with_prometheus_client(net):
    from prometheus_client.parser import text_string_to_metric_families
    code, headers, body = call(net["base"] + "/metrics", headers=net["auth"])
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples = {s.name: s for f in families.values() for s in f.samples}
    for name in ("edgecam_frames_captured_total", "edgecam_frames_inferred_total", "edgecam_frames_shown_total",
                 "edgecam_frames_dropped_total", "edgecam_reconnects_total", "edgecam_camera_fps",
                 "edgecam_inference_fps", "edgecam_inference_seconds_count", "edgecam_frame_age_seconds_bucket",
                 "process_resident_memory_bytes", "process_cpu_seconds_total"):
        assert name in samples, name
    assert samples["edgecam_frames_captured_total"].value > 10
    assert families["edgecam_inference_seconds"].type == "histogram"
    bottles = [s for s in families["edgecam_detections"].samples if s.labels.get("label") == "bottle"]
    assert bottles and bottles[0].value > 10
    info = families["edgecam_model_info"].samples[0].labels
    assert info["model"] == "v1_ssd" and info["alpha"] == "1.0" and int(info["madds"]) > 100_000_000


def test_foreign_host_is_refused(net):
    """DNS rebinding: a page on rebind.example whose name now points here sends its own Host."""
    for host in ("rebind.example", f"rebind.example:{net['port']}", "127.0.0.1.nip.io"):
        code, _, body = call(net["base"] + "/status", headers={**net["auth"], "Host": host})
        assert code == 403 and b"Host" in body, host
    assert call(net["base"] + "/status", headers={**net["auth"], "Host": f"localhost:{net['port']}"})[0] == 200


MALFORMED = [
    (b"POST /set HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST /set HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1.5\r\n\r\n", 400),
    (b"POST /set HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n", 400),
    (b"POST /set HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999\r\n\r\n", 413),
    (b"POST /set HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411),
    (b"HELLO\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 400),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n", 431),
    (b"GET /../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nAUTH\r\n\r\n", 404),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
]


def test_malformed_requests_get_a_4xx_and_no_traceback(net):
    auth = f"Authorization: Bearer {net['token']}".encode()
    deep = b"[" * 2000 + b"]" * 2000
    cases = [(req.replace(b"AUTH", auth), code) for req, code in MALFORMED]
    cases.append((b"POST /set HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(deep) + deep, 400))
    for request, code in cases:
        answer = raw(net["port"], request)
        assert answer.startswith(b"HTTP/1.1 %d " % code), (request[:60], answer[:200])
    assert "Traceback" not in net["log"].read_text()
    assert status(net)["status"] == "running"


def test_idle_half_sent_and_excess_connections_are_bounded(net):
    """200 idle sockets: 64 (web_max_connections) are held, each one more takes the place of
    the oldest (answered 503), so a real request is answered at once; a client that sent half a
    request is dropped within the read timeout; every one is closed by the server."""
    port, socks = net["port"], []
    before = status(net)["web"]
    try:
        for _ in range(200):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=READ_S + 10))
        assert call(net["base"] + "/status", headers=net["auth"])[0] == 200    # room made for it at once
        half = socket.create_connection(("127.0.0.1", port), timeout=READ_S + 10)
        half.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")      # and never the blank line
        t0 = time.monotonic()
        answers = []
        for s in socks:
            s.settimeout(READ_S + 5)
            answers.append(s.recv(200)[:12])
        assert set(answers) <= {b"HTTP/1.1 503", b""} and answers.count(b"HTTP/1.1 503") >= 130
        assert half.recv(100) == b"" and time.monotonic() - t0 < READ_S + 8    # dropped, not answered
    finally:
        for s in socks:
            s.close()
    web = status(net)["web"]
    assert web["evicted"] - before["evicted"] >= 130 and web["timed_out"] - before["timed_out"] >= 30


class OtherPort(PageServer):
    """Another server on another port of the same host (Home Assistant, Node-RED on a Pi): it
    records every request a browser sends it, and serves a page that asks for more."""

    PAGE = (b"<!doctype html><title>other</title><img src='/pixel.png'><script>"
            b"fetch('/api', {credentials: 'include'}).then(() => { document.title = 'done'; });</script>")

    def __init__(self):
        super().__init__(lambda path: ("text/html", self.PAGE) if path == "/" else ("application/json", b"{}"))


def test_chromium_keeps_the_token_to_its_origin_and_the_page_works(net, tmp_path):
    """The logged URL in a real browser: the token goes into this origin's localStorage and off
    the address bar, the page's requests carry it (status polled, stream shown, a setting
    changed), it works again when reopened without the token; then a server on another port
    of the same host, opened in the same browser, receives nothing it could replay."""
    from browser import Browser
    base, token = net["base"], net["token"]
    other = OtherPort()
    el = "document.getElementById"
    try:
        with Browser(tmp_path / "profile") as b:
            tab = b.open(f"{base}/?token={token}")
            b.wait(tab, f"{el}('status').textContent === 'running'")
            assert b.js(tab, "location.href") == base + "/" and b.js(tab, "document.cookie") == ""
            assert b.js(tab, "localStorage.getItem('edgecam_token')") == token
            assert token not in b.js(tab, "document.documentElement.outerHTML")
            assert b.wait(tab, f"/^\\d+x\\d+$/.test({el}('picture').textContent)")     # the stream shows
            assert "ticket=" in b.js(tab, f"{el}('stream').src")
            frames = b.js(tab, f"{el}('frames').textContent")
            b.wait(tab, f"{el}('frames').textContent !== {json.dumps(frames)}")           # /status polled
            b.js(tab, f"(() => {{ const t = {el}('threshold'); t.value = 0.6; t.onchange(); }})()")
            wait_for("the threshold set from the page", lambda: status(net)["threshold"] == 0.6)
            b.wait(tab, f"{el}('msg').textContent.length > 0 && {el}('msg').className !== 'bad'")
            again = b.open(base + "/")                                                     # no token in the URL
            b.wait(again, f"{el}('status').textContent === 'running'")
            elsewhere = b.open(other.url)
            b.wait(elsewhere, "document.title === 'done'")
            b.wait(elsewhere, "document.images[0].complete")
    finally:
        other.close()
        call(base + "/set", {"key": "postprocess.threshold", "value": 0.5}, net["auth"])
    assert {path for path, _ in other.seen} >= {"/", "/pixel.png", "/api"}, other.seen
    for path, headers in other.seen:
        assert "cookie" not in {k.lower() for k in headers}, (path, headers)
        assert token not in path and token not in json.dumps(headers) and "ticket" not in path + json.dumps(headers)


def test_teaching_without_a_taught_set_is_refused_in_one_sentence(net):
    """A run without --teach: the browser's teach requests say so (400) and write nothing."""
    for path, body in (("/api/teach", {"event": 1, "label": "car"}), ("/api/teach/remove", {"example": "a/b.jpg"})):
        code, _, answer = call(net["base"] + path, body, headers=net["auth"])
        assert code == 400 and "--teach SET" in json.loads(answer)["message"], answer
    assert json.loads(call(net["base"] + "/api/teach", headers=net["auth"])[2])["set"] is None
    assert call(net["base"] + "/api/teach", {"event": 1, "label": "car"})[0] == 401
