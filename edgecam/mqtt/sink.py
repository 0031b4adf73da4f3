"""The MQTT sink: what the pipeline's threads call. Each call only queues (topics.py's
payloads, built from a result's few events and counts) for the publisher thread of
link.py; the JPEG of a snapshot is encoded there too, and only when an event asked for one.

  result()            (the inference thread) the events, the objects in view per label, the
                      line and zone counts
  frame()/refresh()   (the output loop; only with mqtt.snapshot, or the run draws nothing
                      for MQTT) the frame of an event for the snapshot
  watch()             (live mode, at the start) the runner's live status, read with every
                      status message
  intents()           (the output loop) the set topics' changes, as SET intents; the runner
                      applies them through its live settings (edgecam/pipeline/tuning.py) and
                      its answer is published on set/<key>/result
  tuned()             (the output loop) a live setting changed, by any route (the browser,
                      MQTT, a key, SIGHUP): the status at once; a line or zone added, moved,
                      renamed or removed: its counts topic, and Home Assistant's entities
                      announced (the removed ones emptied)"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import cv2

from edgecam.bounds import read_bounded
from edgecam.config import CONTROLS, PAUSED, get_value
from edgecam.errors import ConfigError
from edgecam.provision import catalog
from edgecam.mqtt.address import parse_broker
from edgecam.mqtt.discovery import Device, announcements
from edgecam.mqtt.link import Link, log
from edgecam.mqtt.topics import (MAX_SET_PAYLOAD, RuleCounts, Topics, encode, event_payload, in_view, reply_payload,
                                 slug)
from edgecam.sinks.base import SET, FrameInfo, Intent, Sink
from edgecam.teach.settings import frame_states
from edgecam.track.rules import Line, Zone
from edgecam.track.today import Today

MAX_PEM = 1024 * 1024   # bytes in a certificate or key file
MAX_ASKED = 64          # set messages waiting for the output loop; beyond, refused
STATUS_KEYS = ("status", "camera_fps", "inference_fps", "latency_ms", "result_age_ms", "dropped", "reconnects",
               "model")    # what the live runner's status adds to the sink's own figures


def check_files(m) -> None:
    """The TLS files mqtt.tls_* name are readable regular files (checked used or not, like every
    value a mode ignores), or ConfigError with one sentence."""
    for key in ("tls_ca", "tls_cert", "tls_key"):
        if getattr(m, key):
            read_bounded(Path(getattr(m, key)), f"mqtt.{key}", MAX_PEM, ConfigError)


class MqttSink(Sink):
    def __init__(self, cfg, live: bool, today: Optional[Today] = None):
        """``today``: today's totals (edgecam/track/today.py), published beside the live counts
        (``today_in``/``today_out``, ``today_entered``) and announced as "today" sensors."""
        m = self.m = cfg.mqtt
        self.today = today
        self.today_day = today.current_day() if today is not None else None   # the day published
        self.cfg, self.live = cfg, live
        self.name = m.name or socket.gethostname()
        self.topics = Topics(m.topic_prefix or f"edgecam/{slug(self.name)}")
        self.wants_frames = m.snapshot
        # the live settings in force, by short name: as at the start, then as tuned() tells
        self.settings = {c.alias or c.key: get_value(cfg, c.key) if c.key in _KEYS else False for c in CONTROLS}
        lines, zones = _names(cfg.rules.lines, cfg.rules.zones)
        self.device = Device(self.name, self.topics, m.discovery_prefix, list(m.labels), lines, zones,
                             m.snapshot, live, states=frame_states(cfg.teach), today=today is not None)
        self.state: Optional[str] = None                # the taught frame state, as published
        self.rules = RuleCounts(lines, zones)
        self.announced: set = set()                     # the discovery topics with a config now
        self.zone_points = _zone_points(cfg.rules.zones)
        self.shown: Dict[str, int] = {}                 # objects in view per label, as published
        self.lock = threading.Lock()
        self.asked: List[Intent] = []
        self.results = self.events = 0
        self.model = cfg.model.name
        self.task: Optional[str] = None          # known with the first result
        self.figures = {"inference_ms": None, "latency_ms": None}
        self.started = self.last_tick = time.monotonic()
        self.results_at_tick = 0
        self.live_status: Callable[[], dict] = dict     # live mode: the runner's status (watch())
        self.snapshot_after: Optional[int] = None       # an event's frame: its drawing is the snapshot
        broker = parse_broker(m.url)
        if not broker.tls and (m.tls_ca or m.tls_cert or m.tls_key):
            log.warning("MQTT: mqtt.tls_* are set but %s is not mqtts://: not using TLS", broker)
        tls = {"ca": m.tls_ca, "cert": m.tls_cert, "key": m.tls_key, "insecure": m.tls_insecure}
        self.link = Link(broker, m.client_id or f"edgecam-{slug(self.name)}", self.topics.availability, m.queue, tls,
                         on_connect=self._subscribe, on_message=self._message, tick_s=m.status_s,
                         on_tick=self._tick)
        self._announce()
        for label in m.labels:
            self._in_view(label, 0)
        for name in self.rules.counts:
            self.link.keep(self.topics.counts(name), self._counts(name))
        self.link.start()

    # -- the pipeline's calls ---------------------------------------------------------------------
    def result(self, result) -> None:
        self.results += 1
        self.model = result.model
        if self.task is None:
            self.task = result.task
            if self.live:
                self.link.later("models", self._models)
        if result.inferred:
            self.figures = {"inference_ms": round(result.inference_ms, 2),
                            "latency_ms": round((time.monotonic() - result.captured) * 1000, 1)
                            if result.captured else None}
        for event in result.events:
            self.events += 1
            self.link.send(self.topics.events, event_payload(event, self.name), self.m.qos)
            with self.lock:                              # tuned() may replace the rules meanwhile
                name = self.rules.apply(event)
                counts = self._counts(name) if name is not None else None
            if name is not None and counts is not None:
                self.link.keep(self.topics.counts(name), counts)
        if result.state is not None and result.state["label"] != self.state:
            self.state = result.state["label"]
            self.link.keep(self.topics.state, encode({"state": self.state, "similarity": result.state["similarity"]}))
        if result.events and self.m.snapshot and self.snapshot_after is None:
            self.snapshot_after = result.frame
        if result.task == "detect":
            seen = in_view(result.detections)
            for label in set(seen) | set(self.shown):
                self._in_view(label, seen.get(label, 0))

    def frame(self, image, info: FrameInfo) -> None:
        self.refresh(image, info)

    def refresh(self, image, info: FrameInfo) -> None:
        r = info.result
        if self.snapshot_after is not None and image is not None and r is not None and r.frame >= self.snapshot_after:
            self.snapshot_after = None
            self.link.later("snapshot", lambda: self._snapshot(image))

    def watch(self, status: Callable[[], dict]) -> None:
        self.live_status = status

    def tuned(self, key: str, value: Any) -> None:
        """A live setting changed (any route): the status now; new lines or zones announced."""
        setting = next((c for c in CONTROLS if c.key == key), None)
        if setting is None:                  # a hot key that is no live control (log_level, model.dir)
            return
        self.settings[setting.alias or key] = value
        if key in ("rules.lines", "rules.zones"):
            self._rules_changed()
        self.link.later("status", lambda: self._publish_status(self.live_status()))

    def intents(self) -> List[Intent]:
        if not self.asked:
            return []
        with self.lock:
            asked, self.asked = self.asked, []
        return asked

    def close(self) -> None:
        self._publish_status({})          # the last figures, then offline
        self.link.close()

    # -- the publisher thread's work --------------------------------------------------------------
    def _tick(self) -> None:
        """Every mqtt.status_s: the status, with the live runner's (camera FPS, capture to display);
        after local midnight, every count with today's back at zero."""
        self._publish_status(self.live_status())
        if self.today is not None and self.today.current_day() != self.today_day:
            self.today_day = self.today.current_day()
            with self.lock:
                counts = {name: self._counts(name) for name in self.rules.counts}
            for name, payload in counts.items():
                self.link.keep(self.topics.counts(name), payload)

    def _counts(self, name: str) -> bytes:
        """A line's or zone's counts topic: since the start, and today's (with a history)."""
        c = self.rules.counts[name]
        return encode({**c, **self.today.of(name, "entered" in c)} if self.today is not None else c)

    def _publish_status(self, live: dict) -> None:
        now = time.monotonic()
        results = self.results
        fps = (results - self.results_at_tick) / (now - self.last_tick) if now > self.last_tick else 0.0
        self.results_at_tick, self.last_tick = results, now
        status = {**self.settings, "model": self.model, "fps": round(fps, 2), **self.figures, "results": results,
                  "events": self.events, "objects": {k: v for k, v in dict(self.shown).items() if v},
                  "uptime_s": round(now - self.started, 1),
                  "mqtt": {"sent": self.link.sent, "queued": len(self.link.outbox.queue),
                           "dropped": self.link.outbox.dropped},
                  **{k: live[k] for k in STATUS_KEYS if k in live}}
        self.link.keep(self.topics.status, encode(status))

    def _snapshot(self, image) -> None:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            self.link.keep(self.topics.snapshot, jpeg.tobytes(), qos=0)

    def _models(self) -> None:
        """The model select's options: the provisioned models of the running model's task."""
        names = catalog.provisioned(self.task, self.cfg.model.dir) if self.task else []
        self.device.models = names if self.model in names else names + [self.model]
        self._announce()

    def _announce(self) -> None:
        """Home Assistant's entities as the device has them now; every entity announced before
        and gone now (a removed line, zone or label) emptied, which deletes it."""
        wanted = announcements(self.device, self.m.discovery)
        for topic in self.announced - set(wanted):
            self.link.keep(topic, b"")
        for topic, payload in wanted.items():
            self.link.keep(topic, payload)
        self.announced = {topic for topic, payload in wanted.items() if payload}

    def _rules_changed(self) -> None:
        """Lines or zones changed while running: counts kept by name (as the tracking stage
        keeps them; a moved zone's insiders are learnt anew), the removed ones' topics emptied,
        the new ones' published, the entities announced again."""
        lines, zones = _names(self.settings["lines"], self.settings["zones"])
        moved = _moved_zones(self.zone_points, self.settings["zones"])
        with self.lock:
            old, self.rules = self.rules, RuleCounts(lines, zones, self.rules)
            for name in moved & set(zones):
                self.rules.counts[name] = dict(self.rules.counts[name], inside=0)
            counts = {name: self._counts(name) for name in self.rules.counts}
        self.zone_points = _zone_points(self.settings["zones"])
        for name in set(old.counts) - set(counts):
            self.link.keep(self.topics.counts(name), b"")      # an empty retained message deletes it
        for name, payload in counts.items():
            self.link.keep(self.topics.counts(name), payload)
        self.device.lines, self.device.zones = lines, zones
        self.link.later("announce", self._announce)

    def _in_view(self, label: str, n: int) -> None:
        if self.shown.get(label) != n:
            self.shown[label] = n
            self.link.keep(self.topics.objects(label), str(n).encode())

    # -- paho's network thread --------------------------------------------------------------------
    def _subscribe(self) -> None:
        # the states at once, not at the first tick (Home Assistant shows "unknown" until then)
        self.link.later("status", lambda: self._publish_status(self.live_status()))
        if self.live:
            self.link.subscribe(self.topics.set_filter)
        if self.m.discovery:
            self.link.subscribe(f"{self.m.discovery_prefix}/status", 0)   # Home Assistant's birth message

    def _message(self, topic: str, payload: bytes) -> None:
        if topic == f"{self.m.discovery_prefix}/status":
            if payload.strip() == b"online":     # Home Assistant (re)started: announce again
                self.link.later("announce", self.link.outbox.redo)
            return
        key = self.topics.set_key(topic)
        if key is None:
            return
        asked = payload[:MAX_SET_PAYLOAD].decode("utf-8", "replace").strip()
        reply = lambda done, why, value=None: self._replied(key, asked, done, why, value)   # noqa: E731
        with self.lock:
            busy = len(self.asked) >= MAX_ASKED
            if not busy and len(payload) <= MAX_SET_PAYLOAD:
                self.asked.append(Intent(SET, key=key, value=asked, reply=reply))
                return
        reply(False, "too many changes at once: try again" if busy else
              f"a value is at most {MAX_SET_PAYLOAD} bytes")

    def _replied(self, key: str, asked: str, done: bool, why: str, value: Any) -> None:
        """The runner's answer to a set (on the output loop): published, with the value in
        force (the status follows: tuned() asks for it when something changed)."""
        self.link.send(self.topics.reply(key), reply_payload(key, asked, done, why, value), self.m.qos)


_KEYS = {c.key for c in CONTROLS if c.key != PAUSED}   # the controls that are config keys


def _names(lines, zones) -> tuple:
    """The names of the lines and zones (as the tracking stage names them)."""
    return [Line.parse(s, i).name for i, s in enumerate(lines)], [Zone.parse(z, i).name for i, z in enumerate(zones)]


def _zone_points(zones) -> Dict[str, list]:
    """Each zone's points by name: a zone whose points change is a moved zone."""
    return {zone.name: zone.points for zone in (Zone.parse(z, i) for i, z in enumerate(zones))}


def _moved_zones(before: Dict[str, list], zones) -> set:
    return {name for name, points in _zone_points(zones).items() if name in before and before[name] != points}
