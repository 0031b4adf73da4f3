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
                      applies them as a SIGHUP would (Reloader.set) and its answer is
                      published on set/<key>/result"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import cv2

from edgecam.bounds import read_bounded
from edgecam.errors import ConfigError
from edgecam.provision import catalog
from edgecam.mqtt.address import parse_broker
from edgecam.mqtt.discovery import Device, announcements
from edgecam.mqtt.link import Link, log
from edgecam.mqtt.topics import (MAX_SET_PAYLOAD, RuleCounts, Topics, config_key, encode, event_payload, in_view,
                                 reply_payload, slug)
from edgecam.sinks.base import SET, FrameInfo, Intent, Sink
from edgecam.track.rules import Line, Zone

MAX_PEM = 1024 * 1024   # bytes in a certificate or key file
MAX_ASKED = 64          # set messages waiting for the output loop; beyond, refused
LIVE_KEYS = ("status", "camera_fps", "inference_fps", "latency_ms", "result_age_ms", "dropped", "reconnects",
             "paused", "overlay", "model")    # what the live status adds to the sink's own figures


def check_files(m) -> None:
    """The TLS files mqtt.tls_* name are readable regular files (checked used or not, like every
    value a mode ignores), or ConfigError with one sentence."""
    for key in ("tls_ca", "tls_cert", "tls_key"):
        if getattr(m, key):
            read_bounded(Path(getattr(m, key)), f"mqtt.{key}", MAX_PEM, ConfigError)


class MqttSink(Sink):
    def __init__(self, cfg, live: bool):
        m = self.m = cfg.mqtt
        self.cfg, self.live = cfg, live
        self.name = m.name or socket.gethostname()
        self.topics = Topics(m.topic_prefix or f"edgecam/{slug(self.name)}")
        self.wants_frames = m.snapshot
        lines = [Line.parse(s, i).name for i, s in enumerate(cfg.rules.lines)]
        zones = [Zone.parse(z, i).name for i, z in enumerate(cfg.rules.zones)]
        self.device = Device(self.name, self.topics, m.discovery_prefix, list(m.labels), lines, zones,
                             m.snapshot, live)
        self.rules = RuleCounts(lines, zones)
        self.shown: Dict[str, int] = {}                 # objects in view per label, as published
        self.lock = threading.Lock()
        self.asked: List[Intent] = []
        self.results = self.events = 0
        self.model = cfg.model.name
        self.task: Optional[str] = None          # known with the first result
        self.figures = {"inference_ms": None, "latency_ms": None}
        self.paused = False
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
        for name, counts in self.rules.counts.items():
            self.link.keep(self.topics.counts(name), encode(counts))
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
            name = self.rules.apply(event)
            if name is not None:
                self.link.keep(self.topics.counts(name), encode(self.rules.counts[name]))
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
        """Every mqtt.status_s: the status, with the live runner's (camera FPS, capture to display)."""
        self._publish_status(self.live_status())

    def _publish_status(self, live: dict) -> None:
        now = time.monotonic()
        results = self.results
        fps = (results - self.results_at_tick) / (now - self.last_tick) if now > self.last_tick else 0.0
        self.results_at_tick, self.last_tick = results, now
        status = {"model": self.model, "fps": round(fps, 2), **self.figures,
                  "threshold": self.cfg.postprocess.threshold, "top_k": self.cfg.postprocess.top_k,
                  "overlay": self.cfg.overlay.enabled, "paused": self.paused, "results": results,
                  "events": self.events, "objects": {k: v for k, v in dict(self.shown).items() if v},
                  "uptime_s": round(now - self.started, 1),
                  "mqtt": {"sent": self.link.sent, "queued": len(self.link.outbox.queue),
                           "dropped": self.link.outbox.dropped},
                  **{k: live[k] for k in LIVE_KEYS if k in live}}
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
        for topic, payload in announcements(self.device, self.m.discovery).items():
            self.link.keep(topic, payload)

    def _in_view(self, label: str, n: int) -> None:
        if self.shown.get(label) != n:
            self.shown[label] = n
            self.link.keep(self.topics.objects(label), str(n).encode())

    # -- paho's network thread --------------------------------------------------------------------
    def _subscribe(self) -> None:
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
        value = payload[:MAX_SET_PAYLOAD].decode("utf-8", "replace").strip()
        reply = lambda done, why: self._replied(key, value, done, why)   # noqa: E731
        with self.lock:
            busy = len(self.asked) >= MAX_ASKED
            if not busy and len(payload) <= MAX_SET_PAYLOAD:
                self.asked.append(Intent(SET, key=config_key(key), value=value, reply=reply))
                return
        reply(False, "too many changes at once: try again" if busy else
              f"a value is at most {MAX_SET_PAYLOAD} bytes")

    def _replied(self, key: str, value: str, done: bool, why: str) -> None:
        """The runner's answer to a set (on the output loop): published; the status follows."""
        self.link.send(self.topics.reply(key), reply_payload(key, value, done, why), self.m.qos)
        if done and config_key(key) == "paused":
            self.paused = why.endswith("true")
        elif done and config_key(key) == "model.name":
            self.model = value
        self.link.later("status", lambda: self._publish_status(self.live_status()))
