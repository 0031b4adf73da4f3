"""MQTT for real: Debian's mosquitto on 127.0.0.1 (started here on a free port, with a
config of its own), edgecam as a user runs it (a subprocess, real footage played live with
--realtime), and a real paho-mqtt subscriber: a line crossing reaches the broker, the
discovery configs are retained for a late subscriber, a set topic changes the threshold and
a bad value is refused, the last will says offline after SIGKILL, a broker restart mid-run
loses no event, --mqtt-discovery off removes the entities, a password is used and never shown."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import run_edgecam, write_clip  # noqa: E402
from test_live import free_port, wait_for  # noqa: E402

mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install -e '.[test]')")

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
WALK = "one-by-one-person-detection.mp4"
LINE = "0.7,0,0.7,1,door"     # person 2 of the walk clip stands at x = 0.58, then walks right past 0.7


class Broker:
    """mosquitto -c FILE on 127.0.0.1:PORT, persistent (it keeps sessions across a restart)."""

    def __init__(self, folder: Path, users: dict | None = None, tls: dict | None = None):
        if not os.access(MOSQUITTO, os.X_OK):
            pytest.skip("mosquitto (Debian package mosquitto) is not installed")
        self.port, self.folder, self.proc = free_port(), folder, None
        conf = [f"listener {self.port} 127.0.0.1", "persistence true", f"persistence_location {folder}/",
                f"user {getpass.getuser()}", "log_type error"]
        if tls:
            conf += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
        if users:
            pw = folder / "passwords"
            for i, (user, password) in enumerate(users.items()):
                subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + [str(pw), user, password],
                               check=True, timeout=10)
            conf += [f"password_file {pw}", "allow_anonymous false"]
        else:
            conf.append("allow_anonymous true")
        (folder / "mosquitto.conf").write_text("\n".join(conf) + "\n")
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.folder / "mosquitto.log", "a"))
        wait_for("mosquitto to listen", self._listening, 10)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()          # SIGTERM: it saves its sessions and retained messages
            self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class Subscriber:
    """A real paho-mqtt client: every message on ``topics`` (QoS 1), with its retain flag;
    ``persistent``: a session the broker keeps (it queues QoS 1 messages while we are away)."""

    def __init__(self, port: int, *topics: str, persistent: bool = False, name: str = "", ca: Path | None = None):
        self.messages: list = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, clean_session=not persistent)
        if ca:
            self.client.tls_set(ca_certs=str(ca))
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, u, f, rc, p=None: [c.subscribe(t, 1) for t in topics]
        self.client.on_message = self._got
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _got(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def on(self, topic: str) -> list:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def last(self, topic: str):
        got = self.on(topic)
        return got[-1] if got else None

    def json(self, topic: str) -> list:
        return [json.loads(p) for p in self.on(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, topic: str, payload: str) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def walk_clip(media: Path, path: Path, first: int, last: int, fps: float) -> Path:
    """Frames first..last of the walk clip, at ``fps``."""
    return write_clip(media / WALK, path, last - first, first=first, fps=fps)


@pytest.fixture(scope="module")
def clips(media, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mqtt-clips")
    # person 2 is already in view at frame 150, crosses x = 0.7 near frame 186 and leaves; 20 s at 20 fps
    return {"live": walk_clip(media, folder / "walk.mp4", 150, 560, 20.0),
            "short": walk_clip(media, folder / "short.mp4", 150, 240, 10.0)}


def edgecam(models_dir, source, broker_url: str, *more, log: Path, realtime: bool = True) -> subprocess.Popen:
    args = [sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--model-dir", str(models_dir), "--source",
            str(source), "--display", "none", "--line", LINE, "--mqtt", broker_url,
            *(["--realtime"] if realtime else []), *map(str, more)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=dict(os.environ))


def write_config(path: Path, **mqtt_keys) -> Path:
    path.write_text("mqtt:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in mqtt_keys.items()))
    return path


# --- one live run: events, discovery, settings, snapshot, last will ----------------------------------

@pytest.fixture(scope="module")
def live(models_dir, clips, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mqtt-live")
    broker = Broker(folder)
    sub = Subscriber(broker.port, "edgecam/cam1/#")
    cfg = write_config(folder / "cfg.yaml", name="cam1", status_s=1.0, snapshot=True, labels=["person", "tv"])
    proc = edgecam(models_dir, clips["live"], broker.url, "--config", cfg, "--events", folder / "events.jsonl",
                   log=folder / "edgecam.log")
    try:
        yield {"broker": broker, "sub": sub, "proc": proc, "folder": folder, "prefix": "edgecam/cam1"}
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        sub.close()
        broker.stop()


def crossings(sub: Subscriber, prefix: str) -> list:
    return [e for e in sub.json(f"{prefix}/events") if e["event"] == "cross"]


def test_a_line_crossing_reaches_mqtt(live):
    sub, p = live["sub"], live["prefix"]
    cross = wait_for("a crossing on MQTT", lambda: crossings(sub, p), 40)[0]
    assert (cross["line"], cross["direction"], cross["label"], cross["camera"]) == ("door", "in", "person", "cam1")
    assert abs(cross["time"] - time.time()) < 60
    new = [e for e in sub.json(f"{p}/events") if e["event"] == "new" and e["id"] == cross["id"]]
    assert new and new[0]["frame"] <= cross["frame"]
    counts = wait_for("the door's counts", lambda: [c for c in sub.json(f"{p}/counts/door") if c["in"] == 1])
    assert counts[0]["by_label"] == {"person": {"in": 1, "out": 0}}
    assert counts[0]["today_in"] >= 1 and "today_out" in counts[0]      # today's, from the history (since midnight)
    assert b"1" in sub.on(f"{p}/objects/person") and sub.on(f"{p}/availability")[0] == b"online"
    status = wait_for("a status", lambda: sub.json(f"{p}/status"))[-1]
    assert status["model"] == "v1_ssd" and status["threshold"] == 0.5 and "camera_fps" in status


def test_discovery_is_retained_for_a_late_subscriber(live):
    wait_for("a crossing", lambda: crossings(live["sub"], live["prefix"]), 40)
    late = Subscriber(live["broker"].port, "homeassistant/#", f"{live['prefix']}/#")
    try:
        configs = wait_for("the select's config", lambda: late.last("homeassistant/select/cam1/model/config"), 10)
        time.sleep(0.5)
        retained = {t: json.loads(p) for t, p, r in late.messages if r and t.startswith("homeassistant/") and p}
    finally:
        late.close()
    person = retained["homeassistant/binary_sensor/cam1/person_detected/config"]
    assert person["state_topic"] == "edgecam/cam1/objects/person" and person["device_class"] == "occupancy"
    assert person["availability_topic"] == "edgecam/cam1/availability"
    assert person["device"]["identifiers"] == ["edgecam_cam1"]
    for obj in ("sensor/cam1/person_count", "sensor/cam1/tv_count", "binary_sensor/cam1/tv_detected",
                "sensor/cam1/door_in", "sensor/cam1/door_out", "sensor/cam1/door_today_in",
                "sensor/cam1/door_today_out", "sensor/cam1/fps", "sensor/cam1/latency",
                "camera/cam1/snapshot", "number/cam1/threshold", "switch/cam1/paused", "switch/cam1/overlay"):
        assert f"homeassistant/{obj}/config" in retained, obj
    today = retained["homeassistant/sensor/cam1/door_today_in/config"]
    assert (today["name"], today["state_class"], today["value_template"]) == (
        "door in today", "total_increasing", "{{ value_json['today_in'] }}")
    # Home Assistant (re)starts: its birth message has everything announced again
    again = Subscriber(live["broker"].port, "homeassistant/select/cam1/#")
    try:
        wait_for("the retained select", lambda: again.on("homeassistant/select/cam1/model/config"), 10)
        publish(live["broker"].port, "homeassistant/status", "online")
        wait_for("the select announced again", lambda: any(not r for _, _, r in again.messages), 10)
    finally:
        again.close()
    select = json.loads(configs)
    assert "v1_ssd" in select["options"] and select["command_topic"] == "edgecam/cam1/set/model"
    # the controls are the schema's live settings: their ranges and steps come from it
    from edgecam.config import CONTROL_NAMES
    threshold = retained["homeassistant/number/cam1/threshold/config"]
    assert (threshold["min"], threshold["max"]) == CONTROL_NAMES["threshold"].range
    assert threshold["step"] == CONTROL_NAMES["threshold"].step
    assert threshold["command_topic"] == "edgecam/cam1/set/threshold"
    for obj in ("number/cam1/top_k", "switch/cam1/show_cost"):
        assert f"homeassistant/{obj}/config" in retained, obj
    assert retained["homeassistant/camera/cam1/snapshot/config"]["topic"] == "edgecam/cam1/snapshot"


def test_snapshot_is_the_annotated_frame_of_an_event(live):
    jpeg = wait_for("a snapshot", lambda: live["sub"].last(f"{live['prefix']}/snapshot"), 20)
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (432, 768, 3) and image.std() > 20


def _answer(sub: Subscriber, topic: str, n: int):
    return wait_for(f"answer {n} on {topic}", lambda: len(sub.on(topic)) >= n and sub.json(topic)[n - 1], 15)


def test_set_topic_changes_the_threshold_and_refuses_bad_values(live):
    sub, p, port = live["sub"], live["prefix"], live["broker"].port
    publish(port, f"{p}/set/threshold", "0.65")
    ok = _answer(sub, f"{p}/set/threshold/result", 1)
    assert ok["done"] is True and ok["asked"] == "0.65" and ok["value"] == 0.65, ok   # the value in force
    wait_for("the threshold in the status", lambda: sub.json(f"{p}/status")[-1]["threshold"] == 0.65, 10)
    publish(port, f"{p}/set/threshold", "1.5")
    bad = _answer(sub, f"{p}/set/threshold/result", 2)
    assert bad["done"] is False and "between 0.0 and 1.0" in bad["message"] and bad["value"] == 0.65, bad
    publish(port, f"{p}/set/postprocess.threshold", "lots")
    word = _answer(sub, f"{p}/set/postprocess.threshold/result", 1)
    assert word["done"] is False and "must be a number" in word["message"], word
    publish(port, f"{p}/set/source.uri", "/dev/video0")
    other = _answer(sub, f"{p}/set/source.uri/result", 1)
    assert other["done"] is False and "cannot be changed while running" in other["message"], other
    publish(port, f"{p}/set/model", "v2")                        # a classifier: not of the running task
    model = _answer(sub, f"{p}/set/model/result", 1)
    assert model["done"] is False and "not a provisioned detect model" in model["message"], model
    n = len(sub.on(f"{p}/status"))
    wait_for("two more statuses", lambda: len(sub.on(f"{p}/status")) >= n + 2, 10)
    assert sub.json(f"{p}/status")[-1]["threshold"] == 0.65       # the bad values changed nothing
    publish(port, f"{p}/set/paused", "true")
    assert _answer(sub, f"{p}/set/paused/result", 1)["done"] is True
    wait_for("paused in the status", lambda: sub.json(f"{p}/status")[-1]["paused"] is True, 10)


def test_last_will_says_offline_after_sigkill(live):
    sub, p, proc = live["sub"], live["prefix"], live["proc"]
    wait_for("online", lambda: sub.last(f"{p}/availability") == b"online", 20)
    assert proc.poll() is None, "edgecam ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    wait_for("the last will", lambda: sub.last(f"{p}/availability") == b"offline", 10)
    late = Subscriber(live["broker"].port, f"{p}/availability")
    try:
        assert wait_for("the retained state", lambda: late.last(f"{p}/availability"), 5) == b"offline"
    finally:
        late.close()
    log = (live["folder"] / "edgecam.log").read_text()
    assert log.count("MQTT: connected to mqtt://127.0.0.1") == 1, log[-3000:]


# --- the broker restarts in the middle of a run -----------------------------------------------------------

def test_broker_restart_loses_no_event(models_dir, clips, tmp_path):
    broker = Broker(tmp_path)
    sub = Subscriber(broker.port, "edgecam/cam2/events", persistent=True, name="test-restart")
    cfg = write_config(tmp_path / "cfg.yaml", name="cam2")
    proc = edgecam(models_dir, clips["live"], broker.url, "--config", cfg, "--events", tmp_path / "events.jsonl",
                   log=tmp_path / "edgecam.log")
    try:
        wait_for("the first event", lambda: sub.on("edgecam/cam2/events"), 40)
        broker.stop()
        down = time.time()
        time.sleep(3.0)
        broker.start()
        up = time.time()
        log = tmp_path / "edgecam.log"
        wait_for("edgecam back on the broker", lambda: "MQTT: back" in log.read_text(), 30)
        wait_for("the crossing", lambda: crossings(sub, "edgecam/cam2"), 20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        broker_stop_and(sub, broker)
    produced = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    delivered = {json.dumps({k: v for k, v in e.items() if k not in ("camera", "time")}, sort_keys=True): e
                 for e in sub.json("edgecam/cam2/events")}                  # QoS 1: a repeat counts once
    assert sorted(delivered) == sorted(json.dumps(e, sort_keys=True) for e in produced)
    during = [e for e in delivered.values() if down <= e["time"] <= up]
    assert during, "no event happened while the broker was down"
    text = log.read_text()
    assert text.count("MQTT: lost") == 1 and text.count("MQTT: back") == 1, text[-3000:]


def broker_stop_and(sub: Subscriber, broker: Broker) -> None:
    sub.close()
    broker.stop()


# --- short file runs: discovery off, passwords, and what goes wrong ---------------------------------

def test_discovery_off_removes_the_entities(models_dir, clips, tmp_path):
    broker = Broker(tmp_path)
    try:
        for discovery in ("on", "off"):
            r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", clips["short"],
                            "--display", "none", "--line", LINE, "--mqtt", broker.url, "--config",
                            write_config(tmp_path / "cfg.yaml", name="cam3"), "--mqtt-discovery", discovery,
                            timeout=120)
            assert r.returncode == 0, r.stderr[-2000:]
            late = Subscriber(broker.port, "homeassistant/+/cam3/#")
            time.sleep(1.0)
            late.close()
            configs = [t for t, payload, retained in late.messages if retained and payload]
            if discovery == "on":
                assert "homeassistant/sensor/cam3/door_in/config" in configs and len(configs) >= 6, configs
            else:
                assert configs == [], configs
    finally:
        broker.stop()


def test_password_is_used_and_never_shown(models_dir, clips, tmp_path):
    broker = Broker(tmp_path, users={"cam": "s3cret-pw"})
    try:
        sub_ok = {}
        for password in ("s3cret-pw", "wrong-pw"):
            r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", clips["short"],
                            "--display", "none", "--line", LINE, "--log-level", "debug",
                            "--mqtt", f"mqtt://cam:{password}@127.0.0.1:{broker.port}", timeout=120)
            assert r.returncode == 0, r.stderr[-2000:]
            assert password not in r.stdout + r.stderr
            sub_ok[password] = r.stderr
        assert f"MQTT: connected to mqtt://cam:***@127.0.0.1:{broker.port}" in sub_ok["s3cret-pw"]
        refused = sub_ok["wrong-pw"]
        assert refused.count("refused the connection") == 1, refused[-2000:]
        assert "not delivered" in refused
    finally:
        broker.stop()


def test_bad_address_missing_paho_and_no_broker(models_dir, clips, tmp_path):
    r = run_edgecam("--mqtt", "mqtt://cam:hunter2@127.0.0.1:99999", "--source", clips["short"], timeout=60)
    assert r.returncode == 2 and "hunter2" not in r.stderr and "Traceback" not in r.stderr
    assert "bad --mqtt address 'mqtt://cam:***@127.0.0.1:99999'" in r.stderr, r.stderr
    r = run_edgecam("--mqtt", "http://127.0.0.1", "--source", clips["short"], timeout=60)
    assert r.returncode == 2 and "must start with mqtt:// or mqtts://" in r.stderr, r.stderr
    code = ("import sys; sys.modules['paho'] = None; from edgecam.cli import main; sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "--model", "v1_ssd", "--model-dir", str(models_dir), "--source",
                        str(clips["short"]), "--display", "none", "--mqtt", "mqtt://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "pip install 'edgecam[mqtt]'" in r.stderr.strip().splitlines()[-1]
    # no broker at all: the run goes on, says so once; the queue keeps the newest 2 events
    r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", clips["short"], "--display", "none",
                    "--line", LINE, "--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--events", tmp_path / "ev.jsonl",
                    "--config", write_config(tmp_path / "cfg.yaml", queue=2), timeout=120)
    assert r.returncode == 0 and "90 frames" in r.stdout, r.stdout + r.stderr[-2000:]
    assert len((tmp_path / "ev.jsonl").read_text().splitlines()) > 2
    assert r.stderr.count("MQTT: cannot connect") == 1, r.stderr[-2000:]
    assert r.stderr.count("the queue of 2 messages is full") == 1, r.stderr[-2000:]
    assert "MQTT: 2 messages not delivered" in r.stderr, r.stderr[-2000:]


def make_certificates(folder: Path) -> dict:
    """A CA of our own and a certificate it signs for 127.0.0.1 (openssl, EC keys: fast)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl (Debian package openssl) is not installed")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    f = {name: str(folder / name) for name in ("ca.pem", "ca.key", "server.pem", "server.key", "server.csr", "san")}
    Path(f["san"]).write_text("subjectAltName=IP:127.0.0.1\n")
    for cmd in (["req", "-x509", *ec, "-keyout", f["ca.key"], "-out", f["ca.pem"], "-days", "2",
                 "-subj", "/CN=test CA"],
                ["req", *ec, "-keyout", f["server.key"], "-out", f["server.csr"], "-subj", "/CN=127.0.0.1"],
                ["x509", "-req", "-in", f["server.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"], "-CAcreateserial",
                 "-out", f["server.pem"], "-days", "2", "-extfile", f["san"]]):
        subprocess.run(["openssl", *cmd], check=True, capture_output=True, timeout=30)
    return {"ca": f["ca.pem"], "cert": f["server.pem"], "key": f["server.key"]}


def test_tls_with_our_ca_and_refused_without_it(models_dir, clips, tmp_path):
    tls = make_certificates(tmp_path)
    broker = Broker(tmp_path, tls=tls)
    sub = Subscriber(broker.port, "edgecam/cam4/events", ca=Path(tls["ca"]))
    url = f"mqtts://127.0.0.1:{broker.port}"
    try:
        runs = {}
        for name, keys in (("ca", {"tls_ca": tls["ca"]}), ("system", {}), ("insecure", {"tls_insecure": True})):
            r = run_edgecam("--model", "v1_ssd", "--model-dir", models_dir, "--source", clips["short"], "--display",
                            "none", "--line", LINE, "--mqtt", url, "--config",
                            write_config(tmp_path / "cfg.yaml", name="cam4", **keys), timeout=120)
            assert r.returncode == 0, r.stderr[-2000:]
            runs[name] = r.stderr
        assert f"MQTT: connected to {url}" in runs["ca"] and "not delivered" not in runs["ca"], runs["ca"][-2000:]
        assert any(e["event"] == "cross" for e in sub.json("edgecam/cam4/events"))
        assert runs["system"].count("MQTT: cannot connect") == 1 and "not delivered" in runs["system"]
        assert "certificate" in runs["system"], runs["system"][-2000:]
        assert f"MQTT: connected to {url}" in runs["insecure"], runs["insecure"][-2000:]
    finally:
        sub.close()
        broker.stop()


# --- a line or zone changed while running, by each route, reaches every output ----------------------

def _post(port: int, body: dict) -> tuple:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/set", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _web(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read()


def _rules_config(path: Path, port: int, lines: list, zones: list = ()) -> Path:
    """mqtt as cam2 (a status every 30 s: the first one must not wait for it), the browser
    view without a token (loopback), and the lines and zones."""
    path.write_text(f"mqtt:\n  name: cam2\n  status_s: 30\n  labels: [person]\n"
                    f"output:\n  web: 127.0.0.1:{port}\n  web_auth: none\n"
                    f"rules:\n  lines: {json.dumps(lines)}\n  zones: {json.dumps(list(zones))}\n")
    return path


def test_lines_and_zones_changed_by_every_route_reach_mqtt_status_and_metrics(models_dir, clips, tmp_path):
    broker, port = Broker(tmp_path), free_port()
    sub = Subscriber(broker.port, "homeassistant/#", "edgecam/cam2/#")
    cfg = _rules_config(tmp_path / "cfg.yaml", port, ["0.7,0,0.7,1,door"])
    proc = subprocess.Popen([sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--model-dir", str(models_dir),
                             "--source", str(clips["short"]), "--loop", "--display", "none", "--mqtt", broker.url,
                             "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "edgecam.log", "w"), env=dict(os.environ))
    p, ha = "edgecam/cam2", "homeassistant/sensor/cam2"
    announced = lambda obj: sub.last(f"{ha}/{obj}/config") not in (None, b"")   # noqa: E731
    removed = lambda obj: sub.last(f"{ha}/{obj}/config") == b""                  # noqa: E731
    took = {}

    def within(route: str, what: str, check, start: float) -> None:
        wait_for(what, check, 10, every=0.02)
        took[route] = time.monotonic() - start

    try:
        wait_for("online", lambda: sub.last(f"{p}/availability") == b"online", 60)
        online = time.monotonic()
        wait_for("the first status (at connect, not after mqtt.status_s)", lambda: sub.on(f"{p}/status"), 5)
        took["first status after online"] = time.monotonic() - online
        assert json.loads(wait_for("the door's counts", lambda: sub.last(f"{p}/counts/door"), 5))["in"] == 0
        assert wait_for("the door's entities", lambda: announced("door_in"), 5)

        start = time.monotonic()                  # 1. MQTT's set topic: a line added
        publish(broker.port, f"{p}/set/lines", "0.7,0,0.7,1,door; 0.3,0,0.3,1,gate")
        within("mqtt", "the gate's entities and counts",
               lambda: announced("gate_in") and announced("gate_out") and sub.last(f"{p}/counts/gate"), start)
        answer = json.loads(wait_for("the answer", lambda: sub.last(f"{p}/set/lines/result"), 5))
        assert answer["value"] == ["0.7,0,0.7,1,door", "0.3,0,0.3,1,gate"], answer
        assert json.loads(_web(port, "/status"))["tracking"]["lines"][1] == "0.3,0,0.3,1,gate"
        assert b'line="gate"' in _web(port, "/metrics")

        start = time.monotonic()                  # 2. the browser's /set: the gate renamed exit
        code, answer = _post(port, {"key": "rules.lines", "value": ["0.7,0,0.7,1,door", "0.3,0,0.3,1,exit"]})
        assert code == 200 and answer["value"][1] == "0.3,0,0.3,1,exit", answer
        within("/set", "the exit announced, the gate removed",
               lambda: announced("exit_in") and removed("gate_in") and removed("gate_out")
               and sub.last(f"{p}/counts/gate") == b"", start)
        assert b'line="gate"' not in _web(port, "/metrics") and b'line="exit"' in _web(port, "/metrics")

        zone = {"name": "mat", "points": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0]]}
        _rules_config(cfg, port, ["0.5,0,0.5,1,middle"], [zone])
        start = time.monotonic()                  # 3. SIGHUP: every line replaced, a zone added
        proc.send_signal(signal.SIGHUP)
        within("SIGHUP", "middle and mat announced, door and exit removed",
               lambda: announced("middle_in") and announced("mat_inside") and announced("mat_entered")
               and removed("door_in") and removed("exit_out") and sub.last(f"{p}/counts/mat"), start)
        t = json.loads(_web(port, "/status"))["tracking"]
        assert t["lines"] == ["0.5,0,0.5,1,middle"] and set(t["counts"]) == {"middle", "mat"}
        assert b'zone="mat"' in _web(port, "/metrics") and b'line="door"' not in _web(port, "/metrics")
        status = wait_for("a status with the new lines", lambda: (s := sub.json(f"{p}/status")[-1])["lines"]
                          == ["0.5,0,0.5,1,middle"] and s, 5)
        assert status["zones"] == [zone]

        start = time.monotonic()                  # 4. MQTT again: the zone removed
        publish(broker.port, f"{p}/set/zones", "[]")
        within("mqtt (zone removed)", "mat removed", lambda: removed("mat_inside") and removed("mat_entered"), start)
        print("seconds from the change to Home Assistant's entities:",
              ", ".join(f"{k} {v:.2f}" for k, v in took.items()))
        assert all(v < 2.0 for v in took.values()), took    # within a second, on an idle machine
    finally:
        _end(proc, sub, broker)
    assert "Traceback" not in (tmp_path / "edgecam.log").read_text()


def test_a_taught_frame_state_reaches_mqtt_home_assistant_status_and_metrics(models_dir, media, tmp_path):
    """--teach-frame live (the bottle clip's frames 480-879 as a camera, a set of 5 frames per
    state built now from frames outside them): the state retained on <prefix>/state, a Home
    Assistant binary sensor (two labels), /status and /metrics."""
    config = tmp_path / "teach.yaml"
    config.write_text(f"model:\n  dir: {models_dir}\n")
    bottles = media / "bottle-detection.mp4"
    for label, frames in (("all", "50,150,400,1120,1150"), ("missing", "250,300,320,1000,1030")):
        r = run_edgecam("teach", tmp_path / "bottles", "--add", label, "--from", bottles, "--frames", frames,
                        "--config", config)
        assert r.returncode == 0, r.stderr[-2000:]
    cut = write_clip(bottles, tmp_path / "cut.mp4", 400, first=480)
    broker, port = Broker(tmp_path), free_port()
    sub = Subscriber(broker.port, "homeassistant/#", "edgecam/cam4/#")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model:\n  dir: {models_dir}\nmqtt:\n  name: cam4\n  status_s: 30\n"
                   f"output:\n  web: 127.0.0.1:{port}\n  web_auth: none\n")
    proc = subprocess.Popen([sys.executable, "-m", "edgecam", "--model", "v1_ssd", "--source", str(cut), "--loop",
                             "--display", "none", "--mqtt", broker.url, "--config", str(cfg), "--teach-frame",
                             str(tmp_path / "bottles")], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "edgecam.log", "w"), env=dict(os.environ))
    try:
        conf = json.loads(wait_for("the state's entity", lambda: sub.last(
            "homeassistant/binary_sensor/cam4/state/config"), 60))
        assert conf["state_topic"] == "edgecam/cam4/state" and "missing" in conf["value_template"], conf
        wait_for("the state all, then missing", lambda: [json.loads(p)["state"] for p in sub.on(
            "edgecam/cam4/state")][:2] == ["all", "missing"], 30)
        status = json.loads(_web(port, "/status"))["teach"]
        assert status["states"] == ["all", "missing"] and status["state"] in ("all", "missing"), status
        metrics = _web(port, "/metrics")
        assert b'edgecam_state{state="missing"}' in metrics and b"edgecam_embedded_total" in metrics
    finally:
        _end(proc, sub, broker)
    assert "Traceback" not in (tmp_path / "edgecam.log").read_text()


def _end(proc, sub, broker) -> None:
    """A live run's end: edgecam stopped (SIGTERM), the subscriber closed, the broker stopped."""
    proc.terminate()
    proc.wait(30)
    sub.close()
    broker.stop()
